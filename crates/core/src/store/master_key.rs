//! Storage contract: the wrapped token-hash key and master-key checks. Every method that touches tenant data takes the
//! account first (see [`crate::store`]).

use crate::master_key::MasterRewrap;
use async_trait::async_trait;

use crate::Result;

/// Store side of the master key. Operator/start-up operations, not tenant-scoped; no HTTP
/// handler calls them.
#[async_trait]
pub trait MasterKeyStore: Send + Sync {
    /// The wrapped token-hash key, if the store has one yet.
    async fn token_hash_key(&self) -> Result<Option<Vec<u8>>>;
    /// Records `wrapped` as the token-hash key unless one exists; returns the one stored
    /// (the caller's or a concurrent starter's).
    async fn init_token_hash_key(&self, wrapped: Vec<u8>) -> Result<Vec<u8>>;
    /// Applies a master-key rotation in one transaction. `Error::Conflict` (nothing written)
    /// when any blob differs from what the rotation read or a data key is missing from it.
    async fn rewrap_master(
        &self,
        rewrap: MasterRewrap,
        audit: crate::audit::Audit<'_, ()>,
    ) -> Result<()>;
}
