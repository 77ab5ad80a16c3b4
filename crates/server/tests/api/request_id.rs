//! One request id (issue 9): accepted when well-formed or generated, returned on every
//! response, carried into the audit entry, and quoted as the reference of a 5xx body.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{into_resp, spawn_app, Resp, TestApp};

async fn call_with_id(app: &TestApp, method: Method, path: &str, id: Option<&str>) -> Resp {
    let mut rb = app
        .client
        .request(method.clone(), app.url(path))
        .header("Authorization", &app.token);
    if let Some(id) = id {
        rb = rb.header("X-Request-Id", id);
    }
    if method == Method::POST {
        rb = rb.json(&json!({"scopes": ["observer"], "name": "rid"}));
    }
    into_resp(rb.send().await.unwrap()).await
}

fn id_of(r: &Resp) -> String {
    r.headers
        .get("x-request-id")
        .expect("every response carries X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_response_carries_a_generated_id_unless_a_well_formed_one_is_sent() {
    let app = spawn_app().await;
    // Generated: 32 hex digits, different per request, on success, 401 and 404 alike.
    let a = id_of(&call_with_id(&app, Method::GET, "/api/auth/self", None).await);
    let b = id_of(&call_with_id(&app, Method::GET, "/api/auth/self", None).await);
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
    let anon = app.call(Method::GET, "/api/auth/self", None, None).await;
    assert_eq!(anon.status, 401);
    assert_eq!(id_of(&anon).len(), 32);
    assert_eq!(
        id_of(&app.get("/no/such/route", &app.token).await).len(),
        32
    );

    // A well-formed id is kept.
    let kept = call_with_id(&app, Method::GET, "/api/auth/self", Some("req-42_a.b:c")).await;
    assert_eq!(id_of(&kept), "req-42_a.b:c");

    // A malformed or oversized one is replaced.
    for bad in ["has space", "semi;colon", &"x".repeat(129)] {
        let r = call_with_id(&app, Method::GET, "/api/auth/self", Some(bad)).await;
        let got = id_of(&r);
        assert_ne!(got, bad);
        assert_eq!(got.len(), 32, "{bad:?} gave {got:?}");
    }
}

#[tokio::test]
async fn the_id_of_a_mutation_is_in_its_audit_entry() {
    let app = spawn_app().await;
    let r = call_with_id(
        &app,
        Method::POST,
        "/api/auth/createtoken",
        Some("trace-me-1"),
    )
    .await;
    let id = r.ok(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(id_of(&r), "trace-me-1");
    let audit = app
        .get(
            &format!("/api/audit?action=token.create&target={id}"),
            &app.token,
        )
        .await;
    let entries = audit.ok(200).as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["request_id"], "trace-me-1");
}

#[tokio::test]
async fn a_server_error_names_the_request_id_as_its_reference_and_nothing_else() {
    let app = spawn_app().await;
    // Break the store under the running server: reading settings now fails inside SQLite.
    let db = app.dir.path().join("authd.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("DROP TABLE account_settings")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let r = call_with_id(
        &app,
        Method::GET,
        "/api/account/setting",
        Some("incident-7"),
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(id_of(&r), "incident-7");
    assert_eq!(r.body["status"], 500);
    assert_eq!(r.body["message"], "Internal error (reference incident-7)");
    assert!(r.body["data"].is_null());
}
