//! Users over HTTP: only admin manages users and grants roles; role slugs are validated;
//! another account's users are invisible.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn admin_manages_users_and_roles() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/user",
            &app.token,
            json!({"email":"ann@example.com","name":"Ann","roles":["data","observer"]}),
        )
        .await;
    let u = r.ok(201).clone();
    assert_eq!(u["roles"], json!(["data", "observer"]));
    assert_eq!(u["last_logon"], "0001-01-01T00:00:00Z");
    let id = u["id"].as_str().unwrap();
    let r = app
        .put(
            &format!("/api/user/{id}"),
            &app.token,
            json!({"roles":"admin"}),
        )
        .await;
    assert_eq!(r.ok(200)["roles"], json!(["admin"]));
    assert_eq!(r.ok(200)["name"], "Ann");
    let list = app.get("/api/user", &app.token).await;
    assert_eq!(list.ok(200).as_array().unwrap().len(), 2);
    app.post("/api/user", &app.token, json!({"email":"ann@example.com"}))
        .await
        .assert_error(409, "A user with this email already exists");
    app.post(
        "/api/user",
        &app.token,
        json!({"email":"bob@example.com","roles":["root"]}),
    )
    .await
    .assert_error(400, "Unknown roles \"root\"");
    app.post("/api/user", &app.token, json!({"email":"not-an-email"}))
        .await
        .assert_error(400, "email must be a valid address");
    assert_eq!(
        app.delete(&format!("/api/user/{id}"), &app.token)
            .await
            .status,
        204
    );
    app.get(&format!("/api/user/{id}"), &app.token)
        .await
        .assert_error(404, "Not found");
}

#[tokio::test]
async fn only_admin_manages_users() {
    let app = spawn_app().await;
    let dm = app.token_with(&["data_manager"]).await;
    let gm = app.token_with(&["general_manager"]).await;
    app.get("/api/user", &dm).await.ok(200);
    assert_eq!(app.get("/api/user", &gm).await.status, 403);
    for t in [&dm, &gm] {
        let r = app
            .post(
                "/api/user",
                t,
                json!({"email":"x@example.com","roles":["admin"]}),
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
    }
    let list = app.get("/api/user", &app.token).await;
    let admin_id = list.ok(200)[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.put(
            &format!("/api/user/{admin_id}"),
            &dm,
            json!({"roles":["observer"]})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        app.delete(&format!("/api/user/{admin_id}"), &dm)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn another_accounts_users_are_not_found() {
    let app = spawn_app().await;
    let other = app.new_account("other").await;
    let theirs = app.get("/api/user", &other).await.ok(200)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get(&format!("/api/user/{theirs}"), &app.token)
        .await
        .assert_error(404, "Not found");
    app.put(
        &format!("/api/user/{theirs}"),
        &app.token,
        json!({"name":"x"}),
    )
    .await
    .assert_error(404, "Not found");
    app.delete(&format!("/api/user/{theirs}"), &app.token)
        .await
        .assert_error(404, "Not found");
    assert_eq!(
        app.get(&format!("/api/user/{theirs}"), &other).await.status,
        200
    );
}
