//! Group commit for token creation on a dedicated writer thread.
//!
//! SQLite has one writer at a time and every durable commit costs an fsync of the WAL. A
//! request queues its token on a channel and waits; the writer thread takes everything
//! queued, commits it in ONE transaction (each token in its own savepoint, so one bad token
//! fails alone) and then hands each waiter its own result. A token is acknowledged only
//! after the transaction holding it has committed (`synchronous=FULL`): durable before the
//! 201, and a `kill -9` loses only tokens nobody was told about.
//!
//! The writer is a plain thread with its own rusqlite connection and statements prepared
//! once: the sqlx-sqlite path cost about 540 µs of CPU per token in per-statement thread
//! hops, so the batch waited on statement overhead rather than on the fsync (issue 12). Its
//! page cache stays warm between batches. A request that goes away after queuing does not
//! cancel anything: its token is committed with the others, and the answer is dropped.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use authd_core::ids::{AccountId, AuthId};
use authd_core::model::{Auth, NewToken};
use authd_core::{Error, Result};
use authd_store_sql::audit::{insert_audit_args, INSERT_AUDIT_SQL};
use authd_store_sql::auths::{insert_token_args, stored_token, INSERT_TOKEN_SQL};
use authd_store_sql::sqlite_placeholders;
use rusqlite::{Connection, OpenFlags};

use crate::db::params;

/// The shared statements in SQLite's placeholders.
static INSERT_TOKEN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| sqlite_placeholders(INSERT_TOKEN_SQL).into_owned());
static INSERT_AUDIT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| sqlite_placeholders(INSERT_AUDIT_SQL).into_owned());
use tokio::sync::oneshot;

/// The most tokens one transaction takes; the rest wait for the next.
const MAX_BATCH: usize = 1024;

/// Work for the writer thread. Creations are the common job; boxing them to shrink the
/// rare touch variant would cost an allocation per token.
#[allow(clippy::large_enum_variant)]
enum Job {
    /// Insert a token (and its audit entry).
    Create {
        account: AccountId,
        token: NewToken,
        now_ms: i64,
        answer: oneshot::Sender<Result<Auth>>,
    },
    /// Record last-access times (a coalesced batch from the server's touch flusher).
    Touch {
        touches: Vec<(AuthId, i64)>,
        answer: oneshot::Sender<Result<()>>,
    },
}

/// The queue in front of the writer thread.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer thread on the database file at `path`. The thread ends when the
    /// last handle to the store is dropped.
    pub(crate) fn start(path: PathBuf) -> anyhow::Result<Self> {
        let conn = open_writer(&path)?;
        let (queue, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name("authd-sqlite-writer".into())
            .spawn(move || run(conn, path, jobs))?;
        Ok(Self { queue })
    }

    /// Queues one token and returns once the transaction holding it has committed.
    pub(crate) async fn create_token(
        &self,
        account: AccountId,
        token: NewToken,
        now_ms: i64,
    ) -> Result<Auth> {
        let (answer, rx) = oneshot::channel();
        self.send(Job::Create {
            account,
            token,
            now_ms,
            answer,
        })?;
        rx.await
            .map_err(|_| Error::internal(anyhow::anyhow!("group commit dropped a token")))?
    }

    /// Records last-access times (each only ever moves forward) in the writer's next
    /// transaction and returns once it has committed.
    pub(crate) async fn touch(&self, touches: Vec<(AuthId, i64)>) -> Result<()> {
        let (answer, rx) = oneshot::channel();
        self.send(Job::Touch { touches, answer })?;
        rx.await
            .map_err(|_| Error::internal(anyhow::anyhow!("group commit dropped a touch")))?
    }

    fn send(&self, job: Job) -> Result<()> {
        self.queue
            .send(job)
            .map_err(|_| Error::Unavailable(anyhow::anyhow!("the SQLite writer has stopped")))
    }
}

