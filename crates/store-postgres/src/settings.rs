//! Account settings, entity (user profile) data and token rotation on PostgreSQL
//! ([`SettingsStore`], [`EntityStore`], [`RotationStore`]). Every query binds the account id.
//!
//! Entity upserts merge with `authd_json_merge_patch` (migration 0003), the RFC 7396 twin of
//! SQLite's `json_patch`, inside the `INSERT … ON CONFLICT` statement. Rotation caps the old
//! token's expiry and announces the old id on the invalidation channel in the same
//! transaction, so every node stops honouring the old token's cached expiry at commit.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::{AccountId, AuthId};
use authd_core::model::{Auth, NewToken};
use authd_core::settings::StoredSetting;
use authd_core::store::{EntityStore, RotationStore, SettingsStore};
use authd_core::{Error, Result};
use authd_store_sql::setting_from_row;
use serde_json::Value;

use crate::audit::{insert_audit, insert_audits};
use crate::auths::insert_token;
use crate::notify::publish;
use crate::{corrupt, db_err, get, PgStore};
use authd_store_sql::{auth_from_row, AUTH_COLS};

fn to_json(v: &Value) -> Result<String> {
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
            insert_audits(&mut tx, &audit, &()).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
        .await
    }
}

#[async_trait]
impl EntityStore for PgStore {
    async fn upsert_entities(
        &self,
        account: AccountId,
        kind: &str,
        items: &[(String, Value)],
        now_ms: i64,
        audit: Audit<'_, ()>,
    ) -> Result<()> {
        let bodies = items
            .iter()
            .map(|(_, v)| to_json(v))
            .collect::<Result<Vec<_>>>()?;
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            for ((key, _), body) in items.iter().zip(&bodies) {
                sqlx::query(
                    "INSERT INTO entities (account_id, kind, key, body, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, authd_json_merge_patch('{}'::jsonb, $4::jsonb), $5, $5) \
                     ON CONFLICT (account_id, kind, key) DO UPDATE SET \
                     body = authd_json_merge_patch(entities.body, $4::jsonb), updated_ms = $5",
                )
                .bind(account.to_string())
                .bind(kind)
                .bind(key)
                .bind(body)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            insert_audits(&mut tx, &audit, &()).await?;
            tx.commit().await.map_err(db_err)
        })
        .await
    }

    async fn find_entity(
        &self,
        account: AccountId,
        kind: &str,
        field: &str,
        value: &str,
    ) -> Result<Option<Value>> {
        // The field is bound, never spliced into the SQL text; quotes are dropped as in the
        // SQLite path. Scalars compare as SQLite's CAST(json_extract(..) AS TEXT) does:
        // strings unquoted, numbers as written, booleans as 1/0; null never matches.
        let field = field.replace('"', "");
        self.bounded(async {
            let row = sqlx::query(
                "SELECT body::text AS body FROM entities WHERE account_id = $1 AND kind = $2 \
                 AND (CASE jsonb_typeof(body -> $3) \
                        WHEN 'string' THEN body ->> $3 \
                        WHEN 'number' THEN body ->> $3 \
                        WHEN 'boolean' THEN CASE WHEN (body -> $3) = 'true'::jsonb \
                                                 THEN '1' ELSE '0' END \
                      END) = $4 \
                 ORDER BY key LIMIT 1",
            )
            .bind(account.to_string())
            .bind(kind)
            .bind(&field)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
            let Some(row) = row else { return Ok(None) };
            let text: String = get(&row, "body")?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| corrupt("entity body"))
        })
        .await
    }
}

#[async_trait]
impl RotationStore for PgStore {
    async fn rotate_token(
        &self,
        account: AccountId,
        old: AuthId,
        new: NewToken,
        old_expires_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Auth>> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            // Lock `old` first (the order a cascade takes: parent before children), then
            // hand the tokens it created to `new`.
            let capped = sqlx::query(
                "UPDATE auths SET expires_ms = LEAST(COALESCE(expires_ms, $1), $1), \
                 updated_ms = $2 WHERE account_id = $3 AND id = $4 AND kind = 'api_token'",
            )
            .bind(old_expires_ms)
            .bind(now_ms)
            .bind(account.to_string())
            .bind(old.to_string())
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
            sqlx::query("UPDATE auths SET parent_id = $1 WHERE account_id = $2 AND parent_id = $3")
                .bind(new.id.to_string())
                .bind(account.to_string())
                .bind(old.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query(
                "UPDATE auths SET parent_id = $1, rotated_to = $1 \
                 WHERE account_id = $2 AND id = $3",
            )
            .bind(new.id.to_string())
            .bind(account.to_string())
            .bind(old.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let sql = format!("SELECT {AUTH_COLS} FROM auths WHERE account_id = $1 AND id = $2");
            let row = sqlx::query(&sql)
                .bind(account.to_string())
                .bind(new.id.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            // The old token's expiry changed: every node must drop its cached record.
            publish(&mut tx, &[old]).await?;
            tx.commit().await.map_err(db_err)?;
            auth_from_row(&row).map(Some)
        })
        .await
    }

    async fn rotated_successor(
        &self,
        account: AccountId,
        id: AuthId,
        now_ms: i64,
    ) -> Result<Option<AuthId>> {
        self.bounded(async {
            let next: Option<Option<String>> = sqlx::query_scalar(
                "SELECT rotated_to FROM auths WHERE account_id = $1 AND id = $2 \
                 AND (expires_ms IS NULL OR expires_ms > $3)",
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
        })
        .await
    }
}
