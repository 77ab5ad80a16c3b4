//! Users of an account on PostgreSQL.

use async_trait::async_trait;
use authd_core::ids::{AccountId, UserId};
use authd_core::model::{Page, User, UserPatch};
use authd_core::store::UserStore;
use authd_core::{Error, Result};
use authd_store_sql::user_from_row;

use crate::{db_err, limit, PgStore};

fn email_conflict(e: sqlx::Error) -> Error {
    match db_err(e) {
        Error::Conflict(_) => Error::Conflict("A user with this email already exists".into()),
        other => other,
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, u: User) -> Result<User> {
        self.bounded(async {
            sqlx::query(
                "INSERT INTO users (id, account_id, email, name, roles, created_ms, updated_ms, \
                 last_logon_ms, granted_by, roles_updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(u.id.to_string())
            .bind(u.account_id.to_string())
            .bind(&u.email)
            .bind(&u.name)
            .bind(i64::from(u.roles.bits()))
            .bind(u.created_ms)
            .bind(u.updated_ms)
            .bind(u.last_logon_ms)
            .bind(u.granted_by.map(|g| g.to_string()))
            .bind(u.roles_updated_ms)
            .execute(&self.pool)
            .await
            .map_err(email_conflict)?;
            Ok(u)
        })
        .await
    }

    async fn get_user(&self, account: AccountId, id: UserId) -> Result<Option<User>> {
        self.bounded(async {
            sqlx::query("SELECT * FROM users WHERE account_id = $1 AND id = $2")
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(user_from_row)
                .transpose()
        })
        .await
    }

    async fn list_users(&self, account: AccountId, page: Page<UserId>) -> Result<Vec<User>> {
        self.bounded(async {
            let after = page.after.map(|a| a.to_string()).unwrap_or_default();
            sqlx::query(
                "SELECT * FROM users WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(account.to_string())
            .bind(after)
            .bind(limit(page.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(user_from_row)
            .collect()
        })
        .await
    }

    async fn update_user(
        &self,
        account: AccountId,
        id: UserId,
        patch: UserPatch,
        now_ms: i64,
    ) -> Result<Option<User>> {
        self.bounded(async {
            // A roles change records its grantor and time (the membership's update).
            let row = sqlx::query(
                "UPDATE users SET email = COALESCE($1, email), name = COALESCE($2, name), \
                 roles = COALESCE($3, roles), updated_ms = $4, \
                 granted_by = CASE WHEN $3::BIGINT IS NULL THEN granted_by ELSE $7 END, \
                 roles_updated_ms = CASE WHEN $3::BIGINT IS NULL THEN roles_updated_ms \
                 ELSE $4 END \
                 WHERE account_id = $5 AND id = $6 RETURNING *",
            )
            .bind(patch.email)
            .bind(patch.name)
            .bind(patch.roles.map(|r| i64::from(r.bits())))
            .bind(now_ms)
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(patch.granted_by.map(|g| g.to_string()))
            .fetch_optional(&self.pool)
            .await
            .map_err(email_conflict)?;
            row.as_ref().map(user_from_row).transpose()
        })
        .await
    }

    async fn delete_user(&self, account: AccountId, id: UserId) -> Result<bool> {
        self.bounded(async {
            let r = sqlx::query("DELETE FROM users WHERE account_id = $1 AND id = $2")
                .bind(account.to_string())
                .bind(id.to_string())
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
            Ok(r.rows_affected() > 0)
        })
        .await
    }
}
