//! The token service: authenticating a presented API token (the hot path of every request),
//! minting tokens under the delegation rules, and revoking them.
//!
//! Authentication is served from an in-memory cache of token records keyed by the public
//! handle; a miss loads one row (no preload, so start-up does not grow with the store). The
//! presented token is always checked against the stored keyed hash in constant time, so the
//! cache never holds anything that would let a guess succeed. Revocation evicts at once and
//! bumps an epoch so that a load racing the revocation cannot re-insert the dead record.
//!
//! With many nodes on one database, other nodes' changes arrive as [`Invalidation`] messages
//! (the server runs the backend's feed into this service, an [`InvalidationSink`]). The cache
//! is trusted only while the feed is connected: after [`Invalidation::Lost`] every check reads
//! the store, and [`Invalidation::Resumed`] drops everything cached. As a bounded-staleness
//! backstop, an entry older than the configured maximum age is re-read from the store.
//!
//! `last_accessed_at` is coalesced: at most one touch per token per second goes to a channel,
//! and a background task writes them in batches. No request waits on a write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use authd_core::clock::Clock;
use authd_core::duration::parse_go_duration;
use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::invalidation::{Invalidation, InvalidationSink};
use authd_core::model::{Auth, NewToken};
use authd_core::roles::{PermissionSet, RoleSet};
use authd_core::store::Store;
use authd_core::token::{self, ApiToken};
use authd_core::{Error, Result};
use authd_crypto::TokenHasher;
use tokio::sync::mpsc;

mod rotate;
pub use rotate::{Rotated, MAX_GRACE_MS};

/// How often a token's last access is recorded at most.
const TOUCH_EVERY_MS: i64 = 1_000;

/// Who is calling: the resolved identity behind a valid token.
#[derive(Clone, Copy, Debug)]
pub struct Principal {
    /// The token's auth id.
    pub auth_id: AuthId,
    /// The account it acts for.
    pub account_id: AccountId,
    /// That account's aid.
    pub account_aid: i64,
    /// The user it acts for.
    pub user_id: Option<UserId>,
    /// Its roles.
    pub scopes: RoleSet,
    /// What those roles grant.
    pub permissions: PermissionSet,
    /// Its expiry.
    pub expires_ms: Option<i64>,
}

/// What the cache holds per token: the keyed hash and the account's aid (the only parts of
/// the credential not in the public record), the public record itself (immutable while the
/// token lives; evicted with it) and what its roles grant.
struct CachedToken {
    hash: [u8; 32],
    account_aid: i64,
    record: Arc<Auth>,
    permissions: PermissionSet,
    last_touch_ms: AtomicI64,
    loaded_ms: i64,
}

/// What a caller asks for when minting a token.
#[derive(Debug, Default)]
pub struct TokenRequest {
    /// Requested roles.
    pub scopes: RoleSet,
    /// Requested lifetime as a Go duration; `None` is never.
    pub expires: Option<String>,
    /// Name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Description.
    pub description: String,
}

/// The token service (cheap to clone via `Arc`).
pub struct TokenService {
    store: Arc<dyn Store>,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
    cache: quick_cache::sync::Cache<AuthId, Arc<CachedToken>>,
    epoch: AtomicU64,
    /// Whether cached entries may be used (the invalidation feed is connected).
    trusted: AtomicBool,
    /// Cached entries older than this are re-read from the store; `None` keeps them.
    max_age_ms: Option<i64>,
    touches: mpsc::Sender<(AuthId, i64)>,
    /// Touch batches the store refused (each one's last-access times are lost).
    lost_touch_batches: Arc<AtomicU64>,
}

/// The receiving end of the touch channel, drained by [`run_touch_flusher`], with the
/// counter of batches it could not write.
#[derive(Debug)]
pub struct TouchQueue {
    rx: mpsc::Receiver<(AuthId, i64)>,
    lost: Arc<AtomicU64>,
}

