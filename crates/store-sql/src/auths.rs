//! Auth records: API tokens (issuance, reads, the revocation cascade) and the public record
//! of every stored credential. Deletions publish the deleted ids in the same transaction, so
//! every node hears of them exactly when they become visible.
//!
//! **Lock order.** Every transaction that locks several `auths` rows locks them in ascending
//! id order before changing any: a cascade delete first locks the whole subtree
//! ([`lock_subtree`], `ORDER BY id FOR UPDATE`), a last-access batch first locks its rows
//! (`ORDER BY id FOR NO KEY UPDATE`, PostgreSQL's `touch_tokens`). Two such transactions — a
//! revocation and the touch flushers of every node — then wait for each other instead of
//! deadlocking; a touch that waited on a revocation finds its deleted rows gone and skips
//! them. Both are also rerun on a deadlock or serialization failure ([`Db::retry_after`]),
//! for orders no statement controls. (SQLite has one writer: its write transactions never
//! interleave, and the row locks are empty text there.)

use async_trait::async_trait;
use authd_core::ids::{AccountId, AuthId};
use authd_core::invalidation::Invalidation;
use authd_core::model::{
    Auth, AuthFilter, AuthKind, AuthModel, NewToken, Page, TokenGrant, TokenVerifier,
};
use authd_core::store::AuthStore;
use authd_core::Result;

use crate::{
    args, auth_from_row, bounded, corrupt, get, id_col, limit, token_record_from_row, transaction,
    Arg, Db, Exec, Mode, SqlStore, AUTH_COLS, TOKEN_RECORD_SELECT,
};

/// Inserts one token (15 parameters, in this order: id, account, provider, name, label,
/// description, user id, user name, parent id, scopes, expiry, ttl, hash, now).
pub const INSERT_TOKEN_SQL: &str =
    "INSERT INTO auths (id, account_id, kind, provider_id, name, label, description, \
     user_id, user_name, parent_id, scopes, expires_ms, ttl_secs, token_hash, created_ms, \
     updated_ms) VALUES ($1, $2, 'api_token', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
     $13, $14, $14)";

/// The recursive CTE `tree(id)`: the auth `$2` of account `$1` and, transitively, every auth
/// it created. The one definition of a revocation's reach, for locking and deleting alike.
pub const SUBTREE: &str = "WITH RECURSIVE tree(id) AS ( \
       SELECT id FROM auths WHERE account_id = $1 AND id = $2 \
       UNION SELECT a.id FROM auths a JOIN tree t ON a.parent_id = t.id \
         WHERE a.account_id = $1)";

/// The arguments of [`INSERT_TOKEN_SQL`].
pub fn insert_token_args<'a>(account: AccountId, t: &'a NewToken, now_ms: i64) -> [Arg<'a>; 14] {
    [
        Arg::from(t.id),
        Arg::from(account),
        Arg::from(authd_core::provider::LYTICS_PROVIDER_ID),
        Arg::from(&t.name),
        Arg::from(&t.label),
        Arg::from(&t.description),
        Arg::from(t.user_id),
        Arg::from(&t.user_name),
        Arg::from(t.parent_id),
        Arg::from(t.scopes),
        Arg::from(t.expires_ms),
        Arg::from(t.ttl_secs),
        Arg::from(t.hash.as_slice()),
        Arg::from(now_ms),
    ]
}

/// Inserts one token inside the caller's transaction.
pub async fn insert_token<E: Exec>(
    tx: &mut E,
    account: AccountId,
    t: &NewToken,
    now_ms: i64,
) -> Result<()> {
    tx.execute(INSERT_TOKEN_SQL, &insert_token_args(account, t, now_ms))
        .await?;
    Ok(())
}

/// The record of a token just inserted: everything stored is known, no need to read it back.
pub fn stored_token(account: AccountId, t: &NewToken, now_ms: i64) -> Auth {
    Auth {
        id: t.id,
        account_id: account,
        provider_id: authd_core::provider::LYTICS_PROVIDER_ID,
        name: t.name.clone(),
        label: t.label.clone(),
        description: t.description.clone(),
        user_id: t.user_id,
        user_name: t.user_name.clone(),
        parent_id: t.parent_id,
        created_ms: now_ms,
        updated_ms: now_ms,
        model: AuthModel::ApiToken(TokenGrant {
            scopes: t.scopes,
            expires_ms: t.expires_ms,
            ttl_secs: t.ttl_secs,
            last_accessed_ms: None,
        }),
    }
}

