//! The audit-trail service: reading the caller's account's trail, newest first. Refusals
//! are appended in the background (`crate::audit::refused`); a read first flushes that
//! queue, so the trail shown includes every refusal made before it.

use authd_core::audit::{AuditEntry, AuditFilter};
use authd_core::ids::AccountId;
use authd_core::Result;

use crate::state::AppState;

/// Up to `rows` entries of the account matching `filter`, with sequence numbers below
/// `before` if given.
pub async fn list(
    state: &AppState,
    account: AccountId,
    filter: AuditFilter,
    before: Option<i64>,
    rows: u32,
) -> Result<Vec<AuditEntry>> {
    state.refusals.flush().await;
    state.store.list_audit(account, filter, before, rows).await
}
