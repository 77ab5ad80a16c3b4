//! `/api/user`: users of the caller's account. Reading needs `users.read`; creating,
//! changing (including granting roles) and deleting need `users.manage`, which only admin has.
//! Changes go through [`crate::users`], which carries them to the user's tokens; taking
//! `admin` from the account's last admin user is refused with 409. A single user is read
//! from the user cache ([`crate::records`]).

use authd_core::audit::{Audit, AuditAction, AuditEntry};
use authd_core::ids::UserId;
use authd_core::model::{Page, User, UserPatch};
use authd_core::roles::RoleSet;
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
use crate::audit::{self, RequestId};
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

fn valid_email(e: &str) -> ApiResult<String> {
    let e = e.trim();
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || authd_core::text::is_bidi_control(c))
        && !authd_core::text::looks_secret(e);
    if ok {
        Ok(e.to_owned())
    } else {
        Err(ApiError::bad_request("email must be a valid address"))
    }
}

fn valid_name(n: &str) -> ApiResult<String> {
    authd_core::text::validate("name", n, 200)?;
    Ok(n.trim().to_owned())
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
    let after = q.after(UserId::parse)?;
    let users = state
        .store
        .list_users(caller.account_id, Page::lookahead(after, limit))
        .await?;
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
    let email = valid_email(
        body.email
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("email is required"))?,
    )?;
    let name = valid_name(body.name.as_deref().unwrap_or(""))?;
    let roles = match &body.roles {
        Some(r) => r.parse()?,
        None => RoleSet::EMPTY,
    };
    let now = state.clock.now_ms();
    let by = audit::By::caller(&state, &caller, &rid);
    let entry = |u: &User| -> Vec<AuditEntry> {
        let detail = format!("roles {}", u.roles.slugs().join(","));
        vec![by.entry(AuditAction::UserCreate, &u.id.to_string(), &detail)]
    };
    let user = state
        .store
        .create_user(
            User {
                id: UserId::generate(),
                account_id: caller.account_id,
                email,
                name,
                roles,
                created_ms: now,
                updated_ms: now,
                last_logon_ms: None,
                granted_by: caller.user_id,
                roles_updated_ms: now,
            },
            Audit::Outcome(&entry),
        )
        .await?;
    tracing::info!(user = %user.id, roles = ?roles.slugs(), "user created");
    Ok(Success(StatusCode::CREATED, UserDto::new(&user, caller.account_aid)).into_response())
}

async fn read(
    caller: Authed<perm::UsersRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let user = state
        .records
        .user(caller.account_id, user_id(&id)?)
        .await?
        .ok_or_else(ApiError::not_found)?;
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
        email: body.email.as_deref().map(valid_email).transpose()?,
        name: body.name.as_deref().map(valid_name).transpose()?,
        roles: body.roles.as_ref().map(Roles::parse).transpose()?,
        granted_by: caller.user_id,
    };
    let by = audit::By::caller(&state, &caller, &rid);
    let user = crate::users::update(&state, &by, caller.account_id, id, patch)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tracing::info!(user = %user.id, roles = ?user.roles.slugs(), "user updated");
    Ok(Success(StatusCode::OK, UserDto::new(&user, caller.account_aid)).into_response())
}

async fn remove(
    caller: Authed<perm::UsersManage>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = user_id(&id)?;
    let by = audit::By::caller(&state, &caller, &rid);
    let revoked = crate::users::delete(&state, &by, caller.account_id, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tracing::info!(user = %id, revoked, "user deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
