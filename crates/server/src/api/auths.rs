//! `/api/auth`: listing, reading and deleting auths, and minting API tokens
//! (`POST /api/auth/createtoken`). Deleting a token's auth is how a token is revoked; it also
//! revokes every token that token created. The rules are the auth service's
//! ([`crate::services::auths`]).

use authd_core::ids::AuthId;
use authd_core::model::{AuthKind, Page};
use authd_core::roles::RoleSet;
use authd_core::text::{Description, Label, Name};
use authd_core::Error;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::dto::{AuthDto, ConfigEntry, CreatedToken};
use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiPath, ApiQuery, Authed};
use super::{json_bytes, paginate, Listed, PageQuery, Success};
use crate::audit::RequestId;
use crate::services::auths::{self, ListAuths};
use crate::state::AppState;
use crate::tokens::TokenRequest;

mod params;

use params::{Scopes, TokenParams};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth", get(list))
        .route("/api/auth/createtoken", post(create_token))
        .route("/api/auth/{id}", get(read).delete(remove))
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
    let limit = q.page.limit()?;
    let query = ListAuths {
        kind,
        provider: q.provider_id.filter(|p| !p.is_empty()),
        page: Page::lookahead(q.page.after(AuthId::parse)?, limit),
    };
    let aid = caller.account_aid;
    let body = auths::list_rendered(&state, &caller, query, |items| {
        let (items, next) = paginate(items, limit, |v| v.auth.id.to_string());
        let data: Vec<AuthDto<'_>> = items.iter().map(|v| AuthDto::from_view(v, aid)).collect();
        let body = Listed(data, next).render().map_err(|e| {
            Error::Internal(anyhow::Error::new(e).context("serializing a page of auths"))
        })?;
        Ok(Bytes::from(body))
    })
    .await?;
    Ok(json_bytes(StatusCode::OK, body))
}

async fn read(
    caller: Authed<perm::AuthsRead>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = AuthId::parse(&id).ok_or_else(ApiError::not_found)?;
    let view = auths::read(&state, &caller, &rid, id).await?;
    Ok(Success(
        StatusCode::OK,
        AuthDto::from_view(&view, caller.account_aid),
    )
    .into_response())
}

async fn remove(
    caller: Authed<perm::AuthsWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = AuthId::parse(&id).ok_or_else(ApiError::not_found)?;
    auths::delete(&state, &caller, &rid, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
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
    let req = TokenRequest::new(
        scopes,
        body.expires,
        body.name.map(Name::parse).transpose()?,
        body.label.map(Label::parse).transpose()?,
        body.description.map(Description::parse).transpose()?,
    );
    let issued = auths::create_token(&state, &caller, &rid, req).await?;
    let body = CreatedToken {
        auth: AuthDto::from_view(&issued.view, caller.account_aid),
        config: [ConfigEntry::api_key(issued.token.expose())],
    };
    Ok(Success(StatusCode::CREATED, body).into_response())
}
