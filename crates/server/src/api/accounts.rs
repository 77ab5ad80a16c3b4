//! `/api/account`: the caller's own account. Another account is never visible: it answers
//! exactly like one that does not exist. Both answer from the account cache
//! ([`crate::records`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::dto::AccountDto;
use super::error::ApiResult;
use super::extract::{perm, ApiPath, Authed};
use super::{Listed, Success};
use crate::services::accounts;
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
    let acct = accounts::own(&state, &caller).await?;
    Ok(Listed(vec![AccountDto::from(acct.as_ref())], None).into_response())
}

async fn read(
    caller: Authed<perm::AccountRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let acct = accounts::read(&state, &caller, &id).await?;
    Ok(Success(StatusCode::OK, AccountDto::from(acct.as_ref())).into_response())
}