fn open_writer(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // The same durability and integrity settings as the sqlx pool (see `SqliteStore::open`).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // A bigger page cache than SQLite's 2 MB default: the writer updates rows all over the
    // table (last-access touches of every active token) and keeps its cache between batches.
    conn.pragma_update(None, "cache_size", -32_768)?;
    Ok(conn)
}

fn run(mut conn: Connection, path: PathBuf, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = commit_batch(&mut conn, batch) {
            tracing::error!(error = %e, "token group commit failed");
            // Start from a fresh connection next time.
            match open_writer(&path) {
                Ok(fresh) => conn = fresh,
                Err(e) => tracing::error!(error = %e, "could not reopen the SQLite writer"),
            }
        }
    }
}

/// A job's outcome inside the transaction, and where to send it once the transaction ends.
#[allow(clippy::large_enum_variant)]
enum Done {
    Create(oneshot::Sender<Result<Auth>>, Result<Auth>),
    Touch(oneshot::Sender<Result<()>>, Result<()>),
}

/// Commits `batch` in one transaction and answers every waiter; an error means nothing of
/// the batch is durable (every waiter was told so).
fn commit_batch(conn: &mut Connection, batch: Vec<Job>) -> rusqlite::Result<()> {
    let mut results: Vec<Done> = Vec::with_capacity(batch.len());
    let outcome = (|| {
        let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for job in batch {
            results.push(match job {
                Job::Create {
                    account,
                    token,
                    now_ms,
                    answer,
                } => Done::Create(answer, insert_one(&mut tx, account, &token, now_ms)),
                Job::Touch { touches, answer } => Done::Touch(answer, touch(&mut tx, &touches)),
            });
        }
        tx.commit()
    })();
    let failed = |e: &rusqlite::Error| {
        if is_busy(e) {
            Error::Unavailable(anyhow::anyhow!("commit failed"))
        } else {
            Error::internal(anyhow::anyhow!("group commit failed"))
        }
    };
    for done in results {
        match done {
            Done::Create(answer, one) => {
                let _ = answer.send(outcome.as_ref().map_err(failed).and(one));
            }
            Done::Touch(answer, one) => {
                let _ = answer.send(outcome.as_ref().map_err(failed).and(one));
            }
        }
    }
    outcome
}

/// Last-access times, in their own savepoint; a time only ever moves forward.
fn touch(tx: &mut rusqlite::Transaction<'_>, touches: &[(AuthId, i64)]) -> Result<()> {
    let sp = tx.savepoint().map_err(write_err)?;
    {
        let mut stmt = sp
            .prepare_cached(
                "UPDATE auths SET last_accessed_ms = MAX(COALESCE(last_accessed_ms, 0), ?) \
                 WHERE id = ?",
            )
            .map_err(write_err)?;
        for (id, at) in touches {
            stmt.execute(rusqlite::params![at, id.to_string()])
                .map_err(write_err)?;
        }
    }
    sp.commit().map_err(write_err)
}

/// One token (and its audit entry) in its own savepoint.
fn insert_one(
    tx: &mut rusqlite::Transaction<'_>,
    account: AccountId,
    t: &NewToken,
    now_ms: i64,
) -> Result<Auth> {
    let sp = tx.savepoint().map_err(write_err)?;
    sp.prepare_cached(&INSERT_TOKEN)
        .and_then(|mut s| s.execute(params(&insert_token_args(account, t, now_ms))))
        .map_err(write_err)?;
    if let Some(e) = &t.audit {
        sp.prepare_cached(&INSERT_AUDIT)
            .and_then(|mut s| {
                s.query_row(params(&insert_audit_args(e)), |row| row.get::<_, i64>(0))
            })
            .map_err(write_err)?;
    }
    // A savepoint dropped without commit rolls back (the token fails alone).
    sp.commit().map_err(write_err)?;
    Ok(stored_token(account, t, now_ms))
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The domain error of a failed write (as `db_err` for sqlx).
fn write_err(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation)
            if matches!(&e, rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) =>
        {
            Error::Conflict("already exists".into())
        }
        _ if is_busy(&e) => Error::Unavailable(e.into()),
        _ => Error::Internal(e.into()),
    }
}
