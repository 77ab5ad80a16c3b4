//! The embedded SQLite backend of [`authd_core::store::Store`].
//!
//! Owns the SQLite connection settings (WAL, `synchronous=FULL`, busy timeout, foreign keys),
//! the migrations in `migrations/`, and the SQL for every store method. SQL lives here and
//! nowhere else. Every query that touches tenant data binds the account id.

pub(crate) use authd_store_sql::token_record_from_row;
pub(crate) use authd_store_sql::{
    account_from_row, auth_from_row, corrupt, get, id_col, opt_id_col, roles_col, user_from_row,
    user_roles_col, AUTH_COLS,
};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::model::{
    Account, Auth, AuthFilter, AuthKind, NewAccount, NewToken, Page, TokenVerifier, User, UserPatch,
};
use authd_core::roles::{Role, RoleSet};
use authd_core::store::{AccountStore, AuthStore, Store, UserStore};
use authd_core::{Error, Result};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

mod credentials;
mod db;
mod entities;
mod feed;
mod group_commit;
mod master_key;
mod reader;
mod rotation;
mod settings;
mod worker_credentials;

pub use db::SqliteDb;
pub use feed::{SqliteFeed, POLL_EVERY};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A SQLite-backed store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// Synchronous reads (see [`reader`]).
    pub(crate) read: std::sync::Arc<reader::Reader>,
    group: std::sync::Arc<group_commit::GroupCommit>,
}

impl SqliteStore {
    /// The follower of this file's invalidations (changes made by other processes).
    /// Starts at the file's newest row: every change committed from now on is delivered.
    pub async fn feed(&self) -> Result<SqliteFeed> {
        SqliteFeed::new(self.pool.clone()).await
    }

    /// Opens (creating if needed) the database at `url` (`sqlite://path` or a bare path) and
    /// applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        let path = db_path(&url)?;
        let read = reader::Reader::open(path.clone())?;
        let group = group_commit::GroupCommit::start(path)?;
        Ok(Self {
            pool,
            read: std::sync::Arc::new(read),
            group: std::sync::Arc::new(group),
        })
    }
}

/// The database file a `sqlite:` URL names. authd's store is a file: an in-memory database
/// would be a different, empty database on every connection.
fn db_path(url: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("the SQLite store needs a database file, not {path:?}");
    }
    Ok(std::path::PathBuf::from(path))
}

impl SqliteStore {
    /// The underlying pool (for tooling such as bulk seeding).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Maps a driver error to the domain: unique violations are conflicts, connection trouble is
/// "unavailable", anything else internal. Causes are kept for logs only.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::Conflict("already exists".into())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            Error::Unavailable(e.into())
        }
        _ => Error::Internal(e.into()),
    }
}

pub(crate) async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    account: AccountId,
    t: &NewToken,
    now_ms: i64,
) -> Result<()> {
    insert_token_conn(&mut *tx, account, t, now_ms).await
}

