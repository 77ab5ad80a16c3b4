//! The entity data surface over HTTP: collect uploads and user profile reads, each role's
//! access allowed and refused, PII hidden or shown per role, and lookups by a private field.

use serde_json::{json, Value};

use crate::helpers::*;

const ALL_ROLES: [&str; 10] = [
    "admin",
    "data",
    "data_write",
    "content_manager",
    "segment_manager",
    "marketer",
    "observer",
    "data_manager",
    "campaign_manager",
    "general_manager",
];

async fn seed(app: &TestApp) {
    app.post(
        "/collect/json/default",
        &app.token,
        json!([
            {"user_id": "u1", "email": "ann@example.com", "phone": "555", "city": "Oslo", "score": 7},
            {"user_id": "u2", "email": "bob@example.com", "city": "Rome"}
        ]),
    )
    .await
    .ok(200);
    app.put(
        "/api/account/setting/schema_user_private_fields",
        &app.token,
        json!(["email", "phone"]),
    )
    .await
    .ok(200);
}

#[tokio::test]
async fn collect_upserts_objects_and_arrays_and_merges_fields() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/collect/json/web",
            &app.token,
            json!({"user_id": "u1", "a": 1}),
        )
        .await;
    assert_eq!(r.ok(200)["count"], 1);
    let r = app
        .post(
            "/collect/json/web",
            &app.token,
            json!([{"user_id": "u1", "b": 2}, {"user_id": 42, "a": 3}]),
        )
        .await;
    assert_eq!(r.ok(200)["count"], 2);
    let u1 = app.get("/api/entity/user/user_id/u1", &app.token).await;
    assert_eq!(u1.ok(200), &json!({"user_id": "u1", "a": 1, "b": 2}));
    let n = app.get("/api/entity/user/user_id/42", &app.token).await;
    assert_eq!(n.ok(200)["a"], 3);
    // Any top-level field works as the lookup.
    let b = app.get("/api/entity/user/b/2", &app.token).await;
    assert_eq!(b.ok(200)["user_id"], "u1");
    app.get("/api/entity/user/user_id/nobody", &app.token)
        .await
        .assert_error(404, "Not found");
}

