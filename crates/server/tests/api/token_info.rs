//! Asking authd about tokens: `GET /api/auth/self` and `POST /api/auth/introspect` for
//! active, expired, revoked, garbage and foreign tokens; and rotation with a grace window.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn self_describes_the_callers_token_without_the_secret() {
    let app = spawn_app().await;
    let (id, t) = app
        .create_token(
            &app.token,
            json!({"scopes": ["data", "observer"], "name": "etl", "expires": "1h"}),
        )
        .await;
    let r = app.get("/api/auth/self", &t).await;
    let d = r.ok(200);
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["name"], "etl");
    assert_eq!(d["aid"], 1);
    assert_eq!(d["account_id"].as_str().unwrap().len(), 32);
    assert_eq!(d["scopes"], json!(["data", "observer"]));
    assert_eq!(d["expires"], "2026-01-01T01:00:00.000Z");
    assert_eq!(d["pii"], false);
    let perms: Vec<&str> = d["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(perms.contains(&"entity.read"));
    assert!(!perms.contains(&"entity.pii"));
    assert!(!r.body.to_string().contains(&t[36..]), "secret leaked");

    let admin = app.get("/api/auth/self", &app.token).await;
    assert_eq!(admin.ok(200)["pii"], true);
    assert_eq!(admin.ok(200)["expires"], "0001-01-01T00:00:00Z");
    // Every role may ask about itself; nobody without a token.
    for role in ["observer", "data_write", "marketer"] {
        let t = app.token_with(&[role]).await;
        app.get("/api/auth/self", &t).await.ok(200);
    }
    app.call(reqwest::Method::GET, "/api/auth/self", None, None)
        .await
        .assert_error(401, "Not authorized");
}

async fn introspect(app: &TestApp, caller: &str, token: &str) -> Resp {
    app.post("/api/auth/introspect", caller, json!({"token": token}))
        .await
}

