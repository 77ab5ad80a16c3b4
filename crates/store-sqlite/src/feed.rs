//! Cross-process invalidation on one SQLite file: the `invalidations` table and its follower.
//!
//! A running server evicts what it changes itself, but another process writing the same file
//! — `authd token revoke` beside a running server — cannot reach its cache. So every store
//! transaction that revokes or changes API tokens calls [`publish`], which appends one row
//! listing the affected ids (the same places that call `notify::publish` on PostgreSQL), and
//! each server runs a [`SqliteFeed`] that polls for rows past the last one it saw, every
//! [`POLL_EVERY`], and hands them to the token cache. A row commits with the change, so a
//! change is seen exactly when it is durable. Only the newest [`KEEP_ROWS`] rows are kept; a
//! follower that finds it missed pruned rows drops its whole cache
//! ([`Invalidation::All`]). A failing poll reports [`Invalidation::Lost`] (the cache is then
//! not trusted) until a poll succeeds again ([`Invalidation::Resumed`]).
//!
//! Cost: one indexed read of an almost always empty range every [`POLL_EVERY`]; nothing on the
//! request path.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use authd_core::ids::AuthId;
use authd_core::invalidation::{Invalidation, InvalidationFeed, InvalidationSink};
use authd_core::Result;
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::db_err;

/// How often a follower polls: the bound on how long another process's revocation takes to
/// reach a running server.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// Rows kept in the table (a follower more than this many changes behind drops its cache).
const KEEP_ROWS: i64 = 10_000;

/// Rows read per poll.
const BATCH: i64 = 1_000;

/// Announces, within the caller's transaction, that these auth records changed or are gone.
pub(crate) async fn publish(tx: &mut SqliteConnection, ids: &[AuthId]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let list = ids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let seq = sqlx::query("INSERT INTO invalidations (ids) VALUES (?)")
        .bind(list)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .last_insert_rowid();
    sqlx::query("DELETE FROM invalidations WHERE seq <= ?")
        .bind(seq - KEEP_ROWS)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// The follower of the `invalidations` table (see the module docs).
#[derive(Clone, Debug)]
pub struct SqliteFeed {
    pool: SqlitePool,
}

impl SqliteFeed {
    pub(crate) fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The newest row's sequence number (0 for none).
    async fn newest(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM invalidations")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }

    /// The messages for rows after `last`, advancing it.
    async fn poll(&self, last: &mut i64) -> Result<Vec<Invalidation>> {
        let rows =
            sqlx::query("SELECT seq, ids FROM invalidations WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(*last)
                .bind(BATCH)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let seq: i64 = row.try_get("seq").map_err(db_err)?;
            let ids: String = row.try_get("ids").map_err(db_err)?;
            if seq != *last + 1 {
                // Rows were pruned before this follower read them: anything may be stale.
                out.push(Invalidation::All);
            }
            *last = seq;
            let ids: Vec<AuthId> = ids.split(',').filter_map(AuthId::parse).collect();
            out.push(Invalidation::Auths(ids));
        }
        Ok(out)
    }
}

#[async_trait]
impl InvalidationFeed for SqliteFeed {
    fn trusted_at_start(&self) -> bool {
        // Nothing is cached before the first poll; changes from then on are delivered.
        true
    }

    async fn follow(&self, sink: Arc<dyn InvalidationSink>) {
        let mut last = None;
        let mut lost = false;
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let polled = match last.as_mut() {
                None => self.newest().await.map(|n| {
                    last = Some(n);
                    Vec::new()
                }),
                Some(l) => self.poll(l).await,
            };
            match polled {
                Ok(msgs) => {
                    if std::mem::take(&mut lost) {
                        sink.invalidate(Invalidation::Resumed);
                    }
                    for m in msgs {
                        sink.invalidate(m);
                    }
                }
                Err(e) => {
                    if !lost {
                        tracing::warn!(error = %e, "cannot read token invalidations; checking every token against the store until it can");
                        sink.invalidate(Invalidation::Lost);
                        lost = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;

    #[tokio::test]
    async fn a_follower_sees_each_commit_once_and_drops_everything_after_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap())
            .await
            .unwrap();
        let feed = store.feed();
        let mut last = feed.newest().await.unwrap();
        let (a, b) = (AuthId::generate(), AuthId::generate());
        let mut tx = store.pool.begin().await.unwrap();
        publish(&mut tx, &[a, b]).await.unwrap();
        publish(&mut tx, &[]).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            feed.poll(&mut last).await.unwrap(),
            vec![Invalidation::Auths(vec![a, b])]
        );
        assert!(feed.poll(&mut last).await.unwrap().is_empty());
        // A rolled-back change is never announced.
        let mut tx = store.pool.begin().await.unwrap();
        publish(&mut tx, &[a]).await.unwrap();
        tx.rollback().await.unwrap();
        assert!(feed.poll(&mut last).await.unwrap().is_empty());
        // Rows pruned before this follower read them: it must drop everything.
        let mut tx = store.pool.begin().await.unwrap();
        publish(&mut tx, &[a]).await.unwrap();
        publish(&mut tx, &[b]).await.unwrap();
        tx.commit().await.unwrap();
        sqlx::query("DELETE FROM invalidations WHERE seq = ?")
            .bind(last + 1)
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(
            feed.poll(&mut last).await.unwrap(),
            vec![Invalidation::All, Invalidation::Auths(vec![b])]
        );
    }
}
