//! Storage contract for account settings. Every method takes the [`AccountId`] first and must not
//! see another account's rows.

use async_trait::async_trait;
use serde_json::Value;

use crate::audit::Audit;
use crate::ids::AccountId;
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
