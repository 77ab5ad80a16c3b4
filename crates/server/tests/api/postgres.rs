//! Many nodes on one PostgreSQL database: two in-process nodes sharing a fresh database and
//! master key (create on A, use on B, revoke on A and measure until B refuses), an outage
//! under the nodes (stop and restart PostgreSQL), the documented two-process deployment
//! (`authd init` + two `authd serve`), and the master-key rule.
//!
//! Needs `AUTHD_TEST_PG_URL` (skips with a reason without it; fails under `CI=true`). The
//! outage test also needs `AUTHD_TEST_PG_CTL` and `AUTHD_TEST_PG_DATA` (set by `.ci/run`). It
//! takes a write lock that every other PostgreSQL test here holds for reading, so stopping the
//! server never hits a neighbour.

use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use authd::config::{Config, DatabaseUrl, MasterKeySource};
use authd_crypto::MasterKey;
use authd_store_postgres::testing::{fresh_database, server_url};
use serde_json::{json, Value};
use tokio::sync::RwLock;

use crate::helpers::{into_resp, start, TestApp};

pub(crate) static CLUSTER: LazyLock<RwLock<()>> = LazyLock::new(|| RwLock::new(()));

pub(crate) fn node_config(url: &str, key: &MasterKey, dir: &tempfile::TempDir) -> Config {
    let mut c = Config::embedded(dir.path());
    c.database_url = DatabaseUrl::new(url);
    c.master_key = MasterKeySource::Key(key.clone());
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.db_timeout_ms = 1_000;
    c
}

/// Two nodes on one fresh database; node A's `token` is the admin token of a new account.
pub(crate) async fn two_nodes(server: &str) -> (TestApp, TestApp) {
    let (_, a, b) = two_nodes_with_url(server).await;
    (a, b)
}

/// [`two_nodes`], also returning the database URL.
async fn two_nodes_with_url(server: &str) -> (String, TestApp, TestApp) {
    let url = fresh_database(server).await.unwrap();
    let key = MasterKey::generate();
    let dir_a = tempfile::tempdir().unwrap();
    let mut a = start(node_config(&url, &key, &dir_a), dir_a).await;
    assert!(
        a.token.is_empty(),
        "PostgreSQL nodes never bootstrap on serve"
    );
    let s = &a.app_state;
    let admin = authd::provision::account(
        s.store.as_ref(),
        &key.token_hasher(),
        s.clock.as_ref(),
        "demo",
    )
    .await
    .unwrap();
    a.token = admin.token.expose().to_owned();
    let dir_b = tempfile::tempdir().unwrap();
    let mut b = start(node_config(&url, &key, &dir_b), dir_b).await;
    b.token = a.token.clone();
    (url, a, b)
}