async fn insert_token_conn(
    conn: &mut sqlx::SqliteConnection,
    account: AccountId,
    t: &NewToken,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(INSERT_TOKEN_SQL)
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
        .bind(now_ms)
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// The record of a token just inserted: everything stored is known, no need to read it back.
pub(crate) fn stored_token(account: AccountId, t: &NewToken, now_ms: i64) -> Auth {
    Auth {
        id: t.id,
        account_id: account,
        kind: AuthKind::ApiToken,
        provider_id: authd_core::provider::LYTICS_PROVIDER_ID,
        name: t.name.clone(),
        label: t.label.clone(),
        description: t.description.clone(),
        user_id: t.user_id,
        user_name: t.user_name.clone(),
        parent_id: t.parent_id,
        scopes: t.scopes,
        expires_ms: t.expires_ms,
        ttl_secs: t.ttl_secs,
        created_ms: now_ms,
        updated_ms: now_ms,
        last_accessed_ms: None,
    }
}

/// Inserts one token (15 parameters: see [`insert_token_conn`] for their order).
pub(crate) const INSERT_TOKEN_SQL: &str =
    "INSERT INTO auths (id, account_id, kind, provider_id, name, label, description, \
     user_id, user_name, parent_id, scopes, expires_ms, ttl_secs, token_hash, created_ms, \
     updated_ms) VALUES (?, ?, 'api_token', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Appends one audit row and returns its sequence number (8 parameters: see
/// [`insert_audit`]).
pub(crate) const INSERT_AUDIT_SQL: &str =
    "INSERT INTO audit (at_ms, account_id, actor, action, target, outcome, request_id, \
     detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq";

/// Appends one audit row inside a transaction; returns its sequence number.
pub(crate) async fn insert_audit(
    conn: &mut sqlx::SqliteConnection,
    e: &authd_core::audit::AuditEntry,
) -> Result<i64> {
    sqlx::query_scalar(INSERT_AUDIT_SQL)
        .bind(e.at_ms)
        .bind(e.account_id.map(|a| a.to_string()))
        .bind(&e.actor)
        .bind(e.action.as_str())
        .bind(&e.target)
        .bind(&e.outcome)
        .bind(&e.request_id)
        .bind(&e.detail)
        .fetch_one(conn)
        .await
        .map_err(db_err)
}

/// Inserts a mutation's audit entries for what it did, inside its transaction.
pub(crate) async fn insert_audits<T>(
    conn: &mut sqlx::SqliteConnection,
    audit: &Audit<'_, T>,
    outcome: &T,
) -> Result<()> {
    for e in audit.entries(outcome) {
        insert_audit(&mut *conn, &e).await?;
    }
    Ok(())
}

/// A token's verifier and public record in one read (see `store-sql`).
static TOKEN_RECORD_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{}?", authd_store_sql::TOKEN_RECORD_SELECT));

fn limit(l: u32) -> i64 {
    authd_core::model::sql_limit(l)
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, new: NewAccount, now_ms: i64) -> Result<Account> {
        let row = sqlx::query(
            "INSERT INTO accounts (id, name, domain, email, timezone, created_ms, updated_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(new.id.to_string())
        .bind(&new.name)
        .bind(&new.domain)
        .bind(&new.email)
        .bind(&new.timezone)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        account_from_row(&row)
    }

    async fn get_account(&self, id: AccountId) -> Result<Option<Account>> {
        self.read.one(
            "SELECT * FROM accounts WHERE id = ?",
            [id.to_string()],
            |r| account_from_row(r),
        )
    }

    async fn get_account_by_aid(&self, aid: i64) -> Result<Option<Account>> {
        self.read
            .one("SELECT * FROM accounts WHERE aid = ?", [aid], |r| {
                account_from_row(r)
            })
    }

    async fn count_accounts(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        u64::try_from(n).map_err(|_| corrupt("count"))
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, u: User, audit: Audit<'_, User>) -> Result<User> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO users (id, account_id, email, name, roles, created_ms, updated_ms, \
             last_logon_ms, granted_by, roles_updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .map_err(|e| match db_err(e) {
            Error::Conflict(_) => Error::Conflict("A user with this email already exists".into()),
            other => other,
        })?;
        insert_audits(&mut tx, &audit, &u).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(u)
    }

    async fn get_user(&self, account: AccountId, id: UserId) -> Result<Option<User>> {
        self.read.one(
            "SELECT * FROM users WHERE account_id = ? AND id = ?",
            [account.to_string(), id.to_string()],
            |r| user_from_row(r),
        )
    }

    async fn list_users(&self, account: AccountId, page: Page<UserId>) -> Result<Vec<User>> {
        let after = page.after.map(|a| a.to_string()).unwrap_or_default();
        self.read.all(
            "SELECT * FROM users WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?",
            rusqlite::params![account.to_string(), after, limit(page.limit)],
            |r| user_from_row(r),
        )
    }

    async fn update_user(
        &self,
        account: AccountId,
        id: UserId,
        patch: UserPatch,
        now_ms: i64,
        audit: Audit<'_, (User, Vec<AuthId>)>,
    ) -> Result<Option<(User, Vec<AuthId>)>> {
        // IMMEDIATE: the write lock is taken before the read of the old roles, so the
        // last-admin check and the change are one atomic step.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        let Some(before) = user_roles(&mut tx, account, id).await? else {
            return Ok(None);
        };
        let roles_changed = patch.roles.is_some_and(|r| r != before);
        // A roles change records its grantor and time (the membership's update).
        let row = sqlx::query(
            "UPDATE users SET email = COALESCE(?1, email), name = COALESCE(?2, name), \
             roles = COALESCE(?3, roles), updated_ms = ?4, \
             granted_by = CASE WHEN ?3 IS NULL THEN granted_by ELSE ?7 END, \
             roles_updated_ms = CASE WHEN ?3 IS NULL THEN roles_updated_ms ELSE ?4 END \
             WHERE account_id = ?5 AND id = ?6 RETURNING *",
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
        .map_err(|e| match db_err(e) {
            Error::Conflict(_) => Error::Conflict("A user with this email already exists".into()),
            other => other,
        })?;
        let user = user_from_row(&row)?;
        if before.contains(Role::Admin)
            && !user.roles.contains(Role::Admin)
            && admins(&mut tx, account).await? == 0
        {
            return Err(authd_core::roles::last_admin());
        }
        let tokens = if roles_changed {
            user_tokens(&mut tx, account, id).await?
        } else {
            Vec::new()
        };
        feed::publish(&mut tx, &tokens).await?;
        feed::publish_users(&mut tx, &[id]).await?;
        let out = (user, tokens);
        insert_audits(&mut tx, &audit, &out).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(out))
    }

    async fn delete_user(
        &self,
        account: AccountId,
        id: UserId,
        audit: Audit<'_, Vec<AuthId>>,
    ) -> Result<Option<Vec<AuthId>>> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        let Some(before) = user_roles(&mut tx, account, id).await? else {
            return Ok(None);
        };
        if before.contains(Role::Admin) && admins(&mut tx, account).await? <= 1 {
            return Err(authd_core::roles::last_admin());
        }
        let revoked = sqlx::query(
            "DELETE FROM auths WHERE account_id = ?1 AND id IN ( \
               WITH RECURSIVE tree(id) AS ( \
                 SELECT id FROM auths WHERE account_id = ?1 AND user_id = ?2 \
                   AND kind = 'api_token' \
                 UNION SELECT a.id FROM auths a JOIN tree t ON a.parent_id = t.id \
                   WHERE a.account_id = ?1 AND a.kind = 'api_token') \
               SELECT id FROM tree) \
             RETURNING id",
        )
        .bind(account.to_string())
        .bind(id.to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| id_col(r, "id", AuthId::parse))
        .collect::<Result<Vec<_>>>()?;
        sqlx::query("DELETE FROM users WHERE account_id = ? AND id = ?")
            .bind(account.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        feed::publish(&mut tx, &revoked).await?;
        feed::publish_users(&mut tx, &[id]).await?;
        insert_audits(&mut tx, &audit, &revoked).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(revoked))
    }
}

