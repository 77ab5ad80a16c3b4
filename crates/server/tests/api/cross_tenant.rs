//! Tenant isolation of every resource endpoint, table-driven. Tenant A owns one of each
//! resource (API token, stored credential, work, custom provider, user, setting, entity, audit
//! entries); tenant B's admin sends every request of [`ROWS`] once with A's value in the URL
//! or body and once with an absent one. Both answers must be the same, status and bytes
//! (after replacing the value sent by `@`, since some messages echo it), must have the
//! expected status, and must mention nothing of A's; afterwards every one of A's resources
//! reads exactly as before.
//!
//! The one row whose "absent" twin is not a fresh id is the create-at-id form
//! (`POST /api/auth/{id}`): ids are global, so an id that is free creates a credential. Its
//! twin is an id taken in B's own account: another tenant's id answers like one's own.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// What a row puts in place of `@`: one of tenant A's values, and its absent twin.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// No value: the URL is the same for every tenant (settings, lists).
    None,
    TokenId,
    TokenText,
    CredentialId,
    /// A's credential id, whose twin is B's own credential id (create-at-id).
    TakenCredentialId,
    WorkId,
    ProviderId,
    ProviderSlug,
    UserId,
    AccountId,
    /// A's account number (`aid`).
    AccountAid,
    EntityValue,
}

