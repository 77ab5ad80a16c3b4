//! The values behind the Lytics wire fields (docs/lytics-compat.md): user memberships with
//! their grantor, a work's workflow id / tag / flags / runtime and its status-change count,
//! `modified_ms`, a provider's `auth_description`, and the documented zero values.

use serde_json::{json, Value};

use crate::helpers::*;

/// The id of the bootstrap admin user (the user the bootstrap token acts for).
async fn admin_user_id(app: &TestApp) -> String {
    let users = app.get("/api/user", &app.token).await.ok(200).clone();
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "admin@localhost")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn user_accounts_list_the_membership_and_who_granted_it() {
    let app = spawn_app().await;
    let admin = admin_user_id(&app).await;
    let acct = app
        .get("/api/account/current", &app.token)
        .await
        .ok(200)
        .clone();
    let body = json!({"email": "ann@example.com", "roles": ["data"]});
    let u = app
        .post("/api/user", &app.token, body)
        .await
        .ok(201)
        .clone();
    let m = &u["accounts"][0];
    assert_eq!(u["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(m["aid"], acct["aid"]);
    assert_eq!(m["account_id"], acct["id"]);
    assert_eq!(m["roles"], json!(["data"]));
    assert_eq!(m["granted_by"], admin);
    assert_eq!(
        (&m["created"], &m["updated"]),
        (&u["created"], &u["created"])
    );
    assert_eq!((&u["aid"], &u["account_id"]), (&acct["aid"], &acct["id"]));
    assert_eq!(u["date"], u["created"]);
    let one = format!("/api/user/{}", u["id"].as_str().unwrap());
    // A change that is not a roles change keeps the grant.
    app.clock.advance_ms(60_000);
    let r = app.put(&one, &app.token, json!({"name": "Ann"})).await;
    assert_eq!(r.ok(200)["accounts"][0]["updated"], u["created"]);
    assert_ne!(r.ok(200)["updated"], u["created"]);
    // A roles change records its time and grantor.
    app.clock.advance_ms(60_000);
    let r = app
        .put(&one, &app.token, json!({"roles": ["observer"]}))
        .await;
    let got = r.ok(200).clone();
    assert_eq!(got["accounts"][0]["roles"], json!(["observer"]));
    assert_eq!(got["roles"], json!(["observer"]));
    assert_eq!(got["accounts"][0]["granted_by"], admin);
    assert_eq!(got["accounts"][0]["updated"], got["updated"]);
    assert_ne!(got["accounts"][0]["updated"], u["created"]);
    assert_eq!(app.get(&one, &app.token).await.ok(200), &got);
    // The bootstrap admin's roles were granted by authd itself.
    let me = app.get(&format!("/api/user/{admin}"), &app.token).await;
    assert_eq!(me.ok(200)["accounts"][0]["granted_by"], "");
}

#[tokio::test]
async fn zero_values_where_authd_has_no_source() {
    let app = spawn_app().await;
    let a = app
        .get("/api/account/current", &app.token)
        .await
        .ok(200)
        .clone();
    assert_eq!(
        (&a["fid"], &a["pubusers"], &a["masteraid"]),
        (&json!(""), &json!(false), &json!(0))
    );
    let admin = admin_user_id(&app).await;
    let u = app
        .get(&format!("/api/user/{admin}"), &app.token)
        .await
        .ok(200)
        .clone();
    assert_eq!(u["auth_type"], "");
    assert_eq!(u["last_pwd_change"], "0001-01-01T00:00:00Z");
    assert!(u.get("password").is_none());
    let (id, _) = app
        .create_token(&app.token, json!({"scopes": ["observer"], "name": "t"}))
        .await;
    let t = app
        .get(&format!("/api/auth/{id}"), &app.token)
        .await
        .ok(200)
        .clone();
    assert_eq!(t["modified_ms"], t["updated_ms"]);
    assert_eq!(t["modified_ms"], T0);
}

#[tokio::test]
async fn providers_describe_how_to_authenticate() {
    let app = spawn_app().await;
    let mg = app
        .get("/api/provider/mailgun", &app.token)
        .await
        .ok(200)
        .clone();
    assert!(!mg["auth_description"].as_str().unwrap().is_empty());
    let body = json!({"slug": "ours", "name": "Ours", "auth_method": "config",
        "auth_description": "Paste the key from Settings > API"});
    let p = app
        .post("/api/provider", &app.token, body)
        .await
        .ok(201)
        .clone();
    assert_eq!(p["auth_description"], "Paste the key from Settings > API");
    let got = app.get("/api/provider/ours", &app.token).await;
    assert_eq!(
        got.ok(200)["auth_description"],
        "Paste the key from Settings > API"
    );
    let bad = json!({"slug": "bad", "name": "B", "auth_method": "config",
        "auth_description": "x\u{7}"});
    app.post("/api/provider", &app.token, bad)
        .await
        .assert_error(400, "auth_description must not contain control characters");
}

async fn create_work(app: &TestApp, body: Value) -> Value {
    app.post("/api/work", &app.token, body)
        .await
        .ok(201)
        .clone()
}

#[tokio::test]
async fn works_take_a_workflow_by_id_or_name_and_answer_both() {
    let app = spawn_app().await;
    let id = "9151ddcc8961d4bf7ec1cba02899c123";
    let w = create_work(&app, json!({"workflow": "fb", "workflow_id": id})).await;
    assert_eq!(
        (&w["workflow"], &w["workflow_id"]),
        (&json!("fb"), &json!(id))
    );
    // An id alone also stands in for the name; upper-case hex is kept lowercase.
    let upper = id.to_ascii_uppercase();
    let w = create_work(&app, json!({"workflow_id": upper, "config": {"n": 1}})).await;
    assert_eq!(
        (&w["workflow"], &w["workflow_id"]),
        (&json!(id), &json!(id))
    );
    // A name in workflow_id is the workflow's name; its id is derived and stable.
    let w = create_work(&app, json!({"workflow_id": "mailgun_export"})).await;
    assert_eq!(w["workflow"], "mailgun_export");
    let derived = w["workflow_id"].as_str().unwrap().to_owned();
    assert!(derived.len() == 32 && derived.bytes().all(|b| b.is_ascii_hexdigit()));
    let again = create_work(
        &app,
        json!({"workflow": "mailgun_export", "config": {"n": 2}}),
    )
    .await;
    assert_eq!(again["workflow_id"], derived.as_str());
    let got = app
        .get(
            &format!("/api/work/{}", again["id"].as_str().unwrap()),
            &app.token,
        )
        .await;
    assert_eq!(got.ok(200)["workflow_id"], derived.as_str());
    // workflow_id naming the same workflow as workflow is a duplicate like any other.
    app.post(
        "/api/work",
        &app.token,
        json!({"workflow": "mailgun_export", "workflow_id": "mailgun_export"}),
    )
    .await
    .assert_error(400, "Duplicate work config");
    app.post(
        "/api/work",
        &app.token,
        json!({"workflow": "a", "workflow_id": "b"}),
    )
    .await
    .assert_error(400, "workflow and workflow_id name different workflows");
    app.post("/api/work", &app.token, json!({"config": {}}))
        .await
        .assert_error(400, "workflow or workflow_id is required");
}

#[tokio::test]
async fn works_store_tag_flags_and_runtime_and_accept_their_own_answer_back() {
    let app = spawn_app().await;
    let body = json!({"workflow": "x", "tag": "nightly", "hidden": true,
        "verbose_logging": true, "runtime": "large"});
    let w = create_work(&app, body).await;
    let got = app
        .get(
            &format!("/api/work/{}", w["id"].as_str().unwrap()),
            &app.token,
        )
        .await;
    let got = got.ok(200).clone();
    assert_eq!(got, w);
    assert_eq!(
        (&got["tag"], &got["runtime"]),
        (&json!("nightly"), &json!("large"))
    );
    assert_eq!(
        (&got["hidden"], &got["verbose_logging"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(got["work_state_version"], 0);
    assert_eq!(got["modified_ms"], got["updated_ms"]);
    // A client that posts a whole work struct back (server-assigned fields included, as
    // go-lytics' CreateWork does) creates a new work; the assigned fields are ignored.
    let mut back = got.clone();
    back["config"] = json!({"copy": true});
    back["progress"] = Value::Null;
    back["work_state_version"] = json!(7);
    let copy = create_work(&app, back).await;
    assert_ne!(copy["id"], got["id"]);
    assert_eq!(copy["work_state_version"], 0);
    assert_eq!(copy["tag"], "nightly");
    // Other unknown fields are still refused, and new fields are checked.
    let r = app
        .post(
            "/api/work",
            &app.token,
            json!({"workflow": "y", "tags": "t"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("unknown field `tags`"));
    app.post(
        "/api/work",
        &app.token,
        json!({"workflow": "y", "runtime": "a\nb"}),
    )
    .await
    .assert_error(400, "runtime must not contain control characters");
}

#[tokio::test]
async fn work_state_version_counts_status_changes() {
    let app = spawn_app().await;
    let cred = json!({"provider_id": "mailgun", "name": "mail",
        "config": [{"name": "apikey", "value": "k"}, {"name": "domain", "value": "d"}]});
    let auth = app
        .post("/api/auth", &app.token, cred)
        .await
        .ok(201)
        .clone();
    let auth = auth["id"].as_str().unwrap();
    let live = create_work(
        &app,
        json!({"workflow": "a", "auth_ids": [auth], "statuscode": "running"}),
    )
    .await;
    let paused = create_work(
        &app,
        json!({"workflow": "b", "auth_ids": [auth], "statuscode": "paused"}),
    )
    .await;
    app.clock.advance_ms(5_000);
    assert_eq!(
        app.delete(&format!("/api/auth/{auth}"), &app.token)
            .await
            .status,
        204
    );
    let get = |w: &Value| format!("/api/work/{}", w["id"].as_str().unwrap());
    let w = app.get(&get(&live), &app.token).await.ok(200).clone();
    assert_eq!(w["statuscode"], "paused");
    assert_eq!(w["work_state_version"], 1);
    assert_eq!(w["modified_ms"], T0 + 5_000);
    assert_eq!(w["modified_ms"], w["updated_ms"]);
    let w = app.get(&get(&paused), &app.token).await.ok(200).clone();
    assert_eq!(w["statuscode"], "paused");
    assert_eq!(
        w["work_state_version"], 0,
        "losing an auth is no status change"
    );
    assert_eq!(w["modified_ms"], T0 + 5_000);
}
