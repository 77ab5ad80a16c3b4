//! `/api/work`: import/export jobs. A work lists the auths it uses (all of the caller's
//! account); an identical workflow+config in the same account is refused with
//! `Duplicate work config`; `statuscode` follows the state machine in `authd_core::work`.
//! Deleting an auth detaches it from works and stops them (see `credentials::delete`).

use authd_core::clock::rfc3339;
use authd_core::ids::{AuthId, WorkId};
use authd_core::model::Page;
use authd_core::work::{Work, WorkStatus};
use authd_core::Error;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiJson, ApiPath, ApiQuery, Authed};
use super::{paginate, Listed, PageQuery, Success};
use crate::audit::{self, RequestId};
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/work", get(list).post(create))
        .route("/api/work/{id}", get(read).delete(remove))
}

/// Largest accepted work config (canonical JSON), in bytes.
const MAX_CONFIG: usize = 64 * 1024;
/// Most auths per work.
const MAX_AUTHS: usize = 32;

/// A work on the wire.
#[derive(Debug, Serialize)]
struct WorkDto {
    id: String,
    aid: i64,
    account_id: String,
    user_id: String,
    name: String,
    description: String,
    workflow: String,
    config: Value,
    auth_ids: Vec<String>,
    statuscode: &'static str,
    status_reason: String,
    created: String,
    updated: String,
    created_ms: i64,
    updated_ms: i64,
}

fn dto(w: &Work, aid: i64) -> WorkDto {
    WorkDto {
        id: w.id.to_string(),
        aid,
        account_id: w.account_id.to_string(),
        user_id: w.user_id.map(|u| u.to_string()).unwrap_or_default(),
        name: w.name.clone(),
        description: w.description.clone(),
        workflow: w.workflow.clone(),
        config: serde_json::from_str(&w.config).unwrap_or(Value::Null),
        auth_ids: w.auth_ids.iter().map(ToString::to_string).collect(),
        statuscode: w.status.as_str(),
        status_reason: w.status_reason.clone(),
        created: rfc3339(Some(w.created_ms)),
        updated: rfc3339(Some(w.updated_ms)),
        created_ms: w.created_ms,
        updated_ms: w.updated_ms,
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkBody {
    name: Option<String>,
    description: Option<String>,
    workflow: Option<String>,
    config: Option<Value>,
    auth_ids: Option<Vec<String>>,
    statuscode: Option<String>,
    #[allow(dead_code)]
    account_id: Option<String>,
}

fn short_text(field: &str, v: Option<String>) -> ApiResult<String> {
    let s = v.unwrap_or_default();
    authd_core::text::validate(field, &s, 256)?;
    Ok(s)
}

async fn list(
    caller: Authed<perm::WorksRead>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let limit = q.limit()?;
    let after = q.after(WorkId::parse)?;
    let works = state
        .store
        .list_works(
            caller.account_id,
            Page {
                after,
                limit: limit + 1,
            },
        )
        .await?;
    let (works, next) = paginate(works, limit, |w| w.id.to_string());
    let data = works.iter().map(|w| dto(w, caller.account_aid)).collect();
    Ok(Listed(data, next).into_response())
}

async fn create(
    caller: Authed<perm::WorksWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiJson(body): ApiJson<WorkBody>,
) -> ApiResult<Response> {
    let workflow = short_text("workflow", body.workflow)?;
    if workflow.is_empty() {
        return Err(ApiError::bad_request("workflow is required"));
    }
    let config = match body.config.unwrap_or(Value::Object(serde_json::Map::new())) {
        v @ Value::Object(_) => v,
        _ => return Err(ApiError::bad_request("config must be a JSON object")),
    };
    // serde_json's map is ordered by key, so this text is canonical: two configs that differ
    // only in key order or whitespace are the same config.
    let config = serde_json::to_string(&config)
        .map_err(|_| ApiError::bad_request("config must be a JSON object"))?;
    // The config is shown to every reader of the work: no credential may hide in it (secrets
    // belong in an auth's write-only fields).
    if authd_core::text::looks_secret(&config) {
        return Err(ApiError::bad_request(
            "config must not contain an API token or other secret",
        ));
    }
    if config.len() > MAX_CONFIG {
        return Err(ApiError::bad_request(format!(
            "config must be at most {MAX_CONFIG} bytes"
        )));
    }
    let ids = body.auth_ids.unwrap_or_default();
    if ids.len() > MAX_AUTHS {
        return Err(ApiError::bad_request(format!(
            "auth_ids may list at most {MAX_AUTHS} auths"
        )));
    }
    let mut auth_ids = Vec::with_capacity(ids.len());
    for s in &ids {
        let id = AuthId::parse(s)
            .ok_or_else(|| ApiError::bad_request("auth_ids: every id is 32 lowercase hex"))?;
        if auth_ids.contains(&id) {
            return Err(ApiError::bad_request(format!(
                "auth_ids: {id} is listed twice"
            )));
        }
        auth_ids.push(id);
    }
    let status = match body.statuscode.as_deref() {
        None | Some("") => WorkStatus::Sleeping,
        Some(s) => WorkStatus::parse(s)
            .filter(|w| w.is_initial())
            .ok_or_else(|| {
                ApiError::bad_request("statuscode: a work starts sleeping, running or paused")
            })?,
    };
    let now = state.clock.now_ms();
    let work = state
        .store
        .create_work(Work {
            id: WorkId::generate(),
            account_id: caller.account_id,
            user_id: caller.user_id,
            name: short_text("name", body.name)?,
            description: short_text("description", body.description)?,
            workflow,
            config,
            auth_ids,
            status,
            status_reason: String::new(),
            created_ms: now,
            updated_ms: now,
        })
        .await
        .map_err(|e| match e {
            Error::Conflict(_) => ApiError::bad_request("Duplicate work config"),
            other => other.into(),
        })?;
    audit::record(
        &state,
        &caller,
        &rid,
        "work.create",
        &work.id.to_string(),
        &format!(
            "workflow {}; {} auth(s)",
            work.workflow,
            work.auth_ids.len()
        ),
    )
    .await;
    Ok(Success(StatusCode::CREATED, dto(&work, caller.account_aid)).into_response())
}

async fn read(
    caller: Authed<perm::WorksRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = WorkId::parse(&id).ok_or_else(ApiError::not_found)?;
    let w = state
        .store
        .get_work(caller.account_id, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Success(StatusCode::OK, dto(&w, caller.account_aid)).into_response())
}

async fn remove(
    caller: Authed<perm::WorksWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = WorkId::parse(&id).ok_or_else(ApiError::not_found)?;
    if !state.store.delete_work(caller.account_id, id).await? {
        return Err(ApiError::not_found());
    }
    audit::record(&state, &caller, &rid, "work.delete", &id.to_string(), "").await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
