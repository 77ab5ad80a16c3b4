//! The one error type handlers return, and its mapping to the Lytics error envelope
//! `{"status":<code>,"message":"…","data":null}`.
//!
//! **Invariant:** no error message echoes a credential. Every message goes through
//! [`envelope`], which redacts whatever looks like a token (`authd_core::text::redact`), so a
//! message may quote the input that caused it (a serde error, an invalid duration) safely.
//!
//! **Invariant:** a 5xx body never carries the cause. Internal and unavailable errors are
//! logged here with a short random reference that the body repeats, so an operator can find
//! the log line without the client learning anything about the internals.

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

fn reference() -> String {
    format!("{:08x}", rand_u32())
}

fn rand_u32() -> u32 {
    // An incident reference, not a secret: the id generator's randomness is plenty.
    let b = authd_core::ids::AuthId::generate();
    let [a, b2, c, d, ..] = *b.as_bytes();
    u32::from_be_bytes([a, b2, c, d])
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
                Error::Unavailable(cause) => {
                    let r = reference();
                    tracing::error!(reference = %r, error = format!("{cause:#}"), "dependency unavailable");
                    envelope(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &format!("Service temporarily unavailable (reference {r})"),
                    )
                }
                Error::Internal(cause) => {
                    let r = reference();
                    tracing::error!(reference = %r, error = format!("{cause:#}"), "internal error");
                    envelope(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("Internal error (reference {r})"),
                    )
                }
            },
        }
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;
