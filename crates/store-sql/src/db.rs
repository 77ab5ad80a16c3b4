//! The one seam between the store logic and a database driver.
//!
//! Every store method is written once, in this crate, against two small traits:
//!
//! - [`Exec`]: run a statement, or a query whose rows are decoded by a [`SqlRow`] decoder.
//!   Implemented by a backend's transaction and by its read handle.
//! - [`Db`]: what a backend is — its [`Dialect`], how it begins and commits a transaction, how
//!   it reads outside one, how it publishes an invalidation inside one, its deadline for a call
//!   and which failures are worth running a transaction again — plus the few operations where
//!   the engines truly differ (issuance and last-access writes: a group-commit writer thread on
//!   SQLite, plain transactions on PostgreSQL).
//!
//! SQL is written with PostgreSQL's numbered placeholders (`$1`, `$2`, a number may repeat);
//! the SQLite backend rewrites them to SQLite's `?1`, `?2` ([`sqlite_placeholders`]). Where the
//! dialects differ, the text is chosen by [`Dialect`]; the logic around it is not.

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use authd_core::ids::{AccountId, AuthId, ProviderId, UserId, WorkId, WorkerCredentialId};
use authd_core::invalidation::Invalidation;
use authd_core::model::{Auth, NewToken};
use authd_core::roles::RoleSet;
use authd_core::{Error, Result};

use crate::rows::SqlRow;

/// One value bound to a statement. Nulls are typed: PostgreSQL needs to know a NULL's type.
/// Its `Debug` shows no text or bytes (an argument may be a keyed hash or sealed material),
/// only what kind of value it is.
#[derive(Clone)]
pub enum Arg<'a> {
    /// TEXT.
    Text(Option<Cow<'a, str>>),
    /// A 64-bit integer.
    Int(Option<i64>),
    /// BLOB / BYTEA.
    Blob(Option<Cow<'a, [u8]>>),
    /// A boolean (an integer on SQLite).
    Bool(Option<bool>),
    /// A list of texts, for [`Dialect::in_list`]: an array on PostgreSQL, a JSON array on
    /// SQLite.
    TextList(Vec<String>),
}

impl std::fmt::Debug for Arg<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Text(v) => write!(f, "Text({})", v.as_ref().map_or(0, |t| t.len())),
            Arg::Int(_) => f.write_str("Int"),
            Arg::Blob(v) => write!(f, "Blob({})", v.as_ref().map_or(0, |b| b.len())),
            Arg::Bool(_) => f.write_str("Bool"),
            Arg::TextList(v) => write!(f, "TextList({})", v.len()),
        }
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Text(Some(Cow::Owned(v)))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v.map(Cow::Borrowed))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v.map(Cow::Owned))
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref().map(Cow::Borrowed))
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(Some(v))
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(v: &'a [u8]) -> Self {
        Arg::Blob(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Arg::Blob(Some(Cow::Borrowed(v)))
    }
}

impl From<Vec<u8>> for Arg<'_> {
    fn from(v: Vec<u8>) -> Self {
        Arg::Blob(Some(Cow::Owned(v)))
    }
}

impl From<RoleSet> for Arg<'_> {
    fn from(v: RoleSet) -> Self {
        Arg::Int(Some(i64::from(v.bits())))
    }
}

impl From<Option<RoleSet>> for Arg<'_> {
    fn from(v: Option<RoleSet>) -> Self {
        Arg::Int(v.map(|r| i64::from(r.bits())))
    }
}

macro_rules! id_args {
    ($($id:ty),*) => {$(
        impl From<$id> for Arg<'_> {
            fn from(v: $id) -> Self {
                Arg::Text(Some(Cow::Owned(v.to_string())))
            }
        }
        impl From<Option<$id>> for Arg<'_> {
            fn from(v: Option<$id>) -> Self {
                Arg::Text(v.map(|v| Cow::Owned(v.to_string())))
            }
        }
        impl From<&[$id]> for Arg<'_> {
            fn from(v: &[$id]) -> Self {
                Arg::TextList(v.iter().map(ToString::to_string).collect())
            }
        }
    )*};
}

id_args!(
    AccountId,
    AuthId,
    UserId,
    ProviderId,
    WorkId,
    WorkerCredentialId
);

/// The arguments of a statement: `args![a, b, c]` is `&[Arg::from(a), …]`.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        &[$($crate::Arg::from($a)),*][..]
    };
}

/// Rewrites `$1`-style placeholders to SQLite's `?1` (SQLite reads `$1` as a *named*
/// parameter, numbered by first appearance).
pub fn sqlite_placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Where the two SQL dialects differ in text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (embedded, one writer).
    Sqlite,
    /// PostgreSQL (many nodes).
    Postgres,
}

impl Dialect {
    /// A row-lock suffix for a `SELECT` inside a write transaction: `FOR UPDATE` on
    /// PostgreSQL; nothing on SQLite, whose write transactions hold the database's one write
    /// lock from their first statement ([`Mode::Write`]).
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// `<expr> IN <list parameter>`: the parameter `param` (e.g. `"$2"`) is bound to an
    /// [`Arg::TextList`].
    pub fn in_list(self, expr: &str, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{expr} IN (SELECT value FROM json_each({param}))"),
            Dialect::Postgres => format!("{expr} = ANY({param})"),
        }
    }
}

