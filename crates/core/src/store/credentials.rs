//! Storage contract: stored credentials and the data-key ring. Every method that touches tenant data takes the
//! account first (see [`crate::store`]).

use crate::credential::CredentialPatch;
use crate::credential::CredentialRecord;
use crate::credential::DataKeyRecord;
use crate::credential::DeleteOutcome;
use crate::credential::KeyDestroy;
use crate::credential::NewCredential;
use crate::credential::SealGrant;
use crate::credential::SecretLocation;
use crate::credential::StoredSecret;
use async_trait::async_trait;

use crate::audit::Audit;
use crate::ids::{AccountId, AuthId};
use crate::model::Auth;
use crate::Result;

/// Credentials: create, update, read with secrets, delete with the work cascade.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Persists a new credential and its secrets in one transaction. `Conflict` if the id is
    /// taken.
    async fn create_credential(
        &self,
        account: AccountId,
        new: NewCredential,
        now_ms: i64,
        audit: Audit<'_, Auth>,
    ) -> Result<Auth>;
    /// Applies a patch to a credential; `None` if there is no credential with this id in this
    /// account; `Conflict` if its generation is no longer `patch.expected_generation`.
    async fn update_credential(
        &self,
        account: AccountId,
        id: AuthId,
        patch: CredentialPatch,
        now_ms: i64,
        audit: Audit<'_, Auth>,
    ) -> Result<Option<Auth>>;
    /// A credential and its secrets, read in one snapshot.
    async fn get_credential(
        &self,
        account: AccountId,
        id: AuthId,
    ) -> Result<Option<CredentialRecord>>;
    /// Deletes an auth like [`crate::store::AuthStore::delete_auth`] and, in the same
    /// transaction, removes every deleted id from every work listing it, stops those works
    /// (statuscode `paused` with `reason`) and destroys the secret rows. An empty `deleted`
    /// means there was nothing to delete in this account.
    async fn delete_auth_cascade(
        &self,
        account: AccountId,
        id: AuthId,
        reason: &str,
        now_ms: i64,
        audit: Audit<'_, DeleteOutcome>,
    ) -> Result<DeleteOutcome>;
}

/// The key ring's persistence and the bulk operations of `authd keys`. These are operator
/// operations over the whole store, deliberately not tenant-scoped; no HTTP handler calls
/// them.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every data key, oldest first.
    async fn list_data_keys(&self) -> Result<Vec<DataKeyRecord>>;
    /// The id of the current key, if any.
    async fn current_data_key_id(&self) -> Result<Option<String>>;
    /// Adds a key. With `make_current`, it becomes the only current key in the same
    /// transaction. With `only_if_empty`, nothing is written if any key exists (bootstrap
    /// race between processes); the result says whether it was written.
    async fn add_data_key(
        &self,
        key: DataKeyRecord,
        make_current: bool,
        only_if_empty: bool,
        audit: Audit<'_, ()>,
    ) -> Result<bool>;
    /// How many secret fields each key id seals.
    async fn secret_counts_by_key(&self) -> Result<Vec<(String, u64)>>;
    /// Up to `limit` secret fields not sealed under `key_id`, ordered by (auth id, field),
    /// strictly after the `after` position.
    async fn secrets_not_under(
        &self,
        key_id: &str,
        after: Option<(AuthId, String)>,
        limit: u32,
    ) -> Result<Vec<SecretLocation>>;
    /// Replaces one secret field if it still holds exactly `old` (compare-and-swap on key
    /// id and nonce), so a concurrent API write is never overwritten. Returns whether it did.
    async fn replace_secret(&self, at: &SecretLocation, new: StoredSecret) -> Result<bool>;
    /// How many seals each key id has reserved (made, or about to be), oldest key first.
    async fn seal_counts_by_key(&self) -> Result<Vec<(String, u64)>>;
    /// Reserves up to `n` seals under `key_id`, durably and atomically across processes:
    /// grants `min(n, budget - seals)` and adds it to the key's count. `None` when `key_id`
    /// is not (or no longer) the current key. Called before sealing, so the count never
    /// falls behind the seals made.
    async fn reserve_seals(&self, key_id: &str, n: u64, budget: u64) -> Result<Option<SealGrant>>;
    /// Adds `key` as the current key only if `expected` is still current (one transaction),
    /// so processes that find the same key spent rotate it once. Returns whether it did.
    async fn rotate_data_key_from(
        &self,
        expected: &str,
        key: DataKeyRecord,
        audit: Audit<'_, ()>,
    ) -> Result<bool>;
    /// Deletes a retired data key that no secret row references, in one transaction (with
    /// `audit`); otherwise says why not (and writes nothing).
    async fn destroy_data_key(&self, key_id: &str, audit: Audit<'_, ()>) -> Result<KeyDestroy>;
}
