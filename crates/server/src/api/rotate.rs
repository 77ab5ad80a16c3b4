//! `POST /api/auth/{id}/rotate`: replaces an API token with a new one (same roles, name and
//! expiry rule), shown once, and keeps the old one valid for an optional `grace` window (a Go
//! duration, default 0, at most 168h). Needs `auths.write` and `tokens.create`, both in the
//! handler's signature. The rules are the token service's ([`crate::tokens`]).

use authd_core::clock::rfc3339;
use authd_core::ids::AuthId;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::dto::{AuthDto, ConfigEntry, CreatedToken};
use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiPath, ApiQuery, Authed};
use super::Success;
use crate::audit::RequestId;
use crate::services::auths;
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/auth/{id}/rotate", post(rotate))
}

/// The optional JSON body: `{"grace": "1h"}`. Unknown fields are refused so a typo cannot
/// silently mean "no grace".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    grace: Option<String>,
}

/// The query may carry `grace` too (beside credentials such as `access_token`).
#[derive(Debug, Default, Deserialize)]
struct RotateQuery {
    grace: Option<String>,
}

#[derive(Debug, Serialize)]
struct RotatedDto<'a> {
    #[serde(flatten)]
    created: CreatedToken<'a>,
    rotated_from: String,
    previous_valid_until: String,
}

async fn rotate(
    caller: Authed<(perm::AuthsWrite, perm::TokensCreate)>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RotateQuery>,
    body: Body,
) -> ApiResult<Response> {
    let id = AuthId::parse(&id).ok_or_else(ApiError::not_found)?;
    let bytes = axum::body::to_bytes(body, 16 * 1024).await.map_err(|_| {
        ApiError::Http(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large".into(),
        )
    })?;
    let from_body = if bytes.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        serde_json::from_slice::<RotateBody>(&bytes)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?
    };
    let grace = from_body.grace.or(query.grace);
    let r = auths::rotate(&state, &caller, &rid, id, grace.as_deref()).await?;
    let body = RotatedDto {
        created: CreatedToken {
            auth: AuthDto::from_view(&r.issued.view, caller.account_aid),
            config: [ConfigEntry::api_key(r.issued.token.expose())],
        },
        rotated_from: r.old.to_string(),
        previous_valid_until: rfc3339(Some(r.old_valid_until_ms)),
    };
    Ok(Success(StatusCode::CREATED, body).into_response())
}
