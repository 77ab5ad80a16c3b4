//! Account settings over HTTP, and the `api_ip_whitelist` they drive: validation, who may read
//! and change them, enforcement for IPv4 and IPv6 clients (directly and through a trusted
//! proxy), and the operator's recovery from a lock-out via the CLI.

use serde_json::json;

use crate::helpers::*;

const PRIVATE: &str = "/api/account/setting/schema_user_private_fields";
const ALLOW: &str = "/api/account/setting/api_ip_whitelist";

#[tokio::test]
async fn settings_list_defaults_then_put_get_and_reset() {
    let app = spawn_app().await;
    let t = &app.token;
    let list = app.get("/api/account/setting", t).await;
    let d = list.ok(200).as_array().unwrap().clone();
    assert_eq!(d.len(), 2);
    for s in &d {
        assert_eq!(s["value"], json!([]));
        assert_eq!(s["is_default"], true);
        assert_eq!(s["updated"], "0001-01-01T00:00:00Z");
    }

    let r = app.put(PRIVATE, t, json!(["email", "phone"])).await;
    assert_eq!(r.ok(200)["value"], json!(["email", "phone"]));
    let r = app.get(PRIVATE, t).await;
    let d = r.ok(200);
    assert_eq!(d["slug"], "schema_user_private_fields");
    assert_eq!(d["value"], json!(["email", "phone"]));
    assert_eq!(d["is_default"], false);
    assert_eq!(d["updated"], "2026-01-01T00:00:00.000Z");

    // CIDRs are normalised; IPv6 is accepted.
    let r = app
        .put(ALLOW, t, json!(["127.0.0.1", "10.1.2.3/8", "::1/128"]))
        .await;
    assert_eq!(
        r.ok(200)["value"],
        json!(["127.0.0.1/32", "10.0.0.0/8", "::1/128"])
    );

    // DELETE resets to the default.
    let r = app.delete(PRIVATE, t).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_null());
    let d = app.get(PRIVATE, t).await;
    assert_eq!(d.ok(200)["value"], json!([]));
    assert_eq!(d.ok(200)["is_default"], true);
    // Deleting again is fine.
    assert_eq!(app.delete(PRIVATE, t).await.status, 204);
}

