//! `/api/work`: import/export jobs. A work lists the auths it uses (all of the caller's
//! account); an identical workflow+config in the same account is refused with
//! `Duplicate work config`; `statuscode` follows the state machine in `authd_core::work`.
//! A work names its workflow by `workflow` (name) and/or `workflow_id` (id, or name) and
//! answers both; the answer carries every field of Lytics' work (docs/lytics-compat.md).
//! Deleting an auth detaches it from works and stops them (see
//! `crate::services::auths::delete`). The rules are the work service's
//! ([`crate::services::works`]).

use authd_core::clock::rfc3339;
use authd_core::ids::{AuthId, WorkId};
use authd_core::model::Page;
use authd_core::text::{Description, Name, Runtime, Tag, WorkConfig, WorkflowIdText, WorkflowName};
use authd_core::work::{Work, WorkStatus, WorkflowRef};
use authd_core::Error;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::de::IgnoredAny;
use serde::Serialize;
use serde_json::Value;

use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiJson, ApiPath, ApiQuery, Authed};
use super::{paginate, Listed, PageQuery, Success};
use crate::audit::RequestId;
use crate::services::works::{self, NewWork};
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/work", get(list).post(create))
        .route("/api/work/{id}", get(read).delete(remove))
}

/// Most auths per work.
const MAX_AUTHS: usize = 32;

/// A work on the wire: every field of Lytics' work answer (docs/lytics-compat.md) plus
/// authd's `name`, `description`, `status_reason` and the millisecond side fields.
#[derive(Debug, Serialize)]
struct WorkDto {
    id: String,
    aid: i64,
    account_id: String,
    user_id: String,
    name: String,
    description: String,
    workflow: String,
    workflow_id: String,
    config: Value,
    auth_ids: Vec<String>,
    statuscode: &'static str,
    status_reason: String,
    work_state_version: i64,
    tag: String,
    hidden: bool,
    verbose_logging: bool,
    runtime: String,
    created: String,
    updated: String,
    created_ms: i64,
    updated_ms: i64,
    /// Lytics' name for `updated_ms`.
    modified_ms: i64,
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
        workflow_id: w.workflow_id(),
        config: serde_json::from_str(&w.config).unwrap_or(Value::Null),
        auth_ids: w.auth_ids.iter().map(ToString::to_string).collect(),
        statuscode: w.status.as_str(),
        status_reason: w.status_reason.clone(),
        work_state_version: w.state_version,
        tag: w.tag.clone(),
        hidden: w.hidden,
        verbose_logging: w.verbose_logging,
        runtime: w.runtime.clone(),
        created: rfc3339(Some(w.created_ms)),
        updated: rfc3339(Some(w.updated_ms)),
        created_ms: w.created_ms,
        updated_ms: w.updated_ms,
        modified_ms: w.updated_ms,
    }
}

/// A work to create. Unknown fields are refused (a typo would otherwise be silently lost),
/// but the fields of the answer that the server assigns are accepted and ignored, because
/// clients post their whole work struct back (go-lytics' `CreateWork` does).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkBody {
    name: Option<String>,
    description: Option<String>,
    workflow: Option<String>,
    workflow_id: Option<String>,
    config: Option<Value>,
    auth_ids: Option<Vec<String>>,
    statuscode: Option<String>,
    tag: Option<String>,
    hidden: Option<bool>,
    verbose_logging: Option<bool>,
    runtime: Option<String>,
    // Assigned by the server: accepted, ignored.
    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "aid")]
    _aid: Option<IgnoredAny>,
    #[serde(rename = "account_id")]
    _account_id: Option<IgnoredAny>,
    #[serde(rename = "user_id")]
    _user_id: Option<IgnoredAny>,
    #[serde(rename = "work_state_version")]
    _work_state_version: Option<IgnoredAny>,
    #[serde(rename = "status_reason")]
    _status_reason: Option<IgnoredAny>,
    #[serde(rename = "created")]
    _created: Option<IgnoredAny>,
    #[serde(rename = "updated")]
    _updated: Option<IgnoredAny>,
    #[serde(rename = "created_ms")]
    _created_ms: Option<IgnoredAny>,
    #[serde(rename = "updated_ms")]
    _updated_ms: Option<IgnoredAny>,
    #[serde(rename = "modified_ms")]
    _modified_ms: Option<IgnoredAny>,
    #[serde(rename = "progress")]
    _progress: Option<IgnoredAny>,
}

