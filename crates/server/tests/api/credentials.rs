//! Integration credentials over HTTP: auth CRUD and validation, custom providers, envelope
//! encryption (canary scan, cross-account swap, rotation while serving), the worker path,
//! works and the delete cascade (racing reads), and the audit trail.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};

use authd::config::MasterKeySource;
use authd::worker::{WorkerConfig, WorkerToken};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{into_resp, spawn_app, spawn_app_with, Resp, TestApp};

/// The file credential of these tests (the generated format; it reads every account).
const WORKER_TOKEN: &str = "wk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

async fn spawn_with_worker() -> TestApp {
    spawn_app_with(|c| {
        c.worker = Some(WorkerConfig {
            token: Some(WorkerToken::new(WORKER_TOKEN).unwrap()),
            ..WorkerConfig::new("127.0.0.1:0".parse().unwrap())
        })
    })
    .await
}

fn mailgun(apikey: &str, domain: &str) -> Value {
    json!({
        "provider_id": "mailgun",
        "name": "mail",
        "config": [{"name": "apikey", "value": apikey}, {"name": "domain", "value": domain}]
    })
}

impl TestApp {
    async fn worker(&self, account: &str, auth: &str, token: Option<&str>) -> Resp {
        let addr = self.worker_addr.expect("worker listener enabled");
        let mut rb = self.client.get(format!(
            "http://{addr}/worker/v1/account/{account}/auth/{auth}"
        ));
        if let Some(t) = token {
            rb = rb.header("Authorization", format!("Bearer {t}"));
        }
        into_resp(rb.send().await.unwrap()).await
    }

    fn master(&self) -> authd_crypto::MasterKey {
        self.master.clone().expect("test app uses a direct key")
    }

    async fn create_auth(&self, token: &str, body: Value) -> (String, String) {
        let r = self.post("/api/auth", token, body).await;
        let d = r.ok(201);
        (
            d["id"].as_str().unwrap().to_owned(),
            d["account_id"].as_str().unwrap().to_owned(),
        )
    }
}

