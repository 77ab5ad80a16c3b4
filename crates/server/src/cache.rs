//! The expiring, epoch-guarded cache every in-memory copy of stored data uses: token records
//! ([`crate::tokens`]), accounts and users ([`crate::records`]) and IP allowlists
//! ([`crate::allowlist`]).
//!
//! An [`EpochCache`] is bounded (quick_cache) and answers only while it may be trusted:
//!
//! - **No stale fill.** A fill takes a [`Ticket`] (the eviction epoch) *before* it reads the
//!   store and inserts only if no eviction happened since. The epoch compare and the insert,
//!   and an eviction's epoch bump and removal, each happen under one lock, so an eviction
//!   can never fall between a compare and its insert: a value read before a change is never
//!   put back after the change's eviction.
//! - **Trust follows the invalidation feed** ([`authd_core::invalidation`]): after
//!   [`EpochCache::lost`] nothing is served or filled (every read goes to the store), and
//!   [`EpochCache::resumed`] drops everything before trusting the cache again.
//! - **Optional maximum age**: an entry older than it is not served (re-read), a
//!   bounded-staleness backstop; an entry "loaded in the future" (the clock went back) is not
//!   served either.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use authd_core::clock::Clock;
use authd_core::invalidation::Invalidation;

/// A value and when it was loaded (clock ms).
#[derive(Clone)]
struct Slot<V> {
    value: V,
    loaded_ms: i64,
}

/// The eviction epoch a fill started in; see [`EpochCache::fill`].
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct Ticket(u64);

/// A bounded map from `K` to `V` (cheap to clone: an `Arc` or a small `Copy` value) that never
/// keeps a value read before its eviction. See the module docs.
pub struct EpochCache<K, V> {
    map: quick_cache::sync::Cache<K, Slot<V>>,
    clock: Arc<dyn Clock>,
    epoch: AtomicU64,
    /// Held while a fill compares the epoch and inserts, and while an eviction bumps it and
    /// removes: the two never interleave.
    fill_lock: Mutex<()>,
    /// Whether entries may be served and filled (the invalidation feed is connected).
    trusted: AtomicBool,
    /// Entries older than this are not served; `None` keeps them until evicted.
    max_age_ms: Option<i64>,
    #[cfg(test)]
    fill_hook: Mutex<Option<Box<dyn FnMut() + Send>>>,
}

