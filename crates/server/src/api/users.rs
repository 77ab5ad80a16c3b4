//! `/api/user`: users of the caller's account. Reading needs `users.read`; creating,
//! changing (including granting roles) and deleting need `users.manage`, which only admin has.
//! Every call goes to the user service ([`crate::services::users`]), whose changes reach the
//! user's tokens; taking `admin` from the account's last admin user is refused with 409. A
//! single user is read from the user cache ([`crate::records`]).

use authd_core::ids::UserId;
use authd_core::model::{Page, UserPatch};
use authd_core::roles::RoleSet;
use authd_core::text::{Email, UserName};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::dto::UserDto;
use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiJson, ApiPath, ApiQuery, Authed};
use super::{paginate, Listed, PageQuery, Success};
use crate::audit::RequestId;
use crate::services::users::{self, NewUser};
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/user", get(list).post(create))
        .route("/api/user/{id}", get(read).put(update).delete(remove))
}

/// Roles as an array of slugs or a comma-separated string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Roles {
    List(Vec<String>),
    Csv(String),
}

impl Roles {
    fn parse(&self) -> ApiResult<RoleSet> {
        Ok(match self {
            Roles::List(v) => RoleSet::parse_slugs(v.iter().map(String::as_str))?,
            Roles::Csv(s) => RoleSet::parse_slugs(s.split(','))?,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    email: Option<String>,
    name: Option<String>,
    roles: Option<Roles>,
}

fn user_id(s: &str) -> ApiResult<UserId> {
    UserId::parse(s).ok_or_else(ApiError::not_found)
}

async fn list(
    caller: Authed<perm::UsersRead>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let limit = q.limit()?;
    let page = Page::lookahead(q.after(UserId::parse)?, limit);
    let users = users::list(&state, caller.account_id, page).await?;
    let (users, next) = paginate(users, limit, |u| u.id.to_string());
    let data = users
        .iter()
        .map(|u| UserDto::new(u, caller.account_aid))
        .collect();
    Ok(Listed(data, next).into_response())
}

async fn create(
    caller: Authed<perm::UsersManage>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiJson(body): ApiJson<UserBody>,
) -> ApiResult<Response> {
    let new = NewUser {
        email: Email::parse(
            body.email
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("email is required"))?,
        )?,
        name: UserName::parse(body.name.unwrap_or_default())?,
        roles: match &body.roles {
            Some(r) => r.parse()?,
            None => RoleSet::EMPTY,
        },
    };
    let user = users::create(&state, &caller, &rid, new).await?;
    Ok(Success(StatusCode::CREATED, UserDto::new(&user, caller.account_aid)).into_response())
}

async fn read(
    caller: Authed<perm::UsersRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let user = users::read(&state, caller.account_id, user_id(&id)?).await?;
    Ok(Success(StatusCode::OK, UserDto::new(&user, caller.account_aid)).into_response())
}

async fn update(
    caller: Authed<perm::UsersManage>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UserBody>,
) -> ApiResult<Response> {
    let id = user_id(&id)?;
    let patch = UserPatch {
        email: body
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()?
            .map(String::from),
        name: body
            .name
            .map(UserName::parse)
            .transpose()?
            .map(String::from),
        roles: body.roles.as_ref().map(Roles::parse).transpose()?,
        granted_by: caller.user_id,
    };
    let user = users::update(&state, &caller, &rid, id, patch).await?;
    Ok(Success(StatusCode::OK, UserDto::new(&user, caller.account_aid)).into_response())
}

async fn remove(
    caller: Authed<perm::UsersManage>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = user_id(&id)?;
    users::delete(&state, &caller, &rid, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