#[tokio::test]
async fn wrong_types_and_bad_cidrs_are_400_and_unknown_slugs_404() {
    let app = spawn_app().await;
    let t = &app.token;
    for bad in [
        json!("email"),
        json!({"email": true}),
        json!([1, 2]),
        json!(null),
    ] {
        let r = app.put(PRIVATE, t, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    app.put(PRIVATE, t, json!(["has space"]))
        .await
        .assert_error(
            400,
            "Invalid field name \"has space\" in schema_user_private_fields: use 1-128 letters, digits, '_', '-' or '.'",
        );
    for bad in [
        json!(["10.0.0.0/33"]),
        json!(["not-an-ip"]),
        json!(["::1/129"]),
        json!("10.0.0.0/8"),
    ] {
        let r = app.put(ALLOW, t, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    // Nothing was stored by the refused writes.
    assert_eq!(app.get(ALLOW, t).await.ok(200)["is_default"], true);
    app.get("/api/account/setting/nope", t)
        .await
        .assert_error(404, "Not found");
    app.put("/api/account/setting/nope", t, json!([]))
        .await
        .assert_error(404, "Not found");
    app.delete("/api/account/setting/nope", t)
        .await
        .assert_error(404, "Not found");
    // Malformed JSON body.
    let r = app
        .client
        .put(app.url(PRIVATE))
        .header("Authorization", t)
        .header("Content-Type", "application/json")
        .body("[\"email\"")
        .send()
        .await
        .unwrap();
    assert_eq!(into_resp(r).await.status, 400);
}

#[tokio::test]
async fn reading_and_managing_settings_follow_the_role_matrix() {
    let app = spawn_app().await;
    for (role, read, write) in [
        ("admin", true, true),
        ("data_manager", true, true),
        ("general_manager", true, false),
        ("data", false, false),
        ("data_write", false, false),
        ("observer", false, false),
        ("marketer", false, false),
        ("content_manager", false, false),
        ("segment_manager", false, false),
        ("campaign_manager", false, false),
    ] {
        let t = app.token_with(&[role]).await;
        let r = app.get("/api/account/setting", &t).await;
        assert_eq!(r.status == 200, read, "{role} list: {}", r.body);
        let r = app.get(PRIVATE, &t).await;
        assert_eq!(r.status == 200, read, "{role} get: {}", r.body);
        let r = app.put(PRIVATE, &t, json!(["email"])).await;
        assert_eq!(r.status == 200, write, "{role} put: {}", r.body);
        if !write {
            assert_eq!(r.status, 403);
        }
        let r = app.delete(PRIVATE, &t).await;
        assert_eq!(r.status == 204, write, "{role} delete: {}", r.body);
    }
}

#[tokio::test]
async fn settings_are_per_account() {
    let app = spawn_app().await;
    let other = app.new_account("other").await;
    app.put(PRIVATE, &app.token, json!(["email"])).await.ok(200);
    app.put(ALLOW, &app.token, json!(["10.0.0.0/8"]))
        .await
        .ok(200);
    assert_eq!(app.get(PRIVATE, &other).await.ok(200)["value"], json!([]));
    // The first account's allowlist does not touch the other account.
    app.get("/api/account/current", &other).await.ok(200);
}

#[tokio::test]
async fn ipv4_allowlist_admits_listed_clients_and_refuses_others() {
    let app = spawn_app().await;
    let t = &app.token;
    let data = app.token_with(&["data"]).await;
    // Allowed: the test client connects from 127.0.0.1.
    app.put(ALLOW, t, json!(["127.0.0.0/8", "2001:db8::/32"]))
        .await
        .ok(200);
    app.get("/api/account/current", t).await.ok(200);
    app.get("/api/account/current", &data).await.ok(200);

    // Outside the list: every token of the account gets 403 Not authorized, on every route.
    app.put(ALLOW, t, json!(["10.0.0.0/8"])).await.ok(200);
    app.get("/api/account/current", t)
        .await
        .assert_error(403, "Not authorized");
    app.get("/api/auth", &data)
        .await
        .assert_error(403, "Not authorized");
    app.get(ALLOW, t).await.assert_error(403, "Not authorized");
    // A bad token is still 401: the allowlist never turns "who are you" into "not here".
    app.get("/api/account/current", "at.nope")
        .await
        .assert_error(401, "Not authorized");
    // A forwarded header from an untrusted peer changes nothing.
    let r = app
        .client
        .get(app.url("/api/account/current"))
        .header("Authorization", t)
        .header("X-Forwarded-For", "10.1.1.1")
        .send()
        .await
        .unwrap();
    into_resp(r).await.assert_error(403, "Not authorized");
}

#[tokio::test]
async fn ipv6_allowlist_is_enforced_for_ipv6_clients() {
    let app = spawn_app_with(|c| c.listen = "[::1]:0".parse().unwrap()).await;
    assert!(app.addr.is_ipv6());
    let t = &app.token;
    app.put(ALLOW, t, json!(["::1/128"])).await.ok(200);
    app.get("/api/account/current", t).await.ok(200);
    // An IPv4-only list does not admit ::1.
    app.put(ALLOW, t, json!(["127.0.0.1/32"])).await.ok(200);
    app.get("/api/account/current", t)
        .await
        .assert_error(403, "Not authorized");
    // Nor does another IPv6 network.
    let other = app.new_account("other").await;
    app.get("/api/account/current", &other).await.ok(200);
}

async fn via_proxy(app: &TestApp, token: &str, xff: &str) -> Resp {
    let r = app
        .client
        .get(app.url("/api/account/current"))
        .header("Authorization", token)
        .header("X-Forwarded-For", xff)
        .send()
        .await
        .unwrap();
    into_resp(r).await
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.9.0.0/16".parse().unwrap(),
        ]
    })
    .await;
    let t = &app.token;
    app.put(ALLOW, t, json!(["198.51.100.0/24", "2001:db8:1::/48"]))
        .await
        .ok(200);
    // The peer 127.0.0.1 is a trusted proxy but not in the list.
    app.get("/api/account/current", t)
        .await
        .assert_error(403, "Not authorized");
    via_proxy(&app, t, "198.51.100.7").await.ok(200);
    via_proxy(&app, t, "2001:db8:1::42").await.ok(200);
    // Through a second trusted proxy.
    via_proxy(&app, t, "198.51.100.7, 10.9.3.4").await.ok(200);
    // A client cannot smuggle an allowed address in front of its own.
    via_proxy(&app, t, "198.51.100.7, 203.0.113.5")
        .await
        .assert_error(403, "Not authorized");
    via_proxy(&app, t, "2001:db8:2::1")
        .await
        .assert_error(403, "Not authorized");
    via_proxy(&app, t, "garbage")
        .await
        .assert_error(403, "Not authorized");
}

#[tokio::test]
async fn operator_lifts_a_lockout_with_the_cli_function_and_the_binary() {
    let app = spawn_app().await;
    let t = &app.token;
    let aid = app.get("/api/account/current", t).await.ok(200)["aid"]
        .as_i64()
        .unwrap();
    let account_id = app.get("/api/account/current", t).await.ok(200)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Lock everyone out.
    app.put(ALLOW, t, json!(["10.0.0.0/8"])).await.ok(200);
    app.get(ALLOW, t).await.assert_error(403, "Not authorized");

    // The function behind `authd account setting delete`, by id.
    let (acct, removed) = authd::settings::operator_delete(
        app.app_state.store.as_ref(),
        &account_id,
        "api_ip_whitelist",
    )
    .await
    .unwrap();
    assert!(removed);
    assert_eq!(acct.aid, aid);
    // A change made outside the server is seen once the cached entry is older than the
    // refresh window (the API itself invalidates at once).
    app.get("/api/account/current", t)
        .await
        .assert_error(403, "Not authorized");
    // The running server re-reads its cached allowlist within the refresh window.
    app.clock.advance_ms(authd::allowlist::REFRESH_MS);
    app.get("/api/account/current", t).await.ok(200);

    // Unknown slug / account are refused with a helpful message.
    let e = authd::settings::operator_delete(app.app_state.store.as_ref(), "1", "nope")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown setting"), "{e}");
    let e =
        authd::settings::operator_delete(app.app_state.store.as_ref(), "999", "api_ip_whitelist")
            .await
            .unwrap_err();
    assert!(e.to_string().contains("no account"), "{e}");

    // Lock out again, and lift it with the real binary against the test's data dir, by aid.
    app.put(ALLOW, t, json!(["::2/128"])).await.ok(200);
    app.get(ALLOW, t).await.assert_error(403, "Not authorized");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authd"))
        .args(["--data-dir"])
        .arg(app.dir.path())
        .args([
            "account",
            "setting",
            "delete",
            "api_ip_whitelist",
            "--account",
        ])
        .arg(aid.to_string())
        .env_remove("AUTHD_CONFIG")
        .env_remove("AUTHD_DATABASE_URL")
        // Every command checks the master key against the store (issue 13): give the app's.
        .env("AUTHD_MASTER_KEY", app.master.as_ref().unwrap().to_base64())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(
        stderr.contains("reset api_ip_whitelist"),
        "stderr: {stderr}"
    );
    assert!(out.stdout.is_empty());
    app.clock.advance_ms(authd::allowlist::REFRESH_MS);
    app.get("/api/account/current", t).await.ok(200);
    assert_eq!(app.get(ALLOW, t).await.ok(200)["is_default"], true);
}
