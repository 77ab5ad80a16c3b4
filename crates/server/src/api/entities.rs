//! The entity data surface the roles guard: `POST /collect/json/{stream}` upserts user
//! profiles (needs `data.upload`), `GET /api/entity/user/{field}/{value}` reads one (needs
//! `entity.read`). Fields named in the account's `schema_user_private_fields` setting are
//! removed from reads, and refused as the lookup field, unless the caller holds `entity.pii`.
//!
//! The rules (keys, private fields, the upload's audit entry) are the entity service's
//! ([`crate::services::entities`]).

use authd_core::settings::valid_field_name;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiPath, Authed};
use super::Success;
use crate::audit::RequestId;
use crate::services::entities;
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/collect/json/{stream}", post(collect))
        .route("/api/entity/user/{field}/{value}", get(read_user))
}

fn too_large() -> ApiError {
    ApiError::Http(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body too large".into(),
    )
}

async fn collect(
    caller: Authed<perm::DataUpload>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(stream): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if !valid_field_name(&stream) {
        return Err(ApiError::bad_request(
            "Invalid stream name: use 1-128 letters, digits, '_', '-' or '.'",
        ));
    }
    let limit = state.config.collect_limit_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let objects = match value {
        Value::Object(o) => vec![o],
        Value::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Object(o) => Ok(o),
                _ => Err(ApiError::bad_request(format!(
                    "Record {i} is not a JSON object"
                ))),
            })
            .collect::<ApiResult<Vec<_>>>()?,
        _ => {
            return Err(ApiError::bad_request(
                "Expected a JSON object or an array of objects",
            ))
        }
    };
    let up = entities::upload(&state, &caller, &rid, &stream, objects).await?;
    Ok(Success(
        StatusCode::OK,
        json!({"stream": stream, "count": up.count, "key_field": up.key_field}),
    )
    .into_response())
}

async fn read_user(
    caller: Authed<perm::EntityRead>,
    State(state): State<AppState>,
    ApiPath((field, value)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    if !valid_field_name(&field) {
        return Err(ApiError::bad_request(
            "Invalid field name: use 1-128 letters, digits, '_', '-' or '.'",
        ));
    }
    let profile = entities::read_user(&state, &caller, &field, &value).await?;
    Ok(Success(StatusCode::OK, profile).into_response())
}
