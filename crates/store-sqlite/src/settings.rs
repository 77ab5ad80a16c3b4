//! SQLite implementation of account settings ([`SettingsStore`]). Every query binds the
//! account id.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::AccountId;
use authd_core::settings::StoredSetting;
use authd_core::store::SettingsStore;
use authd_core::{Error, Result};
use authd_store_sql::setting_from_row;
use serde_json::Value;

use crate::{db_err, insert_audits, SqliteStore};

pub(crate) fn to_json(v: &Value) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn list_settings(&self, account: AccountId) -> Result<Vec<StoredSetting>> {
        self.read.all(
            "SELECT slug, value, updated_ms FROM account_settings WHERE account_id = ? \
             ORDER BY slug",
            [account.to_string()],
            |r| setting_from_row(r),
        )
    }

    async fn get_setting(&self, account: AccountId, slug: &str) -> Result<Option<StoredSetting>> {
        self.read.one(
            "SELECT slug, value, updated_ms FROM account_settings \
             WHERE account_id = ? AND slug = ?",
            rusqlite::params![account.to_string(), slug],
            |r| setting_from_row(r),
        )
    }

    async fn put_setting(
        &self,
        account: AccountId,
        slug: &str,
        value: &Value,
        now_ms: i64,
        audit: Audit<'_, ()>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO account_settings (account_id, slug, value, updated_ms) \
             VALUES (?, ?, ?, ?) \
             ON CONFLICT (account_id, slug) DO UPDATE SET value = excluded.value, \
             updated_ms = excluded.updated_ms",
        )
        .bind(account.to_string())
        .bind(slug)
        .bind(to_json(value)?)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        crate::feed::publish_accounts(&mut tx, &[account]).await?;
        insert_audits(&mut tx, &audit, &()).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete_setting(
        &self,
        account: AccountId,
        slug: &str,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let r = sqlx::query("DELETE FROM account_settings WHERE account_id = ? AND slug = ?")
            .bind(account.to_string())
            .bind(slug)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        crate::feed::publish_accounts(&mut tx, &[account]).await?;
        insert_audits(&mut tx, &audit, &()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}