#[tokio::test]
async fn introspection_reports_active_tokens_in_rfc7662_shape() {
    let app = spawn_app().await;
    let (id, t) = app
        .create_token(
            &app.token,
            json!({"scopes": ["data_manager"], "name": "svc", "expires": "2h"}),
        )
        .await;
    let svc = app.token_with(&["general_manager"]).await;
    let r = introspect(&app, &svc, &t).await;
    assert_eq!(
        r.headers.get("cache-control").unwrap().to_str().unwrap(),
        "no-store"
    );
    let d = r.ok(200);
    assert_eq!(d["active"], true);
    assert_eq!(d["scope"], "data_manager");
    assert_eq!(d["client_id"], id.as_str());
    assert_eq!(d["token_type"], "api_token");
    assert_eq!(d["iat"], T0 / 1000);
    assert_eq!(d["exp"], T0 / 1000 + 7200);
    assert_eq!(d["aid"], 1);
    assert_eq!(d["pii"], true);
    assert!(d["sub"].as_str().unwrap().len() == 32);
    assert!(d["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("settings.write")));
    assert!(!r.body.to_string().contains(&t[36..]));
    // A token that never expires has no exp.
    let d = introspect(&app, &svc, &app.token).await;
    assert!(d.ok(200).get("exp").is_none());
    // The form encoding of RFC 7662 works as well.
    let r = app
        .client
        .post(app.url("/api/auth/introspect"))
        .header("Authorization", &svc)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={t}&token_type_hint=access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(into_resp(r).await.ok(200)["active"], true);
    // Introspection does not count as a use of the token.
    let before = app.get(&format!("/api/auth/{id}"), &app.token).await;
    assert_eq!(before.ok(200)["last_accessed_at"], "0001-01-01T00:00:00Z");
}

#[tokio::test]
async fn expired_revoked_garbage_and_foreign_tokens_are_inactive() {
    let app = spawn_app().await;
    let svc = app.token_with(&["admin"]).await;
    let inactive = json!({"active": false});

    let (_, expiring) = app
        .create_token(&app.token, json!({"scopes": ["data"], "expires": "10m"}))
        .await;
    assert_eq!(
        introspect(&app, &svc, &expiring).await.ok(200)["active"],
        true
    );
    app.clock.advance_ms(10 * 60 * 1000);
    assert_eq!(introspect(&app, &svc, &expiring).await.ok(200), &inactive);

    let (rid, revoked) = app
        .create_token(&app.token, json!({"scopes": ["data"]}))
        .await;
    assert_eq!(
        introspect(&app, &svc, &revoked).await.ok(200)["active"],
        true
    );
    assert_eq!(
        app.delete(&format!("/api/auth/{rid}"), &app.token)
            .await
            .status,
        204
    );
    assert_eq!(introspect(&app, &svc, &revoked).await.ok(200), &inactive);

    for garbage in [
        "garbage",
        "at.0000.1111",
        &format!("{}x", &svc[..svc.len() - 1]),
        &svc.replace("at.", "xt."),
    ] {
        assert_eq!(
            introspect(&app, &svc, garbage).await.ok(200),
            &inactive,
            "{garbage}"
        );
    }
    // Another account's live token is inactive to this account.
    let other = app.new_account("other").await;
    assert_eq!(introspect(&app, &svc, &other).await.ok(200), &inactive);
    // Missing token is a bad request.
    app.post("/api/auth/introspect", &svc, json!({}))
        .await
        .assert_error(400, "token is required");
}

#[tokio::test]
async fn who_may_introspect_follows_the_role_matrix() {
    let app = spawn_app().await;
    for (role, allowed) in [
        ("admin", true),
        ("data_manager", true),
        ("general_manager", true),
        ("data", false),
        ("data_write", false),
        ("observer", false),
        ("marketer", false),
        ("content_manager", false),
        ("segment_manager", false),
        ("campaign_manager", false),
    ] {
        let t = app.token_with(&[role]).await;
        let r = introspect(&app, &t, &app.token).await;
        assert_eq!(r.status == 200, allowed, "{role}: {}", r.body);
        if !allowed {
            assert_eq!(r.status, 403);
        }
    }
    app.call(
        reqwest::Method::POST,
        "/api/auth/introspect",
        None,
        Some(json!({"token": app.token})),
    )
    .await
    .assert_error(401, "Not authorized");
}

async fn rotate(app: &TestApp, caller: &str, id: &str, body: serde_json::Value) -> Resp {
    app.post(&format!("/api/auth/{id}/rotate"), caller, body)
        .await
}

#[tokio::test]
async fn rotation_keeps_the_old_token_until_the_grace_window_ends() {
    let app = spawn_app().await;
    let (old_id, old) = app
        .create_token(
            &app.token,
            json!({"scopes": ["data", "observer"], "name": "etl", "expires": "24h"}),
        )
        .await;
    app.clock.advance_ms(3_600_000);
    let r = rotate(&app, &app.token, &old_id, json!({"grace": "10m"})).await;
    let d = r.ok(201).clone();
    let new_id = d["id"].as_str().unwrap().to_owned();
    let new = d["config"][0]["value"].as_str().unwrap().to_owned();
    assert_eq!(d["config"][0]["name"], "api_key");
    assert_ne!(new_id, old_id);
    assert!(new.starts_with(&format!("at.{new_id}.")));
    assert_eq!(d["rotated_from"], old_id.as_str());
    assert_eq!(d["previous_valid_until"], "2026-01-01T01:10:00.000Z");
    // Same roles, name and expiry rule (24h from now).
    assert_eq!(d["scopes"], json!(["data", "observer"]));
    assert_eq!(d["name"], "etl");
    assert_eq!(d["ttl"], 86_400);
    assert_eq!(d["expires"], "2026-01-02T01:00:00.000Z");
    // Shown once: never again.
    let again = app.get(&format!("/api/auth/{new_id}"), &app.token).await;
    assert!(!again.body.to_string().contains(&new[36..]));

    // Inside the window both work.
    app.get("/api/account/current", &old).await.ok(200);
    app.get("/api/account/current", &new).await.ok(200);
    app.clock.advance_ms(10 * 60_000 - 1);
    app.get("/api/account/current", &old).await.ok(200);
    // At the end of the window the old one is 401; the new one keeps working.
    app.clock.advance_ms(1);
    let r = app.get("/api/account/current", &old).await;
    assert_eq!(r.status, 401, "{}", r.body);
    app.get("/api/account/current", &new).await.ok(200);
    let svc = app.token_with(&["admin"]).await;
    assert_eq!(introspect(&app, &svc, &old).await.ok(200)["active"], false);
    assert_eq!(introspect(&app, &svc, &new).await.ok(200)["active"], true);
}

#[tokio::test]
async fn rotation_without_grace_retires_the_old_token_at_once() {
    let app = spawn_app().await;
    let (old_id, old) = app
        .create_token(&app.token, json!({"scopes": ["data"], "name": "n"}))
        .await;
    // Warm the cache so eviction is what makes the change visible.
    app.get("/api/account/current", &old).await.ok(200);
    let r = app
        .call(
            reqwest::Method::POST,
            &format!("/api/auth/{old_id}/rotate"),
            Some(&app.token),
            None,
        )
        .await;
    let d = r.ok(201);
    assert_eq!(d["expires"], "0001-01-01T00:00:00Z", "never stays never");
    let new = d["config"][0]["value"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/account/current", &old).await.status, 401);
    app.get("/api/account/current", &new).await.ok(200);
    // Rotating the retired token again is refused.
    let r = rotate(&app, &app.token, &old_id, json!({})).await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn rotation_input_and_access_are_checked() {
    let app = spawn_app().await;
    let (id, _t) = app
        .create_token(&app.token, json!({"scopes": ["admin"], "name": "n"}))
        .await;
    for bad in [
        json!({"grace": "169h"}),
        json!({"grace": "-1s"}),
        json!({"grace": "soon"}),
        json!({"grase": "1h"}),
    ] {
        let r = rotate(&app, &app.token, &id, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    rotate(&app, &app.token, &id, json!({"grace": "168h"}))
        .await
        .ok(201);
    // Unknown, foreign and malformed ids are 404.
    rotate(
        &app,
        &app.token,
        "0123456789abcdef0123456789abcdef",
        json!({}),
    )
    .await
    .assert_error(404, "Not found");
    rotate(&app, &app.token, "nope", json!({}))
        .await
        .assert_error(404, "Not found");
    let other = app.new_account("other").await;
    rotate(&app, &other, &id, json!({}))
        .await
        .assert_error(404, "Not found");
    // Roles without auths.write are refused; data_manager may not rotate an admin token.
    let observer = app.token_with(&["observer"]).await;
    assert_eq!(rotate(&app, &observer, &id, json!({})).await.status, 403);
    let dm = app.token_with(&["data_manager"]).await;
    rotate(&app, &dm, &id, json!({})).await.assert_error(
        403,
        "User does not have permission to add these roles in token: [admin]",
    );
    let (did, _) = app
        .create_token(&app.token, json!({"scopes": ["data_manager"], "name": "d"}))
        .await;
    rotate(&app, &dm, &did, json!({"grace": "1m"}))
        .await
        .ok(201);
}