impl TokenService {
    /// Builds the service and returns the receiving end of the touch channel, to be drained
    /// by [`run_touch_flusher`].
    pub fn new(
        store: Arc<dyn Store>,
        hasher: TokenHasher,
        clock: Arc<dyn Clock>,
        cache_capacity: usize,
    ) -> (Self, TouchQueue) {
        let (tx, rx) = mpsc::channel(64 * 1024);
        let lost = Arc::new(AtomicU64::new(0));
        (
            Self {
                store,
                hasher,
                clock,
                cache: quick_cache::sync::Cache::new(cache_capacity.max(16)),
                epoch: AtomicU64::new(0),
                trusted: AtomicBool::new(true),
                max_age_ms: None,
                touches: tx,
                lost_touch_batches: lost.clone(),
            },
            TouchQueue { rx, lost },
        )
    }

    /// How many last-access batches this node failed to write since it started.
    pub fn lost_touch_batches(&self) -> u64 {
        self.lost_touch_batches.load(Ordering::Relaxed)
    }

    /// Sets the invalidation policy: whether the cache may be used before the feed first
    /// reports [`Invalidation::Resumed`], and the maximum age of a cached entry.
    pub fn with_invalidation(mut self, trusted_at_start: bool, max_age_ms: Option<i64>) -> Self {
        self.trusted = AtomicBool::new(trusted_at_start);
        self.max_age_ms = max_age_ms.filter(|m| *m > 0);
        self
    }

