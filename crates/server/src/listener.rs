//! Serving HTTP/1.1 on a listener with limits on what one client may cost: an accept loop over
//! hyper's HTTP/1 connection (axum's `serve` has no timeouts and no cap).
//!
//! - **Connection cap:** each connection holds a permit of a semaphore sized
//!   `max_connections`. A connection over the cap is answered `503` (the Lytics envelope) and
//!   closed at once, without reading its request, so the others are not disturbed.
//! - **Head timeout:** a request head must be complete within `head_timeout`, counted from the
//!   accept (a new connection) or from the head's first byte (a kept-alive one). Past it the
//!   client gets `408` if it had sent anything, and the connection is closed.
//! - **Idle timeout:** a kept-alive connection that sends nothing for `idle_timeout` after its
//!   last answer is closed (no answer: no request was made).
//! - **Body timeout:** a request body must be complete within `body_timeout` of its head. Past
//!   it the body read fails, and whatever the handler made of that is replaced by a `408`
//!   envelope with `Connection: close`.
//!
//! Shutdown stops accepting, asks every connection to finish its in-flight request and close,
//! and returns once every connection is gone (the limits bound how long that can take).
//! Handlers see the peer as `ConnectInfo<SocketAddr>`, as with axum's `serve`.
//! What hyper answers by itself (431, 414, 400 for a malformed head) is listed in docs/http.md.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep_until, Instant, Sleep};
use tower::ServiceExt;

use crate::config::HttpLimits;
use crate::quiet::{Kind, Quiet};

/// The largest request head (request line and headers) hyper buffers; a larger one is 431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Connections over the cap being answered at once; past that they are closed unanswered.
const REFUSING_AT_ONCE: usize = 64;
/// How long a refused or timed-out connection may take to receive its answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `stop` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    quiet: Arc<Quiet>,
    stop: impl Future<Output = ()>,
) {
    let permits = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let open = Arc::new(Semaphore::new(permits as usize));
    let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let (close_tx, close_rx) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Typically out of file descriptors: back off instead of spinning.
                        quiet.note(Kind::AcceptFailed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
        };
        match open.clone().try_acquire_owned() {
            Ok(permit) => {
                let conn = Conn {
                    router: router.clone(),
                    limits,
                    quiet: quiet.clone(),
                    peer,
                };
                tokio::spawn(conn.run(stream, close_rx.clone(), permit));
            }
            Err(_) => {
                quiet.note(Kind::OverCapacity);
                refuse(stream, &refusing);
            }
        }
    }
    drop(listener);
    let _ = close_tx.send(true);
    // Every connection holds one permit until it is gone.
    let _ = open.acquire_many(permits).await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// A raw HTTP/1.1 answer with an error envelope, for the paths where no hyper connection
/// writes it (over the cap, head timeout). It always closes the connection.
fn raw_envelope(status: StatusCode, message: &str) -> Vec<u8> {
    let body = serde_json::json!({ "status": status.as_u16(), "message": message, "data": null })
        .to_string();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

/// Answers a connection over the cap with 503 and closes it, in a task of its own so the
/// accept loop never waits on a client; past [`REFUSING_AT_ONCE`] it is just closed.
fn refuse(stream: TcpStream, refusing: &Arc<Semaphore>) {
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let answer = raw_envelope(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many connections; try again later",
        );
        answer_and_close(stream, &answer).await;
    });
}

