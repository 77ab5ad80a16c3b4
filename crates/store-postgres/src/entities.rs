//! PostgreSQL implementation of entity (user profile) data ([`EntityStore`]). Every query binds the account id.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::AccountId;
use authd_core::store::EntityStore;
use authd_core::Result;
use serde_json::Value;

use crate::settings::to_json;

use crate::audit::insert_audits;
use crate::{corrupt, db_err, get, PgStore};

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