/// What a transaction is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Changes data. SQLite takes its write lock at `BEGIN` (`BEGIN IMMEDIATE`), so a read
    /// inside the transaction cannot be invalidated by another writer before the write.
    Write,
    /// Reads several statements from one consistent snapshot, changing nothing
    /// (`REPEATABLE READ, READ ONLY` on PostgreSQL; a deferred transaction in WAL mode on
    /// SQLite).
    Snapshot,
}

/// Runs statements and queries. Rows are handed to `decode` and never leave the driver.
#[async_trait]
pub trait Exec: Send {
    /// Runs a statement; the number of rows it changed.
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64>;

    /// Every row of a query, decoded.
    async fn all<T, F>(&mut self, sql: &str, args: &[Arg<'_>], decode: F) -> Result<Vec<T>>
    where
        T: Send,
        F: Fn(&dyn SqlRow) -> Result<T> + Send + Sync;

    /// The first row of a query, decoded; `None` when there is none.
    async fn optional<T, F>(&mut self, sql: &str, args: &[Arg<'_>], decode: F) -> Result<Option<T>>
    where
        T: Send,
        F: Fn(&dyn SqlRow) -> Result<T> + Send + Sync;

    /// The first row of a query, which must exist.
    async fn one<T, F>(&mut self, sql: &str, args: &[Arg<'_>], decode: F) -> Result<T>
    where
        T: Send,
        F: Fn(&dyn SqlRow) -> Result<T> + Send + Sync,
    {
        self.optional(sql, args, decode)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("query returned no row")))
    }
}

/// A database backend (see the module docs).
#[async_trait]
pub trait Db: Send + Sync + 'static {
    /// A transaction; dropped without [`Db::commit`], it rolls back.
    type Tx: Exec;
    /// A handle for reads outside a transaction.
    type Read<'a>: Exec
    where
        Self: 'a;
    /// A handle for one-statement writes, each its own transaction.
    type Autocommit: Exec;

    /// The backend's SQL dialect.
    const DIALECT: Dialect;

    /// The backend's name (`sqlite`, `postgres`).
    const NAME: &'static str;

    /// A handle for reads outside a transaction.
    fn read(&self) -> Self::Read<'_>;

    /// A handle for a write that is one statement (an append): no lock is held across an
    /// `await`, as in an explicit transaction.
    fn autocommit(&self) -> Self::Autocommit;

    /// Begins a transaction.
    async fn begin(&self, mode: Mode) -> Result<Self::Tx>;

    /// Commits a transaction.
    async fn commit(&self, tx: Self::Tx) -> Result<()>;

    /// Announces, inside `tx`, that what `msg` names changed: every node hears of it exactly
    /// when the change becomes visible (an `invalidations` row on SQLite, `NOTIFY` on
    /// PostgreSQL).
    async fn publish(&self, tx: &mut Self::Tx, msg: Invalidation) -> Result<()>;

    /// The deadline for one store call (`None`: unbounded).
    fn deadline(&self) -> Option<Duration> {
        None
    }

    /// After a transaction failed with `e` on its `attempt`-th run: how long to wait before
    /// running it again, or `None` to report the failure (PostgreSQL reruns deadlock and
    /// serialization victims).
    fn retry_after(&self, _e: &Error, _attempt: u32) -> Option<Duration> {
        None
    }

    /// Whether the database answers.
    async fn ping(&self) -> Result<()>;

    /// Stores a new API token (with its audit entry) durably and returns its record.
    async fn create_token(&self, account: AccountId, t: NewToken, now_ms: i64) -> Result<Auth>;

    /// Records last-access times (see `AuthStore::touch_tokens`).
    async fn touch_tokens(&self, touches: &[(AuthId, i64)]) -> Result<()>;
}

/// Runs `call` under the backend's deadline.
pub async fn bounded<D: Db, T>(
    db: &D,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match db.deadline() {
        None => call.await,
        Some(limit) => match tokio::time::timeout(limit, call).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable(anyhow::anyhow!(
                "database call timed out after {limit:?}"
            ))),
        },
    }
}

/// Runs a body in a transaction of the given [`Mode`] and commits it; an error (or `?`) rolls
/// back. A failure the backend calls transient ([`Db::retry_after`]) runs the body again in a
/// new transaction, so the body must not consume what it captures.
///
/// ```ignore
/// transaction!(db, Mode::Write, |tx| {
///     tx.execute("DELETE FROM t WHERE id = $1", args![id]).await?;
///     Ok(())
/// })
/// ```
#[macro_export]
macro_rules! transaction {
    ($db:expr, $mode:expr, |$tx:ident| $body:block) => {{
        let db = $db;
        let mut attempt: u32 = 1;
        loop {
            let run: $crate::__Result<_> = async {
                let mut owned = $crate::Db::begin(db, $mode).await?;
                let out: $crate::__Result<_> = {
                    let $tx = &mut owned;
                    async { $body }.await
                };
                let value = out?;
                $crate::Db::commit(db, owned).await?;
                Ok(value)
            }
            .await;
            match run {
                Err(e) => match $crate::Db::retry_after(db, &e, attempt) {
                    Some(wait) => {
                        $crate::__sleep(wait).await;
                        attempt += 1;
                    }
                    None => break Err(e),
                },
                ok => break ok,
            }
        }
    }};
}
