//! Cross-node invalidation over PostgreSQL LISTEN/NOTIFY.
//!
//! Writers call [`publish`] inside the transaction that changes auth records ([`publish_users`]
//! for users): PostgreSQL delivers a NOTIFY only when (and if) that transaction commits, to
//! every session listening on [`INVALIDATE_CHANNEL`] — including the writer's own node. The
//! payload is [`Invalidation::payload`] (a list of ids, chunked under the 8000-byte payload
//! limit, or `*` for "everything").
//!
//! [`PgFeed`] is the listening side: one dedicated connection per node. When the connection
//! drops it reports [`Invalidation::Lost`], reconnects with backoff, re-subscribes, and reports
//! [`Invalidation::Resumed`] — the sink then clears its cache, since notifications sent while
//! disconnected are not replayed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use authd_core::invalidation::{Invalidation, InvalidationFeed, InvalidationSink};
use authd_core::Result;
use sqlx::postgres::{PgListener, PgPool};

use authd_store_sql::{args, pg_err as db_err, Exec};

/// The NOTIFY channel authd nodes listen on.
pub const INVALIDATE_CHANNEL: &str = "authd_invalidate";

/// Ids per NOTIFY payload: 200 × 33 bytes stays well under PostgreSQL's 8000-byte limit.
const IDS_PER_PAYLOAD: usize = 200;

/// Announces `msg` within the caller's transaction (see the module docs). Nothing is sent
/// for an empty list.
pub(crate) async fn publish(tx: &mut impl Exec, msg: Invalidation) -> Result<()> {
    match msg {
        Invalidation::Auths(ids) => publish_chunks(tx, &ids, Invalidation::Auths).await,
        Invalidation::Users(ids) => publish_chunks(tx, &ids, Invalidation::Users).await,
        Invalidation::Accounts(ids) => publish_chunks(tx, &ids, Invalidation::Accounts).await,
        Invalidation::All => send(tx, "*").await,
        Invalidation::Lost | Invalidation::Resumed => Ok(()),
    }
}

async fn publish_chunks<T: Copy>(
    tx: &mut impl Exec,
    ids: &[T],
    message: fn(Vec<T>) -> Invalidation,
) -> Result<()> {
    for chunk in ids.chunks(IDS_PER_PAYLOAD) {
        if let Some(payload) = message(chunk.to_vec()).payload() {
            send(tx, &payload).await?;
        }
    }
    Ok(())
}

async fn send(tx: &mut impl Exec, payload: &str) -> Result<()> {
    tx.execute(
        "SELECT pg_notify($1, $2)",
        args![INVALIDATE_CHANNEL, payload],
    )
    .await?;
    Ok(())
}

/// Parses a payload; unparsable parts make the whole message "everything".
fn parse(payload: &str) -> Invalidation {
    let msg = Invalidation::from_payload(payload);
    if msg == Invalidation::All && payload != "*" {
        tracing::warn!(payload, "unparsable invalidation; dropping the whole cache");
    }
    msg
}

/// The listening side of the invalidation channel (one per node).
#[derive(Clone, Debug)]
pub struct PgFeed {
    pool: PgPool,
}

impl PgFeed {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn subscribe(&self) -> Result<PgListener> {
        let mut l = PgListener::connect_with(&self.pool).await.map_err(db_err)?;
        // Report a dropped connection at once instead of reconnecting behind our back.
        l.eager_reconnect(false);
        l.listen(INVALIDATE_CHANNEL).await.map_err(db_err)?;
        Ok(l)
    }
}

#[async_trait]
impl InvalidationFeed for PgFeed {
    fn trusted_at_start(&self) -> bool {
        false
    }

    async fn follow(&self, sink: Arc<dyn InvalidationSink>) {
        const MIN_BACKOFF: Duration = Duration::from_millis(50);
        const MAX_BACKOFF: Duration = Duration::from_secs(2);
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.subscribe().await {
                Ok(mut listener) => {
                    tracing::info!(channel = INVALIDATE_CHANNEL, "invalidation feed listening");
                    sink.invalidate(Invalidation::Resumed);
                    backoff = MIN_BACKOFF;
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(n)) => sink.invalidate(parse(n.payload())),
                            Ok(None) => {
                                tracing::warn!("invalidation feed lost its connection");
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "invalidation feed failed");
                                break;
                            }
                        }
                    }
                    sink.invalidate(Invalidation::Lost);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "invalidation feed cannot subscribe; retrying");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authd_core::ids::{AuthId, UserId};

    #[test]
    fn payloads_parse_to_ids_or_everything() {
        let a = AuthId::generate();
        let b = AuthId::generate();
        assert_eq!(parse(&format!("{a},{b}")), Invalidation::Auths(vec![a, b]));
        assert_eq!(parse("*"), Invalidation::All);
        assert_eq!(parse("nonsense"), Invalidation::All);
        let u = UserId::generate();
        assert_eq!(parse(&format!("user:{u}")), Invalidation::Users(vec![u]));
    }
}