impl<K, V> EpochCache<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    /// An empty, trusted cache of at most `capacity` entries (at least 16), without maximum age.
    pub fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            map: quick_cache::sync::Cache::new(capacity.max(16)),
            clock,
            epoch: AtomicU64::new(0),
            fill_lock: Mutex::new(()),
            trusted: AtomicBool::new(true),
            max_age_ms: None,
            #[cfg(test)]
            fill_hook: Mutex::new(None),
        }
    }

    /// Sets whether the cache is trusted before the feed first reports
    /// [`Invalidation::Resumed`], and the maximum age of an entry (`None` or ≤ 0: none).
    pub fn with_policy(mut self, trusted_at_start: bool, max_age_ms: Option<i64>) -> Self {
        self.trusted = AtomicBool::new(trusted_at_start);
        self.max_age_ms = max_age_ms.filter(|m| *m > 0);
        self
    }

    /// The value of `key` if it may answer without the store (trusted and fresh).
    pub fn get(&self, key: &K) -> Option<V> {
        self.map
            .get(key)
            .filter(|s| self.usable(s))
            .map(|s| s.value)
    }

    /// The value of `key` if it is in memory at all, trusted or not: for data a stale copy
    /// cannot make wrong (a token's last-access time, the hot path's own checks).
    pub fn peek(&self, key: &K) -> Option<V> {
        self.map.get(key).map(|s| s.value)
    }

    fn usable(&self, s: &Slot<V>) -> bool {
        self.trusted.load(Ordering::Acquire)
            && self.max_age_ms.is_none_or(|max| {
                let age = self.clock.now_ms().saturating_sub(s.loaded_ms);
                (0..max).contains(&age)
            })
    }

    /// The epoch to hand to [`Self::fill`]; take it before reading the store.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::Acquire))
    }

    /// Inserts a value read from the store under `ticket`, unless something was evicted since
    /// (the value may predate that change) or the cache is not trusted. Returns whether it
    /// was inserted.
    pub fn fill(&self, key: K, ticket: Ticket, value: V) -> bool {
        let loaded_ms = self.clock.now_ms();
        let _guard = self.fill_lock.lock().unwrap_or_else(|e| e.into_inner());
        let current =
            self.epoch.load(Ordering::Acquire) == ticket.0 && self.trusted.load(Ordering::Acquire);
        #[cfg(test)]
        if let Some(hook) = self
            .fill_hook
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            hook();
        }
        if current {
            self.map.insert(key, Slot { value, loaded_ms });
        }
        current
    }

    /// The value of `key`: from memory when it may answer, else from `load` (a store read;
    /// `None`: no such record, which is not cached), filled under a ticket taken before it.
    pub async fn get_or_load<E, Fut>(
        &self,
        key: &K,
        load: impl FnOnce() -> Fut,
    ) -> Result<Option<V>, E>
    where
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        if let Some(v) = self.get(key) {
            return Ok(Some(v));
        }
        let ticket = self.ticket();
        let loaded = load().await?;
        if let Some(v) = &loaded {
            let _ = self.fill(key.clone(), ticket, v.clone());
        }
        Ok(loaded)
    }

    /// Drops these keys; a fill that started before cannot put them back.
    pub fn evict<'a>(&self, keys: impl IntoIterator<Item = &'a K>)
    where
        K: 'a,
    {
        let _guard = self.fill_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for k in keys {
            self.map.remove(k);
        }
    }

    /// Drops everything; a fill that started before cannot put anything back.
    pub fn clear(&self) {
        let _guard = self.fill_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.map.clear();
    }

    /// The feed can no longer promise delivery: stop serving and filling.
    pub fn lost(&self) {
        self.trusted.store(false, Ordering::Release);
        self.clear();
    }

    /// The feed listens again: drop what was cached (changes in between are gone), then trust.
    pub fn resumed(&self) {
        self.clear();
        self.trusted.store(true, Ordering::Release);
    }

    /// Applies the feed-state part of a message (`All`, `Lost`, `Resumed`); returns the
    /// message back when it lists keys, for the owner to evict what concerns it.
    pub fn apply_feed_state(&self, msg: Invalidation) -> Option<Invalidation> {
        match msg {
            Invalidation::All => self.clear(),
            Invalidation::Lost => self.lost(),
            Invalidation::Resumed => self.resumed(),
            listed => return Some(listed),
        }
        None
    }

    /// Sets a hook that runs inside the fill's locked window (tests only).
    #[cfg(test)]
    pub(crate) fn set_fill_hook(&self, hook: Box<dyn FnMut() + Send>) {
        *self.fill_hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as sync_mpsc;
    use std::time::Duration;

    use authd_core::clock::ManualClock;

    use super::*;

    fn cache(clock: &Arc<ManualClock>) -> Arc<EpochCache<u32, Arc<str>>> {
        Arc::new(EpochCache::new(64, clock.clone()))
    }

    /// Forces an eviction into the window between the fill's epoch check and its insert (the
    /// test hook runs exactly there and waits for the eviction to finish). Under the fill lock
    /// the eviction cannot finish inside the window, so it removes the value after the insert;
    /// without it, the evicted value would be put back.
    #[test]
    fn an_eviction_never_falls_between_the_epoch_check_and_the_insert() {
        let c = cache(&Arc::new(ManualClock::new(1_000)));
        let (in_window, window_entered) = sync_mpsc::channel::<()>();
        let (evicted, eviction_done) = sync_mpsc::channel::<()>();
        c.set_fill_hook(Box::new(move || {
            let _ = in_window.send(());
            // Bounded: under the fill lock the eviction cannot complete until we return.
            let _ = eviction_done.recv_timeout(Duration::from_millis(300));
        }));
        let evictor = {
            let c = c.clone();
            std::thread::spawn(move || {
                window_entered.recv().unwrap();
                c.evict([&7]);
                let _ = evicted.send(());
            })
        };
        let ticket = c.ticket();
        assert!(
            c.fill(7, ticket, "old".into()),
            "the fill itself was current"
        );
        evictor.join().unwrap();
        assert!(
            c.get(&7).is_none(),
            "a value evicted during the fill stayed cached"
        );
    }

    #[test]
    fn a_fill_that_started_before_an_eviction_is_not_kept() {
        let c = cache(&Arc::new(ManualClock::new(1_000)));
        let before = c.ticket();
        c.evict([&1]);
        assert!(!c.fill(1, before, "stale".into()));
        assert!(c.get(&1).is_none());
        let before = c.ticket();
        c.clear();
        assert!(!c.fill(1, before, "stale".into()));
        assert!(c.fill(1, c.ticket(), "fresh".into()));
        assert_eq!(c.get(&1).as_deref(), Some("fresh"));
    }

    #[test]
    fn nothing_is_served_or_filled_between_lost_and_resumed() {
        let c = cache(&Arc::new(ManualClock::new(1_000)));
        assert!(c.fill(1, c.ticket(), "a".into()));
        assert!(c.apply_feed_state(Invalidation::Lost).is_none());
        assert!(c.get(&1).is_none());
        assert!(!c.fill(1, c.ticket(), "b".into()));
        c.apply_feed_state(Invalidation::Resumed);
        assert!(c.get(&1).is_none(), "resumed keeps nothing from before");
        assert!(c.fill(1, c.ticket(), "c".into()));
        assert_eq!(c.get(&1).as_deref(), Some("c"));
        let listed = Invalidation::Auths(vec![]);
        assert_eq!(c.apply_feed_state(listed.clone()), Some(listed));
    }

    #[test]
    fn entries_past_the_maximum_age_are_re_read() {
        let clock = Arc::new(ManualClock::new(1_000));
        let c: EpochCache<u32, u8> =
            EpochCache::new(64, clock.clone()).with_policy(true, Some(500));
        assert!(c.fill(1, c.ticket(), 9));
        clock.advance_ms(499);
        assert_eq!(c.get(&1), Some(9));
        clock.advance_ms(1);
        assert_eq!(c.get(&1), None);
        assert_eq!(c.peek(&1), Some(9), "peek ignores age");
        let untrusted: EpochCache<u32, u8> = EpochCache::new(64, clock).with_policy(false, None);
        assert!(!untrusted.fill(1, untrusted.ticket(), 9));
    }
}