fn config_value(worker_body: &Value, name: &str) -> String {
    worker_body["data"]["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {worker_body}"))["value"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn assert_no_secret_fields(d: &Value) {
    for k in ["config", "oauthtoken", "oauth2token"] {
        assert!(d.get(k).is_none(), "{k} leaked in {d}");
    }
}

#[tokio::test]
async fn credential_crud_keeps_secrets_write_only() {
    let app = spawn_with_worker().await;
    let t = &app.token;
    let (id, acct) = app
        .create_auth(t, mailgun("key-one", "mg.example.com"))
        .await;
    let got = app.get(&format!("/api/auth/{id}"), t).await;
    let d = got.ok(200);
    assert_eq!(d["provider_name"], "Mailgun");
    assert_eq!(d["auth_type"], "credential");
    assert_eq!(d["name"], "mail");
    assert_no_secret_fields(d);
    let list = app.get("/api/auth?auth_type=credential", t).await;
    let items = list.ok(200).as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_no_secret_fields(&items[0]);

    // PUT replaces the parts it is given and keeps the rest.
    let r = app
        .put(
            &format!("/api/auth/{id}"),
            t,
            json!({"config": [{"name": "apikey", "value": "key-two"}], "name": "renamed"}),
        )
        .await;
    assert_eq!(r.ok(200)["name"], "renamed");
    assert_no_secret_fields(r.ok(200));
    let w = app.worker(&acct, &id, Some(WORKER_TOKEN)).await;
    w.ok(200);
    assert_eq!(config_value(&w.body, "apikey"), "key-two");
    assert_eq!(config_value(&w.body, "domain"), "mg.example.com");

    // The seed's form: create at a caller-chosen id.
    let chosen = "1b53b88a06b418b07d601b6f57b8eb40";
    let r = app
        .post(&format!("/api/auth/{chosen}"), t, mailgun("k3", "d3"))
        .await;
    assert_eq!(r.ok(201)["id"], chosen);
    app.post(&format!("/api/auth/{chosen}"), t, mailgun("k4", "d4"))
        .await
        .assert_error(409, &format!("Auth {chosen} already exists"));
    let r = app.post("/api/auth/NOT-HEX", t, mailgun("k", "d")).await;
    assert_eq!(r.status, 400, "{}", r.body);

    // PUT of an unknown id is 404; of a token is 400.
    app.put(
        &format!("/api/auth/{}", "ab".repeat(16)),
        t,
        json!({"name": "x"}),
    )
    .await
    .assert_error(404, "Not found");
    let (tok_id, _) = app
        .create_token(t, json!({"scopes": ["observer"], "name": "o"}))
        .await;
    let r = app
        .put(&format!("/api/auth/{tok_id}"), t, json!({"name": "x"}))
        .await;
    assert_eq!(r.status, 400);

    // Delete is 204, then 404; the worker no longer finds it.
    assert_eq!(app.delete(&format!("/api/auth/{id}"), t).await.status, 204);
    app.delete(&format!("/api/auth/{id}"), t)
        .await
        .assert_error(404, "Not found");
    app.get(&format!("/api/auth/{id}"), t)
        .await
        .assert_error(404, "Not found");
    assert_eq!(app.worker(&acct, &id, Some(WORKER_TOKEN)).await.status, 404);
    app.stop().await;
}

#[tokio::test]
async fn create_and_update_are_validated_against_the_provider() {
    let app = spawn_app().await;
    let t = &app.token;
    let cases = [
        (
            json!({"provider_id": "mailgun", "config": [{"name": "apikey", "value": "k"}]}),
            "config field domain is required by provider mailgun",
        ),
        (
            json!({"provider_id": "mailgun", "config": {"apikey": "k", "domain": "d", "extra": "x"}}),
            "config field extra is not a field of provider mailgun",
        ),
        (
            json!({"provider_id": "mailgun", "config": {"apikey": "k", "domain": "d"}, "oauth2token": {"access_token": "a"}}),
            "oauth2token is not accepted by provider mailgun (auth_method config)",
        ),
        (
            json!({"provider_id": "facebook", "oauthtoken": {"token": "t", "secret": "s"}}),
            "oauthtoken is not accepted by provider facebook (auth_method oauth2)",
        ),
        (
            json!({"provider_id": "facebook"}),
            "oauth2token is required by provider facebook (auth_method oauth2)",
        ),
        (
            json!({"provider_id": "facebook", "oauth2token": {"refresh_token": "r"}}),
            "oauth2token.access_token is required",
        ),
        (
            json!({"provider_id": "twitter", "oauth2token": {"access_token": "a"}}),
            "oauth2token is not accepted by provider twitter (auth_method oauth1)",
        ),
        (
            json!({"config": {"apikey": "k"}}),
            "provider_id is required",
        ),
        (
            json!({"provider_id": "nope", "config": {"apikey": "k"}}),
            "provider_id: no such provider",
        ),
        (
            json!({"provider_id": "lytics", "config": {"api_key": "k"}}),
            "provider_id: Lytics API tokens are created with POST /api/auth/createtoken",
        ),
        (
            json!({"provider_id": "mailgun", "config": {"apikey": 5, "domain": "d"}}),
            "config field apikey must be a string",
        ),
        (
            json!({"provider_id": "mailgun", "cnfig": {}}),
            "Unknown field cnfig",
        ),
    ];
    for (body, msg) in cases {
        app.post("/api/auth", t, body).await.assert_error(400, msg);
    }
    // Valid shapes for each method.
    app.create_auth(t, json!({"provider_id": "facebook", "oauth2token": {"access_token": "a", "refresh_token": "r"}}))
        .await;
    let (tw, _) = app
        .create_auth(
            t,
            json!({"provider_id": "twitter", "oauthtoken": {"token": "t", "secret": "s"}}),
        )
        .await;
    // An update is validated against the merged result.
    app.put(
        &format!("/api/auth/{tw}"),
        t,
        json!({"oauth2token": {"access_token": "a"}}),
    )
    .await
    .assert_error(
        400,
        "oauth2token is not accepted by provider twitter (auth_method oauth1)",
    );
    app.stop().await;
}

#[tokio::test]
async fn integrations_follow_the_role_matrix() {
    let app = spawn_app().await;
    let (id, _) = app.create_auth(&app.token, mailgun("k", "d")).await;
    for role in ["data_manager", "general_manager"] {
        let t = app.token_with(&[role]).await;
        app.get(&format!("/api/auth/{id}"), &t).await.ok(200);
        app.create_auth(&t, mailgun(&format!("k-{role}"), "d"))
            .await;
        app.get("/api/work", &t).await.ok(200);
    }
    for role in ["observer", "marketer", "data"] {
        let t = app.token_with(&[role]).await;
        assert_eq!(
            app.post("/api/auth", &t, mailgun("k", "d")).await.status,
            403
        );
        assert_eq!(
            app.put(&format!("/api/auth/{id}"), &t, json!({"name": "x"}))
                .await
                .status,
            403
        );
        assert_eq!(app.delete(&format!("/api/auth/{id}"), &t).await.status, 403);
        assert_eq!(app.get("/api/work", &t).await.status, 403);
        assert_eq!(app.get("/api/audit", &t).await.status, 403);
    }
    // Another tenant sees nothing.
    let other = app.new_account("other").await;
    app.get(&format!("/api/auth/{id}"), &other)
        .await
        .assert_error(404, "Not found");
    app.put(&format!("/api/auth/{id}"), &other, json!({"name": "x"}))
        .await
        .assert_error(404, "Not found");
    app.delete(&format!("/api/auth/{id}"), &other)
        .await
        .assert_error(404, "Not found");
    app.get(&format!("/api/auth/{id}"), &app.token)
        .await
        .ok(200);
    app.stop().await;
}

#[tokio::test]
async fn custom_providers_are_per_account_and_validate_credentials() {
    let app = spawn_app().await;
    let dm = app.token_with(&["data_manager"]).await;
    let body = json!({
        "slug": "our_provider", "name": "Our Provider", "auth_method": "config",
        "config": [{"name": "apikey", "label": "API key", "type": "password"},
                   {"name": "region", "optional": true}]
    });
    let r = app.post("/api/provider", &dm, body.clone()).await;
    let pid = r.ok(201)["id"].as_str().unwrap().to_owned();
    app.post("/api/provider", &dm, body.clone())
        .await
        .assert_error(409, "A provider with slug \"our_provider\" already exists");
    let gm = app.token_with(&["general_manager"]).await;
    assert_eq!(
        app.post("/api/provider", &gm, json!({"slug": "x2"}))
            .await
            .status,
        403
    );
    let mut builtin = body.clone();
    builtin["slug"] = json!("facebook");
    assert_eq!(app.post("/api/provider", &dm, builtin).await.status, 409);
    app.get("/api/provider/our_provider", &dm).await.ok(200);
    let list = app.get("/api/provider", &dm).await;
    assert!(list
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == pid));

    // The seed's example body.
    let seed = json!({"provider_id": "our_provider", "config": [{"name": "apikey", "value": "value_that_will_get_encrypted"}]});
    let r = app.post("/api/auth", &dm, seed.clone()).await;
    let d = r.ok(201);
    assert_eq!(d["provider_id"], pid.as_str());
    assert_eq!(d["provider_name"], "Our Provider");
    app.post("/api/auth", &dm, json!({"provider_id": pid, "config": {}}))
        .await
        .assert_error(
            400,
            "config field apikey is required by provider our_provider",
        );
    let list = app.get(&format!("/api/auth?provider_id={pid}"), &dm).await;
    assert_eq!(list.ok(200).as_array().unwrap().len(), 1);

    // Another account does not see it.
    let other = app.new_account("other").await;
    app.post("/api/auth", &other, seed)
        .await
        .assert_error(400, "provider_id: no such provider");
    app.get("/api/provider/our_provider", &other)
        .await
        .assert_error(404, "Not found");
    app.stop().await;
}