    /// Authenticates a presented token. Malformed tokens are refused before any lookup; a
    /// cache miss loads one row.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal> {
        self.check(presented, true).await
    }

    /// Checks a token on behalf of another service (introspection): like
    /// [`Self::authenticate`] but without recording an access.
    pub async fn inspect(&self, presented: &str) -> Result<Principal> {
        self.check(presented, false).await
    }

    async fn check(&self, presented: &str, touch: bool) -> Result<Principal> {
        let parsed = token::parse(presented).ok_or(Error::Unauthenticated)?;
        let entry = match self.cache.get(&parsed.id).filter(|e| self.usable(e)) {
            Some(e) => e,
            None => match self.load(parsed.id).await {
                Err(Error::Unauthenticated) => {
                    // An unknown id pays the keyed-hash check a known one pays, so the answer
                    // time does not tell whether the id exists.
                    std::hint::black_box(self.hasher.verify(parsed.text.as_bytes(), &[0; 32]));
                    return Err(Error::Unauthenticated);
                }
                other => other?,
            },
        };
        self.verify(&parsed, &entry, touch)
    }

    /// The synchronous fast path: `None` when the token's record is not in memory (the caller
    /// then needs [`Self::authenticate`]). Used by benchmarks to measure the in-memory check.
    pub fn authenticate_cached(&self, presented: &str) -> Option<Result<Principal>> {
        let Some(parsed) = token::parse(presented) else {
            return Some(Err(Error::Unauthenticated));
        };
        let entry = self.cache.get(&parsed.id)?;
        Some(self.verify(&parsed, &entry, true))
    }

    /// The in-memory part of the check: keyed hash in constant time, expiry, and (if asked)
    /// a coalesced last-access touch.
    fn verify(
        &self,
        parsed: &token::ParsedToken<'_>,
        entry: &CachedToken,
        touch: bool,
    ) -> Result<Principal> {
        if !self.hasher.verify(parsed.text.as_bytes(), &entry.hash) {
            return Err(Error::Unauthenticated);
        }
        let now = self.clock.now_ms();
        if entry.record.expires_ms.is_some_and(|exp| now >= exp) {
            return Err(Error::Expired);
        }
        let last = entry.last_touch_ms.load(Ordering::Relaxed);
        if touch
            && now - last >= TOUCH_EVERY_MS
            && entry
                .last_touch_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // Best effort: a full channel drops the touch rather than slowing the request.
            let _ = self.touches.try_send((parsed.id, now));
        }
        Ok(Principal {
            auth_id: entry.record.id,
            account_id: entry.record.account_id,
            account_aid: entry.account_aid,
            user_id: entry.record.user_id,
            scopes: entry.record.scopes,
            permissions: entry.permissions,
            expires_ms: entry.record.expires_ms,
        })
    }

    /// Whether a cached entry may answer without asking the store.
    fn usable(&self, e: &CachedToken) -> bool {
        self.trusted.load(Ordering::Acquire)
            && self
                .max_age_ms
                .is_none_or(|max| self.clock.now_ms() - e.loaded_ms < max)
    }

    async fn load(&self, id: AuthId) -> Result<Arc<CachedToken>> {
        let epoch = self.epoch.load(Ordering::Acquire);
        let (cred, record) = self
            .store
            .token_record(id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let entry = Arc::new(CachedToken {
            hash: cred.hash,
            account_aid: cred.account_aid,
            permissions: record.scopes.permissions(),
            record: Arc::new(record),
            last_touch_ms: AtomicI64::new(i64::MIN / 2),
            loaded_ms: self.clock.now_ms(),
        });
        // Only cache if no revocation happened while we were reading, and only while the
        // invalidation feed can tell us about later ones.
        if self.epoch.load(Ordering::Acquire) == epoch && self.trusted.load(Ordering::Acquire) {
            self.cache.insert(id, entry.clone());
        }
        Ok(entry)
    }

    /// The cached public record of token `id` if it is in memory and belongs to `account`.
    pub fn cached_record(&self, account: AccountId, id: AuthId) -> Option<Arc<Auth>> {
        self.cache
            .get(&id)
            .filter(|e| e.record.account_id == account && self.usable(e))
            .map(|e| e.record.clone())
    }

    /// Drops tokens from the cache; called after they were deleted from the store.
    pub fn evict(&self, ids: &[AuthId]) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for id in ids {
            self.cache.remove(id);
        }
    }

    /// Whether a check of this token would be answered from the cache, without the store
    /// (for tests and diagnostics).
    pub fn serves_from_cache(&self, id: AuthId) -> bool {
        self.cache.get(&id).is_some_and(|e| self.usable(&e))
    }

    /// Drops every cached token.
    pub fn evict_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.clear();
    }

    /// The freshest known last-access time of a token: the cached touch if newer than `stored`.
    pub fn last_accessed(&self, id: AuthId, stored: Option<i64>) -> Option<i64> {
        let cached = self
            .cache
            .get(&id)
            .map(|e| e.last_touch_ms.load(Ordering::Relaxed))
            .filter(|t| *t > 0);
        match (stored, cached) {
            (Some(s), Some(c)) => Some(s.max(c)),
            (s, c) => s.or(c),
        }
    }

    /// Mints a token for `caller` under the delegation rules: only roles the caller holds
    /// (admin holds all), and never outliving the caller's own expiry. The `token.create`
    /// audit entry is written in the same transaction as the token (one durable commit).
    pub async fn mint(
        &self,
        caller: &Principal,
        req: TokenRequest,
        request_id: &str,
    ) -> Result<(Auth, ApiToken)> {
        if req.scopes.is_empty() {
            return Err(Error::invalid("At least one scope (role) is required"));
        }
        let refused = caller.scopes.not_delegable(req.scopes);
        if !refused.is_empty() {
            return Err(Error::Forbidden(format!(
                "User does not have permission to add these roles in token: [{}]",
                refused.slugs().join(" ")
            )));
        }
        let now = self.clock.now_ms();
        let (own_expiry, ttl_secs) = match req.expires.as_deref() {
            None => (None, None),
            Some(text) => {
                let ns = parse_go_duration(text)
                    .map_err(|e| Error::invalid(format!("Invalid expires {text:?}: {e}")))?;
                if ns <= 0 {
                    return Err(Error::invalid(format!(
                        "Invalid expires {text:?}: must be a positive duration such as \"100h\""
                    )));
                }
                let ms = ns / 1_000_000 + i64::from(ns % 1_000_000 != 0);
                let at = now
                    .checked_add(ms)
                    .filter(|t| *t < MAX_EXPIRY_MS)
                    .ok_or_else(|| {
                        Error::invalid(format!("Invalid expires {text:?}: too far in the future"))
                    })?;
                (
                    Some(at),
                    Some(ns / 1_000_000_000 + i64::from(ns % 1_000_000_000 != 0)),
                )
            }
        };
        let expires_ms = match (own_expiry, caller.expires_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // The creator's user name: from its cached record when it is in memory (it is, right
        // after authenticating), else from the store.
        let cached_name = self
            .cache
            .get(&caller.auth_id)
            .map(|e| e.record.user_name.clone());
        let user_name = match (cached_name, caller.user_id) {
            (Some(n), _) => n,
            (None, Some(u)) => self
                .store
                .get_user(caller.account_id, u)
                .await?
                .map(|u| u.name)
                .unwrap_or_default(),
            (None, None) => String::new(),
        };
        let token = ApiToken::generate(AuthId::generate());
        let audit = authd_core::audit::AuditEntry {
            seq: 0,
            at_ms: now,
            account_id: Some(caller.account_id),
            actor: crate::audit::actor(caller),
            action: "token.create".into(),
            target: token.id().to_string(),
            outcome: "ok".into(),
            request_id: request_id.to_owned(),
            detail: format!("scopes {}", req.scopes.slugs().join(",")),
        };
        let auth = self
            .store
            .create_token(
                caller.account_id,
                NewToken {
                    id: token.id(),
                    hash: self.hasher.hash(token.expose().as_bytes()),
                    name: req.name,
                    label: req.label,
                    description: req.description,
                    user_id: caller.user_id,
                    user_name,
                    parent_id: Some(caller.auth_id),
                    scopes: req.scopes,
                    expires_ms,
                    ttl_secs,
                    audit: Some(audit),
                },
                now,
            )
            .await?;
        Ok((auth, token))
    }

    /// Deletes an auth (for a token: revokes it and, transitively, every token it created).
    /// Returns the deleted ids; `NotFound` if there was nothing to delete in this account.
    pub async fn delete(&self, account: AccountId, id: AuthId) -> Result<Vec<AuthId>> {
        let ids = self.store.delete_auth(account, id).await?;
        if ids.is_empty() {
            return Err(Error::NotFound);
        }
        self.evict(&ids);
        Ok(ids)
    }
}

