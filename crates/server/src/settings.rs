//! Account settings behind the API and the operator CLI: reading with defaults, validated
//! writes, resets, and `authd account setting delete` — the host-side recovery when an
//! `api_ip_whitelist` locks every token out.

use authd_core::audit::{Audit, AuditAction};
use authd_core::clock::SystemClock;
use authd_core::ids::AccountId;
use authd_core::model::Account;
use authd_core::settings::{SettingSlug, StoredSetting};
use authd_core::store::Store;
use authd_core::{Error, Result};
use serde_json::Value;

use crate::allowlist::Allowlists;
use crate::audit::{By, RequestId};
use crate::records::Records;
use crate::state::AppState;
use crate::tokens::Principal;

/// One setting as the API shows it: the stored value or the default.
#[derive(Debug)]
pub struct Setting {
    /// Which setting.
    pub slug: SettingSlug,
    /// The effective value.
    pub value: Value,
    /// Whether this is the default (never set, or reset).
    pub is_default: bool,
    /// Last change, if set.
    pub updated_ms: Option<i64>,
}

impl Setting {
    fn from_stored(slug: SettingSlug, stored: Option<StoredSetting>) -> Self {
        match stored {
            Some(s) => Self {
                slug,
                value: s.value,
                is_default: false,
                updated_ms: Some(s.updated_ms),
            },
            None => Self {
                slug,
                value: slug.default_value(),
                is_default: true,
                updated_ms: None,
            },
        }
    }
}

/// Resolves a slug; unknown slugs are `NotFound`.
pub fn slug(s: &str) -> Result<SettingSlug> {
    SettingSlug::from_slug(s).ok_or(Error::NotFound)
}

/// This node's copies of an account's settings, dropped after a change: the IP allowlist and
/// the cached stored settings.
pub struct Cached<'a> {
    /// The IP allowlists.
    pub allowlists: &'a Allowlists,
    /// The stored settings (and account records).
    pub records: &'a Records,
}

impl<'a> Cached<'a> {
    /// The node's caches held by the application state.
    pub fn of(state: &'a AppState) -> Self {
        Self {
            allowlists: &state.allowlists,
            records: &state.records,
        }
    }

    fn drop_account(&self, account: AccountId) {
        self.allowlists.invalidate(account);
        self.records.evict_settings(account);
    }
}

/// Every known setting of an account, with defaults for those never set (from memory when
/// cached: see [`Records::settings`]).
pub async fn list(records: &Records, account: AccountId) -> Result<Vec<Setting>> {
    let stored = records.settings(account).await?;
    Ok(SettingSlug::ALL
        .into_iter()
        .map(|k| {
            let s = stored.iter().find(|s| s.slug == k.slug()).cloned();
            Setting::from_stored(k, s)
        })
        .collect())
}

/// One setting of an account.
pub async fn get(records: &Records, account: AccountId, slug: SettingSlug) -> Result<Setting> {
    let stored = records.settings(account).await?;
    let s = stored.iter().find(|s| s.slug == slug.slug()).cloned();
    Ok(Setting::from_stored(slug, s))
}

/// Validates and stores a setting (its `setting.update` entry, by `by`, in the same
/// transaction), then drops cached copies.
pub async fn put(
    store: &dyn Store,
    cached: &Cached<'_>,
    by: &By,
    account: AccountId,
    slug: SettingSlug,
    raw: &Value,
    now_ms: i64,
) -> Result<Setting> {
    let value = slug.validate(raw)?;
    let entry = by.entry(AuditAction::SettingUpdate, slug.slug(), "");
    store
        .put_setting(account, slug.slug(), &value, now_ms, Audit::Entry(entry))
        .await?;
    cached.drop_account(account);
    Ok(Setting {
        slug,
        value,
        is_default: false,
        updated_ms: Some(now_ms),
    })
}

/// Resets a setting to its default (its `setting.reset` entry, by `by`, in the same
/// transaction), then drops cached copies. Resetting an unset setting is not an error, and
/// changes (and audits) nothing.
pub async fn reset(
    store: &dyn Store,
    cached: Option<&Cached<'_>>,
    by: &By,
    account: AccountId,
    slug: SettingSlug,
) -> Result<bool> {
    let entry = by.entry(AuditAction::SettingReset, slug.slug(), "");
    let removed = store
        .delete_setting(account, slug.slug(), Audit::Entry(entry))
        .await?;
    if let Some(c) = cached {
        c.drop_account(account);
    }
    Ok(removed)
}

/// [`put`] by an API caller in its own account, dropping this node's cached copies.
pub async fn put_by_caller(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    slug: SettingSlug,
    raw: &Value,
) -> Result<Setting> {
    let s = put(
        state.store.as_ref(),
        &Cached::of(state),
        &By::caller(state, caller, rid),
        caller.account_id,
        slug,
        raw,
        state.clock.now_ms(),
    )
    .await?;
    tracing::info!(account = %caller.account_id, by = %caller.auth_id, setting = slug.slug(), "account setting changed");
    Ok(s)
}

/// [`reset`] by an API caller in its own account, dropping this node's cached copies.
pub async fn reset_by_caller(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    slug: SettingSlug,
) -> Result<bool> {
    let removed = reset(
        state.store.as_ref(),
        Some(&Cached::of(state)),
        &By::caller(state, caller, rid),
        caller.account_id,
        slug,
    )
    .await?;
    tracing::info!(account = %caller.account_id, by = %caller.auth_id, setting = slug.slug(), "account setting reset");
    Ok(removed)
}

/// Finds an account by its 32-hex id or its integer aid.
pub async fn resolve_account(store: &dyn Store, id_or_aid: &str) -> Result<Option<Account>> {
    let s = id_or_aid.trim();
    if let Some(id) = AccountId::parse(s) {
        return store.get_account(id).await;
    }
    match s.parse::<i64>() {
        Ok(aid) => store.get_account_by_aid(aid).await,
        Err(_) => Ok(None),
    }
}

/// `authd account setting delete <slug> --account <id|aid>`: resets a setting directly in
/// the store, bypassing the API (and so any IP allowlist). Running servers pick the change up
/// within [`crate::allowlist::REFRESH_MS`]. Returns the account and whether a value was set.
pub async fn operator_delete(
    store: &dyn Store,
    account: &str,
    slug_text: &str,
) -> anyhow::Result<(Account, bool)> {
    let slug = SettingSlug::from_slug(slug_text).ok_or_else(|| {
        let known: Vec<&str> = SettingSlug::ALL.iter().map(|s| s.slug()).collect();
        anyhow::anyhow!(
            "unknown setting {slug_text:?}; known settings: {}",
            known.join(", ")
        )
    })?;
    let acct = resolve_account(store, account)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no account with id or aid {account:?}"))?;
    // An operator's action, audited as `operator` at the host's time.
    let by = By::operator(&SystemClock, Some(acct.id));
    let removed = reset(store, None, &by, acct.id, slug).await?;
    Ok((acct, removed))
}