/// Uses `token` on `node` until the node answers it from its cache (its invalidation feed is
/// listening and the record is loaded), so a later refusal proves a push invalidation.
async fn warm(node: &TestApp, id: &str, token: &str) {
    let id = authd_core::ids::AuthId::parse(id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        node.get("/api/account", token).await.ok(200);
        if node.app_state.tokens.serves_from_cache(id) {
            return;
        }
        assert!(Instant::now() < deadline, "node never cached the token");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Revokes `id` on `a`, then polls `b` until it refuses `token`; returns the lag measured from
/// just before the DELETE was sent.
async fn revoke_and_measure(a: &TestApp, b: &TestApp, id: &str, token: &str) -> Duration {
    let t0 = Instant::now();
    let del = a.delete(&format!("/api/auth/{id}"), &a.token).await;
    assert_eq!(del.status.as_u16(), 204, "body: {}", del.body);
    loop {
        let r = b.get("/api/account", token).await;
        if r.status.as_u16() == 401 {
            r.assert_error(401, "Not authorized");
            return t0.elapsed();
        }
        r.ok(200);
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "node B never refused"
        );
    }
}

#[tokio::test]
async fn revocation_on_one_node_reaches_the_other_within_a_second() {
    let Some(server) = server_url("revocation_on_one_node_reaches_the_other_within_a_second")
    else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (a, b) = two_nodes(&server).await;
    let mut lags = vec![];
    for _ in 0..25 {
        // Created on A, used on B (B loads it from the shared database).
        let (id, token) = a
            .create_token(&a.token, json!({ "scopes": ["admin"], "name": "t" }))
            .await;
        warm(&b, &id, &token).await;
        lags.push(revoke_and_measure(&a, &b, &id, &token).await);
    }
    lags.sort();
    let median = lags[lags.len() / 2];
    let worst = *lags.last().unwrap();
    println!(
        "revocation lag A→B over {} rounds: median {:?}, worst {:?}",
        lags.len(),
        median,
        worst
    );
    eprintln!("revocation lag A→B: median {median:?}, worst {worst:?}");
    assert!(worst < Duration::from_secs(1), "worst lag {worst:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_node_without_a_live_feed_never_trusts_its_cache() {
    let Some(server) = server_url("a_node_without_a_live_feed_never_trusts_its_cache") else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (a, b) = two_nodes(&server).await;
    let (id, token) = a
        .create_token(&a.token, json!({ "scopes": ["admin"], "name": "t" }))
        .await;
    warm(&b, &id, &token).await;
    // The feed drops: B stops answering from memory but keeps working from the database.
    use authd_core::invalidation::{Invalidation, InvalidationSink};
    b.app_state.tokens.invalidate(Invalidation::Lost);
    let auth = authd_core::ids::AuthId::parse(&id).unwrap();
    b.get("/api/account", &token).await.ok(200);
    assert!(!b.app_state.tokens.serves_from_cache(auth));
    b.app_state.tokens.invalidate(Invalidation::Resumed);
    warm(&b, &id, &token).await;
    // The staleness backstop: an entry older than the maximum age is re-read.
    b.clock.advance_ms(11_000);
    assert!(!b.app_state.tokens.serves_from_cache(auth));
    b.get("/api/account", &token).await.ok(200);
    assert!(b.app_state.tokens.serves_from_cache(auth));
    a.stop().await;
    b.stop().await;
}

fn pg_ctl(args: &[&str]) {
    let ctl = std::env::var("AUTHD_TEST_PG_CTL").unwrap();
    let data = std::env::var("AUTHD_TEST_PG_DATA").unwrap();
    let mut cmd = match std::env::var("AUTHD_TEST_PG_USER") {
        Ok(user) if !user.is_empty() && is_root() => {
            let mut c = Command::new("runuser");
            c.args(["-u", &user, "--", &ctl]);
            c
        }
        _ => Command::new(&ctl),
    };
    cmd.args(["-D", &data]).args(args);
    if let Ok(log) = std::env::var("AUTHD_TEST_PG_LOG") {
        cmd.args(["-l", &log]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "pg_ctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[tokio::test]
async fn nodes_answer_503_while_postgres_is_down_and_recover_by_themselves() {
    let name = "nodes_answer_503_while_postgres_is_down_and_recover_by_themselves";
    let Some(server) = server_url(name) else {
        return;
    };
    if std::env::var("AUTHD_TEST_PG_CTL").is_err() || std::env::var("AUTHD_TEST_PG_DATA").is_err() {
        eprintln!("SKIPPED {name}: AUTHD_TEST_PG_CTL / AUTHD_TEST_PG_DATA are not set");
        return;
    }
    let _exclusive = CLUSTER.write().await;
    let (a, b) = two_nodes(&server).await;
    let (id, token) = a
        .create_token(&a.token, json!({ "scopes": ["admin"], "name": "t" }))
        .await;
    warm(&b, &id, &token).await;

    pg_ctl(&["-m", "fast", "-w", "stop"]);
    let budget = Duration::from_millis(2_500); // db_timeout_ms is 1 s
    let t = Instant::now();
    a.call(reqwest::Method::GET, "/readyz", None, None)
        .await
        .assert_error(503, "store unreachable");
    assert!(t.elapsed() < budget, "readyz took {:?}", t.elapsed());
    // A write that needs the database.
    let t = Instant::now();
    let r = a
        .post(
            "/api/auth/createtoken",
            &a.token,
            json!({ "scopes": ["admin"], "name": "x" }),
        )
        .await;
    assert!(t.elapsed() < budget, "write took {:?}", t.elapsed());
    assert_eq!(r.status.as_u16(), 503, "body: {}", r.body);
    assert_eq!(r.body["status"], 503);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .starts_with("Service temporarily unavailable"));
    assert!(r.body["data"].is_null());
    // B lost its feed, so it cannot vouch for cached tokens: 503, not a stale 200.
    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = b.get("/api/account", &token).await;
        if r.status.as_u16() != 200 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(r.status.as_u16(), 503, "body: {}", r.body);
    assert!(t.elapsed() < Duration::from_secs(6));

    pg_ctl(&["-w", "-t", "60", "start"]);
    // Both nodes recover without a restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in [&a, &b] {
        loop {
            let r = node.call(reqwest::Method::GET, "/readyz", None, None).await;
            if r.status.as_u16() == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node did not recover: {}",
                r.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    warm(&b, &id, &token).await;
    let lag = revoke_and_measure(&a, &b, &id, &token).await;
    println!("revocation lag after the restart: {lag:?}");
    assert!(lag < Duration::from_secs(1), "lag after restart {lag:?}");
    a.stop().await;
    b.stop().await;
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn authd(url: &str, key: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_authd"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AUTHD_DATABASE_URL", url)
        .env("AUTHD_MASTER_KEY", key)
        .env("RUST_LOG", "warn");
    c
}

/// Runs `authd args` against `url` in `dir`, asserts success and returns its stdout, trimmed.
fn authd_ok(url: &str, key: &str, dir: &std::path::Path, args: &[&str]) -> String {
    let out = authd(url, key)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Polls each node's `/readyz` (processes started outside the test: no other signal) until it
/// answers 200, for at most 30 s in all.
async fn wait_until_ready(client: &reqwest::Client, ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for p in ports {
        loop {
            let ok = client
                .get(format!("http://127.0.0.1:{p}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "node on {p} never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The `api_key` value of a createtoken answer's `config`.
fn api_key_of(created: &Value) -> String {
    created["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api_key")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The example of docs/deploy.md, run for real: `authd init` once, then two `authd serve`
/// processes on one database behind (here) no load balancer.
#[tokio::test]
async fn two_authd_processes_share_one_database_as_documented() {
    let Some(server) = server_url("two_authd_processes_share_one_database_as_documented") else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let url = fresh_database(&server).await.unwrap();
    let key = MasterKey::generate().to_base64();
    let dir = tempfile::tempdir().unwrap();
    let admin = authd_ok(&url, &key, dir.path(), &["init", "--account", "demo"]);
    authd_ok(
        &url,
        &key,
        dir.path(),
        &["account", "create", "--name", "second"],
    );

    let ports = [free_port(), free_port()];
    let _nodes: Vec<Proc> = ports
        .iter()
        .map(|p| {
            Proc(
                authd(&url, &key)
                    .current_dir(dir.path())
                    .args(["serve", "--listen", &format!("127.0.0.1:{p}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let client = reqwest::Client::new();
    let base = |p: u16| format!("http://127.0.0.1:{p}");
    wait_until_ready(&client, &ports).await;
    let created = into_resp(
        client
            .post(format!("{}/api/auth/createtoken", base(ports[0])))
            .header("Authorization", &admin)
            .json(&json!({ "scopes": ["admin"], "name": "deploy" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let d = created.ok(201);
    let id = d["id"].as_str().unwrap().to_owned();
    let token = api_key_of(d);
    let use_on_b = || {
        client
            .get(format!("{}/api/account", base(ports[1])))
            .header("Authorization", &token)
            .send()
    };
    // The second node may still be subscribing; give it a moment to cache the token.
    for _ in 0..20 {
        assert_eq!(use_on_b().await.unwrap().status(), 200);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let t0 = Instant::now();
    let del = client
        .delete(format!("{}/api/auth/{id}", base(ports[0])))
        .header("Authorization", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    loop {
        let s = use_on_b().await.unwrap().status();
        if s == 401 {
            break;
        }
        assert_eq!(s, 200);
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "node B still accepts"
        );
    }
    println!("two processes: revocation lag {:?}", t0.elapsed());
}

/// With PostgreSQL a node refuses to start without a master key given to it.
#[test]
fn a_postgres_node_without_a_master_key_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_authd"))
        .env_clear()
        .env(
            "AUTHD_DATABASE_URL",
            "postgres://authd:pw@127.0.0.1:1/authd",
        )
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("with PostgreSQL the master key must be given"),
        "stderr: {err}"
    );
}

/// The start-up path refuses it too, even when the CLI is bypassed.
#[tokio::test]
async fn startup_refuses_a_generated_master_key_for_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::embedded(dir.path());
    c.database_url = DatabaseUrl::new("postgres://authd:pw@127.0.0.1:1/authd");
    c.listen = "127.0.0.1:0".parse().unwrap();
    let err = authd::startup::Application::build(
        c,
        std::sync::Arc::new(authd_core::clock::ManualClock::new(0)),
    )
    .await
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("with PostgreSQL the master key must be given"),
        "{err:#}"
    );
    assert!(!dir.path().join("master.key").exists());
}

/// Rotates `id` on `a` with no grace, then polls `b` until it refuses the old `token`;
/// returns the new token and the lag measured from just before the rotation was sent.
async fn rotate_and_measure(a: &TestApp, b: &TestApp, id: &str, token: &str) -> (String, Duration) {
    let t0 = Instant::now();
    let r = a
        .post(
            &format!("/api/auth/{id}/rotate"),
            &a.token,
            json!({ "grace": "0s" }),
        )
        .await;
    let new = r.ok(201)["config"][0]["value"].as_str().unwrap().to_owned();
    loop {
        let r = b.get("/api/account", token).await;
        if r.status.as_u16() == 401 {
            let lag = t0.elapsed();
            r.assert_error(401, "Expired Token");
            return (new, lag);
        }
        r.ok(200);
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "node B never refused the rotated token"
        );
    }
}

#[tokio::test]
async fn rotation_without_grace_on_one_node_is_refused_on_the_other_within_a_second() {
    let Some(server) =
        server_url("rotation_without_grace_on_one_node_is_refused_on_the_other_within_a_second")
    else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (a, b) = two_nodes(&server).await;
    let mut lags = vec![];
    for _ in 0..15 {
        let (id, token) = a
            .create_token(&a.token, json!({ "scopes": ["admin"], "name": "t" }))
            .await;
        // B caches the old token (its record says "never expires").
        warm(&b, &id, &token).await;
        let (new, lag) = rotate_and_measure(&a, &b, &id, &token).await;
        lags.push(lag);
        // The replacement works on B at once (loaded from the shared database).
        b.get("/api/account", &new).await.ok(200);
        a.get("/api/account", &token)
            .await
            .assert_error(401, "Expired Token");
    }
    lags.sort();
    let median = lags[lags.len() / 2];
    let worst = *lags.last().unwrap();
    println!(
        "rotation (grace 0) lag A→B over {} rounds: median {:?}, worst {:?}",
        lags.len(),
        median,
        worst
    );
    eprintln!("rotation lag A→B: median {median:?}, worst {worst:?}");
    assert!(worst < Duration::from_secs(1), "worst lag {worst:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn deleting_a_credential_revokes_the_tokens_under_it_on_every_node() {
    let Some(server) =
        server_url("deleting_a_credential_revokes_the_tokens_under_it_on_every_node")
    else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (a, b) = two_nodes(&server).await;
    // A token, a token it created, and a credential stored through the child: deleting the
    // parent token on A goes through the credential cascade and must reach B's cache.
    let (parent_id, parent) = a
        .create_token(&a.token, json!({ "scopes": ["admin"], "name": "p" }))
        .await;
    let (child_id, child) = a
        .create_token(&parent, json!({ "scopes": ["admin"], "name": "c" }))
        .await;
    let cred = b
        .post(
            "/api/auth",
            &child,
            json!({
                "provider_id": "mailgun",
                "name": "mail",
                "config": [{"name": "apikey", "value": "k"}, {"name": "domain", "value": "d"}]
            }),
        )
        .await;
    let cred_id = cred.ok(201)["id"].as_str().unwrap().to_owned();
    warm(&b, &parent_id, &parent).await;
    warm(&b, &child_id, &child).await;
    let lag = revoke_and_measure(&a, &b, &parent_id, &child).await;
    eprintln!("cascade revocation lag A→B: {lag:?}");
    assert!(lag < Duration::from_secs(1), "lag {lag:?}");
    b.get("/api/account", &parent)
        .await
        .assert_error(401, "Not authorized");
    // The credential the child created is gone too.
    a.get(&format!("/api/auth/{cred_id}"), &a.token)
        .await
        .assert_error(404, "Not found");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_key_rotated_on_one_node_seals_the_next_write_on_the_other() {
    let Some(server) = server_url("a_key_rotated_on_one_node_seals_the_next_write_on_the_other")
    else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (url, a, b) = two_nodes_with_url(&server).await;
    let mailgun = |apikey: &str| {
        json!({
            "provider_id": "mailgun",
            "name": "mail",
            "config": [{"name": "apikey", "value": apikey}, {"name": "domain", "value": "d"}]
        })
    };
    let first = b.post("/api/auth", &b.token, mailgun("one")).await;
    let first = first.ok(201)["id"].as_str().unwrap().to_owned();
    let store = a.app_state.store.clone();
    let k1 = authd::keys::status(store.as_ref()).await.unwrap()[0]
        .id
        .clone();
    // What `authd keys rotate` runs, on node A's store.
    let wrapper = a
        .master
        .as_ref()
        .expect("test nodes use a direct key")
        .key_wrapper();
    let k2 = authd::keys::rotate(store.as_ref(), &wrapper, a.app_state.clock.as_ref())
        .await
        .unwrap();
    assert_ne!(k1, k2);
    // Node B, which loaded its ring before the rotation, seals its next write under k2.
    let second = b.post("/api/auth", &b.token, mailgun("two")).await;
    let second = second.ok(201)["id"].as_str().unwrap().to_owned();
    let db = authd_store_postgres::PgStore::open(&url).await.unwrap();
    let keys_of = |id: String| {
        let pool = db.pool().clone();
        async move {
            let k: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT key_id FROM auth_secrets WHERE auth_id = $1 ORDER BY key_id",
            )
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
            k
        }
    };
    assert_eq!(keys_of(first.clone()).await, vec![k1.clone()]);
    assert_eq!(keys_of(second.clone()).await, vec![k2.clone()]);
    // Node A, too, writes under k2; and both nodes still open both credentials.
    let third = a.post("/api/auth", &a.token, mailgun("three")).await;
    let third = third.ok(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(keys_of(third).await, vec![k2.clone()]);
    let status = authd::keys::status(store.as_ref()).await.unwrap();
    let count = |id: &str| status.iter().find(|k| k.id == id).unwrap().secrets;
    // Two fields and the integrity (manifest) row per credential.
    assert_eq!((count(&k1), count(&k2)), (3, 6));
    for node in [&a, &b] {
        for (id, want) in [(&first, "one"), (&second, "two")] {
            let rec = node
                .app_state
                .store
                .get_credential(
                    authd_core::ids::AccountId::parse(
                        node.get(&format!("/api/auth/{id}"), &node.token)
                            .await
                            .ok(200)["account_id"]
                            .as_str()
                            .unwrap(),
                    )
                    .unwrap(),
                    authd_core::ids::AuthId::parse(id).unwrap(),
                )
                .await
                .unwrap()
                .unwrap();
            let opened = authd::credential_seal::open(&node.app_state.keys, rec, None)
                .await
                .unwrap();
            let plain = &opened
                .fields
                .iter()
                .find(|(f, _)| f == "config.apikey")
                .unwrap()
                .1;
            assert_eq!(plain.expose(), want.as_bytes());
        }
    }
    a.stop().await;
    b.stop().await;
}

/// Polls `node` with `token` on `path` until it answers `want`; returns the time since `t0`.
async fn until_status(node: &TestApp, token: &str, path: &str, want: u16, t0: Instant) -> Duration {
    loop {
        let r = node.get(path, token).await;
        if r.status.as_u16() == want {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "node never answered {want}: {}",
            r.body
        );
    }
}

/// The id of the user with this email in node `a`'s account.
async fn user_id(a: &TestApp, email: &str) -> String {
    let users = a.get("/api/user", &a.token).await;
    let users = users.ok(200).as_array().unwrap().clone();
    let u = users.iter().find(|u| u["email"] == email).unwrap();
    u["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_users_role_change_and_deletion_reach_its_tokens_on_every_node() {
    let Some(server) =
        server_url("a_users_role_change_and_deletion_reach_its_tokens_on_every_node")
    else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (a, b) = two_nodes(&server).await;
    // The first user's admin token, cached on node B.
    let (id, token) = a
        .create_token(&a.token, json!({ "scopes": ["admin"], "name": "t" }))
        .await;
    warm(&b, &id, &token).await;
    b.get("/api/auth", &token).await.ok(200);
    a.post(
        "/api/user",
        &a.token,
        json!({"email": "second@example.com", "roles": ["admin"]}),
    )
    .await
    .ok(201);
    let first = user_id(&a, "admin@localhost").await;
    let second = user_id(&a, "second@example.com").await;
    let t0 = Instant::now();
    a.put(
        &format!("/api/user/{first}"),
        &a.token,
        json!({"roles": ["observer"]}),
    )
    .await
    .ok(200);
    assert_eq!(a.get("/api/auth", &token).await.status, 403, "at once on A");
    let lag = until_status(&b, &token, "/api/auth", 403, t0).await;
    assert!(lag < Duration::from_secs(1), "role change lag {lag:?}");
    // Deleting the user (by the second admin) revokes its tokens on B too.
    let s = &a.app_state;
    let acct = s.store.get_account_by_aid(1).await.unwrap().unwrap();
    let second = authd_core::ids::UserId::parse(&second).unwrap();
    let second = s.store.get_user(acct.id, second).await.unwrap().unwrap();
    let req = authd::tokens::TokenRequest {
        scopes: authd_core::roles::RoleSet::of(&[authd_core::roles::Role::Admin]),
        ..Default::default()
    };
    let (_, other) = s
        .tokens
        .mint_as_operator(acct.id, Some(&second), req)
        .await
        .unwrap();
    warm(&b, &id, &token).await;
    let t0 = Instant::now();
    let del = a
        .delete(&format!("/api/user/{first}"), other.expose())
        .await;
    assert_eq!(del.status.as_u16(), 204, "{}", del.body);
    let lag = until_status(&b, &token, "/api/account", 401, t0).await;
    assert!(lag < Duration::from_secs(1), "user deletion lag {lag:?}");
    a.stop().await;
    b.stop().await;
}

/// Runs the `authd` binary on PostgreSQL; asserts success and returns stdout.
fn authd_pg_ok(url: &str, key: &MasterKey, dir: &std::path::Path, args: &[&str]) -> String {
    let out = authd(url, &key.to_base64())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_token_cli_works_on_postgres_and_its_revocation_reaches_running_nodes() {
    let Some(server) =
        server_url("the_token_cli_works_on_postgres_and_its_revocation_reaches_running_nodes")
    else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (url, a, b) = two_nodes_with_url(&server).await;
    let key = a.master.clone().expect("test nodes use a direct key");
    let dir = tempfile::tempdir().unwrap();
    let args = ["token", "create", "--account", "1", "--scopes", "admin"];
    let out = authd_pg_ok(&url, &key, dir.path(), &args);
    let token = out.lines().last().unwrap().trim().to_owned();
    let id = authd_core::token::parse(&token).unwrap().id.to_string();
    warm(&a, &id, &token).await;
    warm(&b, &id, &token).await;
    let listed = authd_pg_ok(
        &url,
        &key,
        dir.path(),
        &["token", "list", "--account", "1", "--json"],
    );
    assert!(listed.contains(&id));
    let t0 = Instant::now();
    authd_pg_ok(&url, &key, dir.path(), &["token", "revoke", &id]);
    for node in [&a, &b] {
        let lag = until_status(node, &token, "/api/account", 401, t0).await;
        assert!(lag < Duration::from_secs(2), "CLI revocation lag {lag:?}");
    }
    a.stop().await;
    b.stop().await;
}

/// `authd keys rotate-master` on a two-node fleet: restarted with the new key a node accepts
/// the tokens minted before (and loads every data key); a node still on the old key refuses
/// to start, saying the key does not open the store.
#[tokio::test]
async fn a_master_key_rotation_reaches_every_node() {
    let Some(server) = server_url("a_master_key_rotation_reaches_every_node") else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (url, a, b) = two_nodes_with_url(&server).await;
    let old = a.master.clone().expect("test nodes use a direct key");
    let token = a.token.clone();
    let credential = json!({"provider_id": "mailgun", "name": "mail", "config": [
        {"name": "apikey", "value": "k-before"}, {"name": "domain", "value": "example.com"}]});
    b.post("/api/auth", &token, credential).await.ok(201);
    let dir = tempfile::tempdir().unwrap();
    let new_file = dir.path().join("new.key");
    let new_s = new_file.to_str().unwrap();
    let args = [
        "keys",
        "rotate-master",
        "--new-key-file",
        new_s,
        "--generate",
    ];
    authd_pg_ok(&url, &old, dir.path(), &args);
    let new = MasterKey::read_file(&new_file).unwrap();
    for node in [a, b] {
        let _ = node.stop_keep_dir().await;
    }
    let dir_c = tempfile::tempdir().unwrap();
    let c = start(node_config(&url, &new, &dir_c), dir_c).await;
    c.get("/api/account/current", &token).await.ok(200);
    let stale = tempfile::tempdir().unwrap();
    let built = authd::startup::Application::build(
        node_config(&url, &old, &stale),
        std::sync::Arc::new(authd_core::clock::SystemClock),
    )
    .await;
    let err = format!(
        "{:#}",
        built.err().expect("a node on the old key must not start")
    );
    assert!(
        err.contains("the master key does not open this store"),
        "{err}"
    );
}
