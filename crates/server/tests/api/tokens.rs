//! API tokens over HTTP: createtoken, every credential form, expiry with the injected clock,
//! delegation without escalation, revocation and its cascade, listing and pagination.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn createtoken_answers_201_with_the_secret_once_and_lytics_fields() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/auth/createtoken",
            &app.token,
            json!({"scopes": ["data_manager"], "name": "my-app", "expires": "100h"}),
        )
        .await;
    let d = r.ok(201);
    assert_eq!(d["provider_name"], "Lytics");
    assert_eq!(d["name"], "my-app");
    assert_eq!(
        d["description"], "my-app",
        "older clients expect description == name"
    );
    assert_eq!(d["scopes"], json!(["data_manager"]));
    assert_eq!(d["expires"], "2026-01-05T04:00:00.000Z");
    assert_eq!(d["aid"], 1);
    let id = d["id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    let token = d["config"][0]["value"].as_str().unwrap();
    assert_eq!(d["config"][0]["name"], "api_key");
    assert!(token.starts_with(&format!("at.{id}.")));
    assert_eq!(token.len(), authd_core::token::TOKEN_LEN);

    // The secret is never shown again: not by GET, not by the list.
    let one = app.get(&format!("/api/auth/{id}"), &app.token).await;
    let one_text = one.body.to_string();
    assert!(!one_text.contains(&token[36..]));
    assert!(one.ok(200).get("config").is_none());
    let list = app.get("/api/auth", &app.token).await;
    assert!(!list.body.to_string().contains(&token[36..]));

    // The new token works.
    app.get("/api/account/current", token).await.ok(200);
}

#[tokio::test]
async fn every_credential_form_is_accepted() {
    let app = spawn_app().await;
    let t = &app.token;
    let get =
        |req: reqwest::RequestBuilder| async move { into_resp(req.send().await.unwrap()).await };
    let u = app.url("/api/account/current");
    get(app.client.get(&u).header("Authorization", t))
        .await
        .ok(200);
    get(app
        .client
        .get(&u)
        .header("Authorization", format!("Bearer {t}")))
    .await
    .ok(200);
    get(app
        .client
        .get(&u)
        .header("Authorization", format!("bearer {t}")))
    .await
    .ok(200);
    get(app.client.get(format!("{u}?access_token={t}")))
        .await
        .ok(200);
    get(app.client.get(format!("{u}?key={t}"))).await.ok(200);
    get(app.client.get(format!("{u}?account_id=1&key={t}")))
        .await
        .ok(200);
}

#[tokio::test]
async fn missing_unknown_malformed_and_revoked_tokens_are_401_not_authorized() {
    let app = spawn_app().await;
    let r = app.call(Method::GET, "/api/auth", None, None).await;
    r.assert_error(401, "Not authorized");
    assert!(r.headers.contains_key("www-authenticate"));
    // Well-formed, valid checksum, but never issued.
    let ghost = authd_core::token::ApiToken::generate(authd_core::ids::AuthId::generate());
    app.get("/api/auth", ghost.expose())
        .await
        .assert_error(401, "Not authorized");
    // Right id, wrong secret (checksum recomputed so only the keyed hash can refuse it).
    let (_, real) = app
        .create_token(&app.token, json!({"scopes":["admin"]}))
        .await;
    let forged = forge_secret(&real);
    app.get("/api/auth", &forged)
        .await
        .assert_error(401, "Not authorized");
    for bad in [
        "",
        "garbage",
        "at.",
        &real[..real.len() - 1],
        &"a".repeat(5000),
    ] {
        app.get("/api/auth", bad)
            .await
            .assert_error(401, "Not authorized");
    }
    app.get(&format!("/api/auth?key={}", "x".repeat(5000)), "")
        .await
        .assert_error(401, "Not authorized");
}

/// Replaces the secret of a token, keeping id and a valid checksum.
fn forge_secret(token: &str) -> String {
    let body = format!("{}{}", &token[..36], "0".repeat(48));
    format!("{body}{:08x}", crc32(body.as_bytes()))
}