/// A user's roles inside a transaction; `None` if there is no such user in this account.
async fn user_roles(
    conn: &mut sqlx::SqliteConnection,
    account: AccountId,
    id: UserId,
) -> Result<Option<RoleSet>> {
    let bits: Option<i64> =
        sqlx::query_scalar("SELECT roles FROM users WHERE account_id = ? AND id = ?")
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
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
async fn admins(conn: &mut sqlx::SqliteConnection, account: AccountId) -> Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE account_id = ? AND (roles & ?) != 0")
        .bind(account.to_string())
        .bind(i64::from(RoleSet::of(&[Role::Admin]).bits()))
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)
}

/// The ids of a user's API tokens.
async fn user_tokens(
    conn: &mut sqlx::SqliteConnection,
    account: AccountId,
    id: UserId,
) -> Result<Vec<AuthId>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM auths WHERE account_id = ? AND user_id = ? AND kind = 'api_token'",
    )
    .bind(account.to_string())
    .bind(id.to_string())
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    ids.iter()
        .map(|s| AuthId::parse(s).ok_or_else(|| corrupt("id")))
        .collect()
}

#[async_trait]
impl AuthStore for SqliteStore {
    async fn create_token(&self, account: AccountId, t: NewToken, now_ms: i64) -> Result<Auth> {
        self.group.create_token(account, t, now_ms).await
    }

