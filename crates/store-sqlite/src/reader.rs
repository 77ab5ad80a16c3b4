//! SQLite's read path: synchronous queries on a small pool of rusqlite connections.
//!
//! sqlx-sqlite runs every statement on a worker thread and sends each row back over a
//! channel: a point read costs 90-200 µs of CPU in thread hops, and a page of 100 rows
//! about 3 ms, while SQLite itself answers a primary-key read in a few µs (issue 12).
//! Reads therefore run here, on the calling thread, through statements prepared once per
//! connection (`prepare_cached`). In WAL mode a reader never waits for the writer, so a read
//! blocks its tokio worker only for SQLite's own work; the connections are `query_only`, so
//! nothing can write through this path. Writes stay on sqlx (and the token group commit on
//! its dedicated writer): they are few, and they need the transactions and savepoints there.
//!
//! The pool keeps at most [`MAX_IDLE`] connections; a reader that finds none idle opens one
//! (a few hundred µs, only under a burst wider than the pool) and keeps it if there is room.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use authd_core::{Error, Result};
use rusqlite::{Connection, OpenFlags, Params, Row};

/// Idle connections kept for reuse.
pub(crate) const MAX_IDLE: usize = 16;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// A pool of read-only rusqlite connections to one database file.
pub(crate) struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("path", &self.path).finish()
    }
}

fn read_err(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Error::Unavailable(anyhow::anyhow!("database busy"))
        }
        other => Error::Internal(other.into()),
    }
}

impl Reader {
    /// A pool over the database file at `path` (which must exist and be migrated); opens one
    /// connection at once so that a bad path fails here rather than on the first request.
    pub(crate) fn open(path: PathBuf) -> anyhow::Result<Self> {
        let reader = Self {
            path,
            idle: Mutex::new(Vec::new()),
        };
        let first = reader.connect()?;
        reader.put_back(first);
        Ok(reader)
    }

    fn connect(&self) -> anyhow::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn take(&self) -> Result<Connection> {
        let idle = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        match idle {
            Some(c) => Ok(c),
            None => self
                .connect()
                .map_err(|e| Error::Unavailable(e.context("opening a SQLite reader"))),
        }
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }

    /// Runs `f` on a pooled connection.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.take()?;
        let out = f(&conn);
        self.put_back(conn);
        out
    }

    /// The first row of `sql`, decoded; `None` when there is none.
    pub(crate) fn one<T>(
        &self,
        sql: &str,
        params: impl Params,
        decode: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(read_err)?;
            let mut rows = stmt.query(params).map_err(read_err)?;
            match rows.next().map_err(read_err)? {
                Some(row) => decode(row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Every row of `sql`, decoded.
    pub(crate) fn all<T>(
        &self,
        sql: &str,
        params: impl Params,
        decode: impl Fn(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(read_err)?;
            let mut rows = stmt.query(params).map_err(read_err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(read_err)? {
                out.push(decode(row)?);
            }
            Ok(out)
        })
    }
}