fn crc32(b: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), independent of the implementation under test.
    let mut crc = 0xffff_ffffu32;
    for &byte in b {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn an_expired_token_is_401_expired_token() {
    let app = spawn_app().await;
    let (_, t) = app
        .create_token(
            &app.token,
            json!({"scopes":["observer"], "expires":"1h30m"}),
        )
        .await;
    app.get("/api/account/current", &t).await.ok(200);
    app.clock.advance_ms(90 * 60 * 1000 - 1);
    app.get("/api/account/current", &t).await.ok(200);
    app.clock.advance_ms(1);
    app.get("/api/account/current", &t)
        .await
        .assert_error(401, "Expired Token");
}

#[tokio::test]
async fn expires_follows_go_duration_grammar() {
    let app = spawn_app().await;
    for ok in ["100h", "30m", "1h30m", "10s", "1.5h", "300ms", "2h45m30.5s"] {
        let r = app
            .post(
                "/api/auth/createtoken",
                &app.token,
                json!({"scopes":["data"], "expires": ok}),
            )
            .await;
        r.ok(201);
    }
    for bad in [
        "1d",
        "0",
        "-1h",
        "0s",
        "garbage",
        "h",
        "3000000h",
        "9223372036854775808ns",
        "1h ",
    ] {
        let r = app
            .post(
                "/api/auth/createtoken",
                &app.token,
                json!({"scopes":["data"], "expires": bad}),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(
            r.body["message"].as_str().unwrap().contains("expires"),
            "{}",
            r.body
        );
    }
    let r = app
        .post(
            "/api/auth/createtoken",
            &app.token,
            json!({"scopes":["data"], "expires": 100}),
        )
        .await;
    assert_eq!(r.status, 400);
    // Absent: never expires.
    let r = app
        .post(
            "/api/auth/createtoken",
            &app.token,
            json!({"scopes":["data"]}),
        )
        .await;
    assert_eq!(r.ok(201)["expires"], "0001-01-01T00:00:00Z");
}

#[tokio::test]
async fn scopes_may_be_a_comma_string_and_unknown_roles_are_400() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/auth/createtoken",
            &app.token,
            json!({"scopes":"admin,data"}),
        )
        .await;
    assert_eq!(r.ok(201)["scopes"], json!(["admin", "data"]));
    app.post(
        "/api/auth/createtoken",
        &app.token,
        json!({"scopes":["data","wizard"]}),
    )
    .await
    .assert_error(400, "Unknown roles \"wizard\"");
    app.post(
        "/api/auth/createtoken",
        &app.token,
        json!({"scope":["data"]}),
    )
    .await
    .status
    .as_u16()
    .eq(&400)
    .then_some(())
    .expect("a misspelt field is refused");
    let r = app
        .post("/api/auth/createtoken", &app.token, json!({"scopes":[]}))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn delegation_never_escalates() {
    let app = spawn_app().await;
    let dm = app.token_with(&["data_manager"]).await;
    app.post(
        "/api/auth/createtoken",
        &dm,
        json!({"scopes":["data_manager","admin"]}),
    )
    .await
    .assert_error(
        403,
        "User does not have permission to add these roles in token: [admin]",
    );
    app.post(
        "/api/auth/createtoken",
        &dm,
        json!({"scopes":["data_manager"]}),
    )
    .await
    .ok(201);
    // Roles without tokens.create cannot mint at all.
    let obs = app.token_with(&["observer"]).await;
    let r = app
        .post(
            "/api/auth/createtoken",
            &obs,
            json!({"scopes":["observer"]}),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_child_token_never_outlives_its_creator() {
    let app = spawn_app().await;
    let (_, parent) = app
        .create_token(
            &app.token,
            json!({"scopes":["data_manager"], "expires":"1h"}),
        )
        .await;
    let r = app
        .post(
            "/api/auth/createtoken",
            &parent,
            json!({"scopes":["data_manager"], "expires":"100h"}),
        )
        .await;
    assert_eq!(r.ok(201)["expires"], "2026-01-01T01:00:00.000Z");
    let r = app
        .post(
            "/api/auth/createtoken",
            &parent,
            json!({"scopes":["data_manager"]}),
        )
        .await;
    assert_eq!(r.ok(201)["expires"], "2026-01-01T01:00:00.000Z");
}

#[tokio::test]
async fn revocation_takes_effect_at_once_and_cascades() {
    let app = spawn_app().await;
    let (pid, parent) = app
        .create_token(&app.token, json!({"scopes":["data_manager"]}))
        .await;
    let (cid, child) = app
        .create_token(&parent, json!({"scopes":["data_manager"]}))
        .await;
    let (_, grandchild) = app
        .create_token(&child, json!({"scopes":["data_manager"]}))
        .await;
    let (_, sibling) = app
        .create_token(&app.token, json!({"scopes":["data_manager"]}))
        .await;
    for t in [&parent, &child, &grandchild, &sibling] {
        app.get("/api/auth", t).await.ok(200); // warm the cache
    }
    let r = app.delete(&format!("/api/auth/{pid}"), &app.token).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_null());
    for t in [&parent, &child, &grandchild] {
        app.get("/api/auth", t)
            .await
            .assert_error(401, "Not authorized");
    }
    app.get("/api/auth", &sibling).await.ok(200);
    app.get(&format!("/api/auth/{pid}"), &app.token)
        .await
        .assert_error(404, "Not found");
    app.get(&format!("/api/auth/{cid}"), &app.token)
        .await
        .assert_error(404, "Not found");
    app.delete(&format!("/api/auth/{pid}"), &app.token)
        .await
        .assert_error(404, "Not found");
}

#[tokio::test]
async fn another_tenants_auth_is_404_byte_for_byte_like_a_missing_one() {
    let app = spawn_app().await;
    let other = app.new_account("other").await;
    let (theirs, _) = app
        .create_token(&other, json!({"scopes":["observer"]}))
        .await;
    let missing = authd_core::ids::AuthId::generate().to_string();
    let a = app
        .client
        .get(app.url(&format!("/api/auth/{theirs}")))
        .header("Authorization", &app.token)
        .send()
        .await
        .unwrap();
    let b = app
        .client
        .get(app.url(&format!("/api/auth/{missing}")))
        .header("Authorization", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 404);
    assert_eq!(b.status(), 404);
    assert_eq!(a.bytes().await.unwrap(), b.bytes().await.unwrap());
    // Deleting it is 404 too, and it keeps working for its owner.
    app.delete(&format!("/api/auth/{theirs}"), &app.token)
        .await
        .assert_error(404, "Not found");
    app.get(&format!("/api/auth/{theirs}"), &other)
        .await
        .ok(200);
    // The list shows only the caller's own auths; account_id cannot widen it.
    let mine = app.get("/api/auth", &app.token).await;
    assert!(!mine.body.to_string().contains(&theirs));
    let r = app.get("/api/auth?account_id=2", &app.token).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn list_filters_and_paginates_with_a_cursor() {
    let app = spawn_app().await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(
            app.create_token(
                &app.token,
                json!({"scopes":["observer"], "name": format!("t{i}")}),
            )
            .await
            .0,
        );
    }
    let mut seen = vec![];
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(n) => format!("/api/auth?auth_type=api_token&limit=2&_next={n}"),
            None => "/api/auth?auth_type=api_token&limit=2".to_owned(),
        };
        let r = app.get(&path, &app.token).await;
        let data = r.ok(200).as_array().unwrap().clone();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        match r.body.get("_next").and_then(|v| v.as_str()) {
            Some(n) => next = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "5 tokens + bootstrap");
    for id in &ids {
        assert!(seen.contains(id));
    }
    let r = app.get("/api/auth?provider_id=lytics", &app.token).await;
    assert_eq!(r.ok(200).as_array().unwrap().len(), 6);
    let r = app.get("/api/auth?provider_id=facebook", &app.token).await;
    assert_eq!(r.ok(200).as_array().unwrap().len(), 0);
    assert_eq!(app.get("/api/auth?limit=0", &app.token).await.status, 400);
    assert_eq!(app.get("/api/auth?limit=abc", &app.token).await.status, 400);
    assert_eq!(app.get("/api/auth?_next=zz", &app.token).await.status, 400);
    assert_eq!(
        app.get("/api/auth?auth_type=nope", &app.token).await.status,
        400
    );
}

#[tokio::test]
async fn last_accessed_at_is_tracked_without_a_write_per_request() {
    let app = spawn_app().await;
    let (id, t) = app
        .create_token(&app.token, json!({"scopes":["observer"]}))
        .await;
    let before = app.get(&format!("/api/auth/{id}"), &app.token).await;
    assert_eq!(before.ok(200)["last_accessed_at"], "0001-01-01T00:00:00Z");
    app.clock.advance_ms(5_000);
    app.get("/api/account/current", &t).await.ok(200);
    let after = app.get(&format!("/api/auth/{id}"), &app.token).await;
    assert_eq!(
        after.ok(200)["last_accessed_at"],
        "2026-01-01T00:00:05.000Z"
    );
}

#[tokio::test]
async fn roles_gate_the_auth_endpoints() {
    let app = spawn_app().await;
    let obs = app.token_with(&["observer"]).await;
    let r = app.get("/api/auth", &obs).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["status"], 403);
    let dm = app.token_with(&["data_manager"]).await;
    app.get("/api/auth", &dm).await.ok(200);
    let gm = app.token_with(&["general_manager"]).await;
    app.get("/api/auth", &gm).await.ok(200);
    // Issue 10 (who may remove a token): a revoker must hold every role of the target, so
    // data_manager revokes a data_manager token but no longer an observer token.
    let (obs_id, _) = app
        .create_token(&app.token, json!({"scopes":["observer"]}))
        .await;
    assert_eq!(
        app.delete(&format!("/api/auth/{obs_id}"), &dm).await.status,
        403
    );
    let (id, _) = app
        .create_token(&app.token, json!({"scopes":["data_manager"]}))
        .await;
    assert_eq!(
        app.delete(&format!("/api/auth/{id}"), &obs).await.status,
        403
    );
    assert_eq!(
        app.delete(&format!("/api/auth/{id}"), &dm).await.status,
        204
    );
}

#[tokio::test]
async fn graceful_shutdown_completes() {
    let app = spawn_app().await;
    app.get("/healthz", "").await.ok(200);
    app.get("/readyz", "").await.ok(200);
    app.stop().await;
}
