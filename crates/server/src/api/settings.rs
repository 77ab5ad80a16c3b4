//! `/api/account/setting`: the account's settings. Reading needs `settings.read`, changing
//! needs `settings.write` (the role matrix). PUT takes the raw JSON value as the body; a value
//! of the wrong type is 400, an unknown slug 404, and DELETE resets to the default.

use authd_core::clock::rfc3339;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::Value;

use super::error::ApiResult;
use super::extract::{perm, ApiJson, ApiPath, Authed};
use super::Success;
use crate::audit::RequestId;
use crate::settings::{self, Setting};
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/account/setting", get(list))
        .route(
            "/api/account/setting/{slug}",
            get(read).put(write).delete(reset),
        )
}

/// The wire shape of a setting.
#[derive(Debug, Serialize)]
struct SettingDto {
    slug: &'static str,
    value: Value,
    description: &'static str,
    is_default: bool,
    updated: String,
}

impl From<Setting> for SettingDto {
    fn from(s: Setting) -> Self {
        Self {
            slug: s.slug.slug(),
            description: s.slug.description(),
            value: s.value,
            is_default: s.is_default,
            updated: rfc3339(s.updated_ms),
        }
    }
}

async fn list(
    caller: Authed<perm::SettingsRead>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let all = settings::list(&state.records, caller.account_id).await?;
    let data: Vec<SettingDto> = all.into_iter().map(SettingDto::from).collect();
    Ok(Success(StatusCode::OK, data).into_response())
}

async fn read(
    caller: Authed<perm::SettingsRead>,
    State(state): State<AppState>,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Response> {
    let slug = settings::slug(&slug)?;
    let s = settings::get(&state.records, caller.account_id, slug).await?;
    Ok(Success(StatusCode::OK, SettingDto::from(s)).into_response())
}

async fn write(
    caller: Authed<perm::SettingsWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(slug): ApiPath<String>,
    ApiJson(value): ApiJson<Value>,
) -> ApiResult<Response> {
    let slug = settings::slug(&slug)?;
    let s = settings::put_by_caller(&state, &caller, &rid, slug, &value).await?;
    Ok(Success(StatusCode::OK, SettingDto::from(s)).into_response())
}

async fn reset(
    caller: Authed<perm::SettingsWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Response> {
    let slug = settings::slug(&slug)?;
    settings::reset_by_caller(&state, &caller, &rid, slug).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
