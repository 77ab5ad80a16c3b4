//! Building audit entries in the server, appending what changes nothing, and the request id
//! every entry carries.
//!
//! A mutation's entries are not appended here: the caller builds them ([`By::entry`],
//! [`deletion`]) and hands them to the store method making the change, which inserts them in
//! the change's own transaction (see [`authd_core::audit`]), so an entry exists exactly when
//! its change committed. What is appended here changes nothing: refused credentials (through
//! the bounded queue, [`refused`], [`worker_refused`]), refused delegations, failed integrity
//! checks, refused key destroys, the worker's decrypting reads, and `keys rewrap`, which
//! spans many transactions. A failure to append is logged loudly. Nothing secret is ever passed in:
//! callers give ids, [`AuditAction`]s and details built from non-secret facts, and every entry
//! is redacted once more on its way ([`redacted`]).

use authd_core::audit::{AuditAction, AuditEntry};
use authd_core::clock::Clock;
use authd_core::credential::DeleteOutcome;
use authd_core::ids::{AccountId, AuthId};
use authd_core::store::Store;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::state::AppState;
use crate::tokens::Principal;

/// The id of the current request (also sent back as `X-Request-Id`; see
/// [`crate::request_id`]). Holds the header value itself (a reference-counted buffer), so
/// extracting it costs no allocation on the read path; the text is copied only into an audit
/// entry.
#[derive(Clone, Debug, Default)]
pub struct RequestId(Option<axum::http::HeaderValue>);

impl RequestId {
    /// The id as text (empty outside the router's layers).
    pub fn as_str(&self) -> &str {
        self.0.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts.headers.get(&crate::request_id::HEADER).cloned(),
        ))
    }
}

/// The actor string of a token caller.
pub fn actor(p: &Principal) -> String {
    format!("token:{}", p.auth_id)
}

/// Whatever looks like a credential in an entry's free-text parts, redacted (callers pass
/// non-secret facts; this makes sure of it). Every entry, appended or handed to a store
/// mutation, goes through here.
pub fn redacted(mut e: AuditEntry) -> AuditEntry {
    for text in [&mut e.target, &mut e.detail] {
        if let std::borrow::Cow::Owned(r) = authd_core::text::redact(text) {
            *text = r;
        }
    }
    e
}

/// The one way to append to the audit trail outside a mutation's transaction.
async fn append(store: &dyn Store, e: AuditEntry) {
    let action = e.action;
    if let Err(err) = store.append_audit(redacted(e)).await {
        tracing::error!(%action, error = %err, "could not append to the audit trail");
    }
}

/// Who acts, in which request, and when: what every entry of one action shares.
#[derive(Clone, Debug)]
pub struct By {
    at_ms: i64,
    account: Option<AccountId>,
    actor: String,
    request_id: String,
}

impl By {
    /// A token caller in this request, now.
    pub fn caller(state: &AppState, caller: &Principal, rid: &RequestId) -> Self {
        Self {
            at_ms: state.clock.now_ms(),
            account: Some(caller.account_id),
            actor: actor(caller),
            request_id: rid.as_str().to_owned(),
        }
    }

    /// The host operator's CLI ([`crate::tokens::OPERATOR`]) acting on `account`, now.
    pub fn operator(clock: &dyn Clock, account: Option<AccountId>) -> Self {
        Self {
            at_ms: clock.now_ms(),
            account,
            actor: crate::tokens::OPERATOR.into(),
            request_id: String::new(),
        }
    }

    /// An action on the key ring (no account) by `actor`: `cli`, `operator`, or `authd` for
    /// the server's own automatic rotation.
    pub fn keyring(clock: &dyn Clock, actor: &str) -> Self {
        Self {
            at_ms: clock.now_ms(),
            account: None,
            actor: actor.into(),
            request_id: String::new(),
        }
    }

