//! SQLite implementation of token rotation ([`RotationStore`]). Every query binds the account id.

use async_trait::async_trait;
use authd_core::ids::{AccountId, AuthId};
use authd_core::model::{Auth, NewToken};
use authd_core::store::RotationStore;
use authd_core::Result;

use crate::{auth_from_row, corrupt, db_err, insert_audit, insert_token, SqliteStore, AUTH_COLS};

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
