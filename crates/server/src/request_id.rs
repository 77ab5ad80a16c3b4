//! One request id per request, from the edge to the log line, the audit entry and the 5xx
//! body.
//!
//! - An incoming `X-Request-Id` is kept when it is well-formed (1 to 128 characters of
//!   `A-Z a-z 0-9 - _ . :`, sent once); otherwise it is dropped and an id is generated
//!   (128 random bits, 32 hex digits) and set on the request's headers, where everything
//!   inside reads it ([`of`]).
//! - The id is returned on every response, recorded on the request's tracing span
//!   (`request_id`; a `debug` span, see [`layered`]) and on every 5xx log line, carried into
//!   audit entries through the [`crate::audit::RequestId`] extractor, and quoted as the
//!   reference of every 5xx body ([`reference_server_errors`]), so one id leads from a user's
//!   error report to the log line and the audit entry.
//!
//! Assigning the id, returning it and quoting it in a 5xx body are one service ([`Edge`]) with
//! one future: no extension map on the request or the response, no boxing per request.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request};
use axum::response::Response;
use axum::Router;
use tower::util::MapResponseLayer;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// The header carrying the id, both ways.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id accepted from a client.
pub const MAX_LEN: usize = 128;

/// Wraps a router (the API's and the worker's) in the edge layers, once around the whole
/// router rather than around each route (axum's `Router::layer` boxes and clones every layer
/// per route and request). From the outside in: the request id ([`Edge`]: assign, return,
/// quote in a 5xx body), catch a handler's panic (a 500 in the envelope), and set the body
/// limit. The request span needs the matched route, which only exists inside
/// the router, so it is a per-route layer, added only when `debug` is enabled (see
/// `request_span`).
pub fn layered(router: Router, body_limit: usize) -> Router {
    let router = if tracing::enabled!(tracing::Level::DEBUG) {
        router.layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span as fn(&Request<Body>) -> tracing::Span)
                .on_request(())
                .on_response(())
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
    } else {
        router
    };
    let edge = ServiceBuilder::new()
        .layer(EdgeLayer)
        .layer(MapResponseLayer::new(into_body))
        .layer(CatchPanicLayer::custom(
            crate::api::panic_response as fn(Box<dyn Any + Send + 'static>) -> Response,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .service(router);
    Router::new().fallback_service(edge)
}

/// The panic catcher's answers (a boxed body of its own) as axum's.
fn into_body<B>(resp: Response<B>) -> Response
where
    B: hyper::body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    resp.map(Body::new)
}

/// The request's span: method, matched route (never the URI, whose query may carry a token)
/// and request id; events logged while serving the request carry all three. It is a `debug`
/// span: at the default `info` level the layer that opens it is not even installed, which
/// saves about 3 µs of the token path (the fmt subscriber formats a span's fields when it
/// opens); 5xx log lines carry the request id themselves ([`reference_server_errors`]).
/// `RUST_LOG=debug` at start-up turns it on.
fn request_span(req: &Request<Body>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("<unmatched>");
    tracing::debug_span!(
        "request",
        method = %req.method(),
        route,
        request_id = of(req.headers()),
    )
}

/// The layer of [`Edge`].
#[derive(Clone, Copy, Debug)]
pub struct EdgeLayer;

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner }
    }
}

