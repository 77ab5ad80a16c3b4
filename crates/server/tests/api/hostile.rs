//! A hostile client (issue 10): no credential is ever echoed (defect 6), one credential per
//! request (defect 7), bidirectional controls are refused in names, and a flood of bad
//! tokens costs a bounded number of log lines (defect 8).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Every route of the API router: method, path (`{}` for a path parameter), the body fields
/// and the query parameters its handler reads.
const ROUTES: &[(&str, &str, &[&str], &[&str])] = &[
    (
        "POST",
        "/api/auth/createtoken",
        &[
            "scopes",
            "expires",
            "name",
            "label",
            "description",
            "account_id",
        ],
        &[],
    ),
    (
        "POST",
        "/api/auth/introspect",
        &["token", "token_type_hint"],
        &[],
    ),
    ("POST", "/api/auth/{}/rotate", &["grace"], &["grace"]),
    ("GET", "/api/auth/self", &[], &[]),
    (
        "GET",
        "/api/auth",
        &[],
        &["limit", "_next", "auth_type", "provider_id", "account_id"],
    ),
    ("GET", "/api/auth/{}", &[], &[]),
    ("DELETE", "/api/auth/{}", &[], &[]),
    ("POST", "/api/auth", CREDENTIAL_FIELDS, &[]),
    ("POST", "/api/auth/{}", CREDENTIAL_FIELDS, &[]),
    ("PUT", "/api/auth/{}", CREDENTIAL_FIELDS, &[]),
    ("GET", "/api/user", &[], &["limit", "_next"]),
    ("POST", "/api/user", &["email", "name", "roles"], &[]),
    ("GET", "/api/user/{}", &[], &[]),
    ("PUT", "/api/user/{}", &["email", "name", "roles"], &[]),
    ("DELETE", "/api/user/{}", &[], &[]),
    ("GET", "/api/account", &[], &[]),
    ("GET", "/api/account/{}", &[], &[]),
    ("GET", "/api/account/setting", &[], &[]),
    ("GET", "/api/account/setting/{}", &[], &[]),
    ("PUT", "/api/account/setting/{}", &["value"], &[]),
    ("DELETE", "/api/account/setting/{}", &[], &[]),
    (
        "POST",
        "/collect/json/{}",
        &["user_id", "email", "name"],
        &[],
    ),
    ("GET", "/api/entity/user/{}/{}", &[], &[]),
    ("GET", "/api/work", &[], &["limit", "_next"]),
    (
        "POST",
        "/api/work",
        &[
            "name",
            "description",
            "workflow",
            "config",
            "auth_ids",
            "statuscode",
            "account_id",
        ],
        &[],
    ),
    ("GET", "/api/work/{}", &[], &[]),
    ("DELETE", "/api/work/{}", &[], &[]),
    ("GET", "/api/provider", &[], &["limit", "_next"]),
    (
        "POST",
        "/api/provider",
        &[
            "slug",
            "name",
            "namespace",
            "description",
            "categories",
            "auth_method",
            "hidden",
            "fields",
        ],
        &[],
    ),
    ("GET", "/api/provider/{}", &[], &[]),
    (
        "GET",
        "/api/audit",
        &[],
        &["action", "target", "actor", "limit", "_next"],
    ),
];

const CREDENTIAL_FIELDS: &[&str] = &[
    "provider_id",
    "name",
    "label",
    "description",
    "config",
    "oauthtoken",
    "oauth2token",
    "account_id",
    "id",
    "aid",
    "user_id",
    "auth_type",
];

