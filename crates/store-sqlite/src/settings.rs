//! SQLite implementation of account settings, entity data and token rotation
//! ([`SettingsStore`], [`EntityStore`], [`RotationStore`]). Every query binds the account id.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::{AccountId, AuthId};
use authd_core::model::{Auth, NewToken};
use authd_core::settings::StoredSetting;
use authd_core::store::{EntityStore, RotationStore, SettingsStore};
use authd_core::{Error, Result};
use authd_store_sql::setting_from_row;
use serde_json::Value;

use crate::{
    auth_from_row, corrupt, db_err, get, insert_audit, insert_audits, insert_token, SqliteStore,
    AUTH_COLS,
};

fn to_json(v: &Value) -> Result<String> {
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
        insert_audits(&mut tx, &audit, &()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}

#[async_trait]
impl EntityStore for SqliteStore {
    async fn upsert_entities(
        &self,
        account: AccountId,
        kind: &str,
        items: &[(String, Value)],
        now_ms: i64,
        audit: Audit<'_, ()>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for (key, body) in items {
            sqlx::query(
                "INSERT INTO entities (account_id, kind, key, body, created_ms, updated_ms) \
                 VALUES (?1, ?2, ?3, json_patch('{}', ?4), ?5, ?5) \
                 ON CONFLICT (account_id, kind, key) DO UPDATE SET \
                 body = json_patch(entities.body, ?4), updated_ms = ?5",
            )
            .bind(account.to_string())
            .bind(kind)
            .bind(key)
            .bind(to_json(body)?)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        insert_audits(&mut tx, &audit, &()).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn find_entity(
        &self,
        account: AccountId,
        kind: &str,
        field: &str,
        value: &str,
    ) -> Result<Option<Value>> {
        // The field is bound as a quoted JSON path, never spliced into the SQL text.
        let path = format!("$.\"{}\"", field.replace('"', ""));
        let text: Option<String> = self.read.one(
            "SELECT body FROM entities WHERE account_id = ?1 AND kind = ?2 \
             AND json_type(body, ?3) NOT IN ('object', 'array') \
             AND CAST(json_extract(body, ?3) AS TEXT) = ?4 ORDER BY key LIMIT 1",
            rusqlite::params![account.to_string(), kind, path, value],
            |r| get(r, "body"),
        )?;
        let Some(text) = text else { return Ok(None) };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| corrupt("entity body"))
    }
}

#[async_trait]
impl RotationStore for SqliteStore {
    async fn rotate_token(
        &self,
        account: AccountId,
        old: AuthId,
        new: NewToken,
        old_expires_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Auth>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // The tokens `old` created become `new`'s (first, while `old` is not yet one of them).
        sqlx::query("UPDATE auths SET parent_id = ?1 WHERE account_id = ?2 AND parent_id = ?3")
            .bind(new.id.to_string())
            .bind(account.to_string())
            .bind(old.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let capped = sqlx::query(
            "UPDATE auths SET expires_ms = MIN(COALESCE(expires_ms, ?1), ?1), updated_ms = ?2, \
             parent_id = ?5, rotated_to = ?5 \
             WHERE account_id = ?3 AND id = ?4 AND kind = 'api_token'",
        )
        .bind(old_expires_ms)
        .bind(now_ms)
        .bind(account.to_string())
        .bind(old.to_string())
        .bind(new.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if capped.rows_affected() == 0 {
            return Ok(None);
        }
        insert_token(&mut tx, account, &new, now_ms).await?;
        if let Some(e) = &new.audit {
            insert_audit(&mut tx, e).await?;
        }
        let sql = format!("SELECT {AUTH_COLS} FROM auths WHERE account_id = ? AND id = ?");
        let row = sqlx::query(&sql)
            .bind(account.to_string())
            .bind(new.id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        crate::feed::publish(&mut tx, &[old]).await?;
        tx.commit().await.map_err(db_err)?;
        auth_from_row(&row).map(Some)
    }

    async fn rotated_successor(
        &self,
        account: AccountId,
        id: AuthId,
        now_ms: i64,
    ) -> Result<Option<AuthId>> {
        let next: Option<Option<String>> = sqlx::query_scalar(
            "SELECT rotated_to FROM auths WHERE account_id = ? AND id = ? \
             AND (expires_ms IS NULL OR expires_ms > ?)",
        )
        .bind(account.to_string())
        .bind(id.to_string())
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        next.flatten()
            .map(|s| AuthId::parse(&s).ok_or_else(|| corrupt("rotated_to")))
            .transpose()
    }
}
