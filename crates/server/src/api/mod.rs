//! The HTTP API: the router, the success envelope and the wire DTOs.
//!
//! Each resource module exposes `router()`; this module merges them, adds the fallbacks (404,
//! 405 in the envelope), the body limit, panic catching, the request id (`crate::request_id`)
//! and request tracing. Request spans record the matched route and the request id — never the
//! URI, whose query may carry a token.

pub mod accounts;
pub mod audit;
pub mod auths;
pub mod credentials;
pub mod dto;
pub mod entities;
pub mod error;
pub mod extract;
pub mod health;
pub mod providers;
pub mod rotate;
pub mod settings;
pub mod token_info;
pub mod users;
pub mod works;

use std::any::Any;

use authd_core::model::MAX_PAGE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serialize;

use crate::state::AppState;

/// Builds the whole API router over `state`.
pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit_bytes;
    let router = Router::new()
        .merge(health::router())
        .merge(auths::router())
        .merge(accounts::router())
        .merge(users::router())
        .merge(providers::router())
        .merge(settings::router())
        .merge(entities::router())
        .merge(token_info::router())
        .merge(rotate::router())
        .merge(credentials::router())
        .merge(works::router())
        .merge(audit::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    crate::request_id::layered(router, limit)
}

async fn not_found() -> Response {
    error::envelope(StatusCode::NOT_FOUND, "Not found")
}

async fn method_not_allowed() -> Response {
    error::envelope(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// The answer to a handler's panic: a 500 in the envelope, the payload never echoed.
pub(crate) fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    // The panic payload may hold anything; it is not echoed.
    tracing::error!("handler panicked");
    error::server_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", None)
}

/// The Lytics success envelope `{"status":"success","data":…}` with an HTTP status.
pub struct Success<T>(pub StatusCode, pub T);

impl<T: Serialize> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<T> {
            status: &'static str,
            data: T,
        }
        json(
            self.0,
            &Body {
                status: "success",
                data: self.1,
            },
            ANSWER_BYTES,
        )
    }
}

/// The size most answers fit in (a token's record is about 600 bytes): the buffer is sized
/// once instead of growing from axum's 128 bytes through three copies.
const ANSWER_BYTES: usize = 1024;

/// `body` as a JSON answer, serialized into a buffer of `capacity` bytes to start with.
fn json(status: StatusCode, body: &impl Serialize, capacity: usize) -> Response {
    rendered(status, render(body, capacity))
}

/// The answer for a rendered body, or the 500 if it could not be serialized.
fn rendered(status: StatusCode, body: serde_json::Result<Vec<u8>>) -> Response {
    match body {
        Ok(buf) => json_bytes(status, buf.into()),
        Err(e) => error::server_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            Some(anyhow::Error::new(e).context("serializing an answer")),
        ),
    }
}

/// `body` serialized into a buffer of `capacity` bytes to start with.
fn render(body: &impl Serialize, capacity: usize) -> serde_json::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut buf, body)?;
    Ok(buf)
}

/// An answer whose JSON is already rendered.
fn json_bytes(status: StatusCode, body: axum::body::Bytes) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A page of a list: `{"status":"success","data":[…],"_next":"…"}` (`_next` only when more).
pub struct Listed<T>(pub Vec<T>, pub Option<String>);

impl<T: Serialize> Listed<T> {
    /// The answer's body, rendered.
    pub fn render(self) -> serde_json::Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Body<T> {
            status: &'static str,
            data: Vec<T>,
            #[serde(rename = "_next", skip_serializing_if = "Option::is_none")]
            next: Option<String>,
        }
        let capacity = ANSWER_BYTES * self.0.len().max(1);
        render(
            &Body {
                status: "success",
                data: self.0,
                next: self.1,
            },
            capacity,
        )
    }
}

impl<T: Serialize> IntoResponse for Listed<T> {
    fn into_response(self) -> Response {
        rendered(StatusCode::OK, self.render())
    }
}

/// Pagination query parameters shared by list endpoints.
#[derive(Debug, serde::Deserialize)]
pub struct PageQuery {
    /// Page size (1–[`MAX_PAGE`], default 100).
    pub limit: Option<String>,
    /// Cursor from the previous page.
    #[serde(rename = "_next")]
    pub next: Option<String>,
}

impl PageQuery {
    /// Validated page size.
    pub fn limit(&self) -> Result<u32, error::ApiError> {
        match self.limit.as_deref() {
            None | Some("") => Ok(100),
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    error::ApiError::bad_request(format!(
                        "limit must be an integer from 1 to {MAX_PAGE}"
                    ))
                }),
        }
    }

    /// Parsed cursor (an id); a malformed cursor is 400.
    pub fn after<T>(&self, parse: fn(&str) -> Option<T>) -> Result<Option<T>, error::ApiError> {
        match self.next.as_deref() {
            None | Some("") => Ok(None),
            Some(s) => parse(s)
                .map(Some)
                .ok_or_else(|| error::ApiError::bad_request("Invalid _next cursor")),
        }
    }
}

/// Splits a page fetched with its look-ahead row ([`Page::lookahead`] /
/// [`with_lookahead`](authd_core::model::with_lookahead)) into the page of at most `limit`
/// items and its `_next` cursor, present exactly when the look-ahead row came back.
///
/// [`Page::lookahead`]: authd_core::model::Page::lookahead
pub fn paginate<T>(
    mut items: Vec<T>,
    limit: u32,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(key);
        (items, next)
    } else {
        (items, None)
    }
}
