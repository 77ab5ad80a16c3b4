//! [`Exec`] over sqlx: a SQLite or PostgreSQL transaction, or a pool (PostgreSQL's reads
//! outside a transaction; either engine's single-statement writes, [`crate::Db::autocommit`]). The two drivers differ in placeholders (rewritten for SQLite), in how a list
//! is bound (a JSON array for SQLite's `json_each`, an array for PostgreSQL's `ANY`) and in
//! which errors mean "unavailable"; the rest is one macro.

use async_trait::async_trait;
use authd_core::{Error, Result};
use sqlx::postgres::{PgArguments, PgPool};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqlitePool};
use sqlx::{Postgres, Sqlite};

use crate::db::{sqlite_placeholders, Arg, Exec};
use crate::rows::SqlRow;

/// A sqlx connection, transaction or pool, as an [`Exec`].
#[derive(Debug)]
pub struct Sqlx<C>(pub C);

/// Maps a SQLite driver error to the domain: unique violations are conflicts, connection
/// trouble is "unavailable", anything else internal. Causes are kept for logs only.
pub fn sqlite_err(e: sqlx::Error) -> Error {
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

/// Maps a PostgreSQL driver error to the domain: unique violations are conflicts; connection
/// trouble, server shutdown/start-up, cancelled statements (the statement timeout) and
/// exhausted resources are "unavailable"; anything else is internal.
pub fn pg_err(e: sqlx::Error) -> Error {
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

fn bind_sqlite<'q>(
    mut q: Query<'q, Sqlite, SqliteArguments<'q>>,
    args: &'q [Arg<'_>],
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v.as_deref()),
            Arg::Int(v) => q.bind(*v),
            Arg::Blob(v) => q.bind(v.as_deref()),
            Arg::Bool(v) => q.bind(*v),
            Arg::TextList(v) => q.bind(serde_json::Value::from(v.clone()).to_string()),
        };
    }
    q
}

fn bind_pg<'q>(
    mut q: Query<'q, Postgres, PgArguments>,
    args: &'q [Arg<'_>],
) -> Query<'q, Postgres, PgArguments> {
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v.as_deref()),
            Arg::Int(v) => q.bind(*v),
            Arg::Blob(v) => q.bind(v.as_deref()),
            Arg::Bool(v) => q.bind(*v),
            Arg::TextList(v) => q.bind(v.as_slice()),
        };
    }
    q
}

fn pg_sql(sql: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(sql)
}

macro_rules! sqlx_exec {
    ($conn:ty, |$s:ident| $executor:expr, $sql:path, $bind:path, $err:path) => {
        #[async_trait]
        impl Exec for Sqlx<$conn> {
            async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
                let sql = $sql(sql);
                let $s = self;
                let done = $bind(sqlx::query(&sql), args)
                    .execute($executor)
                    .await
                    .map_err($err)?;
                Ok(done.rows_affected())
            }

            async fn all<T, F>(&mut self, sql: &str, args: &[Arg<'_>], decode: F) -> Result<Vec<T>>
            where
                T: Send,
                F: Fn(&dyn SqlRow) -> Result<T> + Send + Sync,
            {
                let sql = $sql(sql);
                let $s = self;
                let rows = $bind(sqlx::query(&sql), args)
                    .fetch_all($executor)
                    .await
                    .map_err($err)?;
                rows.iter().map(|r| decode(r)).collect()
            }

            async fn optional<T, F>(
                &mut self,
                sql: &str,
                args: &[Arg<'_>],
                decode: F,
            ) -> Result<Option<T>>
            where
                T: Send,
                F: Fn(&dyn SqlRow) -> Result<T> + Send + Sync,
            {
                let sql = $sql(sql);
                let $s = self;
                let row = $bind(sqlx::query(&sql), args)
                    .fetch_optional($executor)
                    .await
                    .map_err($err)?;
                row.as_ref().map(|r| decode(r)).transpose()
            }
        }
    };
}

sqlx_exec!(
    sqlx::Transaction<'static, Sqlite>,
    |s| &mut *s.0,
    sqlite_placeholders,
    bind_sqlite,
    sqlite_err
);
sqlx_exec!(
    sqlx::Transaction<'static, Postgres>,
    |s| &mut *s.0,
    pg_sql,
    bind_pg,
    pg_err
);
sqlx_exec!(PgPool, |s| &s.0, pg_sql, bind_pg, pg_err);
sqlx_exec!(
    SqlitePool,
    |s| &s.0,
    sqlite_placeholders,
    bind_sqlite,
    sqlite_err
);