#[tokio::test]
async fn the_worker_path_is_off_by_default_and_takes_only_the_worker_credential() {
    let plain = spawn_app().await;
    assert!(plain.worker_addr.is_none());
    plain.stop().await;

    let app = spawn_with_worker().await;
    let (id, acct) = app.create_auth(&app.token, mailgun("wk-key", "d")).await;
    // No credential, a wrong one, or an API token (even admin's) are refused.
    for t in [
        None,
        Some("wk_wrong_wrong_wrong_wrong_wrong_wrong_wrong"),
        Some("wk_1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        Some(app.token.as_str()),
    ] {
        app.worker(&acct, &id, t)
            .await
            .assert_error(401, "Not authorized");
    }
    // The worker credential opens nothing on the public API.
    app.get(&format!("/api/auth/{id}"), WORKER_TOKEN)
        .await
        .assert_error(401, "Not authorized");
    // The public API has no plaintext route.
    let r = app
        .get(&format!("/worker/v1/account/{acct}/auth/{id}"), &app.token)
        .await;
    assert_eq!(r.status, 404);
    // The right credential reads it, and the read is audited.
    let w = app.worker(&acct, &id, Some(WORKER_TOKEN)).await;
    assert_eq!(config_value(&w.body, "apikey"), "wk-key");
    // The wrong account in the path is 404 like a missing auth.
    let other = "0".repeat(32);
    assert_eq!(
        app.worker(&other, &id, Some(WORKER_TOKEN)).await.status,
        404
    );
    let audit = app
        .get(
            &format!("/api/audit?action=worker.decrypt&target={id}"),
            &app.token,
        )
        .await;
    let entries = audit.ok(200).as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["actor"], "worker");
    assert_eq!(entries[0]["outcome"], "ok");
    app.stop().await;
}

async fn raw_pool(app: &TestApp) -> sqlx::SqlitePool {
    let path = app.dir.path().join("authd.db");
    authd_store_sqlite::SqliteStore::open(path.to_str().unwrap())
        .await
        .unwrap()
        .pool()
        .clone()
}

#[tokio::test]
async fn a_ciphertext_swapped_across_accounts_fails_to_decrypt() {
    let app = spawn_with_worker().await;
    let other = app.new_account("other").await;
    let (a_id, a_acct) = app
        .create_auth(&app.token, mailgun("SWAP-CANARY-A", "da"))
        .await;
    let (b_id, b_acct) = app.create_auth(&other, mailgun("victim-b", "db")).await;
    // An attacker with write access to the database copies A's sealed apikey into B's row.
    let pool = raw_pool(&app).await;
    let n = sqlx::query(
        "UPDATE auth_secrets SET key_id = s.key_id, nonce = s.nonce, ciphertext = s.ciphertext \
         FROM (SELECT key_id, nonce, ciphertext FROM auth_secrets WHERE auth_id = ? AND field = 'config.apikey') AS s \
         WHERE auth_id = ? AND field = 'config.apikey'",
    )
    .bind(&a_id)
    .bind(&b_id)
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(n, 1);
    let w = app.worker(&b_acct, &b_id, Some(WORKER_TOKEN)).await;
    w.assert_error(409, "Credential failed its integrity check; re-enter it");
    assert!(!w.body.to_string().contains("SWAP-CANARY-A"));
    // Same within one account: another field of the same row also fails.
    sqlx::query(
        "UPDATE auth_secrets SET nonce = s.nonce, ciphertext = s.ciphertext \
         FROM (SELECT nonce, ciphertext FROM auth_secrets WHERE auth_id = ? AND field = 'config.apikey') AS s \
         WHERE auth_id = ? AND field = 'config.domain'",
    )
    .bind(&a_id)
    .bind(&a_id)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        app.worker(&a_acct, &a_id, Some(WORKER_TOKEN)).await.status,
        409
    );
    let audit = app
        .get(
            &format!("/api/audit?action=worker.decrypt&target={a_id}"),
            &app.token,
        )
        .await;
    assert_eq!(audit.ok(200)[0]["outcome"], "decrypt_failed");
    app.stop().await;
}

