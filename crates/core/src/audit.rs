//! The audit trail: an append-only record of every mutation and every refused credential.
//!
//! **Invariant:** an entry never carries a secret. Targets are ids, actions are fixed
//! strings, and `detail` is built by the server from non-secret facts only (roles, field
//! names, key ids, counts).

use async_trait::async_trait;

use crate::ids::AccountId;
use crate::Result;

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Sequence number (assigned by the store; 0 before insertion).
    pub seq: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// The account concerned, if known (refused anonymous credentials and operator actions
    /// such as key rotation have none).
    pub account_id: Option<AccountId>,
    /// Who: `token:<auth id>`, `user:<id>`, `worker`, `cli` or `anonymous`.
    pub actor: String,
    /// What (`auth.create`, `token.revoke`, `keys.rotate`, `credential.refused` …).
    pub action: String,
    /// On what (usually an id; may be empty).
    pub target: String,
    /// `ok`, or a short failure class (`unauthorized`, `forbidden`, `decrypt_failed`).
    pub outcome: String,
    /// The request id, if any.
    pub request_id: String,
    /// Non-secret detail.
    pub detail: String,
}

/// Filters for listing the audit trail; every given filter must match exactly.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only this action.
    pub action: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
}

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
