//! authd's store, written once for both SQL backends.
//!
//! [`SqlStore`] implements every store trait of [`authd_core::store`] over a [`Db`]: the
//! transaction logic, the SQL and the row decoding of each store method exist here and
//! nowhere else. A backend crate (`authd-store-sqlite`, `authd-store-postgres`) implements
//! [`Db`] — connection handling, its dialect, its invalidation feed, its deadline and retry
//! policy, and the two write paths where the engines differ (issuance and last access) — and
//! nothing more. The module per aggregate ([`accounts`], [`users`], [`auths`], …) holds that
//! aggregate's trait impl.

pub mod accounts;
pub mod audit;
pub mod auths;
pub mod credentials;
mod db;
pub mod entities;
pub mod keys;
pub mod master_key;
pub mod providers;
pub mod rotation;
mod rows;
pub mod settings;
mod sqlx_exec;
mod store;
pub mod users;
pub mod worker_credentials;
pub mod works;

pub use db::{bounded, sqlite_placeholders, Arg, Db, Dialect, Exec, Mode};
pub use rows::*;
pub use sqlx_exec::{pg_err, sqlite_err, Sqlx};

use authd_core::Result;

#[doc(hidden)]
pub type __Result<T> = authd_core::Result<T>;

#[doc(hidden)]
pub async fn __sleep(d: std::time::Duration) {
    tokio::time::sleep(d).await;
}

/// The store over a backend `D` (see the crate docs). Dereferences to the backend, for its
/// own operations (its pool, its invalidation feed).
#[derive(Clone, Debug)]
pub struct SqlStore<D> {
    db: D,
}

impl<D: Db> SqlStore<D> {
    /// The store over `db`.
    pub fn new(db: D) -> Self {
        Self { db }
    }
}

impl<D> std::ops::Deref for SqlStore<D> {
    type Target = D;

    fn deref(&self) -> &D {
        &self.db
    }
}

impl<D: Db> SqlStore<D> {
    /// Every row of a read outside a transaction, under the backend's deadline.
    pub(crate) async fn read_all<T, F>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        decode: F,
    ) -> Result<Vec<T>>
    where
        T: Send,
        F: Fn(&dyn SqlRow) -> Result<T> + Send + Sync,
    {
        bounded(&self.db, self.db.read().all(sql, args, decode)).await
    }

    /// The first row of a read outside a transaction, if any, under the backend's deadline.
    pub(crate) async fn read_optional<T, F>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        decode: F,
    ) -> Result<Option<T>>
    where
        T: Send,
        F: Fn(&dyn SqlRow) -> Result<T> + Send + Sync,
    {
        bounded(&self.db, self.db.read().optional(sql, args, decode)).await
    }

    /// The first row of a read outside a transaction, which must exist.
    pub(crate) async fn read_one<T, F>(&self, sql: &str, args: &[Arg<'_>], decode: F) -> Result<T>
    where
        T: Send,
        F: Fn(&dyn SqlRow) -> Result<T> + Send + Sync,
    {
        bounded(&self.db, self.db.read().one(sql, args, decode)).await
    }
}

/// How a backend is opened from its URL.
#[async_trait::async_trait]
pub trait Open: Db + Sized {
    /// Backend-specific settings (pool size, timeouts).
    type Settings: Default + Send;

    /// Opens (creating or migrating as needed) the database at `url`.
    async fn open(url: &str, settings: Self::Settings) -> anyhow::Result<Self>;
}

impl<D: Open> SqlStore<D> {
    /// Opens the store at `url` with the backend's default settings.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_with(url, D::Settings::default()).await
    }

    /// Opens the store at `url` with `settings`.
    pub async fn open_with(url: &str, settings: D::Settings) -> anyhow::Result<Self> {
        Ok(Self::new(D::open(url, settings).await?))
    }
}

/// The `LIMIT` for a page.
pub(crate) fn limit(l: u32) -> i64 {
    authd_core::model::sql_limit(l)
}