#[tokio::test]
async fn rotation_while_serving_uses_the_new_key_for_writes_and_old_ones_still_open() {
    let app = spawn_with_worker().await;
    let t = &app.token;
    let store = app.app_state.store.clone();
    let (old_id, acct) = app.create_auth(t, mailgun("before-rotation", "d1")).await;
    let (other_id, _) = app.create_auth(t, mailgun("other", "d0")).await;
    let before = authd::keys::status(store.as_ref()).await.unwrap();
    assert_eq!(before.len(), 1);
    let k1 = before[0].id.clone();
    // Two fields and the integrity (manifest) row per credential.
    assert_eq!(before[0].secrets, 6);

    // The same function `authd keys rotate` runs, while the server keeps serving.
    let wrapper = app.master().key_wrapper();
    let k2 = authd::keys::rotate(store.as_ref(), &wrapper, app.app_state.clock.as_ref())
        .await
        .unwrap();
    assert_ne!(k1, k2);

    let (new_id, _) = app.create_auth(t, mailgun("after-rotation", "d2")).await;
    let after = authd::keys::status(store.as_ref()).await.unwrap();
    let count = |id: &str| after.iter().find(|k| k.id == id).unwrap().secrets;
    assert_eq!(count(&k1), 6, "old secrets stay under the old key");
    assert_eq!(count(&k2), 3, "the new write used the new key");
    assert!(after.iter().find(|k| k.id == k2).unwrap().current);

    let w = app.worker(&acct, &old_id, Some(WORKER_TOKEN)).await;
    assert_eq!(config_value(&w.body, "apikey"), "before-rotation");
    let w = app.worker(&acct, &new_id, Some(WORKER_TOKEN)).await;
    assert_eq!(config_value(&w.body, "apikey"), "after-rotation");

    // An update of one field re-seals the whole credential (its next generation) under the
    // new key.
    app.put(
        &format!("/api/auth/{old_id}"),
        t,
        json!({"config": {"apikey": "updated"}}),
    )
    .await
    .ok(200);
    let s = authd::keys::status(store.as_ref()).await.unwrap();
    assert_eq!(s.iter().find(|k| k.id == k1).unwrap().secrets, 3);

    // Rewrap (online) moves the rest; everything still opens.
    let mut reports = 0;
    let p = authd::keys::rewrap(
        store.clone(),
        wrapper,
        app.app_state.clock.as_ref(),
        1,
        |_| reports += 1,
    )
    .await
    .unwrap();
    assert_eq!(p.rewrapped, 3);
    assert_eq!(p.remaining, 0);
    assert!(reports >= 1);
    let s = authd::keys::status(store.as_ref()).await.unwrap();
    assert_eq!(s.iter().find(|k| k.id == k1).unwrap().secrets, 0);
    assert_eq!(s.iter().find(|k| k.id == k2).unwrap().secrets, 9);
    let w = app.worker(&acct, &old_id, Some(WORKER_TOKEN)).await;
    assert_eq!(config_value(&w.body, "apikey"), "updated");
    assert_eq!(config_value(&w.body, "domain"), "d1");
    let w = app.worker(&acct, &other_id, Some(WORKER_TOKEN)).await;
    assert_eq!(config_value(&w.body, "apikey"), "other");
    // Rewrapping again is a no-op (resumable: only what is left is touched).
    let p = authd::keys::rewrap(
        store.clone(),
        app.master().key_wrapper(),
        app.app_state.clock.as_ref(),
        10,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(p.rewrapped, 0);
    app.stop().await;
}

#[tokio::test]
async fn works_check_auths_and_duplicates() {
    let app = spawn_app().await;
    let t = &app.token;
    let (a1, _) = app.create_auth(t, mailgun("k", "d")).await;
    let body = json!({"name": "export", "workflow": "mailgun_export", "config": {"b": 1, "a": [1, 2]}, "auth_ids": [a1]});
    let r = app.post("/api/work", t, body).await;
    let w = r.ok(201).clone();
    assert_eq!(w["statuscode"], "sleeping");
    assert_eq!(w["auth_ids"], json!([a1]));
    assert_eq!(w["config"], json!({"a": [1, 2], "b": 1}));
    let wid = w["id"].as_str().unwrap();
    // Same config with keys in another order is a duplicate.
    app.post(
        "/api/work",
        t,
        json!({"workflow": "mailgun_export", "config": {"a": [1, 2], "b": 1}}),
    )
    .await
    .assert_error(400, "Duplicate work config");
    // Another account's auth is refused like a missing one.
    let other = app.new_account("other").await;
    let (b1, _) = app.create_auth(&other, mailgun("k", "d")).await;
    app.post("/api/work", t, json!({"workflow": "x", "auth_ids": [b1]}))
        .await
        .assert_error(400, &format!("auth_ids: no auth {b1} in this account"));
    app.post(
        "/api/work",
        t,
        json!({"workflow": "x", "statuscode": "completed"}),
    )
    .await
    .assert_error(400, "statuscode: a work starts sleeping, running or paused");
    app.get(&format!("/api/work/{wid}"), t).await.ok(200);
    app.get(&format!("/api/work/{wid}"), &other)
        .await
        .assert_error(404, "Not found");
    assert_eq!(
        app.get("/api/work", t)
            .await
            .ok(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(app.delete(&format!("/api/work/{wid}"), t).await.status, 204);
    app.delete(&format!("/api/work/{wid}"), t)
        .await
        .assert_error(404, "Not found");
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_auth_detaches_and_stops_its_works() {
    let app = spawn_app().await;
    let t = &app.token;
    let (a1, _) = app.create_auth(t, mailgun("k1", "d")).await;
    let (a2, _) = app.create_auth(t, mailgun("k2", "d")).await;
    let mk = |wf: &str, ids: Vec<&str>, status: &str| json!({"workflow": wf, "auth_ids": ids, "statuscode": status});
    let running = app
        .post("/api/work", t, mk("w1", vec![&a1, &a2], "running"))
        .await;
    let running = running.ok(201)["id"].as_str().unwrap().to_owned();
    let paused = app
        .post("/api/work", t, mk("w2", vec![&a1], "paused"))
        .await;
    let paused = paused.ok(201)["id"].as_str().unwrap().to_owned();
    let untouched = app
        .post("/api/work", t, mk("w3", vec![&a2], "running"))
        .await;
    let untouched = untouched.ok(201)["id"].as_str().unwrap().to_owned();

    assert_eq!(app.delete(&format!("/api/auth/{a1}"), t).await.status, 204);
    let w = app.get(&format!("/api/work/{running}"), t).await;
    let w = w.ok(200);
    assert_eq!(w["auth_ids"], json!([a2]));
    assert_eq!(w["statuscode"], "paused");
    assert_eq!(w["status_reason"], format!("auth {a1} was deleted"));
    let w = app.get(&format!("/api/work/{paused}"), t).await;
    assert_eq!(w.ok(200)["auth_ids"], json!([]));
    assert_eq!(w.ok(200)["statuscode"], "paused");
    assert_eq!(w.ok(200)["status_reason"], "");
    let w = app.get(&format!("/api/work/{untouched}"), t).await;
    assert_eq!(w.ok(200)["statuscode"], "running");
    app.delete(&format!("/api/auth/{a1}"), t)
        .await
        .assert_error(404, "Not found");
    let audit = app
        .get(&format!("/api/audit?action=work.stop&target={running}"), t)
        .await;
    assert_eq!(audit.ok(200).as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn no_reader_sees_a_half_done_delete() {
    let app = Arc::new(spawn_with_worker().await);
    let t = app.token.clone();
    let (auth, acct) = app
        .create_auth(&t, mailgun("race-key", "race-domain"))
        .await;
    let mut works = Vec::new();
    for i in 0..3 {
        let r = app
            .post(
                "/api/work",
                &t,
                json!({"workflow": format!("w{i}"), "auth_ids": [auth], "statuscode": "running"}),
            )
            .await;
        works.push(r.ok(201)["id"].as_str().unwrap().to_owned());
    }
    let mut readers = Vec::new();
    for i in 0..6 {
        let app = app.clone();
        let t = t.clone();
        let (auth, acct, work) = (auth.clone(), acct.clone(), works[i % works.len()].clone());
        readers.push(tokio::spawn(async move {
            let mut seen_after = 0;
            let mut observations = 0;
            while seen_after < 3 && observations < 2_000 {
                observations += 1;
                let w = app.get(&format!("/api/work/{work}"), &t).await;
                let w = w.ok(200);
                let listed = w["auth_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == &json!(auth));
                match (listed, w["statuscode"].as_str().unwrap()) {
                    (true, "running") => {}
                    (false, "paused") => {
                        assert_eq!(w["status_reason"], format!("auth {auth} was deleted"));
                        seen_after += 1;
                    }
                    other => panic!("half-done state observed: {other:?} in {w}"),
                }
                let r = app.worker(&acct, &auth, Some(WORKER_TOKEN)).await;
                match r.status.as_u16() {
                    200 => {
                        assert_eq!(config_value(&r.body, "apikey"), "race-key");
                        assert_eq!(config_value(&r.body, "domain"), "race-domain");
                    }
                    404 => {}
                    s => panic!("worker read answered {s}: {}", r.body),
                }
                let a = app.get(&format!("/api/auth/{auth}"), &t).await;
                assert!(matches!(a.status.as_u16(), 200 | 404), "{}", a.body);
            }
            observations
        }));
    }
    let deleter = {
        let app = app.clone();
        let t = t.clone();
        let auth = auth.clone();
        tokio::spawn(async move { app.delete(&format!("/api/auth/{auth}"), &t).await.status })
    };
    assert_eq!(deleter.await.unwrap(), 204);
    for r in readers {
        assert!(r.await.unwrap() > 0);
    }
    for w in &works {
        let w = app.get(&format!("/api/work/{w}"), &t).await;
        assert_eq!(w.ok(200)["statuscode"], "paused");
    }
}

/// The audit trail's seq numbers, walked two entries a page with the `_next` cursor.
async fn walk_audit_pages(app: &TestApp, t: &str) -> Vec<i64> {
    let mut walked = Vec::new();
    let mut url = "/api/audit?limit=2".to_owned();
    loop {
        let page = app.get(&url, t).await;
        walked.extend(
            page.ok(200)
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap()),
        );
        match page.body["_next"].as_str() {
            Some(n) => url = format!("/api/audit?limit=2&_next={n}"),
            None => break,
        }
    }
    walked
}

/// The whole trail of the audit test: no secret, every action, the credential creation's
/// fields, and both refusals.
fn assert_audit_entries(all: &[Value], tok: &str, tok_id: &str, auth: &str) {
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("AUDIT-CANARY"));
    assert!(!text.contains(tok));
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in [
        "token.create",
        "auth.create",
        "user.create",
        "user.update",
        "auth.delete",
        "credential.refused",
        "token.revoke",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let created = all.iter().find(|e| e["action"] == "auth.create").unwrap();
    assert_eq!(created["actor"], format!("token:{tok_id}"));
    assert_eq!(created["target"], auth);
    assert_eq!(created["outcome"], "ok");
    assert_eq!(created["request_id"].as_str().unwrap().len(), 32);
    let outcomes: Vec<&str> = all
        .iter()
        .filter(|e| e["action"] == "credential.refused")
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"expired") && outcomes.contains(&"forbidden"),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn the_audit_trail_records_mutations_and_refusals_with_pagination() {
    let app = spawn_app().await;
    let t = &app.token;
    let (tok_id, tok) = app
        .create_token(t, json!({"scopes": ["data_manager"], "name": "dm"}))
        .await;
    let (auth, _) = app.create_auth(&tok, mailgun("AUDIT-CANARY", "d")).await;
    let user = app
        .post(
            "/api/user",
            t,
            json!({"email": "u@x.y", "roles": ["observer"]}),
        )
        .await;
    let uid = user.ok(201)["id"].as_str().unwrap().to_owned();
    app.put(
        &format!("/api/user/{uid}"),
        t,
        json!({"roles": ["marketer"]}),
    )
    .await
    .ok(200);
    assert_eq!(
        app.delete(&format!("/api/auth/{auth}"), &tok).await.status,
        204
    );
    // Refused credentials: an expired token of this account, and a forbidden call.
    let (_, short) = app
        .create_token(
            t,
            json!({"scopes": ["observer"], "name": "s", "expires": "1h"}),
        )
        .await;
    app.clock.advance_ms(2 * 3_600_000);
    assert_eq!(app.get("/api/auth", &short).await.status, 401);
    assert_eq!(app.get("/api/audit", &tok).await.status, 403);
    assert_eq!(
        app.delete(&format!("/api/auth/{tok_id}"), t).await.status,
        204
    );

    let all = app.get("/api/audit?limit=1000", t).await;
    let all = all.ok(200).as_array().unwrap().clone();
    assert_audit_entries(&all, &tok, &tok_id, &auth);
    // Newest first; seq strictly decreasing.
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]));

    // Cursor pagination walks the same entries.
    assert_eq!(walk_audit_pages(&app, t).await, seqs);
    // Filters.
    let f = app
        .get(
            &format!("/api/audit?actor=token:{tok_id}&action=auth.create"),
            t,
        )
        .await;
    assert_eq!(f.ok(200).as_array().unwrap().len(), 1);
    let f = app.get(&format!("/api/audit?target={uid}"), t).await;
    assert_eq!(f.ok(200).as_array().unwrap().len(), 2);
    app.get("/api/audit?_next=abc", t)
        .await
        .assert_error(400, "Invalid _next cursor");
    // Another tenant's admin sees none of it.
    let other = app.new_account("other").await;
    let o = app.get(&format!("/api/audit?target={auth}"), &other).await;
    assert!(o.ok(200).as_array().unwrap().is_empty());
    app.stop().await;
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: LazyLock<Option<Captured>> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        return None;
    }
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .ok()
        .map(|()| logs)
});

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn scan_dir(dir: &Path, canaries: &[&str]) -> usize {
    let mut files = Vec::new();
    files_under(dir, &mut files);
    for f in &files {
        // SQLite may remove its side files (-shm, -journal) between listing and reading.
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        for c in canaries {
            assert!(
                !bytes.windows(c.len()).any(|w| w == c.as_bytes()),
                "canary {c} found in {}",
                f.display()
            );
        }
    }
    files.len()
}

/// Secrets planted in every request of the canary test; none may come back out.
const CANARIES: [&str; 8] = [
    "CANARY-apikey-7f3a91",
    "CANARY-domain-2b8c44",
    "CANARY-oauth2-access-9d1e07",
    "CANARY-oauth2-refresh-55aa12",
    "CANARY-oauth1-secret-c0ffee",
    "CANARY-update-apikey-31337",
    "CANARY-error-path-e4e4e4",
    "CANARY-custom-provider-8badf0",
];

/// Creates a credential in every shape (config, OAuth 2, OAuth 1 at a chosen id, a custom
/// provider's) carrying canaries; returns the Mailgun and Facebook ids, the account id and
/// the answers.
async fn canary_credentials(app: &TestApp, t: &str) -> (String, String, String, Vec<Resp>) {
    let c = CANARIES;
    let mut bodies: Vec<Resp> = Vec::new();
    let r = app.post("/api/auth", t, mailgun(c[0], c[1])).await;
    let mg = r.ok(201)["id"].as_str().unwrap().to_owned();
    let acct = r.ok(201)["account_id"].as_str().unwrap().to_owned();
    bodies.push(r);
    let r = app
        .post(
            "/api/auth",
            t,
            json!({"provider_id": "facebook", "oauth2token": {"access_token": c[2], "refresh_token": c[3]}}),
        )
        .await;
    let fb = r.ok(201)["id"].as_str().unwrap().to_owned();
    bodies.push(r);
    let r = app
        .post(
            "/api/auth/1b53b88a06b418b07d601b6f57b8eb40",
            t,
            json!({"provider_id": "twitter", "oauthtoken": {"token": "tok", "secret": c[4]}}),
        )
        .await;
    r.ok(201);
    bodies.push(r);
    app.post("/api/provider", t, json!({"slug": "our_provider", "name": "Ours", "auth_method": "config", "config": [{"name": "apikey"}]}))
        .await
        .ok(201);
    let r = app
        .post(
            "/api/auth",
            t,
            json!({"provider_id": "our_provider", "config": [{"name": "apikey", "value": c[7]}]}),
        )
        .await;
    r.ok(201);
    bodies.push(r);
    (mg, fb, acct, bodies)
}

/// Requests that fail, each carrying the canary `e` in its body: bad shapes, a forbidden or
/// missing caller, unknown ids, a reference to a non-id.
fn canary_error_requests<'a>(
    t: &'a str,
    obs: &'a str,
    mg: &str,
    e: &str,
) -> Vec<(Method, String, Option<&'a str>, Value)> {
    vec![
        (
            Method::POST,
            "/api/auth".into(),
            Some(t),
            json!({"provider_id": "mailgun", "config": [{"name": "apikey", "value": e}]}),
        ),
        (
            Method::POST,
            "/api/auth".into(),
            Some(t),
            json!({"provider_id": "mailgun", "config": e}),
        ),
        (
            Method::POST,
            "/api/auth".into(),
            Some(t),
            json!({"provider_id": "mailgun", "config": [{"name": "apikey", "value": [e]}]}),
        ),
        (
            Method::POST,
            "/api/auth".into(),
            Some(t),
            json!({"provider_id": "facebook", "oauth2token": e}),
        ),
        (
            Method::POST,
            "/api/auth".into(),
            Some(t),
            json!({"provider_id": "facebook", "oauthtoken": {"secret": e}}),
        ),
        (
            Method::POST,
            "/api/auth".into(),
            Some(t),
            json!({"provider_id": "mailgun", "config": {"apikey": e, "domain": "d", "zzz": e}}),
        ),
        (Method::POST, "/api/auth".into(), Some(obs), mailgun(e, e)),
        (Method::POST, "/api/auth".into(), None, mailgun(e, e)),
        (
            Method::POST,
            "/api/auth".into(),
            Some("at.00000000000000000000000000000000.bad"),
            mailgun(e, e),
        ),
        (
            Method::POST,
            "/api/auth/1b53b88a06b418b07d601b6f57b8eb40".into(),
            Some(t),
            json!({"provider_id": "twitter", "oauthtoken": {"secret": e}}),
        ),
        (Method::POST, "/api/auth/zzz".into(), Some(t), mailgun(e, e)),
        (
            Method::PUT,
            format!("/api/auth/{}", "ab".repeat(16)),
            Some(t),
            mailgun(e, e),
        ),
        (
            Method::PUT,
            format!("/api/auth/{mg}"),
            Some(t),
            json!({"oauth2token": {"access_token": e}}),
        ),
        (
            Method::PUT,
            format!("/api/auth/{mg}"),
            Some(obs),
            mailgun(e, e),
        ),
        (
            Method::POST,
            "/api/work".into(),
            Some(t),
            json!({"workflow": "x", "auth_ids": [e]}),
        ),
    ]
}

