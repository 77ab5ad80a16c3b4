//! `GET /api/audit`: the caller's account's audit trail, newest first (admin only).
//! Filters `action`, `target`, `actor` match exactly; `_next` is the sequence number to
//! continue below.

use authd_core::audit::{AuditEntry, AuditFilter};
use authd_core::clock::rfc3339;
use authd_core::model::with_lookahead;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiQuery, Authed};
use super::{paginate, Listed, PageQuery};
use crate::services::audit;
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/audit", get(list))
}

#[derive(Debug, Serialize)]
struct AuditDto {
    seq: i64,
    at: String,
    at_ms: i64,
    account_id: String,
    actor: String,
    action: &'static str,
    target: String,
    outcome: String,
    request_id: String,
    detail: String,
}

impl From<&AuditEntry> for AuditDto {
    fn from(e: &AuditEntry) -> Self {
        Self {
            seq: e.seq,
            at: rfc3339(Some(e.at_ms)),
            at_ms: e.at_ms,
            account_id: e.account_id.map(|a| a.to_string()).unwrap_or_default(),
            actor: e.actor.clone(),
            action: e.action.as_str(),
            target: e.target.clone(),
            outcome: e.outcome.clone(),
            request_id: e.request_id.clone(),
            detail: e.detail.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    action: Option<String>,
    target: Option<String>,
    actor: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

async fn list(
    caller: Authed<perm::AuditRead>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let limit = q.page.limit()?;
    let before = match q.page.next.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::bad_request("Invalid _next cursor"))?,
        ),
    };
    let filter = AuditFilter {
        action: nonempty(q.action),
        target: nonempty(q.target),
        actor: nonempty(q.actor),
    };
    let items = audit::list(
        &state,
        caller.account_id,
        filter,
        before,
        with_lookahead(limit),
    )
    .await?;
    let (items, next) = paginate(items, limit, |e| e.seq.to_string());
    Ok(Listed(items.iter().map(AuditDto::from).collect(), next).into_response())
}
