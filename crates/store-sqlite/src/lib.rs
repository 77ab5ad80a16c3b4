//! The embedded SQLite backend of [`authd_core::store::Store`].
//!
//! The store logic (transactions, SQL, row decoding) is written once in `authd-store-sql`;
//! this crate owns only what is particular to SQLite: the connection settings (WAL,
//! `synchronous=FULL`, busy timeout, foreign keys), the migrations in `migrations/`, the
//! synchronous read pool (`reader`), the group-commit writer thread for issuance and last
//! access (`group_commit`) and the cross-process invalidation table (`feed`); see
//! [`SqliteDb`].

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use authd_store_sql::{Open, SqlStore};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

mod db;
mod feed;
mod group_commit;
mod reader;

pub use db::SqliteDb;
pub use feed::{SqliteFeed, POLL_EVERY};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A SQLite-backed store: the store logic of `authd-store-sql` over [`SqliteDb`].
pub type SqliteStore = SqlStore<SqliteDb>;

#[async_trait]
impl Open for SqliteDb {
    type Settings = ();

    /// Opens (creating if needed) the database at `url` (`sqlite://path` or a bare path) and
    /// applies pending migrations.
    async fn open(url: &str, _settings: ()) -> anyhow::Result<Self> {
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
        Ok(SqliteDb {
            pool,
            read: Arc::new(read),
            group: Arc::new(group),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::borrow::Cow;

    use sqlx::Row;

    use super::*;

    const AUTH_ROW: &str = "SELECT id, account_id, kind, provider_id, name, label, description, \
         user_id, user_name, parent_id, scopes, expires_ms, ttl_secs, hex(token_hash), \
         created_ms, updated_ms, last_accessed_ms, rotated_to, cred_incarnation, cred_generation \
         FROM auths ORDER BY id";

    async fn auth_rows(pool: &sqlx::SqlitePool) -> Vec<Vec<Option<String>>> {
        sqlx::query(AUTH_ROW)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (0..20)
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .or_else(|_| {
                                r.try_get::<Option<i64>, _>(i)
                                    .map(|v| v.map(|v| v.to_string()))
                            })
                            .unwrap()
                    })
                    .collect()
            })
            .collect()
    }

    /// A store written before `auths` was clustered on its id keeps every row, its credential
    /// secrets (the rebuild must not cascade) and working foreign keys.
    #[tokio::test]
    async fn clustering_auths_keeps_every_row_and_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
        let before = sqlx::migrate::Migrator {
            migrations: Cow::Owned(
                MIGRATOR
                    .migrations
                    .iter()
                    .filter(|m| m.version <= 10)
                    .cloned()
                    .collect(),
            ),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        before.run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO accounts (id, name, created_ms, updated_ms) VALUES ('a1', 'A', 1, 1)",
            "INSERT INTO data_keys (id, created_ms, wrapped, current) VALUES ('k1', 1, x'00', 1)",
            "INSERT INTO auths (id, account_id, kind, provider_id, name, user_id, scopes, \
             expires_ms, token_hash, created_ms, updated_ms, last_accessed_ms) VALUES \
             ('t2', 'a1', 'api_token', 'p', 'tok', 'u1', 5, 99, x'0102', 2, 3, 4)",
            "INSERT INTO auths (id, account_id, kind, provider_id, name, created_ms, updated_ms, \
             cred_incarnation, cred_generation) VALUES ('c1', 'a1', 'credential', 'p', 'cred', \
             5, 6, 'inc', 7)",
            "INSERT INTO auth_secrets (account_id, auth_id, field, key_id, nonce, ciphertext) \
             VALUES ('a1', 'c1', 'password', 'k1', x'01', x'02')",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        let rows = auth_rows(&pool).await;
        assert_eq!(rows.len(), 2);
        pool.close().await;

        let db = SqliteDb::open(path.to_str().unwrap(), ()).await.unwrap();
        let schema: String =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'auths'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert!(schema.contains("WITHOUT ROWID"), "{schema}");
        assert_eq!(auth_rows(&db.pool).await, rows);
        let secrets: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_secrets")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(secrets, 1, "the rebuild must not cascade to the secrets");
        // Foreign keys are on again and point at the new table.
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        sqlx::query("DELETE FROM auths WHERE id = 'c1'")
            .execute(&db.pool)
            .await
            .unwrap();
        let secrets: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_secrets")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(
            secrets, 0,
            "deleting a credential still cascades to its secrets"
        );
        assert!(sqlx::query(
            "INSERT INTO auths (id, account_id, kind, provider_id, created_ms, updated_ms) \
             VALUES ('x', 'no-such-account', 'api_token', 'p', 1, 1)"
        )
        .execute(&db.pool)
        .await
        .is_err());
    }
}