/// Sends every failing request of [`canary_error_requests`] plus a malformed JSON body with
/// the canary; each must be a 4xx. Returns the answers.
async fn send_canary_errors(app: &TestApp, t: &str, obs: &str, mg: &str) -> Vec<Resp> {
    let e = CANARIES[6];
    let mut bodies = Vec::new();
    for (m, path, tok, body) in canary_error_requests(t, obs, mg, e) {
        let r = app.call(m.clone(), &path, tok, Some(body)).await;
        assert!(
            r.status.is_client_error(),
            "{m} {path}: {} {}",
            r.status,
            r.body
        );
        bodies.push(r);
    }
    // A malformed JSON body with a canary in it.
    let r = app
        .client
        .post(app.url("/api/auth"))
        .header("Authorization", t)
        .header("Content-Type", "application/json")
        .body(format!("{{\"provider_id\": \"mailgun\", \"config\": [{{\"name\": \"apikey\", \"value\": \"{e}\"}}"))
        .send()
        .await
        .unwrap();
    let r = into_resp(r).await;
    assert_eq!(r.status, 400);
    bodies.push(r);
    bodies
}

/// The captured logs hold the credential creations and none of the canaries.
fn assert_no_canary_in_logs(logs: &Captured) {
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("credential created"),
        "logs were captured: {} bytes: {}",
        logged.len(),
        &logged[..logged.len().min(3000)]
    );
    for canary in CANARIES {
        assert!(!logged.contains(canary), "canary {canary} in logs");
    }
}

