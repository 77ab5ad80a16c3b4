//! The token tree under attack (issue 10): who may remove a token (the delegation rule on
//! delete, audited when refused), no lock-out (the last admin user stays), rotation keeps the
//! revocation tree and the creator's expiry cap, and tokens follow their user's roles.

use authd_core::model::User;
use serde_json::{json, Value};

use crate::helpers::*;

/// The id of `token`'s auth record (its public handle).
fn id_of(token: &str) -> String {
    authd_core::token::parse(token).unwrap().id.to_string()
}

/// The audit entries for `action` on `target`.
async fn audit(app: &TestApp, action: &str, target: &str) -> Vec<Value> {
    app.get(
        &format!("/api/audit?action={action}&target={target}"),
        &app.token,
    )
    .await
    .ok(200)
    .as_array()
    .unwrap()
    .clone()
}

/// The bootstrap admin user of the first account.
async fn first_user(app: &TestApp) -> User {
    let s = &app.app_state;
    let acct = s.store.get_account_by_aid(1).await.unwrap().unwrap();
    let page = authd_core::model::Page {
        after: None,
        limit: 10,
    };
    s.store.list_users(acct.id, page).await.unwrap().remove(0)
}

#[tokio::test]
async fn a_manager_cannot_revoke_a_token_holding_roles_it_lacks() {
    let app = spawn_app().await;
    let root = id_of(&app.token);
    for manager in ["general_manager", "data_manager"] {
        let m = app.token_with(&[manager]).await;
        app.delete(&format!("/api/auth/{root}"), &m)
            .await
            .assert_error(
                403,
                "User does not have permission to revoke a token with these roles: [admin]",
            );
    }
    // Nothing was revoked, and both refusals are in the trail.
    app.get("/api/account", &app.token).await.ok(200);
    let refused = audit(&app, "token.revoke", &root).await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|e| e["outcome"] == "refused"));
    // A manager may still revoke what it holds every role of.
    let gm = app.token_with(&["general_manager"]).await;
    let (peer, peer_token) = app
        .create_token(&app.token, json!({"scopes": ["general_manager"]}))
        .await;
    assert_eq!(
        app.delete(&format!("/api/auth/{peer}"), &gm).await.status,
        204
    );
    assert_eq!(app.get("/api/account", &peer_token).await.status, 401);
}

#[tokio::test]
async fn the_last_admin_user_can_be_neither_demoted_nor_deleted() {
    let app = spawn_app().await;
    let first = first_user(&app).await.id.to_string();
    let msg = "Cannot remove the last admin of this account: grant admin to another user first";
    app.put(
        &format!("/api/user/{first}"),
        &app.token,
        json!({"roles": ["observer"]}),
    )
    .await
    .assert_error(409, msg);
    app.delete(&format!("/api/user/{first}"), &app.token)
        .await
        .assert_error(409, msg);
    // With a second admin, the first may step down.
    app.post(
        "/api/user",
        &app.token,
        json!({"email": "second@example.com", "roles": ["admin"]}),
    )
    .await
    .ok(201);
    let r = app
        .put(
            &format!("/api/user/{first}"),
            &app.token,
            json!({"roles": ["data_manager"]}),
        )
        .await;
    assert_eq!(r.ok(200)["roles"], json!(["data_manager"]));
}

#[tokio::test]
async fn revoking_a_rotated_token_revokes_what_it_created() {
    let app = spawn_app().await;
    // Grace 0: the tokens P created follow the new P.
    let (p, p_token) = app
        .create_token(&app.token, json!({"scopes": ["admin"]}))
        .await;
    let (_, child) = app
        .create_token(&p_token, json!({"scopes": ["data"]}))
        .await;
    let r = app
        .post(
            &format!("/api/auth/{p}/rotate"),
            &app.token,
            json!({"grace": "0s"}),
        )
        .await;
    let new_p = r.ok(201)["id"].as_str().unwrap().to_owned();
    app.get("/api/account", &child).await.ok(200);
    assert_eq!(
        app.delete(&format!("/api/auth/{new_p}"), &app.token)
            .await
            .status,
        204
    );
    assert_eq!(app.get("/api/account", &child).await.status, 401);

    // In a grace window, deleting the old token revokes the new one and the children too.
    let (q, q_token) = app
        .create_token(&app.token, json!({"scopes": ["admin"]}))
        .await;
    let (_, q_child) = app
        .create_token(&q_token, json!({"scopes": ["data"]}))
        .await;
    let r = app
        .post(
            &format!("/api/auth/{q}/rotate"),
            &app.token,
            json!({"grace": "10m"}),
        )
        .await;
    let new_q = r.ok(201)["config"][0]["value"].as_str().unwrap().to_owned();
    app.get("/api/account", &new_q).await.ok(200);
    assert_eq!(
        app.delete(&format!("/api/auth/{q}"), &app.token)
            .await
            .status,
        204
    );
    for t in [&q_token, &q_child, &new_q] {
        assert_eq!(app.get("/api/account", t).await.status, 401);
    }
}

