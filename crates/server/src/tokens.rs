//! The token service: authenticating a presented API token (the hot path of every request),
//! minting tokens under the delegation rules, and revoking them.
//!
//! Authentication is served from an in-memory cache of token records keyed by the public
//! handle; a miss loads one row (no preload, so start-up does not grow with the store). The
//! presented token is always checked against the stored keyed hash in constant time, so the
//! cache never holds anything that would let a guess succeed. The cache is an
//! [`EpochCache`]: revocation evicts at once and a load racing the revocation cannot re-insert
//! the dead record (see [`crate::cache`] for the epoch guard).
//!
//! A token acts with its *effective* roles: its scopes limited to its user's current roles
//! ([`RoleSet::limited_to`]), read with the record, so a user's demotion reaches the user's
//! tokens as soon as their cached records are dropped (the store reports which).
//!
//! The delegation rule ([`require_holds`]) guards every path that grants, takes over or takes
//! away a token: minting, rotation, revocation (API and operator CLI). A refusal is audited.
//!
//! With many nodes on one database, other nodes' changes arrive as [`Invalidation`] messages
//! (the server runs the backend's feed into this service, an [`InvalidationSink`]). The cache
//! is trusted only while the feed is connected: after [`Invalidation::Lost`] every check reads
//! the store, and [`Invalidation::Resumed`] drops everything cached. As a bounded-staleness
//! backstop, an entry older than the configured maximum age is re-read from the store.
//!
//! The cached record also answers `/api/auth/self` and introspection without a store read
//! ([`TokenService::own_record`], [`TokenService::inspect`]).
//!
//! `last_accessed_at` costs no write per request. In memory, each cached token keeps its last
//! access to the second (what this node answers). The store gets a token's access at most
//! once per [`PERSIST_EVERY_MS`] (counted from the stored value, so a restart does not
//! rewrite every token), through a channel to a background task that writes one batch a
//! second and keeps at most [`MAX_PENDING_TOUCHES`] waiting. A batch is sized to the
//! writer's time, not a row count: its size follows the measured cost of the previous one so
//! that last-access writes take about [`TOUCH_BUDGET_PER_FLUSH`] of each second (5 % of the
//! writer), between [`MIN_TOUCHES_PER_FLUSH`] and [`MAX_TOUCHES_PER_FLUSH`] rows. A row
//! update costs a few µs in a small, cached table and over 100 µs in a million-row one read
//! from disk (a page written to the WAL and checkpointed per row), so a fixed row rate was
//! either too slow for one or a fifth of the CPU for the other. A burst of first uses (a
//! large store warming up) therefore costs the writer a bounded share of its time instead of
//! one write per request; what waits is written later, and all of it at shutdown (in batches,
//! within the shutdown bound). Other nodes see an access within about a minute plus the
//! backlog.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use authd_core::audit::{Audit, AuditAction, AuditEntry};
use authd_core::clock::Clock;
use authd_core::credential::DeleteOutcome;
use authd_core::duration::parse_go_duration;
use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::invalidation::{Invalidation, InvalidationSink};
use authd_core::model::{Auth, NewToken};
use authd_core::roles::{PermissionSet, RoleSet};
use authd_core::store::Store;
use authd_core::text::{Description, Label, Name};
use authd_core::token::{self, ApiToken};
use authd_core::{Error, Result};
use authd_crypto::TokenHasher;
use tokio::sync::mpsc;

use crate::cache::EpochCache;

mod rotate;
pub use rotate::{Rotated, MAX_GRACE_MS};

