//! Users of an account on PostgreSQL.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::model::{Page, User, UserPatch};
use authd_core::roles::{Role, RoleSet};
use authd_core::store::UserStore;
use authd_core::{Error, Result};
use authd_store_sql::user_from_row;

use crate::audit::insert_audits;
use crate::notify::publish;
use crate::retry::retry_conflicts;
use crate::{corrupt, db_err, id_col, limit, PgStore};

fn email_conflict(e: sqlx::Error) -> Error {
    match db_err(e) {
        Error::Conflict(_) => Error::Conflict("A user with this email already exists".into()),
        other => other,
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, u: User, audit: Audit<'_, User>) -> Result<User> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
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
            .execute(&mut *tx)
            .await
            .map_err(email_conflict)?;
            insert_audits(&mut tx, &audit, &u).await?;
            tx.commit().await.map_err(db_err)?;
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
        audit: Audit<'_, (User, Vec<AuthId>)>,
    ) -> Result<Option<(User, Vec<AuthId>)>> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            let Some(before) = lock_user(&mut tx, account, id).await? else {
                return Ok(None);
            };
            let roles_changed = patch.roles.is_some_and(|r| r != before);
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
            .fetch_one(&mut *tx)
            .await
            .map_err(email_conflict)?;
            let user = user_from_row(&row)?;
            if before.contains(Role::Admin)
                && !user.roles.contains(Role::Admin)
                && admins(&mut tx, account).await? == 0
            {
                return Err(authd_core::roles::last_admin());
            }
            let tokens = if roles_changed {
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM auths WHERE account_id = $1 AND user_id = $2 \
                     AND kind = 'api_token'",
                )
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
                let ids = ids
                    .iter()
                    .map(|s| AuthId::parse(s).ok_or_else(|| corrupt("id")))
                    .collect::<Result<Vec<_>>>()?;
                // Every node re-reads these tokens, so the new roles apply everywhere.
                publish(&mut tx, &ids).await?;
                ids
            } else {
                Vec::new()
            };
            crate::notify::publish_users(&mut tx, &[id]).await?;
            let out = (user, tokens);
            insert_audits(&mut tx, &audit, &out).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(Some(out))
        })
        .await
    }

    async fn delete_user(
        &self,
        account: AccountId,
        id: UserId,
        audit: Audit<'_, Vec<AuthId>>,
    ) -> Result<Option<Vec<AuthId>>> {
        let acct = account.to_string();
        let uid = id.to_string();
        let (acct, uid, audit) = (&acct, &uid, &audit);
        // Same lock order as every other multi-row change of `auths` (ascending id, see
        // `auths.rs`), and rerun on a deadlock or serialization failure, so the revocation of a
        // user's tokens never loses to the nodes' last-access batches.
        self.bounded(retry_conflicts("delete user", || async move {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            let Some(before) = lock_user(&mut tx, account, id).await? else {
                return Ok(None);
            };
            if before.contains(Role::Admin) && admins(&mut tx, account).await? <= 1 {
                return Err(authd_core::roles::last_admin());
            }
            let lock = format!(
                "{USER_TOKENS} SELECT id FROM auths WHERE account_id = $1 \
                 AND id IN (SELECT id FROM tree) ORDER BY id FOR UPDATE"
            );
            sqlx::query(&lock)
                .bind(acct)
                .bind(uid)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let delete = format!(
                "{USER_TOKENS} DELETE FROM auths WHERE account_id = $1 \
                 AND id IN (SELECT id FROM tree) RETURNING id"
            );
            let revoked = sqlx::query(&delete)
                .bind(acct)
                .bind(uid)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| id_col(r, "id", AuthId::parse))
                .collect::<Result<Vec<_>>>()?;
            sqlx::query("DELETE FROM users WHERE account_id = $1 AND id = $2")
                .bind(acct)
                .bind(uid)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            publish(&mut tx, &revoked).await?;
            crate::notify::publish_users(&mut tx, &[id]).await?;
            insert_audits(&mut tx, audit, &revoked).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(Some(revoked))
        }))
        .await
    }
}

/// The recursive CTE `tree(id)`: the API tokens of user `$2` in account `$1` and,
/// transitively, every token they created — what deleting the user revokes.
const USER_TOKENS: &str = "WITH RECURSIVE tree(id) AS ( \
       SELECT id FROM auths WHERE account_id = $1 AND user_id = $2 AND kind = 'api_token' \
       UNION SELECT a.id FROM auths a JOIN tree t ON a.parent_id = t.id \
         WHERE a.account_id = $1 AND a.kind = 'api_token')";

/// Serialises role changes within an account (the account row lock), so two concurrent
/// demotions cannot both pass the last-admin check; then reads the user's roles.
async fn lock_user(
    tx: &mut sqlx::PgConnection,
    account: AccountId,
    id: UserId,
) -> Result<Option<RoleSet>> {
    sqlx::query("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE")
        .bind(account.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let bits: Option<i64> =
        sqlx::query_scalar("SELECT roles FROM users WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
    bits.map(|b| {
        u16::try_from(b)
            .map(RoleSet::from_bits)
            .map_err(|_| corrupt("roles"))
    })
    .transpose()
}

/// How many users of the account hold `admin`.
async fn admins(tx: &mut sqlx::PgConnection, account: AccountId) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE account_id = $1 AND (roles & $2) != 0")
        .bind(account.to_string())
        .bind(i64::from(RoleSet::of(&[Role::Admin]).bits()))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)
}