#[tokio::test]
async fn canaries_never_appear_in_responses_logs_or_the_data_dir() {
    // A process-wide subscriber: a thread-scoped one misses events when other tests run
    // concurrently (tracing caches callsite interest globally). Other tests' logs land in
    // the same buffer, which only makes the scan stricter.
    let logs = LazyLock::force(&LOGS).clone();
    // A generated key file in the data dir, so it is scanned too.
    let app = spawn_app_with(|c| {
        c.master_key = MasterKeySource::GenerateAt(c.data_dir.join("master.key"));
        c.worker = Some(WorkerConfig {
            token: Some(WorkerToken::new(WORKER_TOKEN).unwrap()),
            ..WorkerConfig::new("127.0.0.1:0".parse().unwrap())
        });
    })
    .await;
    let t = app.token.clone();
    let c = CANARIES;
    let obs = app.token_with(&["observer"]).await;

    // Create, in every shape.
    let (mg, fb, acct, mut bodies) = canary_credentials(&app, &t).await;

    // Update, list, get.
    let r = app
        .put(
            &format!("/api/auth/{mg}"),
            &t,
            json!({"config": [{"name": "apikey", "value": c[5]}]}),
        )
        .await;
    r.ok(200);
    bodies.push(r);
    bodies.push(app.get("/api/auth", &t).await);
    bodies.push(app.get(&format!("/api/auth/{mg}"), &t).await);
    bodies.push(app.get(&format!("/api/auth/{fb}"), &t).await);
    bodies.push(app.get("/api/auth?auth_type=credential", &t).await);

    // Error paths, each carrying a canary.
    bodies.extend(send_canary_errors(&app, &t, &obs, &mg).await);

    // The worker does see the plaintext (that is its job) but logs none of it.
    let w = app.worker(&acct, &mg, Some(WORKER_TOKEN)).await;
    assert_eq!(config_value(&w.body, "apikey"), c[5]);

    // Audit, then delete everything and read again.
    bodies.push(app.get("/api/audit?limit=1000", &t).await);
    for id in [&mg, &fb] {
        let r = app.delete(&format!("/api/auth/{id}"), &t).await;
        assert_eq!(r.status, 204);
        bodies.push(r);
        bodies.push(app.delete(&format!("/api/auth/{id}"), &t).await);
    }
    bodies.push(app.get("/api/auth", &t).await);

    for r in &bodies {
        let text = r.body.to_string();
        for canary in c {
            assert!(!text.contains(canary), "canary {canary} in response {text}");
        }
    }
    // The data dir while serving (DB, WAL, key file) ...
    let n = scan_dir(app.dir.path(), &c);
    assert!(
        n >= 2,
        "expected the database and key file, found {n} files"
    );
    assert!(app.dir.path().join("master.key").exists());
    // ... and after a clean stop (WAL checkpointed).
    let tmp = app.stop_keep_dir().await;
    scan_dir(tmp.path(), &c);
    let Some(logs) = logs else {
        eprintln!("TEST_LOG is set: logs go to stderr, so the log scan is skipped");
        return;
    };
    assert_no_canary_in_logs(&logs);
}

