//! Credential integrity beyond the row (issue 13): the four edits someone with write access
//! to the database can make without the master key — roll one field back after a PUT,
//! re-insert a deleted credential's rows under a re-created id, drop a field, re-label the
//! provider — performed directly on SQLite and on PostgreSQL, each detected: the worker read
//! fails closed (409 in the envelope, audited `decrypt_failed`, no stale value), `GET
//! /api/auth/{id}` refuses too, a partial PUT is refused and a complete re-entry repairs.

use authd::worker::{WorkerConfig, WorkerToken};
use authd_crypto::MasterKey;
use authd_store_postgres::testing::{fresh_database, server_url};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, start, TestApp};
use crate::postgres::{node_config, CLUSTER};

/// A worker credential in the generated format (`wk_` + 64 hex).
const WORKER_TOKEN: &str = "wk_1111111111111111111111111111111111111111111111111111111111111111";
const MESSAGE: &str = "Credential failed its integrity check; re-enter it";

fn worker_config() -> WorkerConfig {
    WorkerConfig {
        token: Some(WorkerToken::new(WORKER_TOKEN).unwrap()),
        ..WorkerConfig::new("127.0.0.1:0".parse().unwrap())
    }
}

fn mailgun(apikey: &str, domain: &str) -> Value {
    json!({
        "provider_id": "mailgun",
        "name": "mail",
        "config": [{"name": "apikey", "value": apikey}, {"name": "domain", "value": domain}]
    })
}

/// One stored secret row, as an attacker copies it.
struct Row {
    field: String,
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Direct database access, as the attacker has it.
enum RawDb {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

/// `$n` placeholders for PostgreSQL, `?n` for SQLite.
fn sql(db: &RawDb, q: &str) -> String {
    match db {
        RawDb::Sqlite(_) => q.replace('$', "?"),
        RawDb::Pg(_) => q.to_owned(),
    }
}

impl RawDb {
    async fn rows(&self, auth: &str) -> Vec<Row> {
        let q = sql(
            self,
            "SELECT field, key_id, nonce, ciphertext FROM auth_secrets WHERE auth_id = $1",
        );
        let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = match self {
            RawDb::Sqlite(p) => sqlx::query_as(&q).bind(auth).fetch_all(p).await.unwrap(),
            RawDb::Pg(p) => sqlx::query_as(&q).bind(auth).fetch_all(p).await.unwrap(),
        };
        rows.into_iter()
            .map(|(field, key_id, nonce, ciphertext)| Row {
                field,
                key_id,
                nonce,
                ciphertext,
            })
            .collect()
    }

    /// Puts `r` back into `auth`'s rows (insert or overwrite).
    async fn put_row(&self, account: &str, auth: &str, r: &Row) {
        let q = sql(
            self,
            "INSERT INTO auth_secrets (account_id, auth_id, field, key_id, nonce, ciphertext) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (auth_id, field) DO UPDATE SET \
             key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext",
        );
        macro_rules! run {
            ($p:expr) => {
                sqlx::query(&q)
                    .bind(account)
                    .bind(auth)
                    .bind(&r.field)
                    .bind(&r.key_id)
                    .bind(&r.nonce)
                    .bind(&r.ciphertext)
                    .execute($p)
                    .await
                    .unwrap()
                    .rows_affected()
            };
        }
        let n = match self {
            RawDb::Sqlite(p) => run!(p),
            RawDb::Pg(p) => run!(p),
        };
        assert_eq!(n, 1);
    }

