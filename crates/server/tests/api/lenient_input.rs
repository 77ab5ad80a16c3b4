//! Lenient input where Lytics is lenient (issue 10, defect 10), and the seed's createtoken
//! answer shape: JSON bodies without `Content-Type` or as `text/plain`, createtoken parameters
//! as a form body or query parameters (400 when two sources disagree), `config` entries that
//! carry the secret as `api_key` and as name/value, and the Python client
//! `lytics-api-wrapper` 0.0.4 creating a token through its own `post()`.

use std::process::Command;

use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use crate::helpers::*;

const CREATE: &str = "/api/auth/createtoken";

/// POSTs `body` to createtoken (path may carry a query) with the admin token and an optional
/// content type; nothing else is set.
async fn post_raw(app: &TestApp, path: &str, ctype: Option<&str>, body: &str) -> Resp {
    let mut rb = app
        .client
        .post(app.url(path))
        .header("Authorization", &app.token)
        .body(body.to_owned());
    if let Some(c) = ctype {
        rb = rb.header(CONTENT_TYPE, c);
    }
    into_resp(rb.send().await.unwrap()).await
}

/// Asserts a createtoken answer (201) whose token works, with these scopes and name.
async fn assert_created(app: &TestApp, r: &Resp, scopes: &[&str], name: &str) {
    let d = r.ok(201);
    assert_eq!(d["scopes"], json!(scopes), "body: {}", r.body);
    assert_eq!(d["name"], name);
    let token = d["config"][0]["value"].as_str().unwrap();
    app.get("/api/account", token).await.ok(200);
}