/// One request of tenant B's: method, path and optional JSON body (both may hold `@`), what
/// goes in place of `@`, and the status both variants must answer with.
type Row = (&'static str, &'static str, Option<&'static str>, Slot, u16);

/// A Mailgun credential's body.
const CRED: &str = concat!(
    r#"{"provider_id":"mailgun","name":"b","#,
    r#""config":[{"name":"apikey","value":"k"},{"name":"domain","value":"d"}]}"#
);
const SETTING: &str = "/api/account/setting/schema_user_private_fields";

/// Every resource endpoint that takes an id, a slug or another tenant-owned value, plus the
/// account-wide ones (settings, lists) whose answers must not reveal A's data.
#[rustfmt::skip]
const ROWS: &[Row] = {
    use Slot as S;
    &[
        // auths: API tokens (read, update, rotate, delete).
        ("GET", "/api/auth/@", None, S::TokenId, 404),
        ("PUT", "/api/auth/@", Some(r#"{"name":"x"}"#), S::TokenId, 404),
        ("POST", "/api/auth/@/rotate", Some("{}"), S::TokenId, 404),
        ("DELETE", "/api/auth/@", None, S::TokenId, 404),
        // auths: stored credentials (read, update, create-at-id, rotate, delete).
        ("GET", "/api/auth/@", None, S::CredentialId, 404),
        ("PUT", "/api/auth/@", Some(r#"{"name":"x"}"#), S::CredentialId, 404),
        ("POST", "/api/auth/@", Some(CRED), S::TakenCredentialId, 409),
        ("POST", "/api/auth/@/rotate", Some("{}"), S::CredentialId, 404),
        ("DELETE", "/api/auth/@", None, S::CredentialId, 404),
        // A's credential or provider named in B's own writes.
        ("POST", "/api/work", Some(r#"{"workflow":"w","auth_ids":["@"]}"#), S::CredentialId, 400),
        ("POST", "/api/auth", Some(r#"{"provider_id":"@","name":"b"}"#), S::ProviderSlug, 400),
        // works, providers, users, accounts.
        ("GET", "/api/work/@", None, S::WorkId, 404),
        ("DELETE", "/api/work/@", None, S::WorkId, 404),
        ("GET", "/api/provider/@", None, S::ProviderId, 404),
        ("GET", "/api/provider/@", None, S::ProviderSlug, 404),
        ("GET", "/api/user/@", None, S::UserId, 404),
        ("PUT", "/api/user/@", Some(r#"{"roles":["admin"]}"#), S::UserId, 404),
        ("DELETE", "/api/user/@", None, S::UserId, 404),
        ("GET", "/api/account/@", None, S::AccountId, 404),
        ("GET", "/api/account/@", None, S::AccountAid, 404),
        // entities, audit, introspection.
        ("GET", "/api/entity/user/user_id/@", None, S::EntityValue, 404),
        ("GET", "/api/audit?target=@", None, S::CredentialId, 200),
        ("POST", "/api/auth/introspect", Some(r#"{"token":"@"}"#), S::TokenText, 200),
        // settings: one URL for every tenant; B sees and changes only its own.
        ("GET", SETTING, None, S::None, 200),
        ("PUT", SETTING, Some(r#"["b_field"]"#), S::None, 200),
        ("DELETE", SETTING, None, S::None, 204),
        // lists: B's show none of A's.
        ("GET", "/api/auth", None, S::None, 200),
        ("GET", "/api/work", None, S::None, 200),
        ("GET", "/api/user", None, S::None, 200),
        ("GET", "/api/provider", None, S::None, 200),
        ("GET", "/api/account", None, S::None, 200),
    ]
};

/// Tenant A's resources, by slot.
struct TenantA {
    token: String,
    token_id: String,
    token_text: String,
    credential_id: String,
    work_id: String,
    provider_id: String,
    provider_slug: String,
    user_id: String,
    user_email: String,
    account_id: String,
    account_aid: String,
    entity_value: String,
    /// A's value of the private-fields setting.
    setting_marker: String,
}

impl TenantA {
    /// Strings that must never appear in an answer to tenant B.
    fn markers(&self) -> Vec<&str> {
        vec![
            &self.token_id,
            &self.token_text,
            &self.credential_id,
            &self.work_id,
            &self.provider_id,
            &self.provider_slug,
            &self.user_id,
            &self.user_email,
            &self.account_id,
            &self.entity_value,
            &self.setting_marker,
        ]
    }

    /// The URLs whose answers to A must not change because of B.
    fn snapshot_paths(&self) -> Vec<String> {
        vec![
            format!("/api/auth/{}", self.token_id),
            format!("/api/auth/{}", self.credential_id),
            format!("/api/work/{}", self.work_id),
            format!("/api/provider/{}", self.provider_id),
            format!("/api/user/{}", self.user_id),
            format!("/api/entity/user/user_id/{}", self.entity_value),
            "/api/account/current".to_owned(),
            "/api/account/setting/schema_user_private_fields".to_owned(),
            "/api/auth".to_owned(),
            "/api/work".to_owned(),
            "/api/user".to_owned(),
            "/api/provider".to_owned(),
            "/api/audit".to_owned(),
        ]
    }
}

fn credential() -> Value {
    serde_json::from_str(CRED).unwrap()
}

fn id_of(r: &Resp) -> String {
    r.ok(201)["id"].as_str().unwrap().to_owned()
}

/// Creates one of each resource in the app's first account (tenant A).
async fn seed_tenant_a(app: &TestApp) -> TenantA {
    let t = &app.token;
    let (token_id, token_text) = app
        .create_token(t, json!({"scopes": ["observer"], "name": "a-token"}))
        .await;
    let provider_slug = "tenant_a_provider".to_owned();
    let p = app
        .post(
            "/api/provider",
            t,
            json!({"slug": provider_slug, "name": "A's", "auth_method": "config",
                   "config": [{"name": "apikey"}]}),
        )
        .await;
    let credential_id = id_of(&app.post("/api/auth", t, credential()).await);
    let work = json!({"workflow": "a_export", "config": {"a": 1}, "auth_ids": [credential_id]});
    let work_id = id_of(&app.post("/api/work", t, work).await);
    let user_email = "tenant-a-user@example.com".to_owned();
    let user = json!({"email": user_email, "roles": ["observer"]});
    let user_id = id_of(&app.post("/api/user", t, user).await);
    let entity_value = "tenant-a-entity".to_owned();
    app.post(
        "/collect/json/default",
        t,
        json!([{"user_id": entity_value}]),
    )
    .await
    .ok(200);
    let setting_marker = "tenant_a_private_field".to_owned();
    let setting = "/api/account/setting/schema_user_private_fields";
    app.put(setting, t, json!([setting_marker])).await.ok(200);
    let account = app.get("/api/account/current", t).await;
    let account = account.ok(200);
    TenantA {
        token: t.clone(),
        token_id,
        token_text,
        credential_id,
        work_id,
        provider_id: id_of(&p),
        provider_slug,
        user_id,
        user_email,
        account_id: account["id"].as_str().unwrap().to_owned(),
        account_aid: account["aid"].to_string(),
        entity_value,
        setting_marker,
    }
}

/// A's value for `slot` and its absent twin (`b_credential`: an id taken in B's account).
fn values(a: &TenantA, slot: Slot, b_credential: &str) -> (String, String) {
    let fresh = || authd_core::ids::AuthId::generate().to_string();
    match slot {
        Slot::None => (String::new(), String::new()),
        Slot::TokenId => (a.token_id.clone(), fresh()),
        Slot::TokenText => (a.token_text.clone(), unknown_token(&a.token_text)),
        Slot::CredentialId => (a.credential_id.clone(), fresh()),
        Slot::TakenCredentialId => (a.credential_id.clone(), b_credential.to_owned()),
        Slot::WorkId => (a.work_id.clone(), fresh()),
        Slot::ProviderId => (a.provider_id.clone(), fresh()),
        Slot::ProviderSlug => (a.provider_slug.clone(), "no_such_provider".to_owned()),
        Slot::UserId => (a.user_id.clone(), fresh()),
        Slot::AccountId => (a.account_id.clone(), fresh()),
        Slot::AccountAid => (a.account_aid.clone(), "99".to_owned()),
        Slot::EntityValue => (a.entity_value.clone(), "no-such-entity".to_owned()),
    }
}

/// A token text of the same shape that names no token (its last character changed).
fn unknown_token(text: &str) -> String {
    let (head, last) = text.split_at(text.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

/// Sends `row` as `token` with `value` in place of `@`; returns the status and the body with
/// `value` replaced by `@` again.
async fn send(app: &TestApp, token: &str, row: &Row, value: &str) -> (u16, String) {
    let (method, path, body, _, _) = *row;
    let fill = |s: &str| {
        if value.is_empty() {
            s.to_owned()
        } else {
            s.replace('@', value)
        }
    };
    let mut rb = app
        .client
        .request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(&fill(path)),
        )
        .header("Authorization", token);
    if let Some(b) = body {
        rb = rb.header("Content-Type", "application/json").body(fill(b));
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    let body = if value.is_empty() {
        body
    } else {
        body.replace(value, "@")
    };
    (status, body)
}

/// A's answers to every snapshot path.
async fn snapshot(app: &TestApp, a: &TenantA) -> Vec<(String, u16, Value)> {
    let mut out = vec![];
    for path in a.snapshot_paths() {
        let r = app.get(&path, &a.token).await;
        out.push((path, r.status.as_u16(), r.body));
    }
    out
}

/// Asserts that B's two answers to `row` are identical, have the row's status and name
/// nothing of A's.
fn assert_same_as_absent(row: &Row, a: &TenantA, theirs: &(u16, String), absent: &(u16, String)) {
    let (method, path, _, slot, status) = *row;
    let what = format!("{method} {path} ({slot:?})");
    assert_eq!(
        theirs, absent,
        "{what}: A's value answers unlike an absent one"
    );
    assert_eq!(theirs.0, status, "{what}: {}", theirs.1);
    for m in a.markers() {
        assert!(!theirs.1.contains(m), "{what} reveals {m:?}: {}", theirs.1);
    }
}

#[tokio::test]
async fn another_tenants_resources_answer_like_absent_ones_and_stay_unchanged() {
    let app = spawn_app().await;
    let a = seed_tenant_a(&app).await;
    let b = app.new_account("tenant-b").await;
    let b_credential = id_of(&app.post("/api/auth", &b, credential()).await);
    let before = snapshot(&app, &a).await;
    for row in ROWS {
        let (theirs, absent) = values(&a, row.3, &b_credential);
        let got_theirs = send(&app, &b, row, &theirs).await;
        let got_absent = send(&app, &b, row, &absent).await;
        assert_same_as_absent(row, &a, &got_theirs, &got_absent);
    }
    assert_eq!(snapshot(&app, &a).await, before, "B changed A's resources");
    // A's token still works for A (B's introspection and rotation attempts left it alone).
    app.get("/api/auth/self", &a.token_text).await.ok(200);
}
