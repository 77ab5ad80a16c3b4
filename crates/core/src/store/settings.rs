//! Storage contract for account settings, entity (user profile) data and token rotation —
//! the data surface the roles guard. Every method takes the [`AccountId`] first and must not
//! see another account's rows.

use async_trait::async_trait;
use serde_json::Value;

use crate::audit::Audit;
use crate::ids::{AccountId, AuthId};
use crate::model::{Auth, NewToken};
use crate::settings::StoredSetting;
use crate::Result;

/// Account settings, stored as validated JSON values by slug.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// Every setting the account has set, in slug order.
    async fn list_settings(&self, account: AccountId) -> Result<Vec<StoredSetting>>;
    /// One setting, if set.
    async fn get_setting(&self, account: AccountId, slug: &str) -> Result<Option<StoredSetting>>;
    /// Sets (inserts or replaces) a setting.
    async fn put_setting(
        &self,
        account: AccountId,
        slug: &str,
        value: &Value,
        now_ms: i64,
        audit: Audit<'_, ()>,
    ) -> Result<()>;
    /// Removes a setting (back to its default); `false` if it was not set (then nothing is
    /// audited).
    async fn delete_setting(
        &self,
        account: AccountId,
        slug: &str,
        audit: Audit<'_, ()>,
    ) -> Result<bool>;
}

/// Entities (user profiles) uploaded through the collect API.
#[async_trait]
pub trait EntityStore: Send + Sync {
    /// Upserts entities of `kind` by key, in order, in one transaction. An existing entity is
    /// merged with the new object as by RFC 7396 (JSON merge patch): new fields are added,
    /// present fields replaced, fields set to `null` removed.
    async fn upsert_entities(
        &self,
        account: AccountId,
        kind: &str,
        items: &[(String, Value)],
        now_ms: i64,
        audit: Audit<'_, ()>,
    ) -> Result<()>;
    /// The first entity of `kind` (in key order) whose top-level `field` equals `value`
    /// (compared as text, so `42` matches "42").
    async fn find_entity(
        &self,
        account: AccountId,
        kind: &str,
        field: &str,
        value: &str,
    ) -> Result<Option<Value>>;
}

/// Token rotation.
#[async_trait]
pub trait RotationStore: Send + Sync {
    /// In one transaction: checks that `old` is an API token of `account`, inserts `new`, caps
    /// `old`'s expiry at `old_expires_ms` (never extending it), and keeps the revocation tree:
    /// the tokens `old` created become `new`'s, and `old` itself hangs under `new` (so
    /// deleting `new` revokes all of them) and records `new` as its successor (see
    /// [`Self::rotated_successor`]), and inserts `new.audit` (the rotation's entry). Returns
    /// the new auth, or `None` if `old` does not exist in this account.
    async fn rotate_token(
        &self,
        account: AccountId,
        old: AuthId,
        new: NewToken,
        old_expires_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Auth>>;

    /// The token that replaced `id`, if `id` was rotated and its grace window is still open
    /// at `now_ms` (deleting it then means deleting its successor's whole tree).
    async fn rotated_successor(
        &self,
        account: AccountId,
        id: AuthId,
        now_ms: i64,
    ) -> Result<Option<AuthId>>;
}
