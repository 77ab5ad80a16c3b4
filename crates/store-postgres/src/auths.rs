//! Auth records (API tokens) on PostgreSQL. Deletions publish the deleted ids on the
//! invalidation channel in the same transaction, so every node hears of them exactly when
//! they become visible.
//!
//! **Lock order.** Every transaction that locks several `auths` rows locks them in ascending
//! id order before changing any: a cascade delete first locks the whole subtree
//! (`lock_subtree`, `ORDER BY id FOR UPDATE`), a last-access batch first locks its rows
//! (`ORDER BY id FOR NO KEY UPDATE`). Two such transactions — a revocation and the touch
//! flushers of every node — then wait for each other instead of deadlocking; a touch that
//! waited on a revocation finds its deleted rows gone and skips them. Both also run under
//! `retry_conflicts`, so a conflict with an order no statement controls is retried
//! instead of reaching the client or dropping a batch.

use async_trait::async_trait;
use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::model::{Auth, AuthFilter, AuthKind, NewToken, Page, TokenVerifier};
use authd_core::store::AuthStore;
use authd_core::Result;
use authd_store_sql::{auth_from_row, token_record_from_row, user_roles_col, AUTH_COLS};

/// A token's verifier and public record in one read (see `store-sql`).
static TOKEN_RECORD_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{}$1", authd_store_sql::TOKEN_RECORD_SELECT));

use crate::notify::publish;
use crate::retry::retry_conflicts;
use crate::{corrupt, db_err, get, id_col, limit, opt_id_col, roles_col, PgStore};

pub(crate) async fn insert_token(
    tx: &mut sqlx::PgConnection,
    account: AccountId,
    t: &NewToken,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO auths (id, account_id, kind, provider_id, name, label, description, \
         user_id, user_name, parent_id, scopes, expires_ms, ttl_secs, token_hash, created_ms, \
         updated_ms) VALUES ($1, $2, 'api_token', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $14)",
    )
    .bind(t.id.to_string())
    .bind(account.to_string())
    .bind(authd_core::provider::LYTICS_PROVIDER_ID.to_string())
    .bind(&t.name)
    .bind(&t.label)
    .bind(&t.description)
    .bind(t.user_id.map(|u| u.to_string()))
    .bind(&t.user_name)
    .bind(t.parent_id.map(|p| p.to_string()))
    .bind(i64::from(t.scopes.bits()))
    .bind(t.expires_ms)
    .bind(t.ttl_secs)
    .bind(t.hash.as_slice())
    .bind(now_ms)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The recursive CTE `tree(id)`: the auth `$2` of account `$1` and, transitively, every auth
/// it created. The one definition of a revocation's reach, for locking and deleting alike.
pub(crate) const SUBTREE: &str = "WITH RECURSIVE tree(id) AS ( \
       SELECT id FROM auths WHERE account_id = $1 AND id = $2 \
       UNION SELECT a.id FROM auths a JOIN tree t ON a.parent_id = t.id \
         WHERE a.account_id = $1)";

