//! SQLite as a [`Db`]: what is particular to the embedded engine and nothing else.
//!
//! - Transactions on sqlx (a write transaction is `BEGIN IMMEDIATE`: it holds SQLite's one
//!   write lock from its first statement, so what it read cannot change before it writes).
//! - Reads outside a transaction on the synchronous rusqlite pool ([`crate::reader`]).
//! - Invalidations as rows of the `invalidations` table ([`crate::feed`]), in the transaction.
//! - Issuance and last-access writes on the group-commit writer thread
//!   ([`crate::group_commit`]).

use std::sync::Arc;

use async_trait::async_trait;
use authd_core::ids::{AccountId, AuthId};
use authd_core::invalidation::Invalidation;
use authd_core::model::{Auth, NewToken};
use authd_core::{Error, Result};
use authd_store_sql::{sqlite_err, Arg, Db, Dialect, Exec, Mode, SqlRow, Sqlx};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use sqlx::sqlite::SqlitePool;
use sqlx::Sqlite;

use crate::group_commit::GroupCommit;
use crate::reader::Reader;

/// The SQLite backend (see the module docs).
#[derive(Clone, Debug)]
pub struct SqliteDb {
    pub(crate) pool: SqlitePool,
    pub(crate) read: Arc<Reader>,
    pub(crate) group: Arc<GroupCommit>,
}

impl SqliteDb {
    /// The underlying pool (for tooling such as bulk seeding).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The follower of this file's invalidations (changes made by other processes).
    /// Starts at the file's newest row: every change committed from now on is delivered.
    pub async fn feed(&self) -> Result<crate::SqliteFeed> {
        crate::SqliteFeed::new(self.pool.clone()).await
    }
}

#[async_trait]
impl Db for SqliteDb {
    type Tx = Sqlx<sqlx::Transaction<'static, Sqlite>>;
    type Read<'a> = ReadConn<'a>;
    type Autocommit = Sqlx<SqlitePool>;

    const DIALECT: Dialect = Dialect::Sqlite;
    const NAME: &'static str = "sqlite";

    fn read(&self) -> ReadConn<'_> {
        ReadConn(&self.read)
    }

    fn autocommit(&self) -> Self::Autocommit {
        Sqlx(self.pool.clone())
    }

    async fn begin(&self, mode: Mode) -> Result<Self::Tx> {
        let tx = match mode {
            Mode::Write => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Mode::Snapshot => self.pool.begin().await,
        };
        Ok(Sqlx(tx.map_err(sqlite_err)?))
    }

    async fn commit(&self, tx: Self::Tx) -> Result<()> {
        tx.0.commit().await.map_err(sqlite_err)
    }

    async fn publish(&self, tx: &mut Self::Tx, msg: Invalidation) -> Result<()> {
        crate::feed::append(tx, msg).await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| Error::Unavailable(e.into()))?;
        Ok(())
    }

    async fn create_token(&self, account: AccountId, t: NewToken, now_ms: i64) -> Result<Auth> {
        self.group.create_token(account, t, now_ms).await
    }

    async fn touch_tokens(&self, touches: &[(AuthId, i64)]) -> Result<()> {
        // On the writer thread: a flush can hold a row per active token (100,000 and more).
        self.group.touch(touches.to_vec()).await
    }
}

/// Reads outside a transaction, on the rusqlite pool. It cannot write: its connections are
/// `query_only`.
#[derive(Debug)]
pub struct ReadConn<'a>(&'a Reader);

/// An [`Arg`] as a rusqlite parameter.
struct Param<'a>(&'a Arg<'a>);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Arg::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Int(Some(i)) => ToSqlOutput::Owned(Value::Integer(*i)),
            Arg::Blob(Some(b)) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Arg::Bool(Some(b)) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            Arg::TextList(v) => {
                ToSqlOutput::Owned(Value::Text(serde_json::Value::from(v.clone()).to_string()))
            }
            Arg::Text(None) | Arg::Int(None) | Arg::Blob(None) | Arg::Bool(None) => {
                ToSqlOutput::Owned(Value::Null)
            }
        })
    }
}

pub(crate) fn params<'a>(args: &'a [Arg<'a>]) -> impl rusqlite::Params + 'a {
    rusqlite::params_from_iter(args.iter().map(Param))
}

#[async_trait]
impl Exec for ReadConn<'_> {
    async fn execute(&mut self, _sql: &str, _args: &[Arg<'_>]) -> Result<u64> {
        Err(Error::Internal(anyhow::anyhow!(
            "a write outside a transaction (the read path is query_only)"
        )))
    }

    async fn all<T, F>(&mut self, sql: &str, args: &[Arg<'_>], decode: F) -> Result<Vec<T>>
    where
        T: Send,
        F: Fn(&dyn SqlRow) -> Result<T> + Send + Sync,
    {
        self.0.all(sql, params(args), |r| decode(r))
    }

    async fn optional<T, F>(&mut self, sql: &str, args: &[Arg<'_>], decode: F) -> Result<Option<T>>
    where
        T: Send,
        F: Fn(&dyn SqlRow) -> Result<T> + Send + Sync,
    {
        self.0.one(sql, params(args), |r| decode(r))
    }
}
