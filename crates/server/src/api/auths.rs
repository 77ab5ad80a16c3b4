//! `/api/auth`: listing, reading and deleting auths, and minting API tokens
//! (`POST /api/auth/createtoken`). Deleting a token's auth is how a token is revoked; it also
//! revokes every token that token created.

use std::sync::Arc;

use authd_core::ids::{AuthId, ProviderId};
use authd_core::model::{Auth, AuthFilter, AuthKind, Page};
use authd_core::provider;
use authd_core::roles::RoleSet;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::dto::{AuthDto, ConfigEntry, CreatedToken};
use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiPath, ApiQuery, Authed};
use super::{paginate, Listed, PageQuery, Success};
use crate::audit::RequestId;
use crate::state::AppState;
use crate::tokens::{Principal, TokenRequest};

mod params;

use params::{Scopes, TokenParams};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth", get(list))
        .route("/api/auth/createtoken", post(create_token))
        .route("/api/auth/{id}", get(read).delete(remove))
}

/// Maximum length of name, label and description.
const MAX_TEXT: usize = 256;

fn to_dto<'a>(state: &AppState, caller: &Principal, a: &'a Auth) -> AuthDto<'a> {
    let name = provider::builtin_by_id(a.provider_id).map_or("", |p| p.name.as_str());
    to_dto_named(state, caller, a, name)
}

fn to_dto_named<'a>(
    state: &AppState,
    caller: &Principal,
    a: &'a Auth,
    provider: &str,
) -> AuthDto<'a> {
    let last = match a.kind {
        AuthKind::ApiToken => state.tokens.last_accessed(a.id, a.last_accessed_ms),
        AuthKind::Credential => None,
    };
    AuthDto::new(a, caller.account_aid, provider, last)
}

/// Display names of the account's custom providers (built-ins are resolved in memory).
async fn custom_names(
    state: &AppState,
    caller: &Principal,
) -> ApiResult<Vec<(ProviderId, String)>> {
    Ok(state
        .store
        .list_providers(caller.account_id)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect())
}

fn name_of(custom: &[(ProviderId, String)], id: ProviderId) -> String {
    custom
        .iter()
        .find(|(p, _)| *p == id)
        .map(|(_, n)| n.clone())
        .unwrap_or_else(|| {
            provider::builtin_by_id(id)
                .map(|p| p.name.clone())
                .unwrap_or_default()
        })
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    auth_type: Option<String>,
    provider_id: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn list(
    caller: Authed<perm::AuthsRead>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let kind = match q.auth_type.as_deref() {
        None | Some("") => None,
        Some("api_token") => Some(AuthKind::ApiToken),
        Some("credential" | "config" | "oauth1" | "oauth2") => Some(AuthKind::Credential),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Unknown auth_type {other:?} (use api_token or credential)"
            )))
        }
    };
    let provider_id = match q.provider_id.as_deref() {
        None | Some("") => None,
        Some(p) => Some(
            match super::credentials::resolve_provider(&state, caller.account_id, p).await? {
                Some(found) => found.id,
                None => ProviderId::parse(p)
                    .ok_or_else(|| ApiError::bad_request(format!("Unknown provider {p:?}")))?,
            },
        ),
    };
    let limit = q.page.limit()?;
    let after = q.page.after(AuthId::parse)?;
    let items = state
        .store
        .list_auths(
            caller.account_id,
            AuthFilter { kind, provider_id },
            Page::lookahead(after, limit),
        )
        .await?;
    let (items, next) = paginate(items, limit, |a| a.id.to_string());
    let custom = custom_names(&state, &caller).await?;
    let data = items
        .iter()
        .map(|a| to_dto_named(&state, &caller, a, &name_of(&custom, a.provider_id)))
        .collect();
    Ok(Listed(data, next).into_response())
}

async fn read(
    caller: Authed<perm::AuthsRead>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = AuthId::parse(&id).ok_or_else(ApiError::not_found)?;
    // A token's public record is immutable and cached beside its credential (evicted on
    // delete/rotation), so reading a token usually needs no store access.
    let auth = match state.tokens.cached_record(caller.account_id, id) {
        Some(a) => a,
        None => Arc::new(
            state
                .store
                .get_auth(caller.account_id, id)
                .await?
                .ok_or_else(ApiError::not_found)?,
        ),
    };
    if auth.kind == AuthKind::Credential {
        super::credentials::verify_for_read(&state, &caller, &rid, id).await?;
    }
    let name = super::credentials::provider_name(&state, caller.account_id, auth.provider_id).await;
    Ok(Success(StatusCode::OK, to_dto_named(&state, &caller, &auth, &name)).into_response())
}

async fn remove(
    caller: Authed<perm::AuthsWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = AuthId::parse(&id).ok_or_else(ApiError::not_found)?;
    super::credentials::delete(&state, &caller, &rid, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn text(field: &str, v: Option<String>) -> ApiResult<Option<String>> {
    if let Some(s) = &v {
        authd_core::text::validate(field, s, MAX_TEXT)?;
    }
    Ok(v)
}

async fn create_token(
    caller: Authed<perm::TokensCreate>,
    State(state): State<AppState>,
    rid: RequestId,
    TokenParams(body): TokenParams,
) -> ApiResult<Response> {
    let scopes = match &body.scopes {
        None => RoleSet::EMPTY,
        Some(Scopes::List(v)) => RoleSet::parse_slugs(v.iter().map(String::as_str))?,
        Some(Scopes::Csv(s)) => RoleSet::parse_slugs(s.split(','))?,
    };
    let name = text("name", body.name)?;
    let label = text("label", body.label)?;
    let description = text("description", body.description)?;
    let name = name.or_else(|| label.clone()).unwrap_or_default();
    let req = TokenRequest {
        scopes,
        expires: body.expires.filter(|e| !e.is_empty()),
        label: label.unwrap_or_else(|| name.clone()),
        // Older clients expect description to echo the name they sent.
        description: description.unwrap_or_else(|| name.clone()),
        name,
    };
    let (auth, token) = state.tokens.mint(&caller, req, rid.as_str()).await?;
    tracing::info!(auth = %auth.id, scopes = ?auth.scopes.slugs(), "api token created");
    let body = CreatedToken {
        auth: to_dto(&state, &caller, &auth),
        config: [ConfigEntry::api_key(token.expose())],
    };
    Ok(Success(StatusCode::CREATED, body).into_response())
}
