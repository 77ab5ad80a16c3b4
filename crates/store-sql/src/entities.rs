//! Entity (user profile) data ([`EntityStore`]). Every query binds the account id.
//!
//! The engines store a body differently (JSONB on PostgreSQL, JSON text on SQLite), so the
//! JSON functions in the SQL differ by dialect: RFC 7396 merge is SQLite's `json_patch` and
//! PostgreSQL's `authd_json_merge_patch` (its migrations define it); a field lookup is
//! `json_extract` on SQLite and `->`/`->>` on PostgreSQL. The statements, their arguments and
//! the logic around them are the same.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::AccountId;
use authd_core::store::EntityStore;
use authd_core::Result;
use serde_json::Value;

use crate::audit::insert_audits;
use crate::settings::to_json;
use crate::{args, bounded, corrupt, get, transaction, Db, Dialect, Exec, Mode, SqlStore};

/// Inserts entity `$3` of kind `$2` in account `$1` with body `$4` (JSON text) at `$5`, or
/// merges `$4` into the existing body (RFC 7396).
fn upsert_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "INSERT INTO entities (account_id, kind, key, body, created_ms, updated_ms) \
             VALUES ($1, $2, $3, json_patch('{}', $4), $5, $5) \
             ON CONFLICT (account_id, kind, key) DO UPDATE SET \
             body = json_patch(entities.body, $4), updated_ms = $5"
        }
        Dialect::Postgres => {
            "INSERT INTO entities (account_id, kind, key, body, created_ms, updated_ms) \
             VALUES ($1, $2, $3, authd_json_merge_patch('{}'::jsonb, $4::jsonb), $5, $5) \
             ON CONFLICT (account_id, kind, key) DO UPDATE SET \
             body = authd_json_merge_patch(entities.body, $4::jsonb), updated_ms = $5"
        }
    }
}

/// The body (as JSON text, column `body`) of the first entity of kind `$2` in account `$1`,
/// in key order, whose top-level field `$3` (a name without `"`) equals `$4` as text.
///
/// The field is bound, never spliced into the SQL text (SQLite builds the quoted JSON path
/// `$."<field>"` from it in SQL). Scalars compare as SQLite's `CAST(json_extract(..) AS
/// TEXT)` does: strings unquoted, numbers as written, booleans as 1/0; null, objects and
/// arrays never match.
fn find_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT body FROM entities WHERE account_id = $1 AND kind = $2 \
             AND json_type(body, '$.\"' || $3 || '\"') NOT IN ('object', 'array') \
             AND CAST(json_extract(body, '$.\"' || $3 || '\"') AS TEXT) = $4 \
             ORDER BY key LIMIT 1"
        }
        Dialect::Postgres => {
            "SELECT body::text AS body FROM entities WHERE account_id = $1 AND kind = $2 \
             AND (CASE jsonb_typeof(body -> $3) \
                    WHEN 'string' THEN body ->> $3 \
                    WHEN 'number' THEN body ->> $3 \
                    WHEN 'boolean' THEN CASE WHEN (body -> $3) = 'true'::jsonb \
                                             THEN '1' ELSE '0' END \
                  END) = $4 \
             ORDER BY key LIMIT 1"
        }
    }
}

#[async_trait]
impl<D: Db> EntityStore for SqlStore<D> {
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
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                for ((key, _), body) in items.iter().zip(&bodies) {
                    tx.execute(
                        upsert_sql(D::DIALECT),
                        args![account, kind, key, body, now_ms],
                    )
                    .await?;
                }
                insert_audits(tx, &audit, &()).await
            })
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
        let field = field.replace('"', "");
        bounded(&self.db, async {
            let text: Option<String> = self
                .db
                .read()
                .optional(
                    find_sql(D::DIALECT),
                    args![account, kind, &field, value],
                    |r| get(r, "body"),
                )
                .await?;
            let Some(text) = text else { return Ok(None) };
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| corrupt("entity body"))
        })
        .await
    }
}
