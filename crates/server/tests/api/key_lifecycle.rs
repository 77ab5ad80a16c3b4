//! The data-key lifecycle (issue 13): every seal is counted per key, a key is rotated
//! automatically when its count reaches the configured seal budget (old secrets keep opening
//! through the worker), `authd keys status` reports secrets and seals (text and `--json`),
//! and `authd keys destroy` removes a retired key only once no secret references it — on
//! SQLite through a running server and the real binary, and on PostgreSQL across two nodes.

use std::path::Path;

use authd::config::MasterKeySource;
use authd::worker::{WorkerConfig, WorkerToken};
use authd_core::credential::KeyDestroy;
use serde_json::{json, Value};

use crate::helpers::{into_resp, spawn_app_with, start, TestApp};
use crate::postgres::{node_config, CLUSTER};

/// A worker credential in the generated format (`wk_` + 64 hex).
const WORKER_TOKEN: &str = "wk_2222222222222222222222222222222222222222222222222222222222222222";

fn worker_config() -> WorkerConfig {
    WorkerConfig {
        token: Some(WorkerToken::new(WORKER_TOKEN).unwrap()),
        ..WorkerConfig::new("127.0.0.1:0".parse().unwrap())
    }
}

fn mailgun(apikey: &str) -> Value {
    json!({
        "provider_id": "mailgun",
        "name": "mail",
        "config": [{"name": "apikey", "value": apikey}, {"name": "domain", "value": "d"}]
    })
}

/// Creates a two-field credential on `node`; returns (auth id, account id).
async fn create(node: &TestApp, token: &str, apikey: &str) -> (String, String) {
    let r = node.post("/api/auth", token, mailgun(apikey)).await;
    let d = r.ok(201);
    (
        d["id"].as_str().unwrap().to_owned(),
        d["account_id"].as_str().unwrap().to_owned(),
    )
}

/// The apikey the worker listener returns for a credential.
async fn worker_apikey(node: &TestApp, account: &str, auth: &str) -> String {
    let addr = node.worker_addr.expect("worker listener enabled");
    let r = node
        .client
        .get(format!(
            "http://{addr}/worker/v1/account/{account}/auth/{auth}"
        ))
        .header("Authorization", format!("Bearer {WORKER_TOKEN}"))
        .send()
        .await
        .unwrap();
    let body = into_resp(r).await;
    let config = body.ok(200)["config"].as_array().unwrap().clone();
    let apikey = config.iter().find(|c| c["name"] == "apikey").unwrap();
    apikey["value"].as_str().unwrap().to_owned()
}

/// (id, current, secrets, seals) of every key, oldest first.
async fn keys_of(node: &TestApp) -> Vec<(String, bool, u64, u64)> {
    authd::keys::status(node.app_state.store.as_ref())
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.id, k.current, k.secrets, k.seals))
        .collect()
}

/// Operator-level audit entries (no account) as "actor action outcome target detail".
async fn keyring_audit_sqlite(dir: &Path) -> Vec<String> {
    let url = format!("sqlite://{}", dir.join("authd.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT actor, action, outcome, target, detail FROM audit \
         WHERE account_id IS NULL ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(a, b, c, d, e)| format!("{a} {b} {c} {d} {e}"))
        .collect()
}

#[tokio::test]
async fn a_small_seal_budget_rotates_the_data_key_and_old_secrets_still_open() {
    let app = spawn_app_with(|c| {
        c.data_key_seal_budget = 6;
        c.worker = Some(worker_config());
    })
    .await;
    let t = app.token.clone();
    let (first, acct) = create(&app, &t, "one").await;
    let k1 = keys_of(&app).await[0].0.clone();
    // A mailgun credential is three sealed rows: its two fields and its integrity manifest.
    assert_eq!(keys_of(&app).await, vec![(k1.clone(), true, 3, 3)]);
    // The second credential's three seals spend the budget of 6: a new key is current at once
    // (the clock moves so that keys list in creation order).
    app.clock.advance_ms(1_000);
    let (second, _) = create(&app, &t, "two").await;
    let keys = keys_of(&app).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0], (k1.clone(), false, 6, 6));
    let k2 = keys[1].0.clone();
    assert_eq!(keys[1], (k2.clone(), true, 0, 0));
    app.clock.advance_ms(1_000);
    let (third, _) = create(&app, &t, "three").await;
    assert_eq!(keys_of(&app).await[1], (k2.clone(), true, 3, 3));
    for (id, want) in [(&first, "one"), (&second, "two"), (&third, "three")] {
        assert_eq!(worker_apikey(&app, &acct, id).await, want);
    }
    // An update seals again and counts again, though the row count stays.
    app.put(
        &format!("/api/auth/{third}"),
        &t,
        json!({"config": {"apikey": "THREE", "domain": "d2"}}),
    )
    .await
    .ok(200);
    let keys = keys_of(&app).await;
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(keys[1], (k2.clone(), false, 3, 6));
    assert_eq!(worker_apikey(&app, &acct, &third).await, "THREE");
    let audit = keyring_audit_sqlite(app.dir.path()).await;
    let rotations: Vec<&String> = audit
        .iter()
        .filter(|e| e.starts_with("authd keys.rotate ok"))
        .collect();
    assert_eq!(rotations.len(), 2, "{audit:?}");
    assert!(
        rotations[0].contains(&format!(
            "{k2} automatic: data key {k1} reached its seal budget (6 of 6 seals)"
        )),
        "{audit:?}"
    );
    app.stop().await;
}

