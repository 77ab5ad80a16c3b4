//! Users of an account. Role changes are serialised per account (the account row lock on
//! PostgreSQL, the write lock on SQLite), so two concurrent demotions cannot both pass the
//! last-admin check; deleting a user revokes its tokens' whole trees.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::invalidation::Invalidation;
use authd_core::model::{Page, User, UserPatch};
use authd_core::roles::{Role, RoleSet};
use authd_core::store::UserStore;
use authd_core::{Error, Result};

use crate::audit::insert_audits;
use crate::{
    args, bounded, get, id_col, limit, roles_col, transaction, user_from_row, Db, Exec, Mode,
    SqlStore, USER_COLS,
};

fn email_conflict(e: Error) -> Error {
    match e {
        Error::Conflict(_) => Error::Conflict("A user with this email already exists".into()),
        other => other,
    }
}

/// The recursive CTE `tree(id)`: the API tokens of user `$2` in account `$1` and,
/// transitively, every token they created — what deleting the user revokes.
const USER_TOKENS: &str = "WITH RECURSIVE tree(id) AS ( \
       SELECT id FROM auths WHERE account_id = $1 AND user_id = $2 AND kind = 'api_token' \
       UNION SELECT a.id FROM auths a JOIN tree t ON a.parent_id = t.id \
         WHERE a.account_id = $1 AND a.kind = 'api_token')";

#[async_trait]
impl<D: Db> UserStore for SqlStore<D> {
    async fn create_user(&self, u: User, audit: Audit<'_, User>) -> Result<User> {
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                tx.execute(
                    "INSERT INTO users (id, account_id, email, name, roles, created_ms, \
                     updated_ms, last_logon_ms, granted_by, roles_updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    args![
                        u.id,
                        u.account_id,
                        &u.email,
                        &u.name,
                        u.roles,
                        u.created_ms,
                        u.updated_ms,
                        u.last_logon_ms,
                        u.granted_by,
                        u.roles_updated_ms
                    ],
                )
                .await
                .map_err(email_conflict)?;
                insert_audits(tx, &audit, &u).await
            })?;
            Ok(u)
        })
        .await
    }

    async fn get_user(&self, account: AccountId, id: UserId) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE account_id = $1 AND id = $2");
        self.read_optional(&sql, args![account, id], |r| user_from_row(r))
            .await
    }

    async fn list_users(&self, account: AccountId, page: Page<UserId>) -> Result<Vec<User>> {
        let after = page.after.map(|a| a.to_string()).unwrap_or_default();
        let sql = format!(
            "SELECT {USER_COLS} FROM users WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        self.read_all(&sql, args![account, &after, limit(page.limit)], |r| {
            user_from_row(r)
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
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                let Some(before) = lock_user::<D>(tx, account, id).await? else {
                    return Ok(None);
                };
                let roles_changed = patch.roles.is_some_and(|r| r != before);
                // A roles change records its grantor and time (the membership's update).
                let user = tx
                    .one(
                        "UPDATE users SET email = COALESCE($1, email), name = COALESCE($2, name), \
                         roles = COALESCE($3, roles), updated_ms = $4, \
                         granted_by = CASE WHEN CAST($3 AS BIGINT) IS NULL THEN granted_by \
                         ELSE $7 END, \
                         roles_updated_ms = CASE WHEN CAST($3 AS BIGINT) IS NULL \
                         THEN roles_updated_ms ELSE $4 END \
                         WHERE account_id = $5 AND id = $6 RETURNING *",
                        args![
                            &patch.email,
                            &patch.name,
                            patch.roles,
                            now_ms,
                            account,
                            id,
                            patch.granted_by
                        ],
                        |r| user_from_row(r),
                    )
                    .await
                    .map_err(email_conflict)?;
                if before.contains(Role::Admin)
                    && !user.roles.contains(Role::Admin)
                    && admins(tx, account).await? == 0
                {
                    return Err(authd_core::roles::last_admin());
                }
                let tokens = if roles_changed {
                    let ids = tx
                        .all(
                            "SELECT id FROM auths WHERE account_id = $1 AND user_id = $2 \
                             AND kind = 'api_token'",
                            args![account, id],
                            |r| id_col(r, "id", AuthId::parse),
                        )
                        .await?;
                    // Every node re-reads these tokens, so the new roles apply everywhere.
                    self.db
                        .publish(tx, Invalidation::Auths(ids.clone()))
                        .await?;
                    ids
                } else {
                    Vec::new()
                };
                self.db.publish(tx, Invalidation::Users(vec![id])).await?;
                let out = (user, tokens);
                insert_audits(tx, &audit, &out).await?;
                Ok(Some(out))
            })
        })
        .await
    }

    async fn delete_user(
        &self,
        account: AccountId,
        id: UserId,
        audit: Audit<'_, Vec<AuthId>>,
    ) -> Result<Option<Vec<AuthId>>> {
        // The tokens are locked in ascending id order first, like every other multi-row
        // change of `auths` (see `auths.rs`), and a deadlock or serialization failure reruns
        // the transaction, so the revocation never loses to the nodes' last-access batches.
        let lock = format!(
            "{USER_TOKENS} SELECT id FROM auths WHERE account_id = $1 \
             AND id IN (SELECT id FROM tree) ORDER BY id{}",
            D::DIALECT.for_update()
        );
        let delete = format!(
            "{USER_TOKENS} DELETE FROM auths WHERE account_id = $1 \
             AND id IN (SELECT id FROM tree) RETURNING id"
        );
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                let Some(before) = lock_user::<D>(tx, account, id).await? else {
                    return Ok(None);
                };
                if before.contains(Role::Admin) && admins(tx, account).await? <= 1 {
                    return Err(authd_core::roles::last_admin());
                }
                tx.execute(&lock, args![account, id]).await?;
                let revoked = tx
                    .all(&delete, args![account, id], |r| {
                        id_col(r, "id", AuthId::parse)
                    })
                    .await?;
                tx.execute(
                    "DELETE FROM users WHERE account_id = $1 AND id = $2",
                    args![account, id],
                )
                .await?;
                self.db
                    .publish(tx, Invalidation::Auths(revoked.clone()))
                    .await?;
                self.db.publish(tx, Invalidation::Users(vec![id])).await?;
                insert_audits(tx, &audit, &revoked).await?;
                Ok(Some(revoked))
            })
        })
        .await
    }
}

/// Serialises role changes within an account (on PostgreSQL the account row lock; a SQLite
/// write transaction already holds the database's write lock), then reads the user's roles;
/// `None` if there is no such user in this account.
async fn lock_user<D: Db>(
    tx: &mut D::Tx,
    account: AccountId,
    id: UserId,
) -> Result<Option<RoleSet>> {
    let lock = D::DIALECT.for_update();
    if !lock.is_empty() {
        let sql = format!("SELECT 1 FROM accounts WHERE id = $1{lock}");
        tx.execute(&sql, args![account]).await?;
    }
    tx.optional(
        "SELECT roles FROM users WHERE account_id = $1 AND id = $2",
        args![account, id],
        |r| roles_col(r, "roles"),
    )
    .await
}

/// How many users of the account hold `admin`.
async fn admins(tx: &mut impl Exec, account: AccountId) -> Result<i64> {
    tx.one(
        "SELECT COUNT(*) AS n FROM users WHERE account_id = $1 AND (roles & $2) != 0",
        args![account, RoleSet::of(&[Role::Admin])],
        |r| get(r, "n"),
    )
    .await
}
