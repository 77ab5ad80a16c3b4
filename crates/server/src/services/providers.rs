//! The provider service: the catalog (built-ins, then the account's own), resolving a
//! provider by id or slug, providers' display names, and adding a custom provider.
//!
//! This is the one place a provider is resolved: credential writes and reads, the worker,
//! auth lists and answers, and the operator CLI all go through [`resolve`] or [`names`].

use authd_core::audit::{Audit, AuditAction};
use authd_core::ids::{AccountId, ProviderId};
use authd_core::provider::{self, Provider};
use authd_core::store::Store;
use authd_core::{Error, Result};

use crate::audit::{By, RequestId};
use crate::state::AppState;
use crate::tokens::Principal;

/// Resolves a provider by id or slug: the built-in catalog first, then the account's own.
pub async fn resolve(store: &dyn Store, account: AccountId, key: &str) -> Result<Option<Provider>> {
    if let Some(p) = provider::builtin(key) {
        return Ok(Some(p));
    }
    store.get_provider(account, key).await
}

/// Resolves a provider by id.
pub async fn by_id(
    store: &dyn Store,
    account: AccountId,
    id: ProviderId,
) -> Result<Option<Provider>> {
    if let Some(p) = provider::builtin_by_id(id) {
        return Ok(Some(p.clone()));
    }
    store.get_provider(account, &id.to_string()).await
}

/// Display names of providers, resolved once for a set of auths.
#[derive(Debug, Default)]
pub struct Names {
    custom: Vec<(ProviderId, String)>,
}

impl Names {
    /// The names of one provider already resolved.
    pub fn of_one(p: &Provider) -> Self {
        Self {
            custom: vec![(p.id, p.name.clone())],
        }
    }

    /// The display name of provider `id`; empty if it no longer exists.
    pub fn of(&self, id: ProviderId) -> &str {
        if let Some(p) = provider::builtin_by_id(id) {
            return &p.name;
        }
        self.custom
            .iter()
            .find(|(p, _)| *p == id)
            .map_or("", |(_, n)| n.as_str())
    }
}

/// The display names of the providers `ids` (of `account`). Built-ins (Lytics, the provider
/// of every API token) resolve in memory without a query; one custom provider costs one
/// read, several one list.
pub async fn names(
    store: &dyn Store,
    account: AccountId,
    ids: impl IntoIterator<Item = ProviderId>,
) -> Result<Names> {
    let mut custom: Vec<ProviderId> = ids
        .into_iter()
        .filter(|id| provider::builtin_by_id(*id).is_none())
        .collect();
    custom.sort_unstable();
    custom.dedup();
    let custom = match custom.as_slice() {
        [] => Vec::new(),
        [one] => store
            .get_provider(account, &one.to_string())
            .await?
            .map(|p| (p.id, p.name))
            .into_iter()
            .collect(),
        _ => store
            .list_providers(account)
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect(),
    };
    Ok(Names { custom })
}

/// The whole catalog an account sees: the built-ins, then its own.
pub async fn list(state: &AppState, account: AccountId) -> Result<Vec<Provider>> {
    let mut all = provider::builtin_catalog();
    all.extend(state.store.list_providers(account).await?);
    Ok(all)
}

/// One provider by id or slug; `NotFound` if the account sees none.
pub async fn read(state: &AppState, account: AccountId, key: &str) -> Result<Provider> {
    resolve(state.store.as_ref(), account, key)
        .await?
        .ok_or(Error::NotFound)
}

/// Adds a custom provider (parsed at the edge) to the account; its `provider.create` entry
/// commits with it. A slug taken by a built-in is a conflict (the store refuses the
/// account's own duplicates).
pub async fn create(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    p: Provider,
) -> Result<Provider> {
    if provider::builtin(&p.slug).is_some() {
        return Err(Error::Conflict(format!(
            "A provider with slug {:?} already exists",
            p.slug
        )));
    }
    let entry = By::caller(state, caller, rid).entry(
        AuditAction::ProviderCreate,
        &p.id.to_string(),
        &format!("slug {}; auth_method {}", p.slug, p.auth_method.as_str()),
    );
    state
        .store
        .create_provider(
            caller.account_id,
            p,
            state.clock.now_ms(),
            Audit::Entry(entry),
        )
        .await
}
