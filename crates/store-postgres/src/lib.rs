//! The PostgreSQL backend of [`authd_core::store::Store`], for many authd nodes sharing one
//! database.
//!
//! The store logic (transactions, SQL, row decoding) is written once in `authd-store-sql`;
//! this crate owns only what is particular to PostgreSQL: the connection settings (pool size,
//! acquire and statement timeouts), the migrations in `migrations/` (numbered like SQLite's
//! and kept in step with them), the deadline and conflict-retry policy, last-access batches
//! ([`PgDb`]), and the cross-node invalidation feed over LISTEN/NOTIFY.
//!
//! **Migrations and concurrent start-up:** opening a [`PgStore`] runs the migrator on a dedicated
//! connection without a statement timeout. sqlx's PostgreSQL migrator takes
//! `pg_advisory_lock(<id derived from the database name>)` before it even creates its
//! `_sqlx_migrations` table and releases it when done, so when N nodes start together one
//! migrates and the others wait on the lock, then find nothing left to apply. Each migration
//! runs in its own transaction. (`tests/pg.rs` starts several opens at once to prove it.)
//!
//! **Outages:** every store call is bounded by the configured timeout (pool acquire, server-side
//! `statement_timeout`, and an overall deadline), and connection-level failures map to
//! [`Error::Unavailable`](authd_core::Error::Unavailable) (HTTP 503). The pool reconnects on its own when the server returns.

mod db;
mod group_commit;
mod notify;
mod retry;
pub mod testing;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use authd_store_sql::{Open, SqlStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use db::PgDb;
pub use notify::{PgFeed, INVALIDATE_CHANNEL};

/// A PostgreSQL-backed store: the store logic of `authd-store-sql` over [`PgDb`].
pub type PgStore = SqlStore<PgDb>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connection settings.
#[derive(Clone, Copy, Debug)]
pub struct PgSettings {
    /// Pool size per node (one more connection is held by the invalidation listener).
    pub max_connections: u32,
    /// Upper bound for one store call: waiting for a connection, the statement on the server,
    /// and the call as a whole. Past it the call fails as `Unavailable`.
    pub timeout: Duration,
}

impl Default for PgSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            timeout: Duration::from_secs(3),
        }
    }
}

#[async_trait]
impl Open for PgDb {
    type Settings = PgSettings;

    /// Connects to `url` (`postgres://…`), applies pending migrations under the migrator's
    /// advisory lock, and returns a backend whose pool connects lazily and reconnects by
    /// itself.
    async fn open(url: &str, settings: PgSettings) -> anyhow::Result<Self> {
        let base = PgConnectOptions::from_str(url)
            .context("parsing the PostgreSQL URL")?
            // Server NOTICEs ("relation … already exists, skipping") are not worth a log line.
            .options([("client_min_messages", "warning")]);
        // Migrate on a dedicated one-connection pool without a statement timeout: waiting on
        // the migrator's advisory lock behind another node must not be cut short.
        let migrate_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.timeout)
            .connect_with(base.clone())
            .await
            .context("connecting")?;
        MIGRATOR
            .run(&migrate_pool)
            .await
            .context("applying migrations")?;
        migrate_pool.close().await;
        let statement_ms = settings.timeout.as_millis().to_string();
        let opts = base.options([("statement_timeout", statement_ms.as_str())]);
        let pool = PgPoolOptions::new()
            // The invalidation listener holds one pooled connection for good.
            .max_connections(settings.max_connections.max(1) + 1)
            .acquire_timeout(settings.timeout)
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy_with(opts);
        let direct = PgDb {
            pool,
            timeout: settings.timeout,
            group: None,
        };
        Ok(PgDb {
            group: Some(group_commit::GroupCommit::start(direct.clone())),
            ..direct
        })
    }
}
