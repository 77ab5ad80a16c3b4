//! Rendered pages of `GET /api/auth`, answered from memory while they are still what the
//! store would give.
//!
//! A page of 100 auths costs ~0.5 ms to read, decode and serialize, twenty times a token
//! check (BENCHMARKS.md, issue 12), and a client that polls its list asks for the same page
//! again and again. So the answer's bytes are kept per account and query, with the two
//! things that can make them stale:
//!
//! - **The store's version of the account's auths** ([`AuthStore::auths_version`]), read
//!   before the page on every request. It moves in the same transaction as any change to the
//!   account's auths or providers (a trigger in each backend, so no write path can forget
//!   it), on any node or process. A page is served only at the version it was rendered at;
//!   the version is read *before* the page is, so a page can only be newer than its version
//!   (then the next request re-renders), never older. A change is therefore seen by the very
//!   next list, on every node: nothing here waits for the invalidation feed.
//! - **The freshest last access**, which a list takes from the token cache
//!   ([`crate::tokens::TokenService::last_accessed`]) and which moves each second without a
//!   store write: a page is re-rendered once it is [`MAX_AGE_MS`] old, the granularity of
//!   that value.
//!
//! The cache is bounded by the bytes it holds ([`CAPACITY_BYTES`]) and keyed by the account
//! and the validated query (`services::auths::AuthPages`); an account's pages are only ever
//! answered to a caller of that account already authorized to list its auths.
//!
//! [`AuthStore::auths_version`]: authd_core::store::AuthStore::auths_version

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use authd_core::clock::Clock;
use axum::body::Bytes;

/// A page is re-rendered once this old (the last access it shows moves each second).
pub const MAX_AGE_MS: i64 = 1_000;

/// The bytes of rendered pages kept at most (a page of 100 tokens is ~50 KB).
pub const CAPACITY_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Clone)]
struct Rendered {
    version: u64,
    rendered_ms: i64,
    body: Bytes,
}

/// Weighs a page by its body and its key's inline size.
struct ByBytes<K>(PhantomData<fn(&K)>);

impl<K> Clone for ByBytes<K> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

impl<K> quick_cache::Weighter<K, Rendered> for ByBytes<K> {
    fn weight(&self, _key: &K, val: &Rendered) -> u64 {
        (val.body.len() + std::mem::size_of::<K>()) as u64
    }
}

/// Rendered pages keyed by `K`, the account and the validated query (see the module docs).
pub struct PageCache<K> {
    map: quick_cache::sync::Cache<K, Rendered, ByBytes<K>>,
    clock: Arc<dyn Clock>,
}

impl<K> std::fmt::Debug for PageCache<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache").finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone> PageCache<K> {
    /// An empty cache of at most [`CAPACITY_BYTES`].
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            map: quick_cache::sync::Cache::with_weighter(256, CAPACITY_BYTES, ByBytes(PhantomData)),
            clock,
        }
    }

    /// The page for `key` if it was rendered at `version` less than [`MAX_AGE_MS`] ago.
    pub fn get(&self, key: &K, version: u64) -> Option<Bytes> {
        let page = self.map.get(key)?;
        let age = self.clock.now_ms() - page.rendered_ms;
        (page.version == version && (0..MAX_AGE_MS).contains(&age)).then_some(page.body)
    }

    /// Keeps `body`, rendered at `version` (read before the page was), for `key`.
    pub fn put(&self, key: K, version: u64, body: Bytes) {
        let rendered_ms = self.clock.now_ms();
        self.map.insert(
            key,
            Rendered {
                version,
                rendered_ms,
                body,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authd_core::clock::ManualClock;
    use authd_core::ids::AccountId;

    /// An account and a page size, standing for the account and query of a real key.
    fn key(account: AccountId) -> (AccountId, u32) {
        (account, 100)
    }

    #[test]
    fn a_page_answers_only_at_its_version_and_within_its_age() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let pages = PageCache::new(clock.clone());
        let (a, b) = (AccountId::generate(), AccountId::generate());
        pages.put(key(a), 7, Bytes::from_static(b"page"));
        assert_eq!(pages.get(&key(a), 7).as_deref(), Some(&b"page"[..]));
        assert_eq!(pages.get(&key(a), 8), None, "the store moved on");
        assert_eq!(pages.get(&key(b), 7), None, "another account's page");
        let other_query = (a, 10);
        assert_eq!(pages.get(&other_query, 7), None);
        clock.advance_ms(MAX_AGE_MS - 1);
        assert!(pages.get(&key(a), 7).is_some());
        clock.advance_ms(1);
        assert_eq!(pages.get(&key(a), 7), None, "too old");
        pages.put(key(a), 7, Bytes::from_static(b"again"));
        clock.advance_ms(-10);
        assert_eq!(pages.get(&key(a), 7), None, "rendered in the future");
    }
}