/// Runs the real `authd` binary on `dir`; returns (success, stdout, stderr).
fn authd(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("AUTHD_MASTER_KEY")
        .env_remove("AUTHD_MASTER_KEY_FILE")
        .env_remove("AUTHD_DATABASE_URL")
        .env_remove("AUTHD_CONFIG")
        .env_remove("AUTHD_DATA_KEY_SEAL_BUDGET")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

/// `authd keys status --json`, parsed.
fn status_json(dir: &Path) -> Vec<Value> {
    let (ok, out, err) = authd(dir, &["keys", "status", "--json"], &[]);
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn keys_destroy_is_refused_while_referenced_and_allowed_after_rewrap() {
    let app = spawn_app_with(|c| {
        c.master_key = MasterKeySource::GenerateAt(c.data_dir.join("master.key"));
        c.worker = Some(worker_config());
    })
    .await;
    let dir = app.dir.path().to_owned();
    let (id, acct) = create(&app, &app.token, "DESTROY-CANARY").await;
    let (ok, new_key, _) = authd(&dir, &["keys", "rotate"], &[]);
    assert!(ok);
    let new_key = new_key.trim().to_owned();
    let keys = status_json(&dir);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let old = keys[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&keys[0]["current"], &keys[0]["secrets"], &keys[0]["seals"]),
        (&json!(false), &json!(3), &json!(3))
    );
    assert_eq!(keys[1]["id"], new_key.as_str());

    let (ok, _, err) = authd(&dir, &["keys", "destroy", &old], &[]);
    assert!(!ok && err.contains("still seals 3 secrets"), "{err}");
    let (ok, _, err) = authd(&dir, &["keys", "destroy", &new_key], &[]);
    assert!(!ok && err.contains("is the current key"), "{err}");
    let (ok, _, err) = authd(&dir, &["keys", "destroy", "k_0000000000000000"], &[]);
    assert!(!ok && err.contains("no data key"), "{err}");

    let (ok, _, err) = authd(&dir, &["keys", "rewrap"], &[]);
    assert!(ok, "{err}");
    let (ok, _, err) = authd(&dir, &["keys", "destroy", &old], &[]);
    assert!(
        ok && err.contains(&format!("destroyed retired data key {old}")),
        "{err}"
    );
    let keys = status_json(&dir);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(
        (&keys[0]["id"], &keys[0]["secrets"], &keys[0]["seals"]),
        (&json!(new_key), &json!(3), &json!(3))
    );
    // The running server still opens the credential, now under the remaining key.
    assert_eq!(worker_apikey(&app, &acct, &id).await, "DESTROY-CANARY");
    let (ok, text, _) = authd(&dir, &["keys", "status"], &[]);
    assert!(
        ok && text.contains(&format!("{new_key}\tcurrent\t")),
        "{text}"
    );
    assert!(text.trim_end().ends_with("\t3 seals\t3 secrets"), "{text}");
    let audit = keyring_audit_sqlite(&dir).await;
    let destroys: Vec<&String> = audit
        .iter()
        .filter(|e| e.contains("keys.destroy"))
        .collect();
    assert_eq!(destroys.len(), 4, "{audit:?}");
    assert!(destroys[0].starts_with(&format!(
        "operator keys.destroy refused {old} still seals 3"
    )));
    assert!(
        destroys[1].starts_with("operator keys.destroy refused") && destroys[1].contains("current")
    );
    assert!(destroys[3].starts_with(&format!("operator keys.destroy ok {old}")));
    for text in audit.iter().chain([&text]) {
        assert!(!text.contains("DESTROY-CANARY"));
    }
    app.stop().await;
}

#[tokio::test]
async fn the_seal_budget_reaches_the_cli_by_flag_and_environment_and_is_validated() {
    let app = spawn_app_with(|c| {
        c.master_key = MasterKeySource::GenerateAt(c.data_dir.join("master.key"));
    })
    .await;
    let dir = app.dir.path().to_owned();
    create(&app, &app.token, "a").await;
    let (ok, _, _) = authd(&dir, &["keys", "rotate"], &[]);
    assert!(ok);
    // Rewrapping 3 secrets (two fields and the manifest) under a budget of 1 (flag) spends
    // three keys.
    let (ok, _, err) = authd(
        &dir,
        &["--data-key-seal-budget", "1", "keys", "rewrap"],
        &[],
    );
    assert!(ok, "{err}");
    // (Keys made within one millisecond list in id order, so compare them sorted.)
    let mut keys: Vec<(bool, u64, u64)> = status_json(&dir)
        .iter()
        .map(|k| {
            let n = |f: &str| k[f].as_u64().unwrap();
            (k["current"].as_bool().unwrap(), n("seals"), n("secrets"))
        })
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            (false, 1, 1),
            (false, 1, 1),
            (false, 1, 1),
            (false, 3, 0),
            (true, 0, 0)
        ]
    );
    // The environment works the same way; a budget of 0 or over 2^32 is refused.
    let (ok, _, err) = authd(
        &dir,
        &["keys", "status"],
        &[("AUTHD_DATA_KEY_SEAL_BUDGET", "0")],
    );
    assert!(
        !ok && err.contains("data_key_seal_budget must be from 1 to 4294967296"),
        "{err}"
    );
    let (ok, _, err) = authd(
        &dir,
        &["--data-key-seal-budget", "4294967297", "keys", "status"],
        &[],
    );
    assert!(!ok && err.contains("data_key_seal_budget"), "{err}");
    let (ok, _, err) = authd(
        &dir,
        &["keys", "status"],
        &[("AUTHD_DATA_KEY_SEAL_BUDGET", "2")],
    );
    assert!(ok, "{err}");
    app.stop().await;
}