#[tokio::test]
async fn collect_refuses_bad_json_missing_keys_and_oversized_bodies() {
    let app = spawn_app_with(|c| c.collect_limit_bytes = 256).await;
    let raw = |body: &'static str| {
        app.client
            .post(app.url("/collect/json/s"))
            .header("Authorization", &app.token)
            .header("Content-Type", "application/json")
            .body(body)
    };
    let r = into_resp(raw("{\"user_id\": ").send().await.unwrap()).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid JSON body"));
    for bad in [
        json!("x"),
        json!(3),
        json!([1]),
        json!({"email": "x"}),
        json!({"user_id": ""}),
        json!({"user_id": {"a": 1}}),
    ] {
        let r = app.post("/collect/json/s", &app.token, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let big = json!({"user_id": "u", "pad": "x".repeat(300)});
    app.post("/collect/json/s", &app.token, big)
        .await
        .assert_error(413, "Request body too large");
    app.post(
        "/collect/json/bad%20stream",
        &app.token,
        json!({"user_id": "u"}),
    )
    .await
    .assert_error(
        400,
        "Invalid stream name: use 1-128 letters, digits, '_', '-' or '.'",
    );
    // Nothing half-written: the failed uploads stored nothing.
    app.get("/api/entity/user/user_id/u", &app.token)
        .await
        .assert_error(404, "Not found");
}

#[tokio::test]
async fn the_key_field_is_configurable() {
    let app = spawn_app_with(|c| c.entity_key_field = "email".into()).await;
    app.post(
        "/collect/json/s",
        &app.token,
        json!({"email": "a@b.c", "n": 1}),
    )
    .await
    .ok(200);
    app.post(
        "/collect/json/s",
        &app.token,
        json!({"email": "a@b.c", "m": 2}),
    )
    .await
    .ok(200);
    let r = app.get("/api/entity/user/email/a@b.c", &app.token).await;
    assert_eq!(r.ok(200), &json!({"email": "a@b.c", "n": 1, "m": 2}));
    let r = app
        .post("/collect/json/s", &app.token, json!({"user_id": "x"}))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn each_role_is_allowed_or_refused_collect_and_entity_reads() {
    let app = spawn_app().await;
    seed(&app).await;
    for role in ALL_ROLES {
        let t = app.token_with(&[role]).await;
        let may_upload = matches!(role, "admin" | "data" | "data_write");
        let r = app
            .post(
                "/collect/json/s",
                &t,
                json!({"user_id": format!("by-{role}")}),
            )
            .await;
        if may_upload {
            r.ok(200);
        } else {
            assert_eq!(r.status, 403, "{role} collect: {}", r.body);
        }
        let may_read = matches!(role, "admin" | "data" | "data_manager" | "general_manager");
        let r = app.get("/api/entity/user/user_id/u1", &t).await;
        if may_read {
            r.ok(200);
        } else {
            assert_eq!(r.status, 403, "{role} entity: {}", r.body);
        }
    }
    // Without a token: 401.
    let r = app
        .call(
            reqwest::Method::POST,
            "/collect/json/s",
            None,
            Some(json!({"user_id": "x"})),
        )
        .await;
    r.assert_error(401, "Not authorized");
    let r = app
        .call(
            reqwest::Method::GET,
            "/api/entity/user/user_id/u1",
            None,
            None,
        )
        .await;
    r.assert_error(401, "Not authorized");
}

#[tokio::test]
async fn private_fields_are_visible_only_to_roles_with_pii_access() {
    let app = spawn_app().await;
    seed(&app).await;
    for role in ["admin", "data_manager", "general_manager", "data"] {
        let t = app.token_with(&[role]).await;
        let r = app.get("/api/entity/user/user_id/u1", &t).await;
        let p = r.ok(200);
        let pii = role != "data";
        assert_eq!(p["city"], "Oslo", "{role}");
        assert_eq!(p["score"], 7, "{role}");
        assert_eq!(p.get("email").is_some(), pii, "{role}: {p}");
        assert_eq!(p.get("phone").is_some(), pii, "{role}: {p}");
        if pii {
            assert_eq!(p["email"], "ann@example.com");
        }
        // A profile without the private fields shows the same for everyone.
        let r = app.get("/api/entity/user/city/Rome", &t).await;
        assert_eq!(r.ok(200)["user_id"], "u2");
    }
    // Clearing the setting shows everything to `data` too.
    app.delete(
        "/api/account/setting/schema_user_private_fields",
        &app.token,
    )
    .await;
    let t = app.token_with(&["data"]).await;
    let r = app.get("/api/entity/user/user_id/u1", &t).await;
    assert_eq!(r.ok(200)["email"], "ann@example.com");
}

#[tokio::test]
async fn a_private_field_cannot_be_the_lookup_without_pii_access() {
    let app = spawn_app().await;
    seed(&app).await;
    let data = app.token_with(&["data"]).await;
    let r = app
        .get("/api/entity/user/email/ann@example.com", &data)
        .await;
    r.assert_error(
        403,
        "Not authorized: \"email\" is a private field and this token's roles do not grant entity.pii",
    );
    // Refused even when nothing matches, so the answer leaks nothing.
    let r = app.get("/api/entity/user/phone/000", &data).await;
    assert_eq!(r.status, 403);
    for role in ["admin", "data_manager", "general_manager"] {
        let t = app.token_with(&[role]).await;
        let r = app.get("/api/entity/user/email/ann@example.com", &t).await;
        assert_eq!(r.ok(200)["user_id"], "u1", "{role}");
    }
    app.get("/api/entity/user/bad%20field/x", &data)
        .await
        .assert_error(
            400,
            "Invalid field name: use 1-128 letters, digits, '_', '-' or '.'",
        );
}

#[tokio::test]
async fn entities_are_per_account() {
    let app = spawn_app().await;
    seed(&app).await;
    let other = app.new_account("other").await;
    app.get("/api/entity/user/user_id/u1", &other)
        .await
        .assert_error(404, "Not found");
    app.post(
        "/collect/json/s",
        &other,
        json!({"user_id": "u1", "mine": true}),
    )
    .await
    .ok(200);
    let r = app.get("/api/entity/user/user_id/u1", &app.token).await;
    assert_eq!(r.ok(200).get("mine"), None::<&Value>);
    let r = app.get("/api/entity/user/user_id/u1", &other).await;
    assert_eq!(r.ok(200), &json!({"user_id": "u1", "mine": true}));
}
