//! PostgreSQL implementation of account settings ([`SettingsStore`]). Every query binds the
//! account id.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::AccountId;
use authd_core::settings::StoredSetting;
use authd_core::store::SettingsStore;
use authd_core::{Error, Result};
use authd_store_sql::setting_from_row;
use serde_json::Value;

use crate::audit::insert_audits;
use crate::{db_err, PgStore};

pub(crate) fn to_json(v: &Value) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

#[async_trait]
impl SettingsStore for PgStore {
    async fn list_settings(&self, account: AccountId) -> Result<Vec<StoredSetting>> {
        self.bounded(async {
            sqlx::query(
                "SELECT slug, value, updated_ms FROM account_settings WHERE account_id = $1 \
                 ORDER BY slug",
            )
            .bind(account.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(setting_from_row)
            .collect()
        })
        .await
    }

    async fn get_setting(&self, account: AccountId, slug: &str) -> Result<Option<StoredSetting>> {
        self.bounded(async {
            sqlx::query(
                "SELECT slug, value, updated_ms FROM account_settings \
                 WHERE account_id = $1 AND slug = $2",
            )
            .bind(account.to_string())
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(setting_from_row)
            .transpose()
        })
        .await
    }

    async fn put_setting(
        &self,
        account: AccountId,
        slug: &str,
        value: &Value,
        now_ms: i64,
        audit: Audit<'_, ()>,
    ) -> Result<()> {
        let text = to_json(value)?;
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            sqlx::query(
                "INSERT INTO account_settings (account_id, slug, value, updated_ms) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (account_id, slug) DO UPDATE SET value = excluded.value, \
                 updated_ms = excluded.updated_ms",
            )
            .bind(account.to_string())
            .bind(slug)
            .bind(&text)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            crate::notify::publish_accounts(&mut tx, &[account]).await?;
            insert_audits(&mut tx, &audit, &()).await?;
            tx.commit().await.map_err(db_err)
        })
        .await
    }

    async fn delete_setting(
        &self,
        account: AccountId,
        slug: &str,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            let r = sqlx::query("DELETE FROM account_settings WHERE account_id = $1 AND slug = $2")
                .bind(account.to_string())
                .bind(slug)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            crate::notify::publish_accounts(&mut tx, &[account]).await?;
            insert_audits(&mut tx, &audit, &()).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
        .await
    }
}
