//! `/api/account`: the caller's own account. Another account is never visible: it answers
//! exactly like one that does not exist. Both answer from the account cache
//! ([`crate::records`]).

use authd_core::ids::AccountId;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::dto::AccountDto;
use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiPath, Authed};
use super::{Listed, Success};
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/account", get(list))
        .route("/api/account/{id}", get(read))
}

async fn list(
    caller: Authed<perm::AccountRead>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let acct = state
        .records
        .account(caller.account_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Listed(vec![AccountDto::from(acct.as_ref())], None).into_response())
}

async fn read(
    caller: Authed<perm::AccountRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let own = id == "current"
        || AccountId::parse(&id) == Some(caller.account_id)
        || id.parse::<i64>().ok() == Some(caller.account_aid);
    if !own {
        return Err(ApiError::not_found());
    }
    let acct = state
        .records
        .account(caller.account_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Success(StatusCode::OK, AccountDto::from(acct.as_ref())).into_response())
}
