//! SQLite implementation of entity (user profile) data ([`EntityStore`]). Every query binds the account id.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::AccountId;
use authd_core::store::EntityStore;
use authd_core::Result;
use serde_json::Value;

use crate::settings::to_json;

use crate::{corrupt, db_err, get, insert_audits, SqliteStore};

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
