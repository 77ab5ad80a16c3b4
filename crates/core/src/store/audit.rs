//! Storage contract: the audit trail. Every method that touches tenant data takes the
//! account first (see [`crate::store`]).

use crate::audit::AuditEntry;
use crate::audit::AuditFilter;
use async_trait::async_trait;

use crate::ids::AccountId;
use crate::Result;

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry; returns its sequence number.
    async fn append_audit(&self, entry: AuditEntry) -> Result<i64>;
    /// An account's entries, newest first, with `seq < before` when given.
    async fn list_audit(
        &self,
        account: AccountId,
        filter: AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;
}
