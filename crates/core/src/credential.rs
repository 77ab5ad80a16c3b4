//! Stored third-party credentials: the encrypted secret rows, the wrapped data keys of the
//! key ring, and the storage traits for both.
//!
//! This module owns the *shapes* only. It never sees a plaintext secret: encryption happens in
//! `authd-crypto` and the server, and what reaches a store is ciphertext with the id of the
//! data key that sealed it. Field names (`config.apikey`, `oauthtoken`, `oauth2token`) are not
//! secret and are stored in the clear so that updates can merge and validation can run without
//! decrypting.

use crate::ids::{AccountId, AuthId, ProviderId, UserId, WorkId};
use crate::model::Auth;

/// Secret-field name of the OAuth 1 token object.
pub const FIELD_OAUTH1: &str = "oauthtoken";
/// Secret-field name of the OAuth 2 token object.
pub const FIELD_OAUTH2: &str = "oauth2token";
/// Prefix of a config entry's secret-field name (`config.apikey`).
pub const CONFIG_PREFIX: &str = "config.";
/// The integrity row every credential written since migration 0006 holds: an empty
/// plaintext sealed under the credential's whole binding (see `docs/credentials.md`), so a
/// credential always has at least one authenticated row, even with no secret fields.
pub const FIELD_MANIFEST: &str = "#manifest";

/// One encrypted field of a credential, exactly as persisted. Holds no plaintext; `Debug`
/// still omits the ciphertext bytes, which are useless to a reader and noisy in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// Field name (`config.apikey`, `oauthtoken`, `oauth2token`), bound into the AAD.
    pub field: String,
    /// Id of the data key that sealed it.
    pub key_id: String,
    /// The 96-bit AEAD nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext with its authentication tag.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("field", &self.field)
            .field("key_id", &self.key_id)
            .field("ciphertext", &"<hidden>")
            .finish()
    }
}

/// What is needed to persist a new credential.
#[derive(Clone, Debug)]
pub struct NewCredential {
    /// The auth id (server-assigned or caller-chosen).
    pub id: AuthId,
    /// The provider it is for.
    pub provider_id: ProviderId,
    /// Name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Description.
    pub description: String,
    /// The user that provided it.
    pub user_id: Option<UserId>,
    /// That user's name.
    pub user_name: String,
    /// The token that created it.
    pub parent_id: Option<AuthId>,
    /// Random per credential (bound into every seal); the credential starts at generation 1.
    pub incarnation: String,
    /// The encrypted fields, sealed for generation 1 (manifest included).
    pub secrets: Vec<StoredSecret>,
}

/// A change to a credential: `None` keeps a text value; `secrets` is the credential's
/// complete new set of encrypted fields (every write reseals all of them for the next
/// generation), applied only if the stored generation is still `expected_generation`.
#[derive(Clone, Debug, Default)]
pub struct CredentialPatch {
    /// New provider.
    pub provider_id: Option<ProviderId>,
    /// New name.
    pub name: Option<String>,
    /// New label.
    pub label: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// The generation the new secrets were sealed on top of; the store writes
    /// `expected_generation + 1` or answers `Conflict` if another write came first.
    pub expected_generation: i64,
    /// The incarnation the new secrets are bound to (unchanged, except when a pre-0006
    /// credential gets its first one).
    pub incarnation: String,
    /// Every field, replacing all stored ones.
    pub secrets: Vec<StoredSecret>,
}

/// A credential's public record with its encrypted fields, read in one snapshot.
#[derive(Clone, Debug)]
pub struct CredentialRecord {
    /// The public part.
    pub auth: Auth,
    /// Random per credential; empty for a credential written before migration 0006.
    pub incarnation: String,
    /// Write counter; 0 for a credential written before migration 0006 (per-field binding).
    pub generation: i64,
    /// The encrypted fields, by field name order.
    pub secrets: Vec<StoredSecret>,
}

/// What deleting an auth did, all in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Every deleted auth id (the auth itself and, for tokens, the tokens it created).
    pub deleted: Vec<AuthId>,
    /// Works that listed a deleted id and were stopped by this delete.
    pub stopped_works: Vec<WorkId>,
    /// Works that listed a deleted id (stopped or already finished), which no longer list it.
    pub detached_works: Vec<WorkId>,
}

/// A wrapped data key as persisted (never plaintext: wrapped under the master key's KEK).
#[derive(Clone, PartialEq, Eq)]
pub struct DataKeyRecord {
    /// Key id (`k_<16 hex>`).
    pub id: String,
    /// Creation time (Unix ms).
    pub created_ms: i64,
    /// The wrapped key blob.
    pub wrapped: Vec<u8>,
    /// Whether new seals use it.
    pub current: bool,
}

impl std::fmt::Debug for DataKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyRecord")
            .field("id", &self.id)
            .field("created_ms", &self.created_ms)
            .field("current", &self.current)
            .finish()
    }
}

/// One secret field located for re-encryption.
#[derive(Clone, Debug)]
pub struct SecretLocation {
    /// Owning account.
    pub account_id: AccountId,
    /// Owning auth.
    pub auth_id: AuthId,
    /// The stored field.
    pub secret: StoredSecret,
}

/// What [`KeyStore::reserve_seals`](crate::store::KeyStore::reserve_seals) granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealGrant {
    /// Seals granted (0 when the key's budget is spent).
    pub granted: u64,
    /// The key's seal count after this grant.
    pub seals: u64,
}

/// What [`KeyStore::destroy_data_key`](crate::store::KeyStore::destroy_data_key) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDestroy {
    /// The key is gone.
    Destroyed,
    /// No key has this id.
    NotFound,
    /// The key is the current one (rotate first).
    Current,
    /// This many secret rows are still sealed under it (rewrap first).
    Referenced(u64),
}