/// The work's workflow name and given workflow id from the body's `workflow` and
/// `workflow_id` (which holds a workflow id or, for some clients, the workflow's name). A
/// work named by id only takes the id as its name too: authd keeps no workflow catalog.
fn workflow_of(name: WorkflowName, id: WorkflowIdText) -> ApiResult<(String, String)> {
    let (name, id): (String, String) = (name.into(), id.into());
    if id.is_empty() {
        if name.is_empty() {
            return Err(ApiError::bad_request("workflow or workflow_id is required"));
        }
        return Ok((name, id));
    }
    match WorkflowRef::parse(&id) {
        WorkflowRef::Id(id) if name.is_empty() => Ok((id.clone(), id)),
        WorkflowRef::Id(id) => Ok((name, id)),
        WorkflowRef::Name(n) if name.is_empty() || name == n => Ok((n, String::new())),
        WorkflowRef::Name(_) => Err(ApiError::bad_request(
            "workflow and workflow_id name different workflows",
        )),
    }
}

/// An optional text field, parsed into its type (absent is empty).
fn text<T>(v: Option<String>, parse: fn(String) -> Result<T, Error>) -> ApiResult<T> {
    Ok(parse(v.unwrap_or_default())?)
}

async fn list(
    caller: Authed<perm::WorksRead>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let limit = q.limit()?;
    let page = Page::lookahead(q.after(WorkId::parse)?, limit);
    let works = works::list(&state, caller.account_id, page).await?;
    let (works, next) = paginate(works, limit, |w| w.id.to_string());
    let data = works.iter().map(|w| dto(w, caller.account_aid)).collect();
    Ok(Listed(data, next).into_response())
}

/// The body parsed into the service's input (every text, the config and the ids checked).
fn parse(body: WorkBody) -> ApiResult<NewWork> {
    let (workflow, workflow_id) = workflow_of(
        text(body.workflow, WorkflowName::parse)?,
        text(body.workflow_id, WorkflowIdText::parse)?,
    )?;
    let config = WorkConfig::parse(body.config)?;
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
        None | Some("") => None,
        Some(s) => Some(WorkStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request("statuscode: a work starts sleeping, running or paused")
        })?),
    };
    Ok(NewWork {
        name: text(body.name, Name::parse)?,
        description: text(body.description, Description::parse)?,
        workflow,
        workflow_id,
        config,
        auth_ids,
        status,
        tag: text(body.tag, Tag::parse)?,
        hidden: body.hidden.unwrap_or(false),
        verbose_logging: body.verbose_logging.unwrap_or(false),
        runtime: text(body.runtime, Runtime::parse)?,
    })
}

async fn create(
    caller: Authed<perm::WorksWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiJson(body): ApiJson<WorkBody>,
) -> ApiResult<Response> {
    let new = parse(body)?;
    let work = works::create(&state, &caller, &rid, new).await?;
    Ok(Success(StatusCode::CREATED, dto(&work, caller.account_aid)).into_response())
}

async fn read(
    caller: Authed<perm::WorksRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = WorkId::parse(&id).ok_or_else(ApiError::not_found)?;
    let w = works::read(&state, caller.account_id, id).await?;
    Ok(Success(StatusCode::OK, dto(&w, caller.account_aid)).into_response())
}

async fn remove(
    caller: Authed<perm::WorksWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id = WorkId::parse(&id).ok_or_else(ApiError::not_found)?;
    works::delete(&state, &caller, &rid, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