    /// A successful `action` on `target`, redacted.
    pub fn entry(&self, action: AuditAction, target: &str, detail: &str) -> AuditEntry {
        redacted(AuditEntry {
            seq: 0,
            at_ms: self.at_ms,
            account_id: self.account,
            actor: self.actor.clone(),
            action,
            target: target.into(),
            outcome: "ok".into(),
            request_id: self.request_id.clone(),
            detail: detail.into(),
        })
    }
}

/// The entries of deleting auth `id` (`action`: `auth.delete` or `token.revoke`) as the
/// cascade did it: the delete with its counts, and one `work.stop` per work it stopped.
pub fn deletion(by: &By, action: AuditAction, id: AuthId, out: &DeleteOutcome) -> Vec<AuditEntry> {
    let reason = deletion_reason(id);
    let detail = format!(
        "deleted {} auth(s); detached from {} work(s), stopped {}",
        out.deleted.len(),
        out.detached_works.len(),
        out.stopped_works.len()
    );
    std::iter::once(by.entry(action, &id.to_string(), &detail))
        .chain(
            out.stopped_works
                .iter()
                .map(|w| by.entry(AuditAction::WorkStop, &w.to_string(), &reason)),
        )
        .collect()
}

/// Why deleting auth `id` stopped a work: the work's status reason and its `work.stop`
/// entry's detail.
pub fn deletion_reason(id: AuthId) -> String {
    format!("auth {id} was deleted")
}

/// Records a failed action (per `outcome`) by an authenticated caller that changed nothing.
pub async fn record_outcome(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    action: AuditAction,
    target: &str,
    outcome: &str,
    detail: &str,
) {
    let mut e = By::caller(state, caller, rid).entry(action, target, detail);
    e.outcome = outcome.into();
    append(state.store.as_ref(), e).await;
}

/// Records an entry with an explicit account and actor (worker reads, refused credentials).
#[allow(clippy::too_many_arguments)]
pub async fn record_as(
    state: &AppState,
    account: Option<AccountId>,
    actor: &str,
    rid: &str,
    action: AuditAction,
    target: &str,
    outcome: &str,
    detail: &str,
) {
    append(
        state.store.as_ref(),
        AuditEntry {
            seq: 0,
            at_ms: state.clock.now_ms(),
            account_id: account,
            actor: actor.into(),
            action,
            target: target.into(),
            outcome: outcome.into(),
            request_id: rid.into(),
            detail: detail.into(),
        },
    )
    .await;
}

/// Records an operator action spanning many transactions (`keys rewrap`): no account, actor
/// `cli`.
pub async fn system(
    store: &dyn Store,
    clock: &dyn Clock,
    action: AuditAction,
    target: &str,
    detail: &str,
) {
    keyring(store, clock, "cli", action, target, "ok", detail).await;
}

/// Records an action on the key ring that changed nothing or spans many transactions (no
/// account) by `actor` (see [`By::keyring`]) with its outcome.
pub async fn keyring(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    action: AuditAction,
    target: &str,
    outcome: &str,
    detail: &str,
) {
    append(
        store,
        AuditEntry {
            seq: 0,
            at_ms: clock.now_ms(),
            account_id: None,
            actor: actor.into(),
            action,
            target: target.into(),
            outcome: outcome.into(),
            request_id: String::new(),
            detail: detail.into(),
        },
    )
    .await;
}

/// One refused credential, waiting to be appended by [`run_refusal_writer`].
#[derive(Debug)]
pub struct Refusal {
    action: AuditAction,
    actor: Option<String>,
    handle: Option<authd_core::ids::AuthId>,
    account: Option<AccountId>,
    outcome: &'static str,
    detail: &'static str,
    route: String,
    request_id: String,
    at_ms: i64,
}

