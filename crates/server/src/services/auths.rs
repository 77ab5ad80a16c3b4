//! The auth service: listing and reading auths (API tokens and stored credentials), the
//! delete cascade behind `DELETE /api/auth/{id}`, and issuing and rotating API tokens for a
//! caller. Credential writes (provider validation, the secret merge, sealing) are in
//! [`credentials`].
//!
//! Every auth answered is an [`AuthView`]: the record, its provider's display name (resolved
//! by [`providers::names`], the one way) and, for a token, its freshest last access.

use std::sync::Arc;

use authd_core::audit::{Audit, AuditAction};
use authd_core::credential::DeleteOutcome;
use authd_core::ids::{AccountId, AuthId, ProviderId};
use authd_core::model::{Auth, AuthFilter, AuthKind, Page};
use authd_core::token::ApiToken;
use authd_core::{Error, Result};
use axum::body::Bytes;

use super::providers;
use crate::audit::{self, RequestId};
use crate::pages::PageCache;
use crate::state::AppState;
use crate::tokens::{Principal, TokenRequest};

pub mod credentials;

/// An auth as answered: the record, its provider's display name and (tokens only) the
/// freshest known last access.
#[derive(Debug)]
pub struct AuthView {
    /// The record.
    pub auth: Arc<Auth>,
    /// Its provider's display name (empty if the provider no longer exists).
    pub provider_name: String,
    /// A token's last access (the cached touch if newer than the stored one).
    pub last_accessed_ms: Option<i64>,
}

impl AuthView {
    fn new(state: &AppState, auth: Arc<Auth>, names: &providers::Names) -> Self {
        let last_accessed_ms = auth
            .token()
            .and_then(|g| state.tokens.last_accessed(auth.id, g.last_accessed_ms));
        Self {
            provider_name: names.of(auth.provider_id).to_owned(),
            auth,
            last_accessed_ms,
        }
    }

    /// The view of one auth (resolves its provider's name).
    async fn of(state: &AppState, auth: Arc<Auth>) -> Result<Self> {
        let names =
            providers::names(state.store.as_ref(), auth.account_id, [auth.provider_id]).await?;
        Ok(Self::new(state, auth, &names))
    }
}

/// What to list; with the account, also the key of a kept page.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListAuths {
    /// Only this kind.
    pub kind: Option<AuthKind>,
    /// Only auths of this provider: an id or a slug (built-in or the account's own).
    pub provider: Option<String>,
    /// The page, with its look-ahead row.
    pub page: Page<AuthId>,
}

/// The kept pages of `GET /api/auth`: per account and query.
pub type AuthPages = PageCache<(AccountId, ListAuths)>;

/// A page of the caller's account's auths as `render` writes it, answered from the kept
/// pages ([`crate::pages`]) while the store's version of the account's auths is the one it
/// was rendered at. The version is read *before* the page, so a kept page is never older
/// than its version.
pub async fn list_rendered(
    state: &AppState,
    caller: &Principal,
    q: ListAuths,
    render: impl FnOnce(Vec<AuthView>) -> Result<Bytes>,
) -> Result<Bytes> {
    let key = (caller.account_id, q.clone());
    let version = state.store.auths_version(caller.account_id).await?;
    if let Some(body) = state.pages.get(&key, version) {
        return Ok(body);
    }
    let body = render(list(state, caller, q).await?)?;
    state.pages.put(key, version, body.clone());
    Ok(body)
}

/// A page of the caller's account's auths.
async fn list(state: &AppState, caller: &Principal, q: ListAuths) -> Result<Vec<AuthView>> {
    let store = state.store.as_ref();
    let provider_id = match q.provider.as_deref() {
        None => None,
        Some(p) => Some(
            match providers::resolve(store, caller.account_id, p).await? {
                Some(found) => found.id,
                None => ProviderId::parse(p)
                    .ok_or_else(|| Error::invalid(format!("Unknown provider {p:?}")))?,
            },
        ),
    };
    let filter = AuthFilter {
        kind: q.kind,
        provider_id,
    };
    let items = store.list_auths(caller.account_id, filter, q.page).await?;
    let names = providers::names(
        store,
        caller.account_id,
        items.iter().map(|a| a.provider_id),
    )
    .await?;
    Ok(items
        .into_iter()
        .map(|a| AuthView::new(state, Arc::new(a), &names))
        .collect())
}

