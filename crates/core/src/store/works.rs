//! Storage contract: works of an account. Every method that touches tenant data takes the
//! account first (see [`crate::store`]).

use crate::work::Work;
use async_trait::async_trait;

use crate::ids::{AccountId, WorkId};
use crate::model::Page;
use crate::Result;

/// Works of an account.
#[async_trait]
pub trait WorkStore: Send + Sync {
    /// Persists a work. Every auth id must be an auth of `account` (else `Invalid` naming
    /// it); a work with the same workflow and config is `Conflict`. The check and insert are
    /// one transaction, so a concurrent auth delete cannot leave a dangling id.
    async fn create_work(&self, work: Work, audit: crate::audit::Audit<'_, Work>) -> Result<Work>;
    /// One work, read in one snapshot with its auth ids.
    async fn get_work(&self, account: AccountId, id: WorkId) -> Result<Option<Work>>;
    /// Works in id order after the cursor.
    async fn list_works(&self, account: AccountId, page: Page<WorkId>) -> Result<Vec<Work>>;
    /// Deletes a work; `false` if there was none.
    async fn delete_work(
        &self,
        account: AccountId,
        id: WorkId,
        audit: crate::audit::Audit<'_, ()>,
    ) -> Result<bool>;
}
