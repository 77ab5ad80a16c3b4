//! Cross-process invalidation on one SQLite file: the `invalidations` table and its follower.
//!
//! A running server evicts what it changes itself, but another process writing the same file
//! — `authd token revoke` beside a running server — cannot reach its cache. So every store
//! transaction that changes a cached record publishes it (`Db::publish`), which here
//! [`append`]s one row holding the message's [`Invalidation::payload`] (PostgreSQL sends a
//! `NOTIFY` at the same places; the column is still named `ids`), and
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
use authd_core::invalidation::{Invalidation, InvalidationFeed, InvalidationSink};
use authd_core::Result;
use authd_store_sql::{args, get, sqlite_err as db_err, Exec};
use sqlx::{Row, SqlitePool};

/// How often a follower polls: the bound on how long another process's revocation takes to
/// reach a running server.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// Rows kept in the table (a follower more than this many changes behind drops its cache).
const KEEP_ROWS: i64 = 10_000;

/// Rows read per poll.
const BATCH: i64 = 1_000;

/// Appends `msg` to the `invalidations` table inside the caller's transaction and prunes rows
/// older than the last [`KEEP_ROWS`].
pub(crate) async fn append(tx: &mut impl Exec, msg: Invalidation) -> Result<()> {
    let empty = match &msg {
        Invalidation::Auths(ids) => ids.is_empty(),
        Invalidation::Users(ids) => ids.is_empty(),
        Invalidation::Accounts(ids) => ids.is_empty(),
        Invalidation::All | Invalidation::Lost | Invalidation::Resumed => false,
    };
    let Some(list) = msg.payload().filter(|_| !empty) else {
        return Ok(());
    };
    let seq: i64 = tx
        .one(
            "INSERT INTO invalidations (ids) VALUES ($1) RETURNING seq",
            args![list],
            |r| get(r, "seq"),
        )
        .await?;
    tx.execute(
        "DELETE FROM invalidations WHERE seq <= $1",
        args![seq - KEEP_ROWS],
    )
    .await?;
    Ok(())
}

/// The follower of the `invalidations` table (see the module docs).
#[derive(Clone, Debug)]
pub struct SqliteFeed {
    pool: SqlitePool,
    /// The newest row when the feed was made: it delivers every row after it. Taken before
    /// any cache exists, so a change committed between start-up and the first poll is not
    /// skipped.
    start: i64,
}

impl SqliteFeed {
    pub(crate) async fn new(pool: SqlitePool) -> Result<Self> {
        let start = newest(&pool).await?;
        Ok(Self { pool, start })
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
            out.push(Invalidation::from_payload(&ids));
        }
        Ok(out)
    }
}

/// The newest row's sequence number (0 for none).
async fn newest(pool: &SqlitePool) -> Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM invalidations")
        .fetch_one(pool)
        .await
        .map_err(db_err)
}

#[async_trait]
impl InvalidationFeed for SqliteFeed {
    fn trusted_at_start(&self) -> bool {
        // Nothing is cached before the first poll; changes from then on are delivered.
        true
    }

    async fn follow(&self, sink: Arc<dyn InvalidationSink>) {
        let mut last = self.start;
        let mut lost = false;
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.poll(&mut last).await {
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
                        tracing::warn!(error = %e, "cannot read invalidations; reading every record from the store until it can");
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
    use authd_core::ids::{AuthId, UserId};
    use authd_store_sql::Sqlx;

    #[tokio::test]
    async fn a_follower_sees_each_commit_once_and_drops_everything_after_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap())
            .await
            .unwrap();
        let feed = store.feed().await.unwrap();
        let mut last = feed.start;
        let (a, b) = (AuthId::generate(), AuthId::generate());
        let mut tx = Sqlx(store.pool.begin().await.unwrap());
        append(&mut tx, Invalidation::Auths(vec![a, b]))
            .await
            .unwrap();
        append(&mut tx, Invalidation::Auths(vec![])).await.unwrap();
        let u = UserId::generate();
        append(&mut tx, Invalidation::Users(vec![u])).await.unwrap();
        tx.0.commit().await.unwrap();
        assert_eq!(
            feed.poll(&mut last).await.unwrap(),
            vec![
                Invalidation::Auths(vec![a, b]),
                Invalidation::Users(vec![u])
            ]
        );
        assert!(feed.poll(&mut last).await.unwrap().is_empty());
        // A rolled-back change is never announced.
        let mut tx = Sqlx(store.pool.begin().await.unwrap());
        append(&mut tx, Invalidation::Auths(vec![a])).await.unwrap();
        tx.0.rollback().await.unwrap();
        assert!(feed.poll(&mut last).await.unwrap().is_empty());
        // Rows pruned before this follower read them: it must drop everything.
        let mut tx = Sqlx(store.pool.begin().await.unwrap());
        append(&mut tx, Invalidation::Auths(vec![a])).await.unwrap();
        append(&mut tx, Invalidation::Auths(vec![b])).await.unwrap();
        tx.0.commit().await.unwrap();
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