/// How often a token's in-memory last access moves at most.
const TOUCH_EVERY_MS: i64 = 1_000;
/// How often a token's last access is written to the store at most.
pub const PERSIST_EVERY_MS: i64 = 60_000;
/// Row updates per flush (one flush a second) at most.
pub const MAX_TOUCHES_PER_FLUSH: usize = 2_000;
/// Row updates per flush at least, however slow the last one was (the backlog always moves).
pub const MIN_TOUCHES_PER_FLUSH: usize = 100;
/// The writer time one flush (one a second) aims to take: the next batch is sized from the
/// last one's cost per row to fit it.
pub const TOUCH_BUDGET_PER_FLUSH: Duration = Duration::from_millis(50);
/// Tokens waiting for their last access to be written at most; past it a touch is dropped
/// (the token's next access after [`PERSIST_EVERY_MS`] sends it again).
pub const MAX_PENDING_TOUCHES: usize = 100_000;

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
    /// Its effective roles: its scopes limited to its user's current roles.
    pub scopes: RoleSet,
    /// What those roles grant.
    pub permissions: PermissionSet,
    /// Its expiry.
    pub expires_ms: Option<i64>,
}

/// What the cache holds per token: the keyed hash and the account's aid (the only parts of
/// the credential not in the public record), the public record itself (immutable while the
/// token lives; evicted with it), its effective roles and what they grant.
struct CachedToken {
    hash: [u8; 32],
    account_aid: i64,
    record: Arc<Auth>,
    scopes: RoleSet,
    permissions: PermissionSet,
    /// The last access this node saw (to the second).
    last_touch_ms: AtomicI64,
    /// The last access known to be in the store, or sent to be written.
    persisted_ms: AtomicI64,
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

impl TokenRequest {
    /// A request as a client states it: the name defaults to the label, the label to the
    /// name, the description echoes the name (older clients expect it), and an empty
    /// `expires` means never.
    pub fn new(
        scopes: RoleSet,
        expires: Option<String>,
        name: Option<Name>,
        label: Option<Label>,
        description: Option<Description>,
    ) -> Self {
        let label: Option<String> = label.map(String::from);
        let name = name
            .map(String::from)
            .or_else(|| label.clone())
            .unwrap_or_default();
        Self {
            scopes,
            expires: expires.filter(|e| !e.is_empty()),
            label: label.unwrap_or_else(|| name.clone()),
            description: description.map_or_else(|| name.clone(), String::from),
            name,
        }
    }
}

/// The token service (cheap to clone via `Arc`).
pub struct TokenService {
    store: Arc<dyn Store>,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
    cache: EpochCache<AuthId, Arc<CachedToken>>,
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
                cache: EpochCache::new(cache_capacity, clock.clone()),
                clock,
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
        self.cache = self.cache.with_policy(trusted_at_start, max_age_ms);
        self
    }

