//! Asking authd about a token: `GET /api/auth/self` (the caller's own token) and
//! `POST /api/auth/introspect` (RFC 7662 for other services; needs `tokens.introspect`).
//! Neither ever returns a secret. The contract is documented in `docs/introspection.md`.
//! Both answer from the token cache's record (no store read when the token is cached).

use authd_core::clock::rfc3339;
use authd_core::roles::{Permission, PermissionSet};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::extract::{perm, Authed};
use super::Success;
use crate::state::AppState;
use crate::tokens::Principal;

/// Routes (static segments beside `/api/auth/{id}`; axum prefers static ones).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/self", get(me))
        .route("/api/auth/introspect", post(introspect))
}

fn permission_names(p: PermissionSet) -> Vec<&'static str> {
    p.iter().map(Permission::name).collect()
}

/// The caller's own token.
#[derive(Debug, Serialize)]
struct SelfDto {
    id: String,
    account_id: String,
    aid: i64,
    user_id: String,
    name: String,
    auth_type: &'static str,
    scopes: Vec<&'static str>,
    permissions: Vec<&'static str>,
    expires: String,
    created: String,
    pii: bool,
}

async fn me(
    caller: Authed<perm::AccountRead>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let p: &Principal = &caller;
    let auth = state
        .tokens
        .own_record(p)
        .await?
        .ok_or(authd_core::Error::Unauthenticated)?;
    let dto = SelfDto {
        id: p.auth_id.to_string(),
        account_id: p.account_id.to_string(),
        aid: p.account_aid,
        user_id: p.user_id.map(|u| u.to_string()).unwrap_or_default(),
        name: auth.name.clone(),
        auth_type: "api_token",
        scopes: p.scopes.slugs(),
        permissions: permission_names(p.permissions),
        expires: rfc3339(p.expires_ms),
        created: rfc3339(Some(auth.created_ms)),
        pii: p.permissions.contains(Permission::PiiRead),
    };
    Ok(Success(StatusCode::OK, dto).into_response())
}

#[derive(Debug, Deserialize)]
struct IntrospectBody {
    token: Option<String>,
    /// Accepted per RFC 7662; authd has one token type.
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// RFC 7662 answer. An inactive token is `{"active": false}` and nothing else.
#[derive(Debug, Serialize, Default)]
struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pii: Option<bool>,
}

fn parse_body(headers: &HeaderMap, bytes: &[u8]) -> ApiResult<IntrospectBody> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if form {
        let text =
            std::str::from_utf8(bytes).map_err(|_| ApiError::bad_request("Invalid form body"))?;
        let uri = format!("/?{text}")
            .parse()
            .map_err(|_| ApiError::bad_request("Invalid form body"))?;
        axum::extract::Query::<IntrospectBody>::try_from_uri(&uri)
            .map(|q| q.0)
            .map_err(|e| ApiError::bad_request(format!("Invalid form body: {}", e.body_text())))
    } else {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
    }
}

async fn introspect(
    caller: Authed<perm::TokenIntrospect>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let bytes = axum::body::to_bytes(body, 16 * 1024).await.map_err(|_| {
        ApiError::Http(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large".into(),
        )
    })?;
    let req = parse_body(&headers, &bytes)?;
    let token = req
        .token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("token is required"))?;
    let answer = match state
        .tokens
        .introspect(caller.account_id, token.trim())
        .await?
    {
        Some((p, auth)) => Introspection {
            active: true,
            scope: Some(p.scopes.slugs().join(" ")),
            client_id: Some(p.auth_id.to_string()),
            token_type: Some("api_token"),
            exp: p.expires_ms.map(|e| e.div_euclid(1000)),
            iat: Some(auth.created_ms.div_euclid(1000)),
            sub: Some(
                p.user_id
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| p.auth_id.to_string()),
            ),
            account_id: Some(p.account_id.to_string()),
            aid: Some(p.account_aid),
            permissions: Some(permission_names(p.permissions)),
            pii: Some(p.permissions.contains(Permission::PiiRead)),
        },
        None => Introspection::default(),
    };
    let mut resp = Success(StatusCode::OK, answer).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