fn authd_cli(dir: &Path, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("AUTHD_MASTER_KEY")
        .env_remove("AUTHD_MASTER_KEY_FILE")
        .env_remove("AUTHD_DATABASE_URL")
        .env_remove("AUTHD_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "authd {args:?} failed: {stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn the_keys_cli_rotates_rewraps_and_reports_against_a_running_server() {
    let app = spawn_app_with(|c| {
        c.master_key = MasterKeySource::GenerateAt(c.data_dir.join("master.key"));
        c.worker = Some(WorkerConfig {
            token: Some(WorkerToken::new(WORKER_TOKEN).unwrap()),
            ..WorkerConfig::new("127.0.0.1:0".parse().unwrap())
        });
    })
    .await;
    let t = app.token.clone();
    let (old, acct) = app.create_auth(&t, mailgun("CLI-CANARY-1", "d")).await;
    let dir = app.dir.path().to_owned();
    let (status, _) = authd_cli(&dir, &["keys", "status"]);
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines.len(), 1, "{status}");
    assert!(
        lines[0].contains("current") && lines[0].ends_with("3 secrets"),
        "{status}"
    );

    // Rotate in another process while this server keeps serving.
    let (new_key, _) = authd_cli(&dir, &["keys", "rotate"]);
    let new_key = new_key.trim().to_owned();
    assert!(new_key.starts_with("k_"));
    app.create_auth(&t, mailgun("CLI-CANARY-2", "d")).await;
    let (status, _) = authd_cli(&dir, &["keys", "status"]);
    let current = status.lines().find(|l| l.contains("\tcurrent\t")).unwrap();
    assert!(
        current.starts_with(&new_key) && current.ends_with("3 secrets"),
        "{status}"
    );

    let (_, progress) = authd_cli(&dir, &["keys", "rewrap", "--batch", "1"]);
    assert!(
        progress.contains("rewrap done: 3 re-encrypted"),
        "{progress}"
    );
    let (status, _) = authd_cli(&dir, &["keys", "status"]);
    assert!(
        status.contains("retired") && status.contains("\t0 secrets"),
        "{status}"
    );
    for text in [&status, &progress] {
        assert!(!text.contains("CLI-CANARY"));
    }
    // The server opens the rewrapped row under the key another process created.
    let w = app.worker(&acct, &old, Some(WORKER_TOKEN)).await;
    assert_eq!(config_value(&w.body, "apikey"), "CLI-CANARY-1");
    let audit = app.get("/api/audit?action=keys.rotate", &t).await;
    // Operator actions have no account, so tenants do not see them.
    assert!(audit.ok(200).as_array().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn rotation_and_setting_changes_are_audited_linking_old_to_new() {
    let app = spawn_app().await;
    let t = &app.token;
    let (old, _) = app
        .create_token(t, json!({"scopes": ["observer"], "name": "r"}))
        .await;
    let r = app
        .post(
            &format!("/api/auth/{old}/rotate"),
            t,
            json!({"grace": "1h"}),
        )
        .await;
    let new = r.ok(201)["id"].as_str().unwrap().to_owned();
    app.put(
        "/api/account/setting/schema_user_private_fields",
        t,
        json!(["email"]),
    )
    .await
    .ok(200);
    assert_eq!(
        app.delete("/api/account/setting/schema_user_private_fields", t)
            .await
            .status,
        204
    );
    let rot = app
        .get(&format!("/api/audit?action=token.rotate&target={old}"), t)
        .await;
    let rot = rot.ok(200).as_array().unwrap().clone();
    assert_eq!(rot.len(), 1, "{rot:?}");
    assert!(rot[0]["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("new={new}")));
    for action in ["setting.update", "setting.reset"] {
        let e = app.get(&format!("/api/audit?action={action}"), t).await;
        let e = e.ok(200).as_array().unwrap().clone();
        assert_eq!(e.len(), 1, "{action}: {e:?}");
        assert_eq!(e[0]["target"], "schema_user_private_fields");
    }
}
