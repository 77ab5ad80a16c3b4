//! The one error type handlers return, and its mapping to the Lytics error envelope
//! `{"status":<code>,"message":"…","data":null}`.
//!
//! **Invariant:** no error message echoes a credential. Every message goes through
//! [`envelope`], which redacts whatever looks like a token (`authd_core::text::redact`), so a
//! message may quote the input that caused it (a serde error, an invalid duration) safely.
//!
//! **Invariant:** a 5xx body never carries the cause. Internal and unavailable errors are
//! logged with the request id (by the request-id layer), and the body names that id as its
//! reference, so an operator can find the log line (and any audit entry) without the client
//! learning anything about the internals.

use authd_core::Error;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A handler error.
#[derive(Debug)]
pub enum ApiError {
    /// A domain error.
    Domain(Error),
    /// A client error detected at the HTTP layer, with its status and message.
    Http(StatusCode, String),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Domain(e)
    }
}

impl ApiError {
    /// 400 with a message.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::Http(StatusCode::BAD_REQUEST, msg.into())
    }

    /// 404 with the standard message.
    pub fn not_found() -> Self {
        ApiError::Domain(Error::NotFound)
    }
}

/// Builds an error envelope response; anything in `message` that looks like a credential is
/// redacted.
pub fn envelope(status: StatusCode, message: &str) -> Response {
    let message = authd_core::text::redact(message);
    #[derive(serde::Serialize)]
    struct Body<'a> {
        status: u16,
        message: &'a str,
        data: Option<()>,
    }
    let body = Body {
        status: status.as_u16(),
        message: &message,
        data: None,
    };
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"authd\""),
        );
    }
    resp
}

/// A 5xx envelope with a fixed message; the request-id layer logs `cause` with the request
/// id and appends the id to the body as its reference
/// (`crate::request_id::reference_server_errors`).
pub fn server_error(
    status: StatusCode,
    message: &'static str,
    cause: Option<anyhow::Error>,
) -> Response {
    let mut resp = envelope(status, message);
    resp.extensions_mut()
        .insert(crate::request_id::ServerError {
            message,
            cause: cause.map(std::sync::Arc::new),
        });
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Http(status, msg) => envelope(status, &msg),
            ApiError::Domain(e) => match e {
                Error::NotFound => envelope(StatusCode::NOT_FOUND, "Not found"),
                Error::Conflict(m) => envelope(StatusCode::CONFLICT, &m),
                Error::Invalid(m) => envelope(StatusCode::BAD_REQUEST, &m),
                Error::Unauthenticated => envelope(StatusCode::UNAUTHORIZED, "Not authorized"),
                Error::Expired => envelope(StatusCode::UNAUTHORIZED, "Expired Token"),
                Error::Forbidden(m) => envelope(StatusCode::FORBIDDEN, &m),
                // Logged with the request id that the body quotes as its reference.
                Error::Unavailable(cause) => server_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service temporarily unavailable",
                    Some(cause),
                ),
                Error::Internal(cause) => server_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    Some(cause),
                ),
            },
        }
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;