    /// Authenticates a presented token. Malformed tokens are refused before any lookup; a
    /// cache miss loads one row.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal> {
        self.check(presented, true).await.map(|(p, _)| p)
    }

    /// Checks a token on behalf of another service (introspection): like
    /// [`Self::authenticate`] but without recording an access; also returns the token's
    /// public record (from the same cache entry).
    pub async fn inspect(&self, presented: &str) -> Result<(Principal, Arc<Auth>)> {
        self.check(presented, false).await
    }

    /// Introspection for a caller of `account` (RFC 7662): the token's principal and record
    /// if it is active and belongs to `account`; `None` for every other token (another
    /// tenant's token is as unknown as a garbage one).
    pub async fn introspect(
        &self,
        account: AccountId,
        presented: &str,
    ) -> Result<Option<(Principal, Arc<Auth>)>> {
        match self.inspect(presented).await {
            Ok((p, auth)) if p.account_id == account => Ok(Some((p, auth))),
            Ok(_) | Err(Error::Unauthenticated | Error::Expired | Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn check(&self, presented: &str, touch: bool) -> Result<(Principal, Arc<Auth>)> {
        let parsed = token::parse(presented).ok_or(Error::Unauthenticated)?;
        let entry = match self.cache.get(&parsed.id) {
            Some(e) => e,
            None => match self.load(parsed.id).await {
                Err(Error::Unauthenticated) => {
                    // An unknown id pays the keyed-hash check a known one pays. (It still pays
                    // the store read any uncached id pays; ids are public handles, the secret
                    // comparison is what stays constant-time.)
                    std::hint::black_box(self.hasher.verify(parsed.text.as_bytes(), &[0; 32]));
                    return Err(Error::Unauthenticated);
                }
                other => other?,
            },
        };
        let principal = self.verify(&parsed, &entry, touch)?;
        Ok((principal, entry.record.clone()))
    }

    /// The synchronous fast path: `None` when the token's record is not in memory (the caller
    /// then needs [`Self::authenticate`]). Used by benchmarks to measure the in-memory check.
    pub fn authenticate_cached(&self, presented: &str) -> Option<Result<Principal>> {
        let Some(parsed) = token::parse(presented) else {
            return Some(Err(Error::Unauthenticated));
        };
        let entry = self.cache.peek(&parsed.id)?;
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
        let expires_ms = entry.record.token().and_then(|g| g.expires_ms);
        if expires_ms.is_some_and(|exp| now >= exp) {
            return Err(Error::Expired);
        }
        if touch {
            record_access(&entry.last_touch_ms, &entry.persisted_ms, now, |at| {
                // Best effort: a full channel drops the touch rather than slowing the request.
                let _ = self.touches.try_send((parsed.id, at));
            });
        }
        Ok(Principal {
            auth_id: entry.record.id,
            account_id: entry.record.account_id,
            account_aid: entry.account_aid,
            user_id: entry.record.user_id,
            scopes: entry.scopes,
            permissions: entry.permissions,
            expires_ms,
        })
    }

    async fn load(&self, id: AuthId) -> Result<Arc<CachedToken>> {
        // Taken before the read: only cache if no revocation happened while we were reading,
        // and only while the invalidation feed can tell us about later ones.
        let ticket = self.cache.ticket();
        let (cred, record) = self
            .store
            .token_record(id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let scopes = cred.effective_scopes();
        let stored_access = record
            .token()
            .and_then(|g| g.last_accessed_ms)
            .unwrap_or(i64::MIN / 2);
        let entry = Arc::new(CachedToken {
            hash: cred.hash,
            account_aid: cred.account_aid,
            scopes,
            permissions: scopes.permissions(),
            record: Arc::new(record),
            last_touch_ms: AtomicI64::new(i64::MIN / 2),
            persisted_ms: AtomicI64::new(stored_access),
        });
        let _ = self.cache.fill(id, ticket, entry.clone());
        Ok(entry)
    }

    /// The cached public record of token `id` if it is in memory and belongs to `account`.
    pub fn cached_record(&self, account: AccountId, id: AuthId) -> Option<Arc<Auth>> {
        self.cache
            .get(&id)
            .filter(|e| e.record.account_id == account)
            .map(|e| e.record.clone())
    }

    /// The public record of the caller's own token: the cached one (it is in memory right
    /// after authenticating), else from the store. `None` if it is gone.
    pub async fn own_record(&self, caller: &Principal) -> Result<Option<Arc<Auth>>> {
        match self.cached_record(caller.account_id, caller.auth_id) {
            Some(r) => Ok(Some(r)),
            None => Ok(self
                .store
                .get_auth(caller.account_id, caller.auth_id)
                .await?
                .map(Arc::new)),
        }
    }

    /// Drops tokens from the cache; called after they were deleted from the store.
    pub fn evict(&self, ids: &[AuthId]) {
        self.cache.evict(ids);
    }

    /// Whether a check of this token would be answered from the cache, without the store
    /// (for tests and diagnostics).
    pub fn serves_from_cache(&self, id: AuthId) -> bool {
        self.cache.get(&id).is_some()
    }

    /// The freshest known last-access time of a token: the cached touch if newer than `stored`.
    pub fn last_accessed(&self, id: AuthId, stored: Option<i64>) -> Option<i64> {
        let cached = self
            .cache
            .peek(&id)
            .map(|e| e.last_touch_ms.load(Ordering::Relaxed))
            .filter(|t| *t > 0);
        match (stored, cached) {
            (Some(s), Some(c)) => Some(s.max(c)),
            (s, c) => s.or(c),
        }
    }

    /// Mints a token for `caller` under the delegation rules: only roles the caller holds
    /// (admin holds all), and never outliving the caller's own expiry. The `token.create`
    /// audit entry is written in the same transaction as the token (one durable commit); a
    /// refusal is audited too.
    pub async fn mint(
        &self,
        caller: &Principal,
        req: TokenRequest,
        request_id: &str,
    ) -> Result<(Auth, ApiToken)> {
        self.delegate(
            caller,
            req.scopes,
            Delegation::Grant,
            (AuditAction::TokenCreate, ""),
            request_id,
        )
        .await?;
        // The creator's user name: from its cached record when it is in memory (it is, right
        // after authenticating), else from the store.
        let cached_name = self
            .cache
            .peek(&caller.auth_id)
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
        let issuer = Issuer {
            account: caller.account_id,
            user_id: caller.user_id,
            user_name,
            parent: Some(caller.auth_id),
            cap_ms: caller.expires_ms,
            actor: crate::audit::actor(caller),
            request_id: request_id.to_owned(),
        };
        self.issue(issuer, req).await
    }

    /// Mints a token for the host operator (`authd token create`): no creator token, so no
    /// parent and no expiry cap; with a user, the delegation rule applies to the user's roles
    /// (a user's token never holds a role the user lacks). Audited as actor `operator`.
    pub async fn mint_as_operator(
        &self,
        account: AccountId,
        user: Option<&authd_core::model::User>,
        req: TokenRequest,
    ) -> Result<(Auth, ApiToken)> {
        if let Some(u) = user {
            require_holds(u.roles, req.scopes, Delegation::Grant)?;
        }
        let issuer = Issuer {
            account,
            user_id: user.map(|u| u.id),
            user_name: user.map(|u| u.name.clone()).unwrap_or_default(),
            parent: None,
            cap_ms: None,
            actor: OPERATOR.into(),
            request_id: String::new(),
        };
        self.issue(issuer, req).await
    }

    async fn issue(&self, by: Issuer, req: TokenRequest) -> Result<(Auth, ApiToken)> {
        if req.scopes.is_empty() {
            return Err(Error::invalid("At least one scope (role) is required"));
        }
        let now = self.clock.now_ms();
        let (own_expiry, ttl_secs) = match req.expires.as_deref() {
            None => (Lifetime::Never, None),
            Some(text) => {
                let ns = parse_go_duration(text)
                    .map_err(|e| Error::invalid(format!("Invalid expires {text:?}: {e}")))?;
                if ns <= 0 {
                    return Err(Error::invalid(format!(
                        "Invalid expires {text:?}: must be a positive duration such as \"100h\""
                    )));
                }
                let ms = ns / 1_000_000 + i64::from(ns % 1_000_000 != 0);
                (
                    Lifetime::For(ms),
                    Some(ns / 1_000_000_000 + i64::from(ns % 1_000_000_000 != 0)),
                )
            }
        };
        let expires_ms = expiry(now, own_expiry, by.cap_ms).ok_or_else(|| {
            Error::invalid(format!(
                "Invalid expires {:?}: too far in the future",
                req.expires.as_deref().unwrap_or_default()
            ))
        })?;
        let token = ApiToken::generate(AuthId::generate_at(now));
        let audit = AuditEntry {
            seq: 0,
            at_ms: now,
            account_id: Some(by.account),
            actor: by.actor,
            action: AuditAction::TokenCreate,
            target: token.id().to_string(),
            outcome: "ok".into(),
            request_id: by.request_id,
            detail: format!("scopes {}", req.scopes.slugs().join(",")),
        };
        let auth = self
            .store
            .create_token(
                by.account,
                NewToken {
                    id: token.id(),
                    hash: self.hasher.hash(token.expose().as_bytes()),
                    name: req.name,
                    label: req.label,
                    description: req.description,
                    user_id: by.user_id,
                    user_name: by.user_name,
                    parent_id: by.parent,
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

    /// Revokes API token `id` of `account` and, transitively, every token it created; a token
    /// rotated away and still in its grace window is revoked together with its successor (the
    /// tokens it created moved there). `by` is the calling token, held to the delegation rule
    /// (`None`: the host operator). A refusal is audited; `audit` is the revocation's entries,
    /// written in the cascade's transaction. Returns what was deleted; `NotFound` if there is
    /// no such token in the account.
    pub async fn revoke(
        &self,
        account: AccountId,
        id: AuthId,
        by: Option<(&Principal, &str)>,
        audit: Audit<'_, DeleteOutcome>,
    ) -> Result<DeleteOutcome> {
        let target = self
            .store
            .get_auth(account, id)
            .await?
            .and_then(|a| a.token().copied())
            .ok_or(Error::NotFound)?;
        let now = self.clock.now_ms();
        let mut root = id;
        // A rotation chain is short; the bound only guards against a corrupt cycle.
        for _ in 0..32 {
            match self.store.rotated_successor(account, root, now).await? {
                Some(next) => root = next,
                None => break,
            }
        }
        if let Some((caller, request_id)) = by {
            let roles = match root {
                r if r == id => target.scopes,
                r => self
                    .store
                    .get_auth(account, r)
                    .await?
                    .and_then(|a| a.token().map(|g| g.scopes))
                    .unwrap_or(target.scopes),
            };
            let target = id.to_string();
            self.delegate(
                caller,
                roles,
                Delegation::Revoke,
                (AuditAction::TokenRevoke, &target),
                request_id,
            )
            .await?;
        }
        let reason = crate::audit::deletion_reason(id);
        let out = self
            .store
            .delete_auth_cascade(account, root, &reason, now, audit)
            .await?;
        if out.deleted.is_empty() {
            return Err(Error::NotFound);
        }
        self.evict(&out.deleted);
        Ok(out)
    }

    /// The delegation check of every path a caller grants, takes over or takes away a token
    /// by ([`require_holds`]), with its refusal appended to the audit trail as `(action,
    /// target)` (best effort: the refusal stands even if the append fails; the detail is the
    /// refusal message, which names roles only).
    async fn delegate(
        &self,
        caller: &Principal,
        roles: RoleSet,
        what: Delegation,
        (action, target): (AuditAction, &str),
        request_id: &str,
    ) -> Result<()> {
        let Err(err) = require_holds(caller.scopes, roles, what) else {
            return Ok(());
        };
        let entry = AuditEntry {
            seq: 0,
            at_ms: self.clock.now_ms(),
            account_id: Some(caller.account_id),
            actor: crate::audit::actor(caller),
            action,
            target: target.to_owned(),
            outcome: "refused".into(),
            request_id: request_id.to_owned(),
            detail: err.to_string(),
        };
        if let Err(e) = self.store.append_audit(entry).await {
            tracing::error!(%action, error = %e, "could not append to the audit trail");
        }
        Err(err)
    }
}

/// The audit actor of the host operator's CLI actions.
pub const OPERATOR: &str = "operator";

/// Who a token is issued by, and what that implies for the new token.
struct Issuer {
    account: AccountId,
    user_id: Option<UserId>,
    user_name: String,
    /// The creating token (the revocation tree); `None` for the operator.
    parent: Option<AuthId>,
    /// The creator's expiry, which the new token never outlives.
    cap_ms: Option<i64>,
    actor: String,
    request_id: String,
}

/// What a delegation check is for (it picks the refusal's wording; the rule is the same).
#[derive(Clone, Copy, Debug)]
pub enum Delegation {
    /// Giving roles to a token: minting, rotation.
    Grant,
    /// Taking a token away: deletion, revocation.
    Revoke,
}

/// THE delegation rule, for every path: the holder must hold every role of the target
/// ([`RoleSet::not_delegable`]; admin holds all). A refusal is `Forbidden` naming the roles.
pub fn require_holds(holder: RoleSet, target: RoleSet, what: Delegation) -> Result<()> {
    let refused = holder.not_delegable(target);
    if refused.is_empty() {
        return Ok(());
    }
    let roles = refused.slugs().join(" ");
    Err(Error::Forbidden(match what {
        Delegation::Grant => {
            format!("User does not have permission to add these roles in token: [{roles}]")
        }
        Delegation::Revoke => {
            format!("User does not have permission to revoke a token with these roles: [{roles}]")
        }
    }))
}

/// A new token's own lifetime, before its creator's cap.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lifetime {
    /// Never expires.
    Never,
    /// Expires this many ms from now.
    For(i64),
    /// Expires at this instant (Unix ms).
    Until(i64),
}

/// THE expiry rule of every new token (minted or rotated): its own lifetime, never past its
/// creator's expiry. `None` if the lifetime would end past year 9999.
pub(crate) fn expiry(now: i64, own: Lifetime, creator: Option<i64>) -> Option<Option<i64>> {
    let own = match own {
        Lifetime::Never => None,
        Lifetime::For(ms) => Some(now.checked_add(ms).filter(|t| *t < MAX_EXPIRY_MS)?),
        Lifetime::Until(at) => Some(at),
    };
    Some(match (own, creator) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

impl InvalidationSink for TokenService {
    fn invalidate(&self, msg: Invalidation) {
        if let Some(Invalidation::Auths(ids)) = self.cache.apply_feed_state(msg) {
            self.evict(&ids);
        }
    }
}

/// Expiry instants past year 9999 cannot be written as RFC 3339; refuse them.
const MAX_EXPIRY_MS: i64 = 253_402_300_799_000;

/// Drains touches, coalescing them per token, and writes them in batches about once a second
/// Moves a token's in-memory last access (`last_touch`) (at most once per [`TOUCH_EVERY_MS`]) and, at
/// most once per [`PERSIST_EVERY_MS`] after `persisted`, hands it to `persist`.
fn record_access(
    last_touch: &AtomicI64,
    persisted: &AtomicI64,
    now: i64,
    persist: impl FnOnce(i64),
) {
    let last = last_touch.load(Ordering::Relaxed);
    if now - last < TOUCH_EVERY_MS
        || last_touch
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let stored = persisted.load(Ordering::Relaxed);
    if now - stored >= PERSIST_EVERY_MS
        && persisted
            .compare_exchange(stored, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        persist(now);
    }
}

/// until `stop` fires or the channel closes; then writes what is left.
pub async fn run_touch_flusher(
    store: Arc<dyn Store>,
    queue: TouchQueue,
    stop: tokio_util::sync::CancellationToken,
) {
    let TouchQueue { mut rx, lost } = queue;
    let mut pending: HashMap<AuthId, i64> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut per_flush = MAX_TOUCHES_PER_FLUSH;
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                while let Ok((id, at)) = rx.try_recv() {
                    queue_touch(&mut pending, id, at);
                }
                break;
            }
            msg = rx.recv() => match msg {
                Some((id, at)) => queue_touch(&mut pending, id, at),
                None => break,
            },
            _ = tick.tick() => {
                let started = std::time::Instant::now();
                let rows = flush(store.as_ref(), &mut pending, &lost, per_flush).await;
                per_flush = next_batch(per_flush, rows, started.elapsed());
            }
        }
    }
    // At shutdown, everything waiting, in batches as large as the store takes at once.
    while !pending.is_empty() {
        flush(store.as_ref(), &mut pending, &lost, MAX_PENDING_TOUCHES).await;
    }
}

fn queue_touch(pending: &mut HashMap<AuthId, i64>, id: AuthId, at: i64) {
    if pending.len() >= MAX_PENDING_TOUCHES && !pending.contains_key(&id) {
        return;
    }
    let e = pending.entry(id).or_insert(at);
    *e = (*e).max(at);
}

/// The size of the next flush: the last one's rows scaled to [`TOUCH_BUDGET_PER_FLUSH`] by
/// what they took, within [`MIN_TOUCHES_PER_FLUSH`]..=[`MAX_TOUCHES_PER_FLUSH`]. A flush that
/// wrote fewer rows than its limit (the backlog was drained) says little about a full one's
/// cost unless it already overran the budget, so it leaves the size unchanged otherwise.
fn next_batch(current: usize, rows: usize, took: Duration) -> usize {
    if rows == 0 || (rows < current && took <= TOUCH_BUDGET_PER_FLUSH) {
        return current;
    }
    let per_row = took.as_secs_f64() / rows as f64;
    let fits = if per_row > 0.0 {
        TOUCH_BUDGET_PER_FLUSH.as_secs_f64() / per_row
    } else {
        f64::MAX
    };
    // At most doubling per second, so one cheap batch does not swing the next to the top.
    let fits = fits.min(current as f64 * 2.0);
    (fits as usize).clamp(MIN_TOUCHES_PER_FLUSH, MAX_TOUCHES_PER_FLUSH)
}

/// Writes up to `max` of the pending touches in one batch; returns how many it took.
async fn flush(
    store: &dyn Store,
    pending: &mut HashMap<AuthId, i64>,
    lost: &AtomicU64,
    max: usize,
) -> usize {
    if pending.is_empty() {
        return 0;
    }
    let batch: Vec<(AuthId, i64)> = if pending.len() <= max {
        pending.drain().collect()
    } else {
        let ids: Vec<AuthId> = pending.keys().take(max).copied().collect();
        ids.into_iter()
            .filter_map(|id| pending.remove(&id).map(|at| (id, at)))
            .collect()
    };
    if let Err(e) = store.touch_tokens(&batch).await {
        lost.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, count = batch.len(), "could not record token last access");
    }
    batch.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touches(last: &AtomicI64, persisted: &AtomicI64, now: i64) -> Option<i64> {
        let mut sent = None;
        record_access(last, persisted, now, |at| sent = Some(at));
        sent
    }

    #[test]
    fn last_access_moves_each_second_and_is_written_once_a_minute() {
        let never = i64::MIN / 2;
        let (last, persisted) = (AtomicI64::new(never), AtomicI64::new(never));
        assert_eq!(touches(&last, &persisted, 100_000), Some(100_000));
        // Within the second: nothing moves.
        assert_eq!(touches(&last, &persisted, 100_500), None);
        assert_eq!(last.load(Ordering::Relaxed), 100_000);
        // Within the minute: the node's value moves, the store is not written.
        assert_eq!(touches(&last, &persisted, 130_000), None);
        assert_eq!(last.load(Ordering::Relaxed), 130_000);
        // A minute after the last write: written again.
        assert_eq!(touches(&last, &persisted, 160_000), Some(160_000));
    }

    #[test]
    fn a_flush_is_sized_to_the_writers_time() {
        let ms = Duration::from_millis;
        // Cheap rows: grows, at most doubling, up to the cap.
        assert_eq!(next_batch(500, 500, ms(1)), 1_000);
        assert_eq!(next_batch(2_000, 2_000, ms(5)), MAX_TOUCHES_PER_FLUSH);
        // 2,000 rows took 280 ms (140 µs a row): the next fits 50 ms.
        assert_eq!(next_batch(2_000, 2_000, ms(280)), 357);
        // Very slow rows never stop the backlog.
        assert_eq!(next_batch(357, 357, ms(5_000)), MIN_TOUCHES_PER_FLUSH);
        // A small batch within the budget says nothing about a full one.
        assert_eq!(next_batch(357, 10, ms(8)), 357);
        // A small batch over the budget does.
        assert_eq!(next_batch(2_000, 300, ms(150)), 100);
        assert_eq!(next_batch(800, 0, ms(0)), 800);
    }

    #[test]
    fn a_recent_stored_access_is_not_written_again() {
        let (last, persisted) = (AtomicI64::new(i64::MIN / 2), AtomicI64::new(90_000));
        assert_eq!(touches(&last, &persisted, 100_000), None);
        assert_eq!(last.load(Ordering::Relaxed), 100_000);
        assert_eq!(touches(&last, &persisted, 150_000), Some(150_000));
    }
}
