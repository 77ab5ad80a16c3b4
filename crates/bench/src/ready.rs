//! `wait-ready`: poll a URL every few milliseconds until it answers 200.
//!
//! The harness starts a server and runs this right after, so the printed time is
//! the server's start-up (process start to ready) plus a few milliseconds.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::load::Target;

/// Arguments of `authd-bench wait-ready`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The URL to poll, e.g. http://127.0.0.1:8080/readyz.
    #[arg(long)]
    url: String,
    /// Give up (exit non-zero) after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Pause between polls, in milliseconds.
    #[arg(long, default_value_t = 2)]
    interval_ms: u64,
}

async fn probe(target: &Target) -> anyhow::Result<StatusCode> {
    let stream = TcpStream::connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let req = Request::get(target.path.as_str())
        .header(hyper::header::HOST, target.host.as_str())
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    drop(sender);
    driver.abort();
    Ok(status)
}

/// Poll until 200 or the timeout; prints `{"ready_ms":..,"polls":..}`.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::parse(&args.url)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let start = Instant::now();
        let limit = Duration::from_secs_f64(args.timeout.max(0.0));
        let mut polls: u64 = 0;
        loop {
            polls += 1;
            let attempt = tokio::time::timeout(Duration::from_secs(2), probe(&target)).await;
            if let Ok(Ok(status)) = attempt {
                if status == StatusCode::OK {
                    let ms = start.elapsed().as_secs_f64() * 1e3;
                    println!("{}", serde_json::json!({ "ready_ms": ms, "polls": polls }));
                    return Ok(());
                }
            }
            if start.elapsed() >= limit {
                return Err(anyhow::anyhow!(
                    "{} not ready after {:.1}s",
                    args.url,
                    args.timeout
                ))
                .context("wait-ready");
            }
            tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        }
    })
}
