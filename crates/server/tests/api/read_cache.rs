//! Authenticated reads answered from memory: `/api/auth/self`, introspection,
//! `/api/account/current`, `/api/account` and `/api/user/{id}` need no store read once their
//! records are cached, and a change is still seen at once on its node, within the feed's poll
//! by another writer of the same SQLite file, and within a second on another PostgreSQL node.

use std::time::{Duration, Instant};

use authd::config::{Config, MasterKeySource};
use authd_core::ids::{AccountId, UserId};
use authd_store_postgres::testing::server_url;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::postgres::{two_nodes, CLUSTER};

/// A raw connection to a node's SQLite file, behind its caches' back.
async fn raw_pool(app: &TestApp) -> sqlx::SqlitePool {
    let path = app.dir.path().join("authd.db");
    authd_store_sqlite::SqliteStore::open(path.to_str().unwrap())
        .await
        .unwrap()
        .pool()
        .clone()
}

async fn raw(pool: &sqlx::SqlitePool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// Creates a user with `roles`; returns its id.
async fn new_user(app: &TestApp, email: &str, roles: &[&str]) -> String {
    let r = app
        .post(
            "/api/user",
            &app.token,
            json!({"email": email, "name": "Ann", "roles": roles}),
        )
        .await;
    r.ok(201)["id"].as_str().unwrap().to_owned()
}

/// Reads `path` on `app` until `done` holds for the answer; panics if that takes `within`
/// from `t0` (taken just before the change was sent).
async fn until(app: &TestApp, path: &str, t0: Instant, done: impl Fn(&Resp) -> bool) {
    let within = Duration::from_secs(1);
    loop {
        let r = app.get(path, &app.token).await;
        if done(&r) {
            return;
        }
        assert!(t0.elapsed() < within, "{path} never changed: {r:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Introspects the bootstrap admin token as `svc`; the answer.
async fn introspect(app: &TestApp, svc: &str) -> Value {
    let body = json!({"token": app.token});
    let r = app.post("/api/auth/introspect", svc, body).await;
    r.ok(200).clone()
}

fn data(r: &Resp, field: &str) -> Value {
    if r.status.as_u16() == 200 {
        r.body["data"][field].clone()
    } else {
        Value::Null
    }
}

/// Rows changed directly in the file, with no invalidation, stay unseen: the answers come from
/// memory. (The same reads on a store-backed handler would show the new names at once.)
#[tokio::test]
async fn cached_reads_need_no_store_read() {
    let app = spawn_app().await;
    let user = new_user(&app, "ann@example.com", &["data"]).await;
    let svc = app.token_with(&["admin"]).await;
    let me = app.get("/api/auth/self", &app.token).await.ok(200).clone();
    let acct = app
        .get("/api/account/current", &app.token)
        .await
        .ok(200)
        .clone();
    app.get(&format!("/api/user/{user}"), &app.token)
        .await
        .ok(200);
    assert_eq!(introspect(&app, &svc).await["active"], true);
    assert!(app
        .app_state
        .records
        .serves_user(UserId::parse(&user).unwrap()));
    let pool = raw_pool(&app).await;
    raw(
        &pool,
        "UPDATE accounts SET name = 'renamed behind the cache'",
    )
    .await;
    raw(&pool, "UPDATE users SET name = 'renamed behind the cache'").await;
    raw(&pool, "UPDATE auths SET name = 'renamed behind the cache'").await;
    let me_id = me["id"].as_str().unwrap();
    raw(&pool, &format!("DELETE FROM auths WHERE id = '{me_id}'")).await;
    assert_eq!(app.get("/api/auth/self", &app.token).await.ok(200), &me);
    assert_eq!(
        app.get("/api/account/current", &app.token).await.ok(200),
        &acct
    );
    let list = app.get("/api/account", &app.token).await;
    assert_eq!(list.ok(200)[0]["name"], acct["name"]);
    let u = app.get(&format!("/api/user/{user}"), &app.token).await;
    assert_eq!(u.ok(200)["name"], "Ann");
    let answer = introspect(&app, &svc).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], me["id"]);
    app.stop().await;
}

/// Changes made through this node are seen by its very next read.
#[tokio::test]
async fn a_user_change_is_seen_at_once_on_its_node() {
    let app = spawn_app().await;
    let user = new_user(&app, "ann@example.com", &["data"]).await;
    let path = format!("/api/user/{user}");
    assert_eq!(
        app.get(&path, &app.token).await.ok(200)["roles"],
        json!(["data"])
    );
    assert!(app
        .app_state
        .records
        .serves_user(UserId::parse(&user).unwrap()));
    let body = json!({"roles": ["observer"], "name": "Ann B"});
    app.put(&path, &app.token, body).await.ok(200);
    let r = app.get(&path, &app.token).await;
    assert_eq!(r.ok(200)["roles"], json!(["observer"]));
    assert_eq!(r.ok(200)["name"], "Ann B");
    assert_eq!(app.delete(&path, &app.token).await.status, 204);
    app.get(&path, &app.token)
        .await
        .assert_error(404, "Not found");
    // Another tenant asking for a cached user is answered as for an absent one.
    let user = new_user(&app, "bob@example.com", &["data"]).await;
    let path = format!("/api/user/{user}");
    app.get(&path, &app.token).await.ok(200);
    let other = app.new_account("other").await;
    app.get(&path, &other).await.assert_error(404, "Not found");
    app.stop().await;
}

/// A server, and a second one on the same SQLite file (as another process would be), sharing
/// the bootstrap admin token.
async fn two_servers_on_one_file() -> (TestApp, TestApp) {
    let a = spawn_app().await;
    let mut config = Config::embedded(a.dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.master_key = MasterKeySource::Key(a.master.clone().unwrap());
    let mut b = start(config, tempfile::tempdir().unwrap()).await;
    b.token = a.token.clone();
    (a, b)
}

/// A second server on the same SQLite file (as another process would be) sees the first one's
/// user changes within the invalidations table's poll.
#[tokio::test]
async fn another_writer_of_the_sqlite_file_is_seen_within_the_poll() {
    let (a, b) = two_servers_on_one_file().await;
    let user = new_user(&a, "ann@example.com", &["data"]).await;
    let path = format!("/api/user/{user}");
    b.get(&path, &b.token).await.ok(200);
    assert!(b
        .app_state
        .records
        .serves_user(UserId::parse(&user).unwrap()));
    let t0 = Instant::now();
    a.put(&path, &a.token, json!({"roles": ["observer"]}))
        .await
        .ok(200);
    until(&b, &path, t0, |r| data(r, "roles") == json!(["observer"])).await;
    let t0 = Instant::now();
    assert_eq!(a.delete(&path, &a.token).await.status, 204);
    until(&b, &path, t0, |r| r.status.as_u16() == 404).await;
    // An account change announced in the file reaches the account cache the same way.
    let acct = b.get("/api/account/current", &b.token).await.ok(200)["id"].clone();
    let pool = raw_pool(&a).await;
    raw(&pool, "UPDATE accounts SET name = 'renamed'").await;
    let note = format!(
        "INSERT INTO invalidations (ids) VALUES ('account:{}')",
        acct.as_str().unwrap()
    );
    let t0 = Instant::now();
    raw(&pool, &note).await;
    until(&b, "/api/account/current", t0, |r| {
        data(r, "name") == "renamed"
    })
    .await;
    b.stop().await;
    a.stop().await;
}

/// Two PostgreSQL nodes: a user's change or deletion on A is seen by B (which had the user
/// cached) within a second.
#[tokio::test]
async fn user_changes_reach_the_other_postgres_node_within_a_second() {
    let Some(server) = server_url("user_changes_reach_the_other_postgres_node_within_a_second")
    else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (a, b) = two_nodes(&server).await;
    let user = new_user(&a, "ann@example.com", &["data"]).await;
    let path = format!("/api/user/{user}");
    let id = UserId::parse(&user).unwrap();
    let t0 = Instant::now();
    while !b.app_state.records.serves_user(id) {
        // Until B's feed listens (before that nothing is cached) and B has read the user.
        b.get(&path, &b.token).await.ok(200);
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "B never cached the user"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t0 = Instant::now();
    a.put(&path, &a.token, json!({"roles": ["observer"]}))
        .await
        .ok(200);
    until(&b, &path, t0, |r| data(r, "roles") == json!(["observer"])).await;
    b.get(&path, &b.token).await.ok(200);
    let t0 = Instant::now();
    assert_eq!(a.delete(&path, &a.token).await.status, 204);
    until(&b, &path, t0, |r| r.status.as_u16() == 404).await;
    a.stop().await;
    b.stop().await;
}

/// Settings are cached per account: a row changed behind the cache's back stays unseen, a
/// change through the API is seen at once on its node and by another server on the same
/// file within the invalidations table's poll (the store announces the account).
#[tokio::test]
async fn settings_are_served_from_memory_and_their_changes_reach_every_server() {
    let (a, b) = two_servers_on_one_file().await;
    let path = "/api/account/setting/schema_user_private_fields";
    a.put(path, &a.token, json!(["email"])).await.ok(200);
    for app in [&a, &b] {
        assert_eq!(
            app.get(path, &app.token).await.ok(200)["value"],
            json!(["email"])
        );
    }
    // Behind the caches' back: neither server reads the store again.
    let pool = raw_pool(&a).await;
    raw(&pool, "UPDATE account_settings SET value = '[\"city\"]'").await;
    for app in [&a, &b] {
        assert_eq!(
            app.get(path, &app.token).await.ok(200)["value"],
            json!(["email"])
        );
    }
    // Through the API on A: seen at once on A, within the poll on B.
    let t0 = Instant::now();
    a.put(path, &a.token, json!(["phone"])).await.ok(200);
    assert_eq!(
        a.get(path, &a.token).await.ok(200)["value"],
        json!(["phone"])
    );
    until(&b, path, t0, |r| r.ok(200)["value"] == json!(["phone"])).await;
    let t0 = Instant::now();
    assert_eq!(a.delete(path, &a.token).await.status, 204);
    until(&b, path, t0, |r| r.ok(200)["value"] == json!([])).await;
    b.stop().await;
    a.stop().await;
}

/// `GET /api/auth/{id}` of a cached token is answered from the token cache's record; its
/// `data` must be exactly what a read of the store's row gives (the list reads every row),
/// with text that needs escaping, an expiry and a moving last access; and a change to the
/// token (rotation caps its expiry) must show at once.
#[tokio::test]
async fn a_cached_tokens_answer_matches_the_stored_row_and_follows_changes() {
    let app = spawn_app().await;
    let (id, t) = app
        .create_token(
            &app.token,
            json!({"scopes":["admin"], "name":"n \"q\" \\ é", "description":"d </script>", "expires":"100h"}),
        )
        .await;
    let listed = |data: &Value| entry(data, &id);
    for step in 0..3 {
        app.clock.advance_ms(2_000);
        // Authenticates `t` (its record is cached, its last access moves).
        app.get("/api/account/current", &t).await.ok(200);
        let one = app
            .get(&format!("/api/auth/{id}"), &app.token)
            .await
            .ok(200)
            .clone();
        let all = app
            .get("/api/auth?limit=100", &app.token)
            .await
            .ok(200)
            .clone();
        assert_eq!(one, listed(&all), "step {step}");
        assert_eq!(one["name"], "n \"q\" \\ é");
        assert_ne!(one["last_accessed_at"], "0001-01-01T00:00:00Z");
    }
    let before = app
        .get(&format!("/api/auth/{id}"), &app.token)
        .await
        .ok(200)
        .clone();
    app.post(&format!("/api/auth/{id}/rotate"), &t, json!({"grace":"1m"}))
        .await
        .ok(201);
    let after = app
        .get(&format!("/api/auth/{id}"), &app.token)
        .await
        .ok(200)
        .clone();
    assert_ne!(after["expires"], before["expires"]);
    let all = app
        .get("/api/auth?limit=100", &app.token)
        .await
        .ok(200)
        .clone();
    assert_eq!(after, listed(&all));
}

/// The auth `id` on a page of `GET /api/auth` (its `data`).
fn entry(page: &Value, id: &str) -> Value {
    page.as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap()
}

/// The ids on a page of `GET /api/auth` as `node` answers it now.
async fn listed_ids(node: &TestApp) -> Vec<String> {
    let r = node.get("/api/auth?limit=100", &node.token).await;
    r.ok(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A page of auths is answered from memory while the store's version of the account's auths
/// is the one it was rendered at (proved by a change put behind the version's back), and any
/// change, through the API or straight in the file, is on the very next page.
#[tokio::test]
async fn a_page_of_auths_is_kept_until_its_account_changes() {
    let (a, b) = two_servers_on_one_file().await;
    let first = a.get("/api/auth?limit=100", &a.token).await.ok(200).clone();
    assert_eq!(first.as_array().unwrap().len(), 1);
    // Behind the cache: a rename whose version bump is undone is not seen.
    let pool = raw_pool(&a).await;
    raw(&pool, "UPDATE auths SET name = 'renamed behind the cache'").await;
    raw(&pool, "UPDATE auth_versions SET version = version - 1").await;
    assert_eq!(a.get("/api/auth?limit=100", &a.token).await.ok(200), &first);
    // Straight in the file, with the trigger's bump: the next page shows it.
    raw(&pool, "UPDATE auths SET label = 'relabelled'").await;
    let page = a.get("/api/auth?limit=100", &a.token).await.ok(200).clone();
    assert_eq!(page[0]["name"], "renamed behind the cache");
    // Through the API, on this node and on the other server of the same file.
    let (id, _) = a
        .create_token(&a.token, json!({"scopes": ["data"], "name": "new"}))
        .await;
    assert!(listed_ids(&a).await.contains(&id));
    assert!(listed_ids(&b).await.contains(&id));
    assert_eq!(
        a.delete(&format!("/api/auth/{id}"), &a.token).await.status,
        204
    );
    assert!(!listed_ids(&a).await.contains(&id));
    assert!(!listed_ids(&b).await.contains(&id));
    let cred = a
        .post(
            "/api/auth",
            &a.token,
            json!({"provider_id": "mailgun", "name": "c1", "config": [{"name": "apikey", "value": "k"}, {"name": "domain", "value": "d"}]}),
        )
        .await;
    let cred_id = cred.ok(201)["id"].as_str().unwrap().to_owned();
    assert!(listed_ids(&b).await.contains(&cred_id));
    // Another account's changes leave this account's version where it was.
    let account = AccountId::parse(first[0]["account_id"].as_str().unwrap()).unwrap();
    let store = a.app_state.store.clone();
    let version = store.auths_version(account).await.unwrap();
    let other = a.new_account("other").await;
    a.create_token(&other, json!({"scopes": ["data"], "name": "elsewhere"}))
        .await;
    assert_eq!(store.auths_version(account).await.unwrap(), version);
    b.stop().await;
    a.stop().await;
}

/// A kept page shows a token's freshest last access once it is a second old.
#[tokio::test]
async fn a_kept_page_follows_last_access_within_a_second() {
    let app = spawn_app().await;
    let (id, t) = app
        .create_token(&app.token, json!({"scopes": ["data"], "name": "used"}))
        .await;
    let last = |page: &Value| entry(page, &id)["last_accessed_at"].clone();
    let page = app
        .get("/api/auth?limit=100", &app.token)
        .await
        .ok(200)
        .clone();
    assert_eq!(last(&page), "0001-01-01T00:00:00Z");
    app.get("/api/auth/self", &t).await.ok(200);
    app.clock.advance_ms(1_000);
    let page = app
        .get("/api/auth?limit=100", &app.token)
        .await
        .ok(200)
        .clone();
    assert_ne!(last(&page), "0001-01-01T00:00:00Z");
    app.stop().await;
}

/// Two PostgreSQL nodes: a token created or deleted on A is on B's very next page, though B
/// had the page kept (the version is read from the shared database, not from the feed).
#[tokio::test]
async fn a_kept_page_follows_the_other_postgres_node_at_once() {
    let Some(server) = server_url("a_kept_page_follows_the_other_postgres_node_at_once") else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (a, b) = two_nodes(&server).await;
    let before = listed_ids(&b).await;
    assert_eq!(listed_ids(&b).await, before);
    let (id, _) = a
        .create_token(&a.token, json!({"scopes": ["data"], "name": "on a"}))
        .await;
    assert!(listed_ids(&b).await.contains(&id));
    assert_eq!(
        a.delete(&format!("/api/auth/{id}"), &a.token).await.status,
        204
    );
    assert_eq!(listed_ids(&b).await, before);
    a.stop().await;
    b.stop().await;
}
