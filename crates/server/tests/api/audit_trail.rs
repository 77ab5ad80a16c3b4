//! The audit trail as the typed, atomic record of every change (issue 9): entity uploads are
//! audited with counts and never a value, and a request that changes nothing leaves no entry.

use serde_json::{json, Value};

use crate::helpers::*;

/// A profile value and a key that must never reach the audit trail.
const CANARY: &str = "CANARY-profile-value-5f3a";
const CANARY_KEY: &str = "canary-key-91c2";

/// The account's entries for `action`, newest first.
async fn entries(app: &TestApp, action: &str) -> Vec<Value> {
    app.get(
        &format!("/api/audit?action={action}&limit=1000"),
        &app.token,
    )
    .await
    .ok(200)
    .as_array()
    .unwrap()
    .clone()
}

#[tokio::test]
async fn an_entity_upload_is_audited_once_with_counts_and_never_a_value() {
    let app = spawn_app().await;
    let (tok_id, tok) = app
        .create_token(&app.token, json!({"scopes": ["data"], "name": "uploader"}))
        .await;
    let profiles = json!([
        {"user_id": CANARY_KEY, "email": "ann@example.com", "secret_note": CANARY},
        {"user_id": "u2", "city": "Rome"}
    ]);
    let r = app.post("/collect/json/web_events", &tok, profiles).await;
    assert_eq!(r.ok(200)["count"], 2);
    // Refused uploads change nothing and add no entry.
    app.post("/collect/json/web_events", &tok, json!([{"email": CANARY}]))
        .await
        .assert_error(400, "Record 0 needs a \"user_id\" field (a non-empty string of at most 512 characters, or a number)");
    let observer = app.token_with(&["observer"]).await;
    assert_eq!(
        app.post(
            "/collect/json/web_events",
            &observer,
            json!({"user_id": "x"})
        )
        .await
        .status,
        403
    );

    let uploads = entries(&app, "entity.upload").await;
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let e = &uploads[0];
    assert_eq!(e["actor"], format!("token:{tok_id}"));
    assert_eq!(e["target"], "web_events");
    assert_eq!(e["outcome"], "ok");
    assert_eq!(e["detail"], "kind user; records 2; fields 5");
    assert_eq!(e["request_id"].as_str().unwrap().len(), 32);
    let everything = app.get("/api/audit?limit=1000", &app.token).await;
    let text = everything.ok(200).to_string();
    for never in [CANARY, CANARY_KEY, "ann@example.com", "Rome"] {
        assert!(!text.contains(never), "{never} in the audit trail");
    }
    app.stop().await;
}

#[tokio::test]
async fn requests_that_change_nothing_leave_no_entry() {
    let app = spawn_app().await;
    let t = &app.token;
    // Resetting a setting that is not set changes nothing.
    let unset = "/api/account/setting/schema_user_private_fields";
    assert_eq!(app.delete(unset, t).await.status, 204);
    assert!(entries(&app, "setting.reset").await.is_empty());
    // A duplicate work fails after its insert began: one work, one entry.
    let work = json!({"workflow": "w", "config": {"a": 1}});
    let w = app.post("/api/work", t, work.clone()).await;
    let wid = w.ok(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post("/api/work", t, work).await.status, 400);
    let created = entries(&app, "work.create").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["target"], wid.as_str());
    // Deleting it twice: the second finds nothing.
    assert_eq!(app.delete(&format!("/api/work/{wid}"), t).await.status, 204);
    assert_eq!(app.delete(&format!("/api/work/{wid}"), t).await.status, 404);
    assert_eq!(entries(&app, "work.delete").await.len(), 1);
    app.stop().await;
}
