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
