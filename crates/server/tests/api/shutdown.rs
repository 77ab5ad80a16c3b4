//! Graceful shutdown of a real `authd serve`: on SIGTERM it drains, the background tasks
//! write what they hold (coalesced last-access times, queued refusal audit entries), and the
//! process exits 0 promptly.

use std::time::{Duration, Instant};

use authd::config::Config;
use serde_json::Value;

use crate::cli::authd;
use crate::helpers::*;

/// Refused requests sent just before the signal; each is one queued audit entry.
const REFUSED: usize = 300;

/// Sends `REFUSED` requests that `weak` (a `data` token) may not make, all at once: each is
/// a refusal attributed to its account, queued for the audit writer.
async fn refused_burst(addr: &str, weak: &str) {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..REFUSED {
        let r = client
            .get(format!("http://{addr}/api/audit"))
            .header("Authorization", weak)
            .send();
        tasks.push(tokio::spawn(r));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().status(), 403);
    }
}

/// Lytics' zero time: never accessed.
const NEVER: &str = "0001-01-01T00:00:00Z";

/// The token's `last_accessed_at` in the store, through `authd token list --json`.
fn last_accessed(d: &std::path::Path, token: &str) -> Value {
    let out = authd()
        .arg("--data-dir")
        .arg(d)
        .args(["token", "list", "--account", "1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = authd_core::token::parse(token).unwrap().id.to_string();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap()
        .clone();
    row["last_accessed_at"].clone()
}

#[tokio::test]
async fn sigterm_writes_pending_touches_and_refusals_then_exits_zero_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = authd()
        .arg("--data-dir")
        .arg(d)
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(last_accessed(d, &token), NEVER);
    let out = authd()
        .arg("--data-dir")
        .arg(d)
        .args(["token", "create", "--account", "1", "--scopes", "data"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let weak = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let (mut child, addr, _) = crate::cli::serve(authd().arg("--data-dir").arg(d).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    let me = reqwest::Client::new()
        .get(format!("http://{addr}/api/account/current"))
        .header("Authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    refused_burst(&addr, &weak).await;
    let signalled = Instant::now();
    crate::cli::stop(&mut child);
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        signalled.elapsed()
    );

    let at = last_accessed(d, &token);
    assert!(
        at.is_string() && at != NEVER,
        "the last access was not written: {at}"
    );
    let mut config = Config::embedded(d);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let app = start(config, dir).await;
    let audit = app
        .get("/api/audit?action=credential.refused&limit=1000", &token)
        .await;
    let n = audit.ok(200).as_array().unwrap().len();
    assert_eq!(n, REFUSED, "queued refusals lost at shutdown");
    app.stop().await;
}
