//! Storage contract: worker credentials (the worker listener's own). Every method that touches tenant data takes the
//! account first (see [`crate::store`]).

use crate::worker_credential::NewWorkerCredential;
use crate::worker_credential::WorkerCredential;
use async_trait::async_trait;

use crate::ids::WorkerCredentialId;
use crate::Result;

/// Where worker credentials live.
#[async_trait]
pub trait WorkerCredentialStore: Send + Sync {
    /// Inserts a credential; `Conflict` if a credential not revoked has the same name (or the
    /// hash is already taken).
    async fn create_worker_credential(
        &self,
        new: NewWorkerCredential,
        audit: crate::audit::Audit<'_, ()>,
    ) -> Result<()>;
    /// The credential (not revoked) whose secret hashes to `hash`.
    async fn worker_credential_by_hash(&self, hash: &[u8; 32]) -> Result<Option<WorkerCredential>>;
    /// Every credential, revoked ones included, in creation order.
    async fn list_worker_credentials(&self) -> Result<Vec<WorkerCredential>>;
    /// Revokes a credential; `false` if there is no such credential not yet revoked.
    async fn revoke_worker_credential(
        &self,
        id: WorkerCredentialId,
        now_ms: i64,
        audit: crate::audit::Audit<'_, ()>,
    ) -> Result<bool>;
}