#[tokio::test]
async fn json_without_content_type_or_as_text_plain_creates_a_token() {
    let app = spawn_app().await;
    let body = r#"{"scopes":["data"],"name":"bare"}"#;
    let r = post_raw(&app, CREATE, None, body).await;
    assert_created(&app, &r, &["data"], "bare").await;
    let r = post_raw(&app, CREATE, Some("text/plain; charset=utf-8"), body).await;
    assert_created(&app, &r, &["data"], "bare").await;
    // Any JSON extractor is lenient, not just createtoken's.
    let r = app
        .client
        .post(app.url("/api/user"))
        .header("Authorization", &app.token)
        .body(r#"{"email":"plain@example.com","name":"P","roles":["observer"]}"#)
        .send()
        .await
        .unwrap();
    let r = into_resp(r).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    // A declared non-JSON type is still refused, and bad JSON is still 400.
    post_raw(&app, CREATE, Some("application/xml"), body)
        .await
        .assert_error(
            415,
            "Expected a JSON body with Content-Type: application/json",
        );
    assert_eq!(post_raw(&app, CREATE, None, "{").await.status, 400);
}

#[tokio::test]
async fn createtoken_takes_a_form_body() {
    let app = spawn_app().await;
    let form = Some("application/x-www-form-urlencoded");
    let r = post_raw(
        &app,
        CREATE,
        form,
        "scopes=admin%2Cdata&expires=100h&name=x",
    )
    .await;
    assert_created(&app, &r, &["admin", "data"], "x").await;
    assert_eq!(r.body["data"]["ttl"], 360_000);
    // A repeated `scopes` adds slugs (how Python `requests` encodes a list).
    let r = post_raw(&app, CREATE, form, "scopes=admin&scopes=data&name=y").await;
    assert_created(&app, &r, &["admin", "data"], "y").await;
    let r = post_raw(&app, CREATE, form, "scopes=data&name=a&name=b").await;
    r.assert_error(400, "createtoken parameter name is given more than once");
    let r = post_raw(&app, CREATE, form, "scopes=data&scope=admin").await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn createtoken_takes_query_parameters() {
    let app = spawn_app().await;
    let q = format!("{CREATE}?scopes=admin,data&expires=100h&name=x");
    let r = post_raw(&app, &q, None, "").await;
    assert_created(&app, &r, &["admin", "data"], "x").await;
    // Credential parameters are not createtoken parameters.
    let aid = app.get("/api/account/current", &app.token).await.ok(200)["id"].clone();
    let q = format!(
        "{CREATE}?scopes=data&name=q&account_id={}",
        aid.as_str().unwrap()
    );
    let r = app
        .client
        .post(app.url(&format!("{q}&key={}", app.token)))
        .send()
        .await
        .unwrap();
    let r = into_resp(r).await;
    assert_created(&app, &r, &["data"], "q").await;
    // Query and body may both speak when they agree.
    let r = post_raw(
        &app,
        &format!("{CREATE}?name=z"),
        None,
        r#"{"scopes":"data","name":"z"}"#,
    )
    .await;
    assert_created(&app, &r, &["data"], "z").await;
}

#[tokio::test]
async fn createtoken_refuses_sources_that_disagree() {
    let app = spawn_app().await;
    let q = format!("{CREATE}?name=a");
    let r = post_raw(&app, &q, None, r#"{"scopes":["data"],"name":"b"}"#).await;
    r.assert_error(
        400,
        "createtoken parameter name differs between the query string and the body",
    );
    let q = format!("{CREATE}?scopes=admin");
    let form = Some("application/x-www-form-urlencoded");
    let r = post_raw(&app, &q, form, "scopes=data").await;
    r.assert_error(
        400,
        "createtoken parameter scopes differs between the query string and the body",
    );
    // The same scopes spelled differently agree.
    let q = format!("{CREATE}?scopes=data,admin");
    let r = post_raw(&app, &q, None, r#"{"scopes":["admin","data"]}"#).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Nothing was minted by the refused attempts.
    let list = app.get("/api/auth?limit=1000", &app.token).await;
    assert_eq!(list.ok(200).as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn createtoken_config_carries_the_secret_as_api_key_and_as_name_value() {
    let app = spawn_app().await;
    let r = app
        .post(
            CREATE,
            &app.token,
            json!({ "scopes": ["data"], "name": "shape" }),
        )
        .await;
    let d = r.ok(201).clone();
    let entry = &d["config"][0];
    let token = entry["api_key"].as_str().unwrap();
    assert!(token.starts_with("at."));
    assert_eq!(entry["value"], token);
    assert_eq!(entry["name"], "api_key");
    assert_eq!(entry.as_object().unwrap().len(), 3, "{entry}");
    assert_eq!(d["config"].as_array().unwrap().len(), 1);
    // The secret is nowhere else in the answer.
    let mut rest = r.body.clone();
    rest["data"]["config"] = Value::Null;
    assert!(!rest.to_string().contains(token), "{rest}");
    assert_eq!(r.body.to_string().matches(token).count(), 2);
}

/// The script run by [`lytics_api_wrapper_post_creates_a_token`]: the wrapper's own
/// constructor (which reads `api/account/{aid}?key=`) and `post()`, pointed at the test server
/// by a subclass whose `API` ignores the hard-coded base URL. `post()` sends a string body
/// with no Content-Type and a dict as a form; both must create a token. Prints one JSON line.
const WRAPPER_SCRIPT: &str = r#"
import json, sys
from lytics_api_wrapper.wrapper import ly

base, key, aid = sys.argv[1:4]

class Local(ly):
    API = property(lambda self: base, lambda self, value: None)

client = Local(key, aid, env="local")
out = []
for stuff in (json.dumps({"scopes": ["data"], "name": "wrapper-json", "expires": "1h"}),
              {"scopes": ["data"], "name": "wrapper-form"}):
    r = client.post("api/auth/createtoken", stuff)
    out.append({"status": r.status_code, "body": r.json()})
print(json.dumps(out))
"#;

/// The Python interpreter with `lytics-api-wrapper` 0.0.4 and `requests` importable
/// (`AUTHD_TEST_PYTHON`, else `python3`); `None` (skip) when absent, a failure under `CI=true`.
fn wrapper_python() -> Option<String> {
    let python = std::env::var("AUTHD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let check = Command::new(&python)
        .args(["-c", "import requests, lytics_api_wrapper.wrapper"])
        .output();
    if check.as_ref().is_ok_and(|o| o.status.success()) {
        return Some(python);
    }
    let why = format!(
        "{python} with lytics-api-wrapper==0.0.4 and requests is not available \
         (pip install lytics-api-wrapper==0.0.4 requests, or set AUTHD_TEST_PYTHON)"
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipping lytics_api_wrapper_post_creates_a_token: {why}");
    None
}

#[tokio::test]
async fn lytics_api_wrapper_post_creates_a_token() {
    let Some(python) = wrapper_python() else {
        return;
    };
    let app = spawn_app().await;
    let aid = app.get("/api/account/current", &app.token).await.ok(200)["aid"].to_string();
    let base = format!("http://{}/", app.addr);
    let token = app.token.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-c", WRAPPER_SCRIPT, &base, &token, &aid])
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed: {stderr}");
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (r, name) in results
        .as_array()
        .unwrap()
        .iter()
        .zip(["wrapper-json", "wrapper-form"])
    {
        assert_eq!(r["status"], 201, "{r}");
        let d = &r["body"]["data"];
        assert_eq!(d["name"], name);
        let minted = d["config"][0]["api_key"].as_str().unwrap();
        app.get("/api/account", minted).await.ok(200);
    }
}