#[tokio::test]
async fn a_rotated_token_never_outlives_its_creator() {
    let app = spawn_app().await;
    let (_, parent) = app
        .create_token(&app.token, json!({"scopes": ["admin"], "expires": "2s"}))
        .await;
    let (child, _) = app
        .create_token(&parent, json!({"scopes": ["data"], "expires": "1h"}))
        .await;
    // Rotated by an admin that never expires: still capped by the child's creator.
    let r = app
        .post(&format!("/api/auth/{child}/rotate"), &app.token, json!({}))
        .await;
    let new_child = r.ok(201)["config"][0]["value"].as_str().unwrap().to_owned();
    app.get("/api/account", &new_child).await.ok(200);
    app.clock.advance_ms(2_000);
    assert_eq!(app.get("/api/account", &parent).await.status, 401);
    assert_eq!(app.get("/api/account", &new_child).await.status, 401);
}

#[tokio::test]
async fn a_demoted_users_tokens_lose_the_roles_at_once() {
    let app = spawn_app().await;
    let first = first_user(&app).await.id.to_string();
    // The first user's admin token, in use (so cached) before the demotion.
    let (_, mine) = app
        .create_token(&app.token, json!({"scopes": ["admin"]}))
        .await;
    app.get("/api/auth", &mine).await.ok(200);
    app.post(
        "/api/user",
        &app.token,
        json!({"email": "second@example.com", "roles": ["admin"]}),
    )
    .await
    .ok(201);
    app.put(
        &format!("/api/user/{first}"),
        &app.token,
        json!({"roles": ["observer"]}),
    )
    .await
    .ok(200);
    // Observer reads segments, not auths, and cannot mint.
    assert_eq!(app.get("/api/auth", &mine).await.status, 403);
    assert_eq!(
        app.post("/api/auth/createtoken", &mine, json!({"scopes": ["admin"]}))
            .await
            .status,
        403
    );
    app.get("/api/account", &mine).await.ok(200);
    let who = app.get("/api/auth/self", &mine).await;
    assert_eq!(who.ok(200)["scopes"], json!(["observer"]), "{}", who.body);
}

#[tokio::test]
async fn deleting_a_user_revokes_the_users_tokens_and_their_descendants() {
    let app = spawn_app().await;
    let first = first_user(&app).await;
    let (_, child) = app
        .create_token(&app.token, json!({"scopes": ["data_manager"]}))
        .await;
    let (_, grandchild) = app
        .create_token(&child, json!({"scopes": ["data_manager"]}))
        .await;
    // A second admin with a token of its own (minted the way `authd token create --user` does).
    let r = app
        .post(
            "/api/user",
            &app.token,
            json!({"email": "second@example.com", "roles": ["admin"]}),
        )
        .await;
    let second_id = r.ok(201)["id"].as_str().unwrap().to_owned();
    let s = &app.app_state;
    let second = s
        .store
        .get_user(
            first.account_id,
            authd_core::ids::UserId::parse(&second_id).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    let req = authd::tokens::TokenRequest {
        scopes: authd_core::roles::RoleSet::of(&[authd_core::roles::Role::Admin]),
        ..Default::default()
    };
    let (_, other) = s
        .tokens
        .mint_as_operator(first.account_id, Some(&second), req)
        .await
        .unwrap();
    let other = other.expose().to_owned();
    assert_eq!(
        app.delete(&format!("/api/user/{}", first.id), &other)
            .await
            .status,
        204
    );
    for t in [&app.token, &child, &grandchild] {
        assert_eq!(app.get("/api/account", t).await.status, 401);
    }
    app.get("/api/account", &other).await.ok(200);
}