    /// Runs one statement with two text parameters; returns the rows affected.
    async fn exec(&self, q: &str, a: &str, b: &str) -> u64 {
        let q = sql(self, q);
        match self {
            RawDb::Sqlite(p) => sqlx::query(&q)
                .bind(a)
                .bind(b)
                .execute(p)
                .await
                .unwrap()
                .rows_affected(),
            RawDb::Pg(p) => sqlx::query(&q)
                .bind(a)
                .bind(b)
                .execute(p)
                .await
                .unwrap()
                .rows_affected(),
        }
    }
}

async fn worker(app: &TestApp, account: &str, auth: &str) -> crate::helpers::Resp {
    let addr = app.worker_addr.expect("worker listener enabled");
    let r = app
        .client
        .get(format!(
            "http://{addr}/worker/v1/account/{account}/auth/{auth}"
        ))
        .header("Authorization", format!("Bearer {WORKER_TOKEN}"))
        .send()
        .await
        .unwrap();
    crate::helpers::into_resp(r).await
}

async fn create(app: &TestApp, path: &str, body: Value) -> (String, String) {
    let d = app.post(path, &app.token, body).await;
    let d = d.ok(201);
    let id = d["id"].as_str().unwrap().to_owned();
    (id, d["account_id"].as_str().unwrap().to_owned())
}

/// The worker, and the API's read, refuse the credential without a stale value; the
/// refusal is audited.
async fn assert_refused(app: &TestApp, account: &str, id: &str, stale: &str) {
    let w = worker(app, account, id).await;
    w.assert_error(409, MESSAGE);
    assert!(!w.body.to_string().contains(stale), "{}", w.body);
    let r = app.get(&format!("/api/auth/{id}"), &app.token).await;
    r.assert_error(409, MESSAGE);
    let audit = app
        .get(
            &format!("/api/audit?action=worker.decrypt&target={id}"),
            &app.token,
        )
        .await;
    assert_eq!(audit.ok(200)[0]["outcome"], "decrypt_failed");
}

/// The whole body of a 200 answer.
fn ok(w: &crate::helpers::Resp) -> Value {
    w.ok(200);
    w.body.clone()
}

fn config_value(body: &Value, name: &str) -> String {
    let cfg = body["data"]["config"].as_array();
    let cfg = cfg.unwrap_or_else(|| panic!("no config in {body}"));
    let e = cfg.iter().find(|c| c["name"] == name);
    let e = e.unwrap_or_else(|| panic!("no {name} in {body}"));
    e["value"].as_str().unwrap().to_owned()
}

/// Attack 1: one field rolled back to its ciphertext before a PUT. Then a PUT that keeps
/// the damaged field is refused; a complete re-entry repairs the credential.
async fn rollback_of_one_field(app: &TestApp, db: &RawDb) {
    let (id, acct) = create(app, "/api/auth", mailgun("ROLLBACK-OLD", "d")).await;
    let old = db.rows(&id).await;
    let path = format!("/api/auth/{id}");
    let put = app.put(&path, &app.token, json!({"config": {"apikey": "new"}}));
    put.await.ok(200);
    let apikey = old.iter().find(|r| r.field == "config.apikey").unwrap();
    db.put_row(&acct, &id, apikey).await;
    assert_refused(app, &acct, &id, "ROLLBACK-OLD").await;
    let partial = json!({"config": {"apikey": "again"}});
    let r = app
        .put(&format!("/api/auth/{id}"), &app.token, partial)
        .await;
    r.assert_error(409, MESSAGE);
    let full = json!({"config": {"apikey": "fixed", "domain": "d2"}});
    app.put(&format!("/api/auth/{id}"), &app.token, full)
        .await
        .ok(200);
    let w = worker(app, &acct, &id).await;
    assert_eq!(config_value(&ok(&w), "apikey"), "fixed");
    assert_eq!(config_value(&w.body, "domain"), "d2");
}

/// Attack 2: a deleted credential's rows re-inserted under a credential re-created at the
/// same chosen id.
async fn resurrection_under_a_recreated_id(app: &TestApp, db: &RawDb) {
    let id = authd_core::ids::AuthId::generate().to_string();
    let path = format!("/api/auth/{id}");
    let (_, acct) = create(app, &path, mailgun("RESURRECTED", "d")).await;
    let old = db.rows(&id).await;
    assert_eq!(old.len(), 3, "two fields and the manifest");
    assert_eq!(app.delete(&path, &app.token).await.status, 204);
    create(app, &path, mailgun("fresh", "d")).await;
    for r in &old {
        db.put_row(&acct, &id, r).await;
    }
    assert_refused(app, &acct, &id, "RESURRECTED").await;
}

/// Attack 3: a required field's row deleted.
async fn a_dropped_field(app: &TestApp, db: &RawDb) {
    let (id, acct) = create(app, "/api/auth", mailgun("DROPPED", "d")).await;
    let q = "DELETE FROM auth_secrets WHERE auth_id = $1 AND field = $2";
    assert_eq!(db.exec(q, &id, "config.domain").await, 1);
    assert_refused(app, &acct, &id, "DROPPED").await;
}

/// Attack 4: the auth row re-labelled to another provider.
async fn a_relabelled_provider(app: &TestApp, db: &RawDb) {
    let (id, acct) = create(app, "/api/auth", mailgun("RELABEL", "d")).await;
    let twitter = authd_core::provider::builtin("twitter")
        .unwrap()
        .id
        .to_string();
    let q = "UPDATE auths SET provider_id = $1 WHERE id = $2";
    assert_eq!(db.exec(q, &twitter, &id).await, 1);
    assert_refused(app, &acct, &id, "RELABEL").await;
}

/// A credential as written before migration 0006: generation 0, no incarnation, no
/// manifest, each field sealed with the per-field binding (account, auth, field).
async fn make_legacy(app: &TestApp, db: &RawDb, master: &MasterKey, acct: &str, id: &str) {
    let keys = app.app_state.store.list_data_keys().await.unwrap();
    let wrapped: Vec<authd_crypto::WrappedKey> = keys
        .iter()
        .map(|k| authd_crypto::WrappedKey {
            id: k.id.clone(),
            created_ms: k.created_ms,
            wrapped: k.wrapped.clone(),
        })
        .collect();
    let current = keys.iter().find(|k| k.current).unwrap().id.clone();
    let ring = authd_crypto::KeyRing::new(&master.key_wrapper(), &wrapped, &current).unwrap();
    let q = "DELETE FROM auth_secrets WHERE auth_id = $1 AND field <> $2";
    db.exec(q, id, "").await;
    for (field, value) in [
        ("config.apikey", "LEGACY-KEY"),
        ("config.domain", "legacy.example"),
    ] {
        let aad = authd_crypto::Aad {
            account_id: acct,
            auth_id: id,
            field,
        };
        let s = ring.seal(&aad, value.as_bytes()).unwrap();
        let row = Row {
            field: field.into(),
            key_id: s.key_id,
            nonce: s.nonce.to_vec(),
            ciphertext: s.ciphertext,
        };
        db.put_row(acct, id, &row).await;
    }
    let q = "UPDATE auths SET cred_incarnation = $1, cred_generation = 0 WHERE id = $2";
    assert_eq!(db.exec(q, "", id).await, 1);
}

/// A pre-0006 credential keeps working and gets its binding on its first worker read; from
/// then on a rolled-back field is detected like any other.
async fn a_legacy_credential_is_read_and_migrated(app: &TestApp, db: &RawDb, master: &MasterKey) {
    let (id, acct) = create(app, "/api/auth", mailgun("x", "d")).await;
    make_legacy(app, db, master, &acct, &id).await;
    let legacy = db.rows(&id).await;
    assert_eq!(legacy.len(), 2);
    let w = worker(app, &acct, &id).await;
    assert_eq!(config_value(&ok(&w), "apikey"), "LEGACY-KEY");
    assert_eq!(config_value(&w.body, "domain"), "legacy.example");
    let migrated = db.rows(&id).await;
    assert!(
        migrated.iter().any(|r| r.field == "#manifest"),
        "resealed on first read"
    );
    let w = worker(app, &acct, &id).await;
    assert_eq!(config_value(&ok(&w), "apikey"), "LEGACY-KEY");
    // The pre-migration row put back is now a rollback.
    db.put_row(&acct, &id, &legacy[0]).await;
    assert_refused(app, &acct, &id, "LEGACY-KEY").await;
}

fn master_of(app: &TestApp) -> MasterKey {
    app.master.clone().expect("test apps use a direct key")
}

#[tokio::test]
async fn sqlite_reads_and_migrates_a_pre_0006_credential() {
    let (app, db) = sqlite_app().await;
    a_legacy_credential_is_read_and_migrated(&app, &db, &master_of(&app)).await;
    app.stop().await;
}

async fn sqlite_app() -> (TestApp, RawDb) {
    let app = spawn_app_with(|c| c.worker = Some(worker_config())).await;
    let path = app.dir.path().join("authd.db");
    let store = authd_store_sqlite::SqliteStore::open(path.to_str().unwrap()).await;
    let db = RawDb::Sqlite(store.unwrap().pool().clone());
    (app, db)
}

#[tokio::test]
async fn sqlite_detects_a_rolled_back_field() {
    let (app, db) = sqlite_app().await;
    rollback_of_one_field(&app, &db).await;
    app.stop().await;
}

#[tokio::test]
async fn sqlite_detects_a_resurrected_credential() {
    let (app, db) = sqlite_app().await;
    resurrection_under_a_recreated_id(&app, &db).await;
    app.stop().await;
}

#[tokio::test]
async fn sqlite_detects_a_dropped_field() {
    let (app, db) = sqlite_app().await;
    a_dropped_field(&app, &db).await;
    app.stop().await;
}

#[tokio::test]
async fn sqlite_detects_a_relabelled_provider() {
    let (app, db) = sqlite_app().await;
    a_relabelled_provider(&app, &db).await;
    app.stop().await;
}

#[tokio::test]
async fn postgres_detects_all_four_edits() {
    let Some(server) = server_url("postgres_detects_all_four_edits") else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let url = fresh_database(&server).await.unwrap();
    let key = MasterKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let mut config = node_config(&url, &key, &dir);
    config.worker = Some(worker_config());
    let mut app = start(config, dir).await;
    let s = &app.app_state;
    let hasher = key.token_hasher();
    let admin = authd::provision::account(s.store.as_ref(), &hasher, s.clock.as_ref(), "demo");
    app.token = admin.await.unwrap().token.expose().to_owned();
    let store = authd_store_postgres::PgStore::open(&url).await;
    let db = RawDb::Pg(store.unwrap().pool().clone());
    rollback_of_one_field(&app, &db).await;
    resurrection_under_a_recreated_id(&app, &db).await;
    a_dropped_field(&app, &db).await;
    a_relabelled_provider(&app, &db).await;
    a_legacy_credential_is_read_and_migrated(&app, &db, &key).await;
    app.stop().await;
}
