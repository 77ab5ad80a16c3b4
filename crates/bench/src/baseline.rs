//! The HTTP limit: the cheapest server that still looks like authd on the wire.
//!
//! `GET /api/auth/{id}` answers `{"status":"success","data":{"id":...}}` without
//! checking any token. authd's throughput is reported as a ratio of this one's,
//! measured by the same load generator in the same run.

use std::net::SocketAddr;

use axum::{extract::Path, routing::get, Json, Router};
use serde_json::{json, Value};

/// Arguments of `authd-bench baseline`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (loopback only, e.g. 127.0.0.1:8081).
    #[arg(long)]
    listen: SocketAddr,
    /// Tokio worker threads (default: one per core, as authd).
    #[arg(long)]
    threads: Option<usize>,
}

async fn get_auth(Path(id): Path<String>) -> Json<Value> {
    Json(json!({ "status": "success", "data": { "id": id } }))
}

async fn readyz() -> &'static str {
    "ok"
}

/// Serve until killed.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "the baseline listens on loopback only, got {}",
        args.listen
    );
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let rt = builder.build()?;
    rt.block_on(async move {
        let app = Router::new()
            .route("/api/auth/{id}", get(get_auth))
            .route("/readyz", get(readyz));
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}