    async fn create_tokens(
        &self,
        account: AccountId,
        tokens: &[NewToken],
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for t in tokens {
            insert_token(&mut tx, account, t, now_ms).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn get_auth(&self, account: AccountId, id: AuthId) -> Result<Option<Auth>> {
        let sql = format!("SELECT {AUTH_COLS} FROM auths WHERE account_id = ? AND id = ?");
        self.read
            .one(&sql, [account.to_string(), id.to_string()], |r| {
                auth_from_row(r)
            })
    }

    async fn list_auths(
        &self,
        account: AccountId,
        filter: AuthFilter,
        page: Page<AuthId>,
    ) -> Result<Vec<Auth>> {
        let sql = format!(
            "SELECT {AUTH_COLS} FROM auths WHERE account_id = ? AND id > ? \
             AND (? IS NULL OR kind = ?) AND (? IS NULL OR provider_id = ?) ORDER BY id LIMIT ?"
        );
        let kind = filter.kind.map(AuthKind::as_str);
        let provider = filter.provider_id.map(|p| p.to_string());
        self.read.all(
            &sql,
            rusqlite::params![
                account.to_string(),
                page.after.map(|a| a.to_string()).unwrap_or_default(),
                kind,
                kind,
                provider,
                provider,
                limit(page.limit),
            ],
            |r| auth_from_row(r),
        )
    }

    async fn delete_auth(&self, account: AccountId, id: AuthId) -> Result<Vec<AuthId>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let rows = sqlx::query(
            "DELETE FROM auths WHERE account_id = ?1 AND id IN ( \
               WITH RECURSIVE tree(id) AS ( \
                 SELECT id FROM auths WHERE account_id = ?1 AND id = ?2 \
                 UNION SELECT a.id FROM auths a JOIN tree t ON a.parent_id = t.id \
                   WHERE a.account_id = ?1) \
               SELECT id FROM tree) \
             RETURNING id",
        )
        .bind(account.to_string())
        .bind(id.to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let ids = rows
            .iter()
            .map(|r| id_col(r, "id", AuthId::parse))
            .collect::<Result<Vec<_>>>()?;
        feed::publish(&mut tx, &ids).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(ids)
    }

    async fn token_verifier(&self, id: AuthId) -> Result<Option<TokenVerifier>> {
        self.read.one(
            "SELECT a.id, a.account_id, c.aid, a.user_id, a.token_hash, a.scopes, a.expires_ms, \
             u.roles AS user_roles FROM auths a JOIN accounts c ON c.id = a.account_id \
             LEFT JOIN users u ON u.account_id = a.account_id AND u.id = a.user_id \
             WHERE a.id = ? AND a.kind = 'api_token'",
            [id.to_string()],
            |row| {
                let hash: Vec<u8> = get(row, "token_hash")?;
                let user_id = opt_id_col(row, "user_id", UserId::parse)?;
                Ok(TokenVerifier {
                    id: id_col(row, "id", AuthId::parse)?,
                    account_id: id_col(row, "account_id", AccountId::parse)?,
                    account_aid: get(row, "aid")?,
                    user_roles: user_roles_col(row, user_id.is_some())?,
                    user_id,
                    hash: hash.try_into().map_err(|_| corrupt("token_hash"))?,
                    scopes: roles_col(row, "scopes")?,
                    expires_ms: get(row, "expires_ms")?,
                })
            },
        )
    }

    async fn token_record(&self, id: AuthId) -> Result<Option<(TokenVerifier, Auth)>> {
        self.read.one(&TOKEN_RECORD_SQL, [id.to_string()], |row| {
            token_record_from_row(row)
        })
    }

    async fn touch_tokens(&self, touches: &[(AuthId, i64)]) -> Result<()> {
        // On the writer thread: a flush can hold a row per active token (100,000 and more),
        // which through sqlx cost one worker-thread hop each.
        self.group.touch(touches.to_vec()).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| Error::Unavailable(e.into()))?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
