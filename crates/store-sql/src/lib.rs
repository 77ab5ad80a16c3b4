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
pub mod credentials;
mod db;
pub mod keys;
mod rows;
mod sqlx_exec;

pub use db::{bounded, sqlite_placeholders, Arg, Db, Dialect, Exec, Mode};
pub use rows::*;
pub use sqlx_exec::{pg_err, sqlite_err, Sqlx};

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

/// The `LIMIT` for a page.
pub(crate) fn limit(l: u32) -> i64 {
    authd_core::model::sql_limit(l)
}
