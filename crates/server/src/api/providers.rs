//! `/api/provider`: the provider catalog.

use authd_core::provider;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::dto::ProviderDto;
use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiPath, Authed};
use super::{Listed, Success};
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/provider", get(list))
        .route("/api/provider/{id}", get(read))
}

async fn list(_caller: Authed<perm::ProvidersRead>) -> Response {
    let data = provider::builtin_catalog()
        .iter()
        .map(ProviderDto::from)
        .collect();
    Listed(data, None).into_response()
}

async fn read(
    _caller: Authed<perm::ProvidersRead>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let p = provider::builtin(&id).ok_or_else(ApiError::not_found)?;
    Ok(Success(StatusCode::OK, ProviderDto::from(&p)).into_response())
}