/// Locks the subtree of `id` (see [`SUBTREE`]) in ascending id order, so a cascade never
/// holds some of its rows while waiting for others in an order another transaction inverts.
/// The delete that follows re-reads the tree in a new snapshot, so a child committed while
/// this waited is still deleted.
pub(crate) async fn lock_subtree(
    tx: &mut sqlx::PgConnection,
    account: &str,
    id: AuthId,
) -> Result<()> {
    let sql = format!(
        "{SUBTREE} SELECT id FROM auths WHERE account_id = $1 \
         AND id IN (SELECT id FROM tree) ORDER BY id FOR UPDATE"
    );
    sqlx::query(&sql)
        .bind(account)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl AuthStore for PgStore {
    async fn create_token(&self, account: AccountId, t: NewToken, now_ms: i64) -> Result<Auth> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            insert_token(&mut tx, account, &t, now_ms).await?;
            if let Some(e) = &t.audit {
                crate::audit::insert_audit(&mut tx, e).await?;
            }
            let sql = format!("SELECT {AUTH_COLS} FROM auths WHERE id = $1");
            let row = sqlx::query(&sql)
                .bind(t.id.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            auth_from_row(&row)
        })
        .await
    }

    async fn create_tokens(
        &self,
        account: AccountId,
        tokens: &[NewToken],
        now_ms: i64,
    ) -> Result<()> {
        // Bulk seeding may legitimately take longer than one call's deadline: no overall
        // bound here (each statement still has the server-side statement timeout).
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for t in tokens {
            insert_token(&mut tx, account, t, now_ms).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn get_auth(&self, account: AccountId, id: AuthId) -> Result<Option<Auth>> {
        self.bounded(async {
            let sql = format!("SELECT {AUTH_COLS} FROM auths WHERE account_id = $1 AND id = $2");
            sqlx::query(&sql)
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(auth_from_row)
                .transpose()
        })
        .await
    }

    async fn list_auths(
        &self,
        account: AccountId,
        filter: AuthFilter,
        page: Page<AuthId>,
    ) -> Result<Vec<Auth>> {
        self.bounded(async {
            let sql = format!(
                "SELECT {AUTH_COLS} FROM auths WHERE account_id = $1 AND id > $2 \
                 AND ($3::text IS NULL OR kind = $3) \
                 AND ($4::text IS NULL OR provider_id = $4) ORDER BY id LIMIT $5"
            );
            sqlx::query(&sql)
                .bind(account.to_string())
                .bind(page.after.map(|a| a.to_string()).unwrap_or_default())
                .bind(filter.kind.map(AuthKind::as_str))
                .bind(filter.provider_id.map(|p| p.to_string()))
                .bind(limit(page.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?
                .iter()
                .map(auth_from_row)
                .collect()
        })
        .await
    }

    async fn delete_auth(&self, account: AccountId, id: AuthId) -> Result<Vec<AuthId>> {
        let acct = account.to_string();
        let delete = format!(
            "{SUBTREE} DELETE FROM auths WHERE account_id = $1 \
             AND id IN (SELECT id FROM tree) RETURNING id"
        );
        let (acct, delete) = (&acct, &delete);
        self.bounded(retry_conflicts("delete auth", || async move {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            lock_subtree(&mut tx, acct, id).await?;
            let rows = sqlx::query(delete)
                .bind(acct)
                .bind(id.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            let ids = rows
                .iter()
                .map(|r| id_col(r, "id", AuthId::parse))
                .collect::<Result<Vec<_>>>()?;
            publish(&mut tx, &ids).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(ids)
        }))
        .await
    }

    async fn token_verifier(&self, id: AuthId) -> Result<Option<TokenVerifier>> {
        self.bounded(async {
            let row = sqlx::query(
                "SELECT a.id, a.account_id, c.aid, a.user_id, a.token_hash, a.scopes, \
                 a.expires_ms, u.roles AS user_roles FROM auths a \
                 JOIN accounts c ON c.id = a.account_id \
                 LEFT JOIN users u ON u.account_id = a.account_id AND u.id = a.user_id \
                 WHERE a.id = $1 AND a.kind = 'api_token'",
            )
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
            let Some(row) = row else { return Ok(None) };
            let hash: Vec<u8> = get(&row, "token_hash")?;
            let user_id = opt_id_col(&row, "user_id", UserId::parse)?;
            Ok(Some(TokenVerifier {
                id: id_col(&row, "id", AuthId::parse)?,
                account_id: id_col(&row, "account_id", AccountId::parse)?,
                account_aid: get(&row, "aid")?,
                user_roles: user_roles_col(&row, user_id.is_some())?,
                user_id,
                hash: hash.try_into().map_err(|_| corrupt("token_hash"))?,
                scopes: roles_col(&row, "scopes")?,
                expires_ms: get(&row, "expires_ms")?,
            }))
        })
        .await
    }

    async fn token_record(&self, id: AuthId) -> Result<Option<(TokenVerifier, Auth)>> {
        // One round trip on a cache miss: the verifier and the public record together.
        self.bounded(async {
            sqlx::query(&TOKEN_RECORD_SQL)
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(token_record_from_row)
                .transpose()
        })
        .await
    }

    async fn touch_tokens(&self, touches: &[(AuthId, i64)]) -> Result<()> {
        let mut sorted: Vec<(String, i64)> = touches
            .iter()
            .map(|(id, at)| (id.to_string(), *at))
            .collect();
        sorted.sort_unstable();
        let (ids, ats): (Vec<String>, Vec<i64>) = sorted.into_iter().unzip();
        let (ids, ats) = (&ids, &ats);
        self.bounded(retry_conflicts("touch tokens", || async move {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            // Lock in id order first (see the module docs); rows deleted meanwhile are skipped.
            sqlx::query(
                "SELECT id FROM auths WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE",
            )
            .bind(ids)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            sqlx::query(
                "UPDATE auths a SET last_accessed_ms = GREATEST(COALESCE(a.last_accessed_ms, 0), t.at) \
                 FROM UNNEST($1::text[], $2::bigint[]) AS t(id, at) WHERE a.id = t.id",
            )
            .bind(ids)
            .bind(ats)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(())
        }))
        .await
    }
}
