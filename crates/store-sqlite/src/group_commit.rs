//! Group commit for token creation. SQLite has one writer at a time and every durable commit
//! costs an fsync of the WAL; when many requests mint tokens at once, letting each take the
//! write lock in turn wastes most of the time in SQLite's busy-wait sleeps. Instead, a
//! request queues its token and then waits for the in-process writer lock; whoever holds the
//! lock drains the whole queue and commits every queued token in ONE transaction (each in its
//! own savepoint, so one bad token fails alone), then hands each waiter its own result.
//! A token is acknowledged only after the transaction holding it has committed.
//!
//! The writer keeps one dedicated connection: its page cache stays warm (a pooled connection
//! would find its cache invalidated by the other connections' writes and re-read pages).

use std::sync::Mutex;

use authd_core::ids::AccountId;
use authd_core::model::{Auth, NewToken};
use authd_core::{Error, Result};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<Auth>>;

/// Pending token inserts and the writer lock.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Vec<(AccountId, NewToken, i64, Waiter)>>,
    /// The writer lock, holding the dedicated connection once opened.
    writer: std::sync::Arc<tokio::sync::Mutex<Option<SqliteConnection>>>,
}

impl GroupCommit {
    /// Queues one token and returns once the transaction holding it has committed.
    pub(crate) async fn create_token(
        &self,
        pool: &SqlitePool,
        account: AccountId,
        token: NewToken,
        now_ms: i64,
    ) -> Result<Auth> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .lock()
            .map_err(|_| Error::internal(anyhow::anyhow!("group-commit queue poisoned")))?
            .push((account, token, now_ms, tx));
        {
            let mut writer = self.writer.clone().lock_owned().await;
            let batch =
                std::mem::take(&mut *self.queue.lock().map_err(|_| {
                    Error::internal(anyhow::anyhow!("group-commit queue poisoned"))
                })?);
            // Empty when an earlier leader already committed our token.
            if !batch.is_empty() {
                // The commit runs in its own task: if this request is cancelled (its client
                // went away), the other waiters' tokens are still committed and answered.
                let pool = pool.clone();
                let _ = tokio::spawn(async move {
                    commit_batch(&pool, &mut writer, batch).await;
                })
                .await;
            }
        }
        rx.await
            .map_err(|_| Error::internal(anyhow::anyhow!("group commit dropped a token")))?
    }
}

async fn commit_batch(
    pool: &SqlitePool,
    writer: &mut Option<SqliteConnection>,
    batch: Vec<(AccountId, NewToken, i64, Waiter)>,
) {
    let mut results: Vec<(Waiter, Result<Auth>)> = Vec::with_capacity(batch.len());
    let outcome: Result<()> = async {
        let conn = match writer {
            Some(c) => c,
            None => writer.insert(
                SqliteConnection::connect_with(&pool.connect_options())
                    .await
                    .map_err(crate::db_err)?,
            ),
        };
        let mut tx = conn.begin().await.map_err(crate::db_err)?;
        for (account, token, now_ms, waiter) in batch {
            let one = async {
                let mut sp = tx.begin().await.map_err(crate::db_err)?;
                let auth = crate::insert_token_with_audit(&mut sp, account, &token, now_ms).await?;
                sp.commit().await.map_err(crate::db_err)?;
                Ok(auth)
            }
            .await;
            results.push((waiter, one));
        }
        tx.commit().await.map_err(crate::db_err)
    }
    .await;
    for (waiter, one) in results {
        let answer = match &outcome {
            Ok(()) => one,
            // Nothing is durable if the commit failed: every waiter gets the failure.
            Err(e) => Err(match e {
                Error::Unavailable(_) => Error::Unavailable(anyhow::anyhow!("commit failed")),
                _ => Error::internal(anyhow::anyhow!("group commit failed")),
            }),
        };
        let _ = waiter.send(answer);
    }
    if let Err(e) = outcome {
        // Start from a fresh connection next time.
        *writer = None;
        tracing::error!(error = %e, "token group commit failed");
    }
}