/// Sends one request and asserts that no part of `token` comes back (body or headers).
async fn assert_not_echoed(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: &str,
) {
    let mut rb = app
        .client
        .request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(path),
        )
        .header("Authorization", &app.token);
    if let Some(b) = &body {
        rb = rb.json(b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let headers = format!("{:?}", r.headers());
    let text = r.text().await.unwrap();
    let secret = &token[36..];
    for part in [secret, &secret[..24], &secret[24..]] {
        assert!(
            !text.contains(part) && !headers.contains(part),
            "{method} {path} with {body:?} echoed the token: {status} {text}"
        );
    }
    assert!(
        status.as_u16() < 500,
        "{method} {path} with {body:?}: {status} {text}"
    );
}

/// A body the route would accept, so each field is checked past the others' validation.
fn base(path: &str) -> Value {
    match path {
        "/api/auth/createtoken" => json!({"scopes": ["data"], "name": "n"}),
        "/api/work" => json!({"workflow": "w", "name": "n"}),
        "/api/provider" => json!({"slug": "acme", "name": "n", "auth_method": "apikey"}),
        p if p.starts_with("/api/user") => json!({"email": "a@b.c", "roles": ["data"]}),
        p if p.starts_with("/api/auth") && !p.ends_with("introspect") => {
            json!({"provider_id": "lytics", "name": "n", "config": {"api_key": "k"}})
        }
        _ => json!({}),
    }
}

/// The bodies that put `token` in field `f` of a valid body: as a string, inside text, in a
/// list, in an object.
fn bodies_with(path: &str, f: &str, token: &str) -> Vec<Value> {
    [
        json!(token),
        json!(format!("a {token} b")),
        json!([token]),
        json!({ "x": token }),
    ]
    .into_iter()
    .map(|v| {
        let mut b = base(path);
        b[f] = v;
        b
    })
    .collect()
}

#[tokio::test]
async fn no_endpoint_echoes_a_presented_token() {
    let app = spawn_app().await;
    // The request's own credential is the payload: neither it nor any part of it may come back.
    let token = app.token.clone();
    let (victim, _) = app
        .create_token(&app.token, json!({"scopes": ["data"]}))
        .await;
    let unknown = "0123456789abcdef0123456789abcdef";
    for (method, path, fields, params) in ROUTES {
        let fill = |v: &str| path.replace("{}", v);
        let real = if path.contains("setting") {
            fill("schema_user_private_fields")
        } else if path.starts_with("/api/auth/") && path.contains("rotate") {
            fill(&victim)
        } else if path.starts_with("/collect") || path.starts_with("/api/entity") {
            fill("user_id")
        } else {
            fill(unknown)
        };
        // The token as every path parameter.
        assert_not_echoed(&app, method, &fill(&token), None, &token).await;
        for p in *params {
            let sep = if real.contains('?') { '&' } else { '?' };
            assert_not_echoed(
                &app,
                method,
                &format!("{real}{sep}{p}={token}"),
                None,
                &token,
            )
            .await;
        }
        if *method == "GET" || *method == "DELETE" {
            continue;
        }
        // The whole body as the token (a JSON string, a list), then every field, then all.
        assert_not_echoed(&app, method, &real, Some(json!(token)), &token).await;
        assert_not_echoed(&app, method, &real, Some(json!([token])), &token).await;
        let mut all = serde_json::Map::new();
        for f in *fields {
            all.insert((*f).to_owned(), json!(token));
            for b in bodies_with(path, f, &token) {
                assert_not_echoed(&app, method, &real, Some(b), &token).await;
            }
        }
        assert_not_echoed(&app, method, &real, Some(Value::Object(all)), &token).await;
    }
    // Nor does the audit trail (the answer that lists what every request above did).
    let audit = app.get("/api/audit?limit=1000", &app.token).await;
    assert!(!audit.body.to_string().contains(&token[36..]));
}

#[tokio::test]
async fn more_than_one_credential_is_ambiguous_and_audited() {
    let app = spawn_app().await;
    let good = app.token.clone();
    let other = app.token_with(&["data"]).await;
    let cases = [
        (Some(good.as_str()), format!("access_token={good}")),
        (Some(good.as_str()), format!("key={good}")),
        (None, format!("key={good}&access_token={good}")),
        (None, format!("key={good}&key=bad")),
        (None, format!("key=bad&key={good}")),
        (None, format!("access_token={good}&access_token=bad")),
        (None, format!("access_token=bad&access_token={good}")),
        (None, format!("access_token={good}&access_token={other}")),
        (Some("bad"), format!("key={good}")),
    ];
    for (header, query) in &cases {
        let mut rb = app
            .client
            .get(app.url(&format!("/api/account/current?{query}")));
        if let Some(h) = header {
            rb = rb.header("Authorization", *h);
        }
        let r = into_resp(rb.send().await.unwrap()).await;
        r.assert_error(400, "Ambiguous credentials");
    }
    // Two Authorization headers are two credentials too.
    let r = app
        .client
        .get(app.url("/api/account/current"))
        .header("Authorization", &good)
        .header("Authorization", &good)
        .send()
        .await
        .unwrap();
    into_resp(r)
        .await
        .assert_error(400, "Ambiguous credentials");
    // One credential in any one place still works.
    for q in [format!("access_token={good}"), format!("key={good}")] {
        let r = app
            .client
            .get(app.url(&format!("/api/account/current?{q}")));
        into_resp(r.send().await.unwrap()).await.ok(200);
    }
    app.get("/api/account/current", &good).await.ok(200);
    let audit = app
        .get("/api/audit?action=credential.refused&limit=1000", &good)
        .await;
    let ambiguous = audit
        .ok(200)
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "ambiguous")
        .count();
    assert_eq!(ambiguous, cases.len() + 1);
    assert!(!audit.body.to_string().contains(&good[36..]));
}

#[tokio::test]
async fn bidirectional_controls_are_refused_in_every_name() {
    let app = spawn_app().await;
    let evil = "invoice\u{202E}fdp.exe";
    let r = app
        .post(
            "/api/auth/createtoken",
            &app.token,
            json!({"scopes": ["data"], "name": evil}),
        )
        .await;
    r.assert_error(400, BIDI);
    let r = app
        .post(
            "/api/auth/createtoken",
            &app.token,
            json!({"scopes": ["data"], "description": "a\u{2066}b"}),
        )
        .await;
    r.assert_error(400, &BIDI.replace("name", "description"));
    let r = app
        .post(
            "/api/user",
            &app.token,
            json!({"email": "a@example.com", "name": evil, "roles": ["data"]}),
        )
        .await;
    r.assert_error(400, BIDI);
    let r = app
        .post(
            "/api/work",
            &app.token,
            json!({"workflow": "w", "name": evil}),
        )
        .await;
    r.assert_error(400, BIDI);
    let r = app
        .post(
            "/api/provider",
            &app.token,
            json!({"slug": "acme", "name": evil, "auth_method": "apikey"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("bidirectional"),
        "{}",
        r.body
    );
    let r = app
        .post(
            "/api/auth",
            &app.token,
            json!({"provider_id": "lytics", "name": evil}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // The plain name is fine.
    let ok = json!({"scopes": ["data"], "name": "invoice.pdf"});
    app.post("/api/auth/createtoken", &app.token, ok)
        .await
        .ok(201);
}

const BIDI: &str = "name must not contain bidirectional formatting characters \
                    (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C)";
