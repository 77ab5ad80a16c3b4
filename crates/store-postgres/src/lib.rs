//! The PostgreSQL backend of [`authd_core::store::Store`], for many authd nodes sharing one
//! database.
//!
//! Owns the connection settings (pool size, acquire and statement timeouts), the migrations in
//! `migrations/` (numbered like SQLite's and kept in step with them), the SQL for every store
//! method — one module per aggregate ([`accounts`], [`users`], [`auths`], [`credentials`],
//! [`works`], [`providers`], [`audit`], [`settings`]) so new tables get new files — and the
//! cross-node invalidation feed ([`notify`]).
//!
//! **Migrations and concurrent start-up:** [`PgStore::open`] runs the migrator on a dedicated
//! connection without a statement timeout. sqlx's PostgreSQL migrator takes
//! `pg_advisory_lock(<id derived from the database name>)` before it even creates its
//! `_sqlx_migrations` table and releases it when done, so when N nodes start together one
//! migrates and the others wait on the lock, then find nothing left to apply. Each migration
//! runs in its own transaction. (`tests/pg.rs` starts several opens at once to prove it.)
//!
//! **Outages:** every store call is bounded by the configured timeout (pool acquire, server-side
//! `statement_timeout`, and an overall deadline), and connection-level failures map to
//! [`Error::Unavailable`] (HTTP 503). The pool reconnects on its own when the server returns.

pub mod accounts;
pub mod audit;
pub mod auths;
pub mod credentials;
pub mod entities;
pub mod master_key;
pub mod notify;
pub mod providers;
mod retry;
pub mod rotation;
pub mod settings;
pub mod testing;
pub mod users;
pub mod worker_credentials;
pub mod works;

pub(crate) use authd_store_sql::{corrupt, get, id_col, opt_id_col, roles_col};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use authd_core::store::Store;
use authd_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use notify::{PgFeed, INVALIDATE_CHANNEL};

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

/// A PostgreSQL-backed store.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    timeout: Duration,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`), applies pending migrations under the migrator's
    /// advisory lock, and returns a store whose pool connects lazily and reconnects by itself.
    pub async fn open(url: &str, settings: PgSettings) -> anyhow::Result<Self> {
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
        Ok(Self {
            pool,
            timeout: settings.timeout,
        })
    }

    /// The underlying pool (for tooling).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The feed of invalidations made by any node on this database.
    pub fn feed(&self) -> PgFeed {
        PgFeed::new(self.pool.clone())
    }

    /// Runs one store call under the overall deadline.
    pub(crate) async fn bounded<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable(anyhow::anyhow!(
                "database call timed out after {:?}",
                self.timeout
            ))),
        }
    }
}

/// Maps a driver error to the domain: unique violations are conflicts; connection trouble,
/// server shutdown/start-up, cancelled statements (the statement timeout) and exhausted
/// resources are "unavailable"; anything else is internal. Causes are kept for logs only.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::Conflict("already exists".into())
        }
        // SQLSTATE classes 08 (connection exception), 53 (insufficient resources),
        // 57 (operator intervention: shutdown, cannot connect now, query cancelled).
        sqlx::Error::Database(d)
            if d.code().is_some_and(|c| {
                c.starts_with("08") || c.starts_with("53") || c.starts_with("57")
            }) =>
        {
            Error::Unavailable(e.into())
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Error::Unavailable(e.into()),
        _ => Error::Internal(e.into()),
    }
}

pub(crate) fn limit(l: u32) -> i64 {
    authd_core::model::sql_limit(l)
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<()> {
        self.bounded(async {
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map_err(|e| Error::Unavailable(e.into()))?;
            Ok(())
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
