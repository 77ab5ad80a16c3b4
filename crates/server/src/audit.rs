//! Appending to the audit trail from the server, and the request id every entry carries.
//!
//! Entries are written after the change they describe has committed; a failure to append is
//! logged loudly but does not undo the change (the store has no cross-table transaction
//! spanning the handler). Nothing secret is ever passed in: callers give ids, fixed action
//! names and details built from non-secret facts.

use authd_core::audit::AuditEntry;
use authd_core::clock::Clock;
use authd_core::ids::AccountId;
use authd_core::store::Store;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;
use crate::tokens::Principal;

/// The id of the current request (also sent back as `X-Request-Id`).
#[derive(Clone, Debug, Default)]
pub struct RequestId(pub String);

/// Middleware: assigns a fresh request id and echoes it in the response.
pub async fn assign_request_id(mut req: Request, next: Next) -> Response {
    let id = authd_core::ids::AuthId::generate().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The actor string of a token caller.
pub fn actor(p: &Principal) -> String {
    format!("token:{}", p.auth_id)
}

/// The one way into the audit trail: whatever looks like a credential in the free-text parts
/// is redacted (callers pass non-secret facts; this makes sure of it).
async fn append(store: &dyn Store, mut e: AuditEntry) {
    for text in [&mut e.target, &mut e.detail] {
        if let std::borrow::Cow::Owned(r) = authd_core::text::redact(text) {
            *text = r;
        }
    }
    let action = e.action.clone();
    if let Err(err) = store.append_audit(e).await {
        tracing::error!(action, error = %err, "could not append to the audit trail");
    }
}

/// Records a successful (or failed, per `outcome`) action by an authenticated caller.
pub async fn record(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    action: &str,
    target: &str,
    detail: &str,
) {
    record_outcome(state, caller, rid, action, target, "ok", detail).await;
}

/// Like [`record`] with an explicit outcome.
pub async fn record_outcome(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    action: &str,
    target: &str,
    outcome: &str,
    detail: &str,
) {
    append(
        state.store.as_ref(),
        AuditEntry {
            seq: 0,
            at_ms: state.clock.now_ms(),
            account_id: Some(caller.account_id),
            actor: actor(caller),
            action: action.into(),
            target: target.into(),
            outcome: outcome.into(),
            request_id: rid.0.clone(),
            detail: detail.into(),
        },
    )
    .await;
}

/// Records an entry with an explicit account and actor (worker reads, refused credentials).
#[allow(clippy::too_many_arguments)]
pub async fn record_as(
    state: &AppState,
    account: Option<AccountId>,
    actor: &str,
    rid: &str,
    action: &str,
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
            action: action.into(),
            target: target.into(),
            outcome: outcome.into(),
            request_id: rid.into(),
            detail: detail.into(),
        },
    )
    .await;
}

/// Records an operator action (key rotation, rewrap): no account, actor `cli`.
pub async fn system(
    store: &dyn Store,
    clock: &dyn Clock,
    action: &str,
    target: &str,
    detail: &str,
) {
    keyring(store, clock, "cli", action, target, "ok", detail).await;
}

/// Records an action on the key ring (no account) by `actor` (`cli`, `operator`, or `authd`
/// for the server's own automatic rotation) with its outcome.
pub async fn keyring(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    action: &str,
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
            action: action.into(),
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
    action: &'static str,
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
        action: "credential.refused",
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
        request_id: parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
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
        action: "worker.decrypt",
        actor,
        handle: None,
        account: None,
        outcome,
        detail: "",
        route: target,
        request_id: rid.0.clone(),
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
                    (None, _, Some(h)) => match store.token_credential(h).await {
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
                        action: r.action.into(),
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