impl InvalidationSink for TokenService {
    fn invalidate(&self, msg: Invalidation) {
        match msg {
            Invalidation::Auths(ids) => self.evict(&ids),
            Invalidation::All => self.evict_all(),
            Invalidation::Lost => {
                self.trusted.store(false, Ordering::Release);
                self.evict_all();
            }
            Invalidation::Resumed => {
                self.evict_all();
                self.trusted.store(true, Ordering::Release);
            }
        }
    }
}

/// Expiry instants past year 9999 cannot be written as RFC 3339; refuse them.
const MAX_EXPIRY_MS: i64 = 253_402_300_799_000;

/// Drains touches, coalescing them per token, and writes them in batches about once a second
/// until `stop` fires or the channel closes; then writes what is left.
pub async fn run_touch_flusher(
    store: Arc<dyn Store>,
    queue: TouchQueue,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let TouchQueue { mut rx, lost } = queue;
    let mut pending: HashMap<AuthId, i64> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut stop => {
                while let Ok((id, at)) = rx.try_recv() {
                    let e = pending.entry(id).or_insert(at);
                    *e = (*e).max(at);
                }
                break;
            }
            msg = rx.recv() => match msg {
                Some((id, at)) => {
                    let e = pending.entry(id).or_insert(at);
                    *e = (*e).max(at);
                }
                None => break,
            },
            _ = tick.tick() => flush(store.as_ref(), &mut pending, &lost).await,
        }
    }
    flush(store.as_ref(), &mut pending, &lost).await;
}

async fn flush(store: &dyn Store, pending: &mut HashMap<AuthId, i64>, lost: &AtomicU64) {
    if pending.is_empty() {
        return;
    }
    let batch: Vec<(AuthId, i64)> = pending.drain().collect();
    if let Err(e) = store.touch_tokens(&batch).await {
        lost.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, count = batch.len(), "could not record token last access");
    }
}