/// The request id at the edge: assigns it ([`assign`]), then puts it on the response and
/// quotes it in a 5xx body ([`reference_server_errors`]).
#[derive(Clone, Debug)]
pub struct Edge<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for Edge<S>
where
    S: Service<Request<Body>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let id = assign(&mut req);
        EdgeFuture {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Edge`].
    pub struct EdgeFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, E> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut resp = ready!(this.inner.poll(cx))?;
        if let Some(id) = this.id.take() {
            resp.headers_mut().insert(HEADER, id);
        }
        Poll::Ready(Ok(reference_server_errors(resp)))
    }
}

/// Gives the request its id: the client's if it sent exactly one well-formed value, else a
/// generated one ([`generate`]), which replaces whatever was sent. Returns the id for the
/// response.
pub fn assign<B>(req: &mut Request<B>) -> HeaderValue {
    let headers = req.headers_mut();
    let mut values = headers.get_all(&HEADER).iter();
    if let (Some(v), None) = (values.next(), values.next()) {
        if well_formed(v) {
            return v.clone();
        }
    }
    let id = generate();
    headers.insert(HEADER, id.clone());
    id
}

/// A new id: 128 random bits as 32 lowercase hex digits.
pub fn generate() -> HeaderValue {
    let mut id = [0u8; 32];
    // Fails only on a wrong output length, which is fixed here.
    let _ = hex::encode_to_slice(rand::random::<u128>().to_be_bytes(), &mut id);
    HeaderValue::from_bytes(&id)
        .unwrap_or_else(|_| HeaderValue::from_static("00000000000000000000000000000000"))
}

/// Whether a client-supplied id may be kept.
pub fn well_formed(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LEN
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// The id of a request, from its headers (empty only outside the router's layers, e.g. in
/// tests that call a handler directly).
pub fn of(headers: &HeaderMap) -> &str {
    headers
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Marks a response as a server error: its fixed, internals-free message for the body, and
/// the cause for the log line (never for the body).
#[derive(Clone, Debug)]
pub struct ServerError {
    /// What the client reads, before the reference.
    pub message: &'static str,
    /// What the operator reads in the log.
    pub cause: Option<std::sync::Arc<anyhow::Error>>,
}

/// Response side: a 5xx marked [`ServerError`] is logged at `error` with its request id and
/// cause, and gets the envelope `"<message> (reference <request id>)"`. [`Edge`] runs it
/// after putting the id in the response's headers.
pub fn reference_server_errors(mut resp: Response) -> Response {
    let status = resp.status();
    if !status.is_server_error() {
        return resp;
    }
    let Some(ServerError {
        message: msg,
        cause,
    }) = resp.extensions_mut().remove::<ServerError>()
    else {
        return resp;
    };
    let id = resp
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match cause {
        Some(cause) => tracing::error!(
            request_id = id,
            status = status.as_u16(),
            error = format!("{cause:#}"),
            "{msg}"
        ),
        None => tracing::error!(request_id = id, status = status.as_u16(), "{msg}"),
    }
    let body = serde_json::json!({
        "status": status.as_u16(),
        "message": format!("{msg} (reference {id})"),
        "data": null,
    });
    *resp.body_mut() = Body::from(body.to_string());
    resp.headers_mut()
        .remove(axum::http::header::CONTENT_LENGTH);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_accepted_only_when_well_formed() {
        for ok in ["a", "req-1_2.3:4", &"x".repeat(MAX_LEN)] {
            assert!(well_formed(&HeaderValue::from_str(ok).unwrap()), "{ok}");
        }
        for bad in ["", "has space", "semi;colon", "ü", &"x".repeat(MAX_LEN + 1)] {
            let v = HeaderValue::from_bytes(bad.as_bytes()).unwrap();
            assert!(!well_formed(&v), "{bad}");
        }
    }

    #[test]
    fn generated_ids_are_32_hex_digits_and_differ() {
        let (a, b) = (generate(), generate());
        let a = a.to_str().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b.to_str().unwrap());
    }

    #[test]
    fn one_well_formed_id_is_kept_and_anything_else_replaced() {
        let with = |values: &[&str]| {
            let mut req = Request::new(());
            for v in values {
                req.headers_mut()
                    .append(HEADER, HeaderValue::from_bytes(v.as_bytes()).unwrap());
            }
            let id = assign(&mut req);
            let on_request: Vec<_> = req.headers().get_all(HEADER).iter().cloned().collect();
            assert_eq!(
                on_request,
                vec![id.clone()],
                "the request carries the assigned id"
            );
            id.to_str().unwrap().to_owned()
        };
        assert_eq!(with(&["req-1"]), "req-1");
        for bad in [&[][..], &["has space"], &["a", "b"]] {
            let id = with(bad);
            assert_eq!(id.len(), 32, "{bad:?}");
            assert!(!bad.contains(&id.as_str()));
        }
    }
}