/// Writes `answer`, half-closes, and reads what the client still sends (so that closing does
/// not reset the connection before the client read the answer), all within [`ANSWER_WITHIN`].
async fn answer_and_close(mut stream: TcpStream, answer: &[u8]) {
    let _ = tokio::time::timeout(ANSWER_WITHIN, async {
        stream.write_all(answer).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 4096];
        let mut total = 0usize;
        while total < 64 * 1024 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n;
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Where a connection is, for its deadline.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request head until `by`. `started`: part of it was received (or, for a
    /// new connection, the clock runs from the accept); otherwise the connection is idle.
    Waiting {
        by: Instant,
        started: bool,
        bytes: bool,
    },
    /// A request is being served: its body has its own deadline.
    Busy,
}

/// A connection's phase, shared by its reader (which sees a head's first byte) and its
/// service (which sees a request start and end), and the time its watchdog will next look.
///
/// The watchdog is not woken on every request: deadlines of a busy keep-alive connection
/// only move later, so it sleeps until the time it armed, finds the deadline moved, and
/// sleeps again; it is notified only when a deadline moves *earlier* than that time. A
/// connection costs its watchdog about one wake-up per timeout period, not two per request.
struct Activity {
    limits: HttpLimits,
    state: Mutex<Watch>,
    /// The current request's body missed its deadline (reset as each request starts; one
    /// request at a time on an HTTP/1 connection).
    body_timed_out: AtomicBool,
    /// Wakes the connection's watchdog when a deadline moves before its armed time.
    moved: tokio::sync::Notify,
}

#[derive(Clone, Copy, Debug)]
struct Watch {
    phase: Phase,
    /// When the watchdog will next look (`None`: it is not sleeping on a time).
    armed: Option<Instant>,
}

impl Activity {
    fn new(limits: HttpLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(Watch {
                phase: Phase::Waiting {
                    by: Instant::now() + limits.head_timeout,
                    started: true,
                    bytes: false,
                },
                armed: None,
            }),
            body_timed_out: AtomicBool::new(false),
            moved: tokio::sync::Notify::new(),
        }
    }

    /// Updates the phase with `f`; wakes the watchdog if the new deadline comes before the
    /// time it armed.
    fn set(&self, f: impl FnOnce(Phase) -> Phase) {
        let wake = match self.state.lock() {
            Ok(mut w) => {
                w.phase = f(w.phase);
                match (w.phase, w.armed) {
                    (Phase::Waiting { by, .. }, Some(armed)) => by < armed,
                    (Phase::Waiting { .. }, None) => true,
                    (Phase::Busy, _) => false,
                }
            }
            Err(_) => false,
        };
        if wake {
            self.moved.notify_one();
        }
    }

    fn get(&self) -> Phase {
        self.state.lock().map(|w| w.phase).unwrap_or(Phase::Busy)
    }

    /// The time the watchdog sleeps until: the deadline, or while a request is served (its
    /// body has its own deadline) a look again one head timeout later.
    fn arm(&self) -> Instant {
        let now = Instant::now();
        match self.state.lock() {
            Ok(mut w) => {
                let at = match w.phase {
                    Phase::Waiting { by, .. } => by,
                    Phase::Busy => now + self.limits.head_timeout,
                };
                w.armed = Some(at);
                at
            }
            Err(_) => now + self.limits.head_timeout,
        }
    }

    fn received(&self) {
        let head = self.limits.head_timeout;
        self.set(|p| match p {
            Phase::Waiting { started: false, .. } => Phase::Waiting {
                by: Instant::now() + head,
                started: true,
                bytes: true,
            },
            Phase::Waiting { by, started, .. } => Phase::Waiting {
                by,
                started,
                bytes: true,
            },
            Phase::Busy => Phase::Busy,
        });
    }

    fn request_started(&self) {
        self.body_timed_out.store(false, Ordering::Release);
        self.set(|_| Phase::Busy);
    }

    fn request_done(&self) {
        let idle = self.limits.idle_timeout;
        self.set(|_| Phase::Waiting {
            by: Instant::now() + idle,
            started: false,
            bytes: false,
        });
    }
}

/// The socket as hyper sees it, telling the connection's [`Activity`] when bytes arrive.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// One accepted connection.
struct Conn {
    router: Router,
    limits: HttpLimits,
    quiet: Arc<Quiet>,
    peer: SocketAddr,
}

impl Conn {
    async fn run(
        self,
        stream: TcpStream,
        mut close: watch::Receiver<bool>,
        _permit: OwnedSemaphorePermit,
    ) {
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new(self.limits));
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: activity.clone(),
        });
        let quiet = self.quiet.clone();
        let service = RequestService {
            conn: Arc::new(self),
            activity: activity.clone(),
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .max_buf_size(MAX_HEAD_BYTES)
            .header_read_timeout(None);
        let mut conn = builder.serve_connection(io, service);
        let mut closing = false;
        loop {
            let wake = activity.arm();
            tokio::select! {
                _ = &mut conn => return,
                _ = activity.moved.notified() => {}
                ok = async { close.wait_for(|c| *c).await.is_ok() }, if !closing => {
                    closing = true;
                    if ok {
                        Pin::new(&mut conn).graceful_shutdown();
                    }
                }
                _ = sleep_until(wake) => {
                    match activity.get() {
                        // The deadline moved (a byte or a request arrived): wait again.
                        Phase::Waiting { by, .. } if by > Instant::now() => {}
                        Phase::Busy => {}
                        Phase::Waiting { started: false, .. } => return,
                        Phase::Waiting { bytes, .. } => {
                            quiet.note(Kind::SlowClient);
                            if bytes {
                                let stream = conn.into_parts().io.into_inner().inner;
                                let answer = raw_envelope(
                                    StatusCode::REQUEST_TIMEOUT,
                                    "Request head not received in time",
                                );
                                answer_and_close(stream, &answer).await;
                            }
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The per-connection hyper service: hands each request to the router with the peer address
/// and a body deadline, and tracks the connection's phase.
#[derive(Clone)]
struct RequestService {
    conn: Arc<Conn>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for RequestService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        // Busy from the moment the head is parsed: its deadline no longer applies.
        self.activity.request_started();
        let this = self.clone();
        Box::pin(async move {
            let deadline = Instant::now() + this.conn.limits.body_timeout;
            let mut req = req.map(|b| {
                axum::body::Body::new(DeadlineBody {
                    inner: b,
                    deadline,
                    sleep: None,
                    activity: this.activity.clone(),
                })
            });
            req.extensions_mut().insert(ConnectInfo(this.conn.peer));
            let resp = match this.conn.router.clone().oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let resp = if this.activity.body_timed_out.load(Ordering::Acquire) {
                this.conn.quiet.note(Kind::SlowClient);
                let mut r = crate::api::error::envelope(
                    StatusCode::REQUEST_TIMEOUT,
                    "Request body not received in time",
                );
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            } else {
                resp
            };
            this.activity.request_done();
            Ok(resp)
        })
    }
}

/// The body read failed because its deadline passed.
#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body not received in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails once its deadline passes. The timer is only created when the body
/// is not already there, so a request whose body arrived with its head costs none.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The connection's state, told when the deadline passes.
    activity: Arc<Activity>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.activity.body_timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