/// One auth of the caller's account. A token's public record is immutable and cached beside
/// its credential (evicted on delete and rotation), so reading a token usually needs no store
/// access; a credential is answered only if it opens whole
/// (`credentials::verify_for_read`).
pub async fn read(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
) -> Result<AuthView> {
    let auth = match state.tokens.cached_record(caller.account_id, id) {
        Some(a) => a,
        None => Arc::new(
            state
                .store
                .get_auth(caller.account_id, id)
                .await?
                .ok_or(Error::NotFound)?,
        ),
    };
    if auth.kind() == AuthKind::Credential {
        credentials::verify_for_read(state, caller, rid, id).await?;
    }
    AuthView::of(state, auth).await
}

/// Deletes any auth with the full cascade, in one store transaction: the auth (for tokens,
/// every token it created), its secret rows, its id in every work, and those works stopped
/// (the state machine's `WorkStatus::on_auth_delete`). The audit entries
/// ([`audit::deletion`]) commit in the same transaction. Tokens go through the token service
/// (the delegation rule, the rotation link, the cache eviction live there). `NotFound` if
/// nothing was deleted.
pub async fn delete(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
) -> Result<()> {
    let kind = state
        .store
        .get_auth(caller.account_id, id)
        .await?
        .map(|a| a.kind())
        .ok_or(Error::NotFound)?;
    let action = match kind {
        AuthKind::ApiToken => AuditAction::TokenRevoke,
        AuthKind::Credential => AuditAction::AuthDelete,
    };
    let by = audit::By::caller(state, caller, rid);
    let entries = |out: &DeleteOutcome| audit::deletion(&by, action, id, out);
    let out = match kind {
        AuthKind::ApiToken => {
            state
                .tokens
                .revoke(
                    caller.account_id,
                    id,
                    Some((caller, rid.as_str())),
                    Audit::Outcome(&entries),
                )
                .await?
        }
        AuthKind::Credential => {
            let out = state
                .store
                .delete_auth_cascade(
                    caller.account_id,
                    id,
                    &audit::deletion_reason(id),
                    state.clock.now_ms(),
                    Audit::Outcome(&entries),
                )
                .await?;
            if out.deleted.is_empty() {
                return Err(Error::NotFound);
            }
            state.tokens.evict(&out.deleted);
            out
        }
    };
    tracing::info!(auth = %id, cascade = out.deleted.len() - 1, stopped_works = out.stopped_works.len(), "auth deleted");
    Ok(())
}

/// A token just issued: its view and the token itself, to be shown once.
#[derive(Debug)]
pub struct Issued {
    /// The new token's auth.
    pub view: AuthView,
    /// The token.
    pub token: ApiToken,
}

/// Mints an API token for the caller (`POST /api/auth/createtoken`) under the delegation
/// rules of [`crate::tokens`].
pub async fn create_token(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    req: TokenRequest,
) -> Result<Issued> {
    let (auth, token) = state.tokens.mint(caller, req, rid.as_str()).await?;
    let scopes = auth.token().map(|g| g.scopes.slugs());
    tracing::info!(auth = %auth.id, ?scopes, "api token created");
    let view = AuthView::of(state, Arc::new(auth)).await?;
    Ok(Issued { view, token })
}

/// A rotation's outcome as answered.
#[derive(Debug)]
pub struct RotatedView {
    /// The new token.
    pub issued: Issued,
    /// The rotated (old) token.
    pub old: AuthId,
    /// When the old token stops working (Unix ms).
    pub old_valid_until_ms: i64,
}

/// Rotates API token `id` of the caller's account with an optional grace window (a Go
/// duration); see [`crate::tokens::TokenService::rotate`].
pub async fn rotate(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
    grace: Option<&str>,
) -> Result<RotatedView> {
    let r = state.tokens.rotate(caller, id, grace, rid.as_str()).await?;
    tracing::info!(
        old = %r.old,
        new = %r.auth.id,
        by = %caller.auth_id,
        old_valid_until = %authd_core::clock::rfc3339(Some(r.old_valid_until_ms)),
        "api token rotated"
    );
    let view = AuthView::of(state, Arc::new(r.auth)).await?;
    Ok(RotatedView {
        issued: Issued {
            view,
            token: r.token,
        },
        old: r.old,
        old_valid_until_ms: r.old_valid_until_ms,
    })
}
