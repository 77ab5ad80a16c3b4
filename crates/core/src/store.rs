//! The storage contract. Backends (SQLite, PostgreSQL) implement these traits; the server
//! only ever holds `Arc<dyn Store>`.
//!
//! **Invariant:** every method that reads or changes tenant data takes the [`AccountId`] first
//! and must not see another account's rows. The single exception is
//! [`AuthStore::token_verifier`], which resolves a presented token's public handle to the
//! account it belongs to — that is how the tenant of a request is learned.
//!
//! Every mutation takes its audit entries ([`Audit`]) and inserts them in its own
//! transaction, after the change and only if there was one.
//!
//! Backends report unreachable databases as [`crate::Error::Unavailable`] and broken
//! uniqueness as [`crate::Error::Conflict`]; any other failure is `Internal`.

use async_trait::async_trait;

use crate::audit::Audit;
use crate::ids::{AccountId, AuthId, UserId};
use crate::model::{
    Account, Auth, AuthFilter, NewAccount, NewToken, Page, TokenVerifier, User, UserPatch,
};
use crate::Result;

mod entities;
mod rotation;
mod settings;
pub use entities::EntityStore;
pub use rotation::RotationStore;
pub use settings::SettingsStore;
mod providers;
pub use providers::ProviderStore;
mod works;
pub use works::WorkStore;
mod worker_credentials;
pub use worker_credentials::WorkerCredentialStore;
mod master_key;
pub use master_key::MasterKeyStore;
mod credentials;
pub use credentials::{CredentialStore, KeyStore};
mod audit;
pub use audit::AuditStore;

/// Accounts (tenants).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account and assigns its `aid`.
    async fn create_account(&self, new: NewAccount, now_ms: i64) -> Result<Account>;
    /// One account by id.
    async fn get_account(&self, id: AccountId) -> Result<Option<Account>>;
    /// One account by its integer aid.
    async fn get_account_by_aid(&self, aid: i64) -> Result<Option<Account>>;
    /// How many accounts exist (0 means the store is uninitialised).
    async fn count_accounts(&self) -> Result<u64>;
}

/// Users of an account.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user; `Conflict` if the email is taken in this account.
    async fn create_user(&self, user: User, audit: Audit<'_, User>) -> Result<User>;
    /// One user.
    async fn get_user(&self, account: AccountId, id: UserId) -> Result<Option<User>>;
    /// Users in id order after the page cursor.
    async fn list_users(&self, account: AccountId, page: Page<UserId>) -> Result<Vec<User>>;
    /// Applies a patch; `None` if there is no such user in this account. Returns the user and,
    /// when the roles changed, the ids of the user's tokens (whose effective roles follow the
    /// user's; PostgreSQL publishes them in the same transaction). Refuses with
    /// [`crate::roles::last_admin`] (`Conflict`) to take `admin` from the account's last
    /// user holding it; the check and the change are atomic.
    async fn update_user(
        &self,
        account: AccountId,
        id: UserId,
        patch: UserPatch,
        now_ms: i64,
        audit: Audit<'_, (User, Vec<AuthId>)>,
    ) -> Result<Option<(User, Vec<AuthId>)>>;
    /// Deletes a user and revokes the user's tokens and every token they created, in one
    /// transaction; returns the revoked token ids, `None` if there was no such user. Refuses
    /// to delete the account's last user holding `admin`, like [`Self::update_user`].
    async fn delete_user(
        &self,
        account: AccountId,
        id: UserId,
        audit: Audit<'_, Vec<AuthId>>,
    ) -> Result<Option<Vec<AuthId>>>;
}

/// Auth records (API tokens here; credentials build on the same table).
#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Persists a new API token.
    async fn create_token(&self, account: AccountId, token: NewToken, now_ms: i64) -> Result<Auth>;
    /// Persists many API tokens in one transaction (bulk provisioning and benchmarks).
    async fn create_tokens(
        &self,
        account: AccountId,
        tokens: &[NewToken],
        now_ms: i64,
    ) -> Result<()>;
    /// One auth by id.
    async fn get_auth(&self, account: AccountId, id: AuthId) -> Result<Option<Auth>>;
    /// The version of the account's auths: it moves, in the same transaction, with every
    /// change to one of the account's auths or providers (both backends keep it by trigger),
    /// so two equal readings bracket no change. 0 for an account nothing changed yet.
    async fn auths_version(&self, account: AccountId) -> Result<u64>;
    /// Auths in id order after the page cursor, filtered.
    async fn list_auths(
        &self,
        account: AccountId,
        filter: AuthFilter,
        page: Page<AuthId>,
    ) -> Result<Vec<Auth>>;
    /// Deletes an auth and, for tokens, every token it created, transitively, in one
    /// transaction. Returns every deleted id (empty if `id` did not exist in this account).
    async fn delete_auth(&self, account: AccountId, id: AuthId) -> Result<Vec<AuthId>>;
    /// The authentication view of a token, by its public handle.
    async fn token_verifier(&self, id: AuthId) -> Result<Option<TokenVerifier>>;
    /// The authentication view of a token together with its public record (what the token
    /// cache holds). Both backends override this with one query (`store-sql`'s
    /// `TOKEN_RECORD_SELECT`), so a cache miss is one round trip.
    async fn token_record(&self, id: AuthId) -> Result<Option<(TokenVerifier, Auth)>> {
        let Some(cred) = self.token_verifier(id).await? else {
            return Ok(None);
        };
        Ok(self
            .get_auth(cred.account_id, id)
            .await?
            .map(|auth| (cred, auth)))
    }
    /// Records last-access times in bulk (coalesced by the caller). Unknown ids are ignored.
    async fn touch_tokens(&self, touches: &[(AuthId, i64)]) -> Result<()>;
}

/// Everything a backend provides.
#[async_trait]
pub trait Store:
    AccountStore
    + UserStore
    + AuthStore
    + SettingsStore
    + EntityStore
    + RotationStore
    + CredentialStore
    + KeyStore
    + MasterKeyStore
    + WorkStore
    + AuditStore
    + ProviderStore
    + WorkerCredentialStore
    + Send
    + Sync
    + 'static
{
    /// Cheap round trip to the database, for readiness.
    async fn ping(&self) -> Result<()>;
    /// Short backend name for logs (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
}
