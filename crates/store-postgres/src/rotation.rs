//! PostgreSQL implementation of token rotation ([`RotationStore`]). Every query binds the account id.

use async_trait::async_trait;
use authd_core::ids::{AccountId, AuthId};
use authd_core::model::{Auth, NewToken};
use authd_core::store::RotationStore;
use authd_core::Result;

use crate::audit::insert_audit;
use crate::auths::insert_token;
use crate::notify::publish;
use crate::{corrupt, db_err, PgStore};
use authd_store_sql::{auth_from_row, AUTH_COLS};

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
