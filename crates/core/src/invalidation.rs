//! Cross-node cache invalidation: the contract between a backend that can tell every node
//! about changes (PostgreSQL LISTEN/NOTIFY) and the in-memory caches that must drop what
//! changed (the server's token, account and user caches).
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
//!
//! Both feeds carry a message as the same text ([`Invalidation::payload`] /
//! [`Invalidation::from_payload`]): auth ids bare and comma-separated (the original form, so
//! rows written before users and accounts were cached still read), user and account ids
//! behind a `user:` / `account:` prefix, `*` for everything. Text that does not parse is read
//! as [`Invalidation::All`]: dropping too much is safe, missing a change is not.

use async_trait::async_trait;

use std::sync::Arc;

use crate::ids::{AccountId, AuthId, UserId};

/// One message from a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// These auth records changed or were deleted (on any node).
    Auths(Vec<AuthId>),
    /// These users changed or were deleted.
    Users(Vec<UserId>),
    /// These accounts changed or were deleted.
    Accounts(Vec<AccountId>),
    /// Anything cached may have changed (a change too broad to list).
    All,
    /// The feed lost its connection: nothing is delivered until [`Invalidation::Resumed`].
    Lost,
    /// The feed is (again) listening; anything cached before may be stale.
    Resumed,
}

const USERS: &str = "user:";
const ACCOUNTS: &str = "account:";

impl Invalidation {
    /// The message as a feed carries it; `None` for the feed's own state changes
    /// ([`Invalidation::Lost`], [`Invalidation::Resumed`]), which are never sent.
    pub fn payload(&self) -> Option<String> {
        fn list<T: std::fmt::Display>(prefix: &str, ids: &[T]) -> String {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            format!("{prefix}{}", ids.join(","))
        }
        match self {
            Self::Auths(ids) => Some(list("", ids)),
            Self::Users(ids) => Some(list(USERS, ids)),
            Self::Accounts(ids) => Some(list(ACCOUNTS, ids)),
            Self::All => Some("*".into()),
            Self::Lost | Self::Resumed => None,
        }
    }

    /// Reads a payload written by [`Self::payload`]; anything unparsable is
    /// [`Invalidation::All`].
    pub fn from_payload(payload: &str) -> Self {
        fn ids<T>(list: &str, parse: fn(&str) -> Option<T>) -> Option<Vec<T>> {
            list.split(',').map(parse).collect()
        }
        let parsed = if payload == "*" {
            None
        } else if let Some(list) = payload.strip_prefix(USERS) {
            ids(list, UserId::parse).map(Self::Users)
        } else if let Some(list) = payload.strip_prefix(ACCOUNTS) {
            ids(list, AccountId::parse).map(Self::Accounts)
        } else {
            ids(payload, AuthId::parse).map(Self::Auths)
        };
        parsed.unwrap_or(Self::All)
    }
}

/// Where a feed delivers: the caches of this node.
pub trait InvalidationSink: Send + Sync + 'static {
    /// Applies one message. Must be quick and must not block.
    fn invalidate(&self, msg: Invalidation);
}

/// Several sinks fed by one feed (each cache of a node); every message goes to each, in order.
pub struct Sinks(pub Vec<Arc<dyn InvalidationSink>>);

impl InvalidationSink for Sinks {
    fn invalidate(&self, msg: Invalidation) {
        for sink in &self.0 {
            sink.invalidate(msg.clone());
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_garbage_means_everything() {
        let (a, b) = (AuthId::generate(), AuthId::generate());
        for msg in [
            Invalidation::Auths(vec![a, b]),
            Invalidation::Users(vec![UserId::generate()]),
            Invalidation::Accounts(vec![AccountId::generate(), AccountId::generate()]),
            Invalidation::All,
        ] {
            let text = msg.payload().unwrap();
            assert_eq!(Invalidation::from_payload(&text), msg, "{text}");
        }
        // The form rows were written in before users and accounts were cached.
        assert_eq!(
            Invalidation::from_payload(&format!("{a},{b}")),
            Invalidation::Auths(vec![a, b])
        );
        for garbage in ["nonsense", "user:x", "account:", ""] {
            assert_eq!(Invalidation::from_payload(garbage), Invalidation::All);
        }
        assert_eq!(Invalidation::Lost.payload(), None);
    }
}