/// Issuance in one transaction of its own: the token and its audit entry. The path of a
/// backend without a group-commit writer ([`Db::create_token`]).
pub async fn create_token_in_transaction<D: Db>(
    db: &D,
    account: AccountId,
    t: &NewToken,
    now_ms: i64,
) -> Result<Auth> {
    bounded(db, async {
        transaction!(db, Mode::Write, |tx| {
            insert_token(tx, account, t, now_ms).await?;
            if let Some(e) = &t.audit {
                crate::audit::insert_audit(tx, e).await?;
            }
            Ok(())
        })?;
        Ok(stored_token(account, t, now_ms))
    })
    .await
}

/// Locks the subtree of `id` (see [`SUBTREE`]) in ascending id order, so a cascade never
/// holds some of its rows while waiting for others in an order another transaction inverts.
/// The delete that follows re-reads the tree in a new snapshot, so a child committed while
/// this waited is still deleted.
pub async fn lock_subtree<D: Db>(tx: &mut D::Tx, account: AccountId, id: AuthId) -> Result<()> {
    let lock = D::DIALECT.for_update();
    if !lock.is_empty() {
        let sql = format!(
            "{SUBTREE} SELECT id FROM auths WHERE account_id = $1 \
             AND id IN (SELECT id FROM tree) ORDER BY id{lock}"
        );
        tx.execute(&sql, args![account, id]).await?;
    }
    Ok(())
}

#[async_trait]
impl<D: Db> AuthStore for SqlStore<D> {
    async fn create_token(&self, account: AccountId, t: NewToken, now_ms: i64) -> Result<Auth> {
        self.db.create_token(account, t, now_ms).await
    }

    async fn create_tokens(
        &self,
        account: AccountId,
        tokens: &[NewToken],
        now_ms: i64,
    ) -> Result<()> {
        // Bulk seeding may legitimately take longer than one call's deadline: no overall
        // bound here (each statement still has the server-side statement timeout).
        transaction!(&self.db, Mode::Write, |tx| {
            for t in tokens {
                insert_token(tx, account, t, now_ms).await?;
            }
            Ok(())
        })
    }

    async fn get_auth(&self, account: AccountId, id: AuthId) -> Result<Option<Auth>> {
        let sql = format!("SELECT {AUTH_COLS} FROM auths WHERE account_id = $1 AND id = $2");
        self.read_optional(&sql, args![account, id], |r| auth_from_row(r))
            .await
    }

    async fn auths_version(&self, account: AccountId) -> Result<u64> {
        let version: Option<i64> = self
            .read_optional(
                "SELECT version FROM auth_versions WHERE account_id = $1",
                args![account],
                |r| get(r, "version"),
            )
            .await?;
        match version {
            None => Ok(0),
            Some(v) => u64::try_from(v).map_err(|_| corrupt("auth_versions.version")),
        }
    }

    async fn list_auths(
        &self,
        account: AccountId,
        filter: AuthFilter,
        page: Page<AuthId>,
    ) -> Result<Vec<Auth>> {
        let sql = format!(
            "SELECT {AUTH_COLS} FROM auths WHERE account_id = $1 AND id > $2 \
             AND (CAST($3 AS TEXT) IS NULL OR kind = $3) \
             AND (CAST($4 AS TEXT) IS NULL OR provider_id = $4) ORDER BY id LIMIT $5"
        );
        let after = page.after.map(|a| a.to_string()).unwrap_or_default();
        self.read_all(
            &sql,
            args![
                account,
                &after,
                filter.kind.map(AuthKind::as_str),
                filter.provider_id,
                limit(page.limit)
            ],
            |r| auth_from_row(r),
        )
        .await
    }

    async fn delete_auth(&self, account: AccountId, id: AuthId) -> Result<Vec<AuthId>> {
        let delete = format!(
            "{SUBTREE} DELETE FROM auths WHERE account_id = $1 \
             AND id IN (SELECT id FROM tree) RETURNING id"
        );
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                lock_subtree::<D>(tx, account, id).await?;
                let ids = tx
                    .all(&delete, args![account, id], |r| {
                        id_col(r, "id", AuthId::parse)
                    })
                    .await?;
                self.db
                    .publish(tx, Invalidation::Auths(ids.clone()))
                    .await?;
                Ok(ids)
            })
        })
        .await
    }

    async fn token_verifier(&self, id: AuthId) -> Result<Option<TokenVerifier>> {
        Ok(self.token_record(id).await?.map(|(verifier, _)| verifier))
    }

    async fn token_record(&self, id: AuthId) -> Result<Option<(TokenVerifier, Auth)>> {
        // One round trip on a cache miss: the verifier and the public record together.
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("{TOKEN_RECORD_SELECT}$1"));
        let sql = SQL.as_str();
        self.read_optional(sql, args![id], |r| token_record_from_row(r))
            .await
    }

    async fn touch_tokens(&self, touches: &[(AuthId, i64)]) -> Result<()> {
        self.db.touch_tokens(touches).await
    }
}
