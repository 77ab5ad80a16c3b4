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
//!
//! Each statement's *shape* is worked out once and kept ([`Shape`]): its text with SQLite's
//! placeholders and its column names. Rows reach the shared decoders as a [`NamedRow`], which
//! finds a column by name in that list, starting where the previous lookup ended (decoders
//! read columns in order, so it is usually one compare). rusqlite's own lookup by name asks
//! SQLite for every column's name until it finds the one wanted: 2–4 µs of a 20-column row.
//! Statements read here name their columns (no `SELECT *`), so a kept column list can never
//! disagree with a table whose columns another process reordered.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use authd_core::{Error, Result};
use authd_store_sql::{sqlite_placeholders, SqlRow};
use rusqlite::types::{FromSql, ValueRef};
use rusqlite::{Connection, OpenFlags, Params, Row};

/// Idle connections kept for reuse.
pub(crate) const MAX_IDLE: usize = 16;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// Statement shapes kept at most (the program has a fixed set of statements; the bound only
/// guards against an unforeseen source of distinct texts).
const MAX_SHAPES: usize = 512;

/// A statement as run here: its text with `?N` placeholders and its result's column names.
struct Shape {
    sql: Box<str>,
    columns: Box<[Box<str>]>,
}

/// A pool of read-only rusqlite connections to one database file.
pub(crate) struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    shapes: RwLock<HashMap<Box<str>, Arc<Shape>>>,
}

/// A row with its statement's column names, for the shared decoders.
pub(crate) struct NamedRow<'a> {
    row: &'a Row<'a>,
    columns: &'a [Box<str>],
    /// Where the next lookup starts: just past the previous one's column.
    next: Cell<usize>,
}

impl NamedRow<'_> {
    fn index(&self, col: &str) -> anyhow::Result<usize> {
        let n = self.columns.len();
        let start = self.next.get();
        for k in 0..n {
            let i = (start + k) % n;
            let name = &self.columns[i];
            if &**name == col || name.eq_ignore_ascii_case(col) {
                self.next.set(i + 1);
                return Ok(i);
            }
        }
        Err(anyhow::anyhow!("no column {col:?} in the result"))
    }

    fn get<T: FromSql>(&self, col: &str) -> anyhow::Result<T> {
        Ok(self.row.get(self.index(col)?)?)
    }
}

impl SqlRow for NamedRow<'_> {
    fn text(&self, col: &str) -> anyhow::Result<Option<String>> {
        self.get(col)
    }
    fn int(&self, col: &str) -> anyhow::Result<Option<i64>> {
        self.get(col)
    }
    fn blob(&self, col: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.get(col)
    }
    fn boolean(&self, col: &str) -> anyhow::Result<Option<bool>> {
        self.get(col)
    }
    fn with_text(&self, col: &str, f: &mut dyn FnMut(Option<&str>)) -> anyhow::Result<()> {
        match self.row.get_ref(self.index(col)?)? {
            ValueRef::Null => f(None),
            ValueRef::Text(bytes) => f(Some(std::str::from_utf8(bytes)?)),
            other => anyhow::bail!("column {col:?} is {:?}, not TEXT", other.data_type()),
        }
        Ok(())
    }
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
            shapes: RwLock::new(HashMap::new()),
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

    /// The shape of `sql` (written with `$N` placeholders), worked out on first use.
    fn shape(&self, conn: &Connection, sql: &str) -> Result<Arc<Shape>> {
        if let Some(s) = self.shapes.read().ok().and_then(|m| m.get(sql).cloned()) {
            return Ok(s);
        }
        let text: Box<str> = sqlite_placeholders(sql).into();
        let stmt = conn.prepare_cached(&text).map_err(read_err)?;
        let columns = stmt.column_names().into_iter().map(Box::from).collect();
        drop(stmt);
        let shape = Arc::new(Shape { sql: text, columns });
        if let Ok(mut m) = self.shapes.write() {
            if m.len() < MAX_SHAPES {
                m.insert(sql.into(), shape.clone());
            }
        }
        Ok(shape)
    }

    /// Runs `sql` (written with `$N` placeholders) and hands each row to `each` until it
    /// says stop (`false`).
    fn rows(
        &self,
        sql: &str,
        params: impl Params,
        mut each: impl FnMut(&NamedRow<'_>) -> Result<bool>,
    ) -> Result<()> {
        self.with(|conn| {
            let shape = self.shape(conn, sql)?;
            let mut stmt = conn.prepare_cached(&shape.sql).map_err(read_err)?;
            let mut rows = stmt.query(params).map_err(read_err)?;
            while let Some(row) = rows.next().map_err(read_err)? {
                let named = NamedRow {
                    row,
                    columns: &shape.columns,
                    next: Cell::new(0),
                };
                if !each(&named)? {
                    break;
                }
            }
            Ok(())
        })
    }

    /// The first row of `sql`, decoded; `None` when there is none.
    pub(crate) fn one<T>(
        &self,
        sql: &str,
        params: impl Params,
        decode: impl FnOnce(&NamedRow<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut decode = Some(decode);
        let mut out = None;
        self.rows(sql, params, |row| {
            if let Some(d) = decode.take() {
                out = Some(d(row)?);
            }
            Ok(false)
        })?;
        Ok(out)
    }

    /// Every row of `sql`, decoded.
    pub(crate) fn all<T>(
        &self,
        sql: &str,
        params: impl Params,
        decode: impl Fn(&NamedRow<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.rows(sql, params, |row| {
            out.push(decode(row)?);
            Ok(true)
        })?;
        Ok(out)
    }
}
