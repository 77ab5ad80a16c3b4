//! The entity data surface the roles guard: `POST /collect/json/{stream}` upserts user
//! profiles (needs `data.upload`), `GET /api/entity/user/{field}/{value}` reads one (needs
//! `entity.read`). Fields named in the account's `schema_user_private_fields` setting are
//! removed from reads, and refused as the lookup field, unless the caller holds `entity.pii`.
//!
//! Each upload is audited (`entity.upload`, in the upsert's transaction) with its stream and
//! counts only — how many records and fields — never a key or a value.

use authd_core::audit::{Audit, AuditAction};
use authd_core::roles::Permission;
use authd_core::settings::{valid_field_name, SettingSlug};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiPath, Authed};
use super::Success;
use crate::audit::{By, RequestId};
use crate::settings;
use crate::state::AppState;

/// The only entity kind so far.
const USER: &str = "user";
/// Longest accepted key value.
const MAX_KEY: usize = 512;

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

/// The key of one uploaded profile: a non-empty string or a number, as text.
fn key_of(i: usize, obj: &Map<String, Value>, field: &str) -> ApiResult<String> {
    let key = match obj.get(field) {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_KEY => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "Record {i} needs a {field:?} field (a non-empty string of at most {MAX_KEY} characters, or a number)"
            )))
        }
    };
    Ok(key)
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
    let field = state.config.entity_key_field.as_str();
    let items = objects
        .into_iter()
        .enumerate()
        .map(|(i, o)| Ok((key_of(i, &o, field)?, Value::Object(o))))
        .collect::<ApiResult<Vec<_>>>()?;
    let entry = By::caller(&state, &caller, &rid).entry(
        AuditAction::EntityUpload,
        &stream,
        &upload_detail(&items),
    );
    state
        .store
        .upsert_entities(
            caller.account_id,
            USER,
            &items,
            state.clock.now_ms(),
            Audit::Entry(entry),
        )
        .await?;
    tracing::debug!(account = %caller.account_id, stream, count = items.len(), "profiles collected");
    Ok(Success(
        StatusCode::OK,
        json!({"stream": stream, "count": items.len(), "key_field": field}),
    )
    .into_response())
}

/// The audit detail of an upload: the entity kind and counts, never a key or a value.
fn upload_detail(items: &[(String, Value)]) -> String {
    let fields: usize = items
        .iter()
        .map(|(_, v)| v.as_object().map_or(0, Map::len))
        .sum();
    format!("kind {USER}; records {}; fields {fields}", items.len())
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
    let private = settings::get(
        &state.records,
        caller.account_id,
        SettingSlug::SchemaUserPrivateFields,
    )
    .await?
    .value;
    let private: Vec<&str> = private
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let pii = caller.permissions.contains(Permission::PiiRead);
    if !pii && private.contains(&field.as_str()) {
        return Err(ApiError::Http(
            StatusCode::FORBIDDEN,
            format!("Not authorized: {field:?} is a private field and this token's roles do not grant entity.pii"),
        ));
    }
    let mut profile = state
        .store
        .find_entity(caller.account_id, USER, &field, &value)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !pii {
        if let Some(obj) = profile.as_object_mut() {
            for f in &private {
                obj.remove(*f);
            }
        }
    }
    Ok(Success(StatusCode::OK, profile).into_response())
}
