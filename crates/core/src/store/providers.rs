//! Storage contract: custom providers of an account. Every method that touches tenant data takes the
//! account first (see [`crate::store`]).

use crate::provider::Provider;
use async_trait::async_trait;

/// Custom providers an account added (`POST /api/provider`). The built-in catalog is not in
/// the store; callers look there first.
#[async_trait]
pub trait ProviderStore: Send + Sync {
    /// Persists a custom provider for `account`; `Conflict` if its id or slug is taken there.
    async fn create_provider(
        &self,
        account: crate::ids::AccountId,
        provider: Provider,
        now_ms: i64,
        audit: crate::audit::Audit<'_, Provider>,
    ) -> crate::Result<Provider>;
    /// An account's custom providers, by slug.
    async fn list_providers(&self, account: crate::ids::AccountId) -> crate::Result<Vec<Provider>>;
    /// One custom provider by id or slug.
    async fn get_provider(
        &self,
        account: crate::ids::AccountId,
        id_or_slug: &str,
    ) -> crate::Result<Option<Provider>>;
}