/// Messages to the refusal writer.
#[derive(Debug)]
pub enum RefusalMsg {
    /// Append this refusal.
    Refusal(Refusal),
    /// Answer once everything sent before has been appended.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The request path's handle on the refusal writer. Refusals are queued, not written inline:
/// a flood of bad credentials must not turn into a durable write per request. When the queue
/// is full, refusals are counted instead ([`crate::quiet::Kind::AuditOverflow`]).
#[derive(Debug, Clone)]
pub struct Refusals {
    tx: tokio::sync::mpsc::Sender<RefusalMsg>,
}

impl Refusals {
    /// A queue holding up to `capacity` refusals and its receiving end, to be drained by
    /// [`run_refusal_writer`].
    pub fn new(capacity: usize) -> (Self, tokio::sync::mpsc::Receiver<RefusalMsg>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        (Self { tx }, rx)
    }

    /// Waits until every refusal queued before this call is in the store, so a read of the
    /// audit trail sees them.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.tx.send(RefusalMsg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Records a refused credential (401/403/ambiguous). The account is `account` when the caller
/// is known (a valid token without the permission), else attributed by the writer when the
/// presented token's public handle names a known token; the presented text is never stored.
pub fn refused(
    state: &AppState,
    parts: &Parts,
    handle: Option<authd_core::ids::AuthId>,
    account: Option<AccountId>,
    outcome: &'static str,
    detail: &'static str,
) {
    let r = Refusal {
        action: AuditAction::CredentialRefused,
        actor: None,
        handle,
        account,
        outcome,
        detail,
        route: parts
            .extensions
            .get::<axum::extract::MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        request_id: crate::request_id::of(&parts.headers).to_owned(),
        at_ms: state.clock.now_ms(),
    };
    enqueue(state, r);
}

/// Records a refused worker request (action `worker.decrypt`) through the same bounded queue
/// as [`refused`]: `actor` is `None` for an unknown credential (`anonymous`), the worker's
/// actor for one reaching outside its accounts; `target` is the requested
/// `account/auth` path, never the presented text.
pub fn worker_refused(
    state: &AppState,
    rid: &RequestId,
    actor: Option<String>,
    outcome: &'static str,
    target: String,
) {
    let r = Refusal {
        action: AuditAction::WorkerDecrypt,
        actor,
        handle: None,
        account: None,
        outcome,
        detail: "",
        route: target,
        request_id: rid.as_str().to_owned(),
        at_ms: state.clock.now_ms(),
    };
    enqueue(state, r);
}

fn enqueue(state: &AppState, r: Refusal) {
    state.quiet.note(crate::quiet::Kind::CredentialRefused);
    if state.refusals.tx.try_send(RefusalMsg::Refusal(r)).is_err() {
        state.quiet.note(crate::quiet::Kind::AuditOverflow);
    }
}

/// Appends queued refusals until every sender is gone, or `stop` is cancelled and what was
/// queued before is appended.
pub async fn run_refusal_writer(
    store: std::sync::Arc<dyn Store>,
    mut rx: tokio::sync::mpsc::Receiver<RefusalMsg>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut stopping = false;
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            () = stop.cancelled(), if !stopping => {
                // No more refusals are accepted; those queued are still received.
                stopping = true;
                rx.close();
                continue;
            }
        };
        let Some(msg) = msg else { break };
        match msg {
            RefusalMsg::Flush(done) => {
                let _ = done.send(());
            }
            RefusalMsg::Refusal(r) => {
                let (account, actor) = match (r.actor, r.account, r.handle) {
                    (Some(actor), a, _) => (a, actor),
                    (None, Some(a), Some(h)) => (Some(a), format!("token:{h}")),
                    (None, _, Some(h)) => match store.token_verifier(h).await {
                        Ok(Some(c)) => (Some(c.account_id), format!("token:{h}")),
                        _ => (None, "anonymous".to_owned()),
                    },
                    (None, _, None) => (None, "anonymous".to_owned()),
                };
                append(
                    store.as_ref(),
                    AuditEntry {
                        seq: 0,
                        at_ms: r.at_ms,
                        account_id: account,
                        actor,
                        action: r.action,
                        target: r.route,
                        outcome: r.outcome.into(),
                        request_id: r.request_id,
                        detail: r.detail.into(),
                    },
                )
                .await;
            }
        }
    }
}
