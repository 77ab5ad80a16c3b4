//! Accounts and providers over HTTP, including tenant isolation.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn an_account_is_readable_by_id_aid_and_current_and_nothing_else() {
    let app = spawn_app().await;
    let other = app.new_account("acme").await;
    let me = app.get("/api/account/current", &app.token).await;
    let me = me.ok(200).clone();
    assert_eq!(me["aid"], 1);
    assert_eq!(me["name"], "default");
    let id = me["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/account/{id}"), &app.token)
            .await
            .ok(200)["id"],
        id
    );
    assert_eq!(
        app.get("/api/account/1", &app.token).await.ok(200)["id"],
        id
    );
    let list = app.get("/api/account", &app.token).await;
    assert_eq!(list.ok(200).as_array().unwrap().len(), 1);

    let theirs = app
        .get("/api/account/current", &other)
        .await
        .ok(200)
        .clone();
    assert_eq!(theirs["aid"], 2);
    let missing = app.get("/api/account/99", &app.token).await;
    let foreign = app.get("/api/account/2", &app.token).await;
    assert_eq!(missing.body, foreign.body);
    foreign.assert_error(404, "Not found");
    app.get(
        &format!("/api/account/{}", theirs["id"].as_str().unwrap()),
        &app.token,
    )
    .await
    .assert_error(404, "Not found");
    assert!(me["created"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn the_provider_catalog_includes_lytics_and_resolves_ids_and_slugs() {
    let app = spawn_app().await;
    let obs = app.token_with(&["observer"]).await;
    let list = app.get("/api/provider", &obs).await;
    let list = list.ok(200).as_array().unwrap().clone();
    let lytics = list.iter().find(|p| p["slug"] == "lytics").unwrap();
    assert_eq!(lytics["name"], "Lytics");
    let fb = list.iter().find(|p| p["slug"] == "facebook").unwrap();
    assert_eq!(fb["auth_method"], "oauth2");
    let mg = app.get("/api/provider/mailgun", &obs).await;
    assert_eq!(mg.ok(200)["config"][0]["name"], "apikey");
    let by_id = app
        .get(
            &format!("/api/provider/{}", fb["id"].as_str().unwrap()),
            &obs,
        )
        .await;
    assert_eq!(by_id.ok(200)["slug"], "facebook");
    app.get("/api/provider/nope", &obs)
        .await
        .assert_error(404, "Not found");
    // Tokens carry the Lytics provider.
    let (id, _) = app
        .create_token(&app.token, json!({"scopes":["data"]}))
        .await;
    let a = app.get(&format!("/api/auth/{id}"), &app.token).await;
    assert_eq!(a.ok(200)["provider_id"], lytics["id"]);
}
