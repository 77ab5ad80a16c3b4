//! The worker listener's access rules over HTTP: loopback unless made public, named
//! credentials (created and revoked with the real `authd worker credential` CLI beside the
//! running server), account limits answered like absent credentials, revocation on the next
//! request, refusals audited through the bounded queue, and the file credential's checks.

use authd::config::Config;
use authd::startup::Application;
use authd::worker::{read_credential_file, WorkerConfig};
use authd_core::clock::SystemClock;
use serde_json::{json, Value};

use crate::cli::authd;
use crate::helpers::{into_resp, spawn_app_with, Resp, TestApp};

async fn spawn() -> TestApp {
    spawn_app_with(|c| c.worker = Some(WorkerConfig::new("127.0.0.1:0".parse().unwrap()))).await
}

/// Runs `authd worker credential <args>` on the app's store; returns stdout.
fn cli(app: &TestApp, args: &[&str]) -> String {
    let key = app
        .master
        .as_ref()
        .expect("test app uses a direct key")
        .to_base64();
    let out = authd()
        .arg("--data-dir")
        .arg(app.dir.path())
        .env("AUTHD_MASTER_KEY", key)
        .args(["worker", "credential"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

async fn read(app: &TestApp, account: &str, auth: &str, token: &str) -> Resp {
    let addr = app.worker_addr.expect("worker listener enabled");
    let r = app
        .client
        .get(format!(
            "http://{addr}/worker/v1/account/{account}/auth/{auth}"
        ))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    into_resp(r).await
}

/// Creates a Mailgun credential; returns (auth id, account id).
async fn mailgun(app: &TestApp, token: &str, key: &str) -> (String, String) {
    let body = json!({"provider_id": "mailgun", "name": "m",
        "config": [{"name": "apikey", "value": key}, {"name": "domain", "value": "d"}]});
    let d = app.post("/api/auth", token, body).await.ok(201).clone();
    (
        d["id"].as_str().unwrap().to_owned(),
        d["account_id"].as_str().unwrap().to_owned(),
    )
}

/// The worker audit entries of every account and none, oldest first, after the refusal
/// queue has been drained.
async fn worker_audit(app: &TestApp) -> Vec<(String, String, String)> {
    app.app_state.refusals.flush().await;
    let pool =
        authd_store_sqlite::SqliteStore::open(app.dir.path().join("authd.db").to_str().unwrap())
            .await
            .unwrap()
            .pool()
            .clone();
    sqlx::query_as(
        "SELECT actor, outcome, target FROM audit WHERE action = 'worker.decrypt' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_public_worker_bind_is_refused_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.worker = Some(WorkerConfig::new("0.0.0.0:0".parse().unwrap()));
    let err = Application::build(config, std::sync::Arc::new(SystemClock))
        .await
        .err()
        .expect("a public worker bind must be refused")
        .to_string();
    assert!(
        err.contains("not a loopback address") && err.contains("--worker-listen-public"),
        "{err}"
    );
    // Refused before anything was created.
    assert!(!dir.path().join("data").exists());

    let app = spawn_app_with(|c| {
        c.worker = Some(WorkerConfig {
            public: true,
            ..WorkerConfig::new("0.0.0.0:0".parse().unwrap())
        })
    })
    .await;
    let addr = app.worker_addr.unwrap();
    assert!(addr.ip().is_unspecified());
    let r = reqwest::get(format!("http://127.0.0.1:{}/worker/v1/x", addr.port()))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_named_credential_reads_only_within_its_accounts() {
    let app = spawn().await;
    let other = app.new_account("other").await;
    let (a_auth, a_acct) = mailgun(&app, &app.token, "key-a").await;
    let (b_auth, b_acct) = mailgun(&app, &other, "key-b").await;
    let every = cli(&app, &["create", "every"]).trim().to_owned();
    let only_a = cli(&app, &["create", "only-a", "--account", "1"])
        .trim()
        .to_owned();
    assert_ne!(every, only_a);

    let w = read(&app, &b_acct, &b_auth, &every).await;
    assert_eq!(w.ok(200)["config"][0]["value"], "key-b");
    let w = read(&app, &a_acct, &a_auth, &only_a).await;
    assert_eq!(w.ok(200)["config"][0]["value"], "key-a");
    // Outside its accounts: byte for byte the answer for an absent credential.
    let outside = read(&app, &b_acct, &b_auth, &only_a).await;
    let absent = read(&app, &b_acct, &"0".repeat(32), &every).await;
    outside.assert_error(404, "Not found");
    assert_eq!(outside.body, absent.body);
    // Naming its own account with another account's auth finds nothing either.
    read(&app, &a_acct, &b_auth, &only_a)
        .await
        .assert_error(404, "Not found");

    // Reads are audited per credential; the refusal went through the queue.
    let listed: Value = serde_json::from_str(&cli(&app, &["list", "--json"])).unwrap();
    let id_of = |name: &str| {
        let row = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        format!("worker:{}", row["id"].as_str().unwrap())
    };
    let audit = worker_audit(&app).await;
    let has = |actor: &str, outcome: &str| audit.iter().any(|e| e.0 == actor && e.1 == outcome);
    assert!(
        has(&id_of("every"), "ok") && has(&id_of("only-a"), "ok"),
        "{audit:?}"
    );
    assert!(has(&id_of("only-a"), "not_permitted"), "{audit:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_credential_is_refused_from_the_next_request() {
    let app = spawn().await;
    let (auth, acct) = mailgun(&app, &app.token, "k").await;
    let token = cli(&app, &["create", "ingest"]).trim().to_owned();
    read(&app, &acct, &auth, &token).await.ok(200);
    cli(&app, &["revoke", "ingest"]);
    // No cache: the very next request is refused.
    read(&app, &acct, &auth, &token)
        .await
        .assert_error(401, "Not authorized");
    // A new credential may take the name again; the old one stays revoked.
    let again = cli(&app, &["create", "ingest"]).trim().to_owned();
    read(&app, &acct, &auth, &again).await.ok(200);
    read(&app, &acct, &auth, &token)
        .await
        .assert_error(401, "Not authorized");
    app.stop().await;
}

#[tokio::test]
async fn refused_worker_requests_are_audited_without_the_presented_text() {
    let app = spawn().await;
    let (auth, acct) = mailgun(&app, &app.token, "k").await;
    let wrong = format!("wk_{}", "ab".repeat(32));
    for t in [
        wrong.as_str(),
        "hunter2-not-a-credential",
        app.token.as_str(),
    ] {
        read(&app, &acct, &auth, t)
            .await
            .assert_error(401, "Not authorized");
    }
    let audit = worker_audit(&app).await;
    assert_eq!(audit.len(), 3, "{audit:?}");
    for (actor, outcome, target) in &audit {
        assert_eq!(
            (actor.as_str(), outcome.as_str()),
            ("anonymous", "unauthorized")
        );
        assert_eq!(target, &format!("{acct}/{auth}"));
    }
    let text = format!("{audit:?}");
    assert!(!text.contains(&wrong[3..]) && !text.contains("hunter2"));
    app.stop().await;
}

#[tokio::test]
async fn a_credential_file_open_to_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("worker.token");
    let token = format!("wk_{}", "5a".repeat(32));
    std::fs::write(&file, format!("{token}\n")).unwrap();
    for mode in [0o644, 0o604, 0o640] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = read_credential_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("chmod 600") && !err.contains(&token[3..]),
            "{err}"
        );
    }
    // The same refusal stops `authd serve` before it listens.
    let out = authd()
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--worker-listen",
            "127.0.0.1:0",
            "--worker-token-file",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    // Private, the file credential works and reads every account.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let loaded = read_credential_file(&file).unwrap();
    let app = spawn_app_with(|c| {
        c.worker = Some(WorkerConfig {
            token: Some(loaded),
            ..WorkerConfig::new("127.0.0.1:0".parse().unwrap())
        })
    })
    .await;
    let (auth, acct) = mailgun(&app, &app.token, "k").await;
    read(&app, &acct, &auth, &token).await.ok(200);
    app.stop().await;
}

#[test]
fn hand_picked_or_environment_worker_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chosen.token");
    std::fs::write(&file, "correct-horse-battery-staple-correct-horse").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let serve = |extra: &[&str], env: Option<&str>| {
        let mut c = authd();
        c.args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--worker-listen", "127.0.0.1:0"])
        .args(extra);
        if let Some(v) = env {
            c.env("AUTHD_WORKER_TOKEN", v);
        }
        let out = c.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = serve(&["--worker-token-file", file.to_str().unwrap()], None);
    assert!(
        e.contains("do not choose one by hand") && !e.contains("horse"),
        "{e}"
    );
    let e = serve(&[], Some(&format!("wk_{}", "5a".repeat(32))));
    assert!(e.contains("AUTHD_WORKER_TOKEN is no longer read"), "{e}");
}