/// Two PostgreSQL nodes on a fresh database with a seal budget of 3, sharing a key.
async fn two_budgeted_nodes(server: &str) -> (String, TestApp, TestApp) {
    let url = authd_store_postgres::testing::fresh_database(server)
        .await
        .unwrap();
    let key = authd_crypto::MasterKey::generate();
    let node = |dir: &tempfile::TempDir| {
        let mut c = node_config(&url, &key, dir);
        c.data_key_seal_budget = 3;
        c.worker = Some(worker_config());
        c
    };
    let dir_a = tempfile::tempdir().unwrap();
    let mut a = start(node(&dir_a), dir_a).await;
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
    let mut b = start(node(&dir_b), dir_b).await;
    b.token = a.token.clone();
    (url, a, b)
}

#[tokio::test]
async fn on_postgres_nodes_share_the_seal_count_rotate_once_and_destroy_after_rewrap() {
    let Some(server) = authd_store_postgres::testing::server_url(
        "on_postgres_nodes_share_the_seal_count_rotate_once_and_destroy_after_rewrap",
    ) else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (_url, a, b) = two_budgeted_nodes(&server).await;
    let t = a.token.clone();
    // Nine seals over two nodes, budget 3 (a mailgun credential is three sealed rows: two
    // fields and its integrity manifest): each credential spends one key, and each spent key
    // is rotated once, whichever node spent it.
    let (x, acct) = create(&a, &t, "x").await;
    let (y, _) = create(&b, &t, "y").await;
    let (z, _) = create(&a, &t, "z").await;
    // (All keys here are dated by the nodes' manual clocks, so compare them sorted.)
    let keys = keys_of(&a).await;
    let mut counts: Vec<(bool, u64, u64)> = keys.iter().map(|k| (k.1, k.2, k.3)).collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        [(false, 3, 3), (false, 3, 3), (false, 3, 3), (true, 0, 0)]
    );
    for node in [&a, &b] {
        for (id, want) in [(&x, "x"), (&y, "y"), (&z, "z")] {
            assert_eq!(worker_apikey(node, &acct, id).await, want);
        }
    }
    let store = a.app_state.store.clone();
    let clock = a.app_state.clock.clone();
    let k1 = keys.iter().find(|k| !k.1).unwrap().0.clone();
    assert_eq!(
        authd::keys::destroy(store.as_ref(), clock.as_ref(), &k1)
            .await
            .unwrap(),
        KeyDestroy::Referenced(3)
    );
    let master = a.master.clone().expect("test nodes use a direct key");
    let p = authd::keys::rewrap_within(
        store.clone(),
        master.key_wrapper(),
        clock.as_ref(),
        3,
        100,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((p.rewrapped, p.remaining), (9, 0));
    assert_eq!(
        authd::keys::destroy(store.as_ref(), clock.as_ref(), &k1)
            .await
            .unwrap(),
        KeyDestroy::Destroyed
    );
    for node in [&b, &a] {
        for (id, want) in [(&x, "x"), (&y, "y"), (&z, "z")] {
            assert_eq!(worker_apikey(node, &acct, id).await, want);
        }
    }
    a.stop().await;
    b.stop().await;
}
