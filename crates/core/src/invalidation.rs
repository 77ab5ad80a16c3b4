//! Cross-node cache invalidation: the contract between a backend that can tell every node
//! about changes (PostgreSQL LISTEN/NOTIFY) and the in-memory caches that must drop what
//! changed (the server's token cache).
//!
//! A backend exposes an [`InvalidationFeed`]; the server runs [`InvalidationFeed::follow`] in a
//! background task and hands it an [`InvalidationSink`]. Each backend has one: PostgreSQL's
//! listens for NOTIFY; SQLite's polls the file's `invalidations` table, which carries changes
//! made by other processes on the same file (the operator CLI) — a server evicts its own
//! changes itself.
//!
//! **Invariant:** a feed reports [`Invalidation::Lost`] as soon as it can no longer promise
//! delivery, and [`Invalidation::Resumed`] only once it is listening again. Between the two,
//! a sink must not trust its cache; on `Resumed` it must drop everything it cached, because
//! notifications sent while the feed was down are gone.

use async_trait::async_trait;

use crate::ids::AuthId;

/// One message from a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// These auth records changed or were deleted (on any node).
    Auths(Vec<AuthId>),
    /// Anything cached may have changed (a change too broad to list).
    All,
    /// The feed lost its connection: nothing is delivered until [`Invalidation::Resumed`].
    Lost,
    /// The feed is (again) listening; anything cached before may be stale.
    Resumed,
}

/// Where a feed delivers: the caches of this node.
pub trait InvalidationSink: Send + Sync + 'static {
    /// Applies one message. Must be quick and must not block.
    fn invalidate(&self, msg: Invalidation);
}

/// A source of invalidations made by other nodes.
#[async_trait]
pub trait InvalidationFeed: Send + Sync + 'static {
    /// Whether caches may be trusted before the first message. `true` for feeds that never
    /// deliver anything (single node); `false` for real feeds, which send
    /// [`Invalidation::Resumed`] once they listen.
    fn trusted_at_start(&self) -> bool;

    /// Delivers messages to `sink` until the returned future is dropped. Reconnects by
    /// itself; never returns for a live feed.
    async fn follow(&self, sink: std::sync::Arc<dyn InvalidationSink>);
}
