//! The wire contract: every field of the Lytics answers that docs/lytics-compat.md lists
//! ("Answers, field by field") is in authd's answer for the same resource with its JSON type,
//! nested objects included, and `password` is in none. The field list is held once, as data
//! ([`CONTRACT`]); one test checks it against the doc's tables so the two cannot drift.

use chrono::DateTime;
use serde_json::{json, Value};

use crate::helpers::*;

/// A JSON type as the doc's tables name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Str,
    Int,
    Bool,
    /// An RFC 3339 string.
    Date,
    Object,
    StrArray,
    ObjArray,
    /// Never sent.
    Never,
}

impl Ty {
    fn doc_name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "integer",
            Ty::Bool => "boolean",
            Ty::Date => "date",
            Ty::Object => "object",
            Ty::StrArray => "array of string",
            Ty::ObjArray => "array of object",
            Ty::Never => "never",
        }
    }

    fn matches(self, v: &Value) -> bool {
        match self {
            Ty::Str => v.is_string(),
            Ty::Int => v.is_i64() || v.is_u64(),
            Ty::Bool => v.is_boolean(),
            Ty::Date => v
                .as_str()
                .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok()),
            Ty::Object => v.is_object(),
            Ty::StrArray => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Ty::ObjArray => v.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
            Ty::Never => false,
        }
    }
}

use Ty::*;

/// Resource (the doc's `###` heading starts with it) → field path → type. A path
/// `list[].field` is a field of every element of the array `list`.
const CONTRACT: &[(&str, &[(&str, Ty)])] = &[
    (
        "Auth",
        &[
            ("id", Str),
            ("aid", Int),
            ("name", Str),
            ("account_id", Str),
            ("provider_id", Str),
            ("provider_name", Str),
            ("user_id", Str),
            ("created", Date),
            ("updated", Date),
            ("modified_ms", Int),
        ],
    ),
    (
        "Account",
        &[
            ("id", Str),
            ("created", Date),
            ("updated", Date),
            ("fid", Str),
            ("domain", Str),
            ("aid", Int),
            ("email", Str),
            ("name", Str),
            ("timezone", Str),
            ("pubusers", Bool),
            ("masteraid", Int),
        ],
    ),
    (
        "User",
        &[
            ("id", Str),
            ("accounts", ObjArray),
            ("accounts[].aid", Int),
            ("accounts[].account_id", Str),
            ("accounts[].roles", StrArray),
            ("accounts[].granted_by", Str),
            ("accounts[].created", Date),
            ("accounts[].updated", Date),
            ("email", Str),
            ("name", Str),
            ("auth_type", Str),
            ("password", Never),
            ("last_pwd_change", Date),
            ("created", Date),
            ("updated", Date),
            ("last_logon", Date),
            ("aid", Int),
            ("account_id", Str),
            ("roles", StrArray),
            ("date", Date),
        ],
    ),
    (
        "Provider",
        &[
            ("id", Str),
            ("slug", Str),
            ("hidden", Bool),
            ("name", Str),
            ("namespace", Str),
            ("description", Str),
            ("categories", StrArray),
            ("auth_description", Str),
            ("no_auth", Bool),
        ],
    ),
    (
        "Work",
        &[
            ("id", Str),
            ("aid", Int),
            ("account_id", Str),
            ("user_id", Str),
            ("work_state_version", Int),
            ("config", Object),
            ("workflow_id", Str),
            ("workflow", Str),
            ("tag", Str),
            ("modified_ms", Int),
            ("created_ms", Int),
            ("updated", Date),
            ("created", Date),
            ("auth_ids", StrArray),
            ("hidden", Bool),
            ("runtime", Str),
            ("verbose_logging", Bool),
            ("statuscode", Str),
        ],
    ),
];

fn contract(resource: &str) -> &'static [(&'static str, Ty)] {
    CONTRACT
        .iter()
        .find(|(r, _)| *r == resource)
        .map(|(_, f)| *f)
        .unwrap()
}

/// The (resource, path, type) rows of the doc's "Answers, field by field" tables.
fn doc_rows() -> Vec<(String, String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/lytics-compat.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Answers, field by field"))
        .expect("docs/lytics-compat.md has a section \"Answers, field by field\"");
    let mut rows = Vec::new();
    let mut resource = String::new();
    for line in section.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            resource = h.split_whitespace().next().unwrap_or_default().to_owned();
        } else if let Some(row) = line.strip_prefix("| `") {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let field = cells[0].trim_end_matches('`').to_owned();
            rows.push((resource.clone(), field, cells[1].to_owned()));
        }
    }
    rows
}

#[test]
fn the_contract_is_the_docs_field_tables() {
    let mut want: Vec<(String, String, String)> = CONTRACT
        .iter()
        .flat_map(|(r, fields)| {
            fields
                .iter()
                .map(|(p, t)| ((*r).to_owned(), (*p).to_owned(), t.doc_name().to_owned()))
        })
        .collect();
    let mut got = doc_rows();
    want.sort();
    got.sort();
    assert_eq!(got, want, "docs/lytics-compat.md tables vs CONTRACT");
}

/// Asserts that `v` (one answer's `data`) carries every contract field of `resource`.
#[track_caller]
fn assert_contract(resource: &str, v: &Value) {
    for (path, ty) in contract(resource) {
        let (values, field) = match path.split_once("[].") {
            Some((list, field)) => (v[list].as_array().unwrap().clone(), field),
            None => (vec![v.clone()], *path),
        };
        assert!(!values.is_empty(), "{resource}.{path}: empty list in {v}");
        for obj in &values {
            let obj = obj.as_object().unwrap();
            match (ty, obj.get(field)) {
                (Never, None) => {}
                (Never, Some(x)) => panic!("{resource}.{path} must never be sent, got {x}"),
                (_, None) => panic!("{resource}.{path} missing in {v}"),
                (t, Some(x)) => assert!(t.matches(x), "{resource}.{path}: {x} is not {t:?}"),
            }
        }
    }
}

/// Asserts the contract on one `GET` answer and on every item of the list answer.
async fn assert_answers(app: &TestApp, resource: &str, one: &str, list: &str) -> Value {
    let data = app.get(one, &app.token).await.ok(200).clone();
    assert_contract(resource, &data);
    let items = app.get(list, &app.token).await.ok(200).clone();
    let items = items.as_array().unwrap();
    assert!(!items.is_empty(), "{list} lists nothing");
    for item in items {
        assert_contract(resource, item);
    }
    data
}

/// No key named `password` at any depth.
fn assert_no_password(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                assert!(!k.eq_ignore_ascii_case("password"), "password key in {v}");
                assert_no_password(x);
            }
        }
        Value::Array(a) => a.iter().for_each(assert_no_password),
        _ => {}
    }
}

#[tokio::test]
async fn auth_and_account_answers_carry_every_lytics_field() {
    let app = spawn_app().await;
    let (id, _) = app
        .create_token(&app.token, json!({"scopes": ["observer"], "name": "t"}))
        .await;
    let cred = json!({"provider_id": "mailgun", "name": "mail",
        "config": [{"name": "apikey", "value": "k"}, {"name": "domain", "value": "d"}]});
    let c = app
        .post("/api/auth", &app.token, cred)
        .await
        .ok(201)
        .clone();
    assert_contract("Auth", &c);
    assert_answers(&app, "Auth", &format!("/api/auth/{id}"), "/api/auth").await;
    assert_answers(&app, "Account", "/api/account/current", "/api/account").await;
}

#[tokio::test]
async fn user_answers_carry_every_lytics_field_and_never_a_password() {
    let app = spawn_app().await;
    let body = json!({"email": "ann@example.com", "name": "Ann", "roles": ["data"]});
    let u = app
        .post("/api/user", &app.token, body)
        .await
        .ok(201)
        .clone();
    assert_contract("User", &u);
    assert_no_password(&u);
    let one = format!("/api/user/{}", u["id"].as_str().unwrap());
    let got = assert_answers(&app, "User", &one, "/api/user").await;
    assert_no_password(&got);
    assert_no_password(app.get("/api/user", &app.token).await.ok(200));
    let put = app
        .put(&one, &app.token, json!({"roles": ["observer"]}))
        .await;
    assert_contract("User", put.ok(200));
    assert_no_password(put.ok(200));
}

#[tokio::test]
async fn provider_answers_carry_every_lytics_field() {
    let app = spawn_app().await;
    assert_answers(&app, "Provider", "/api/provider/mailgun", "/api/provider").await;
    let body = json!({"slug": "ours", "name": "Ours", "auth_method": "config"});
    let p = app
        .post("/api/provider", &app.token, body)
        .await
        .ok(201)
        .clone();
    assert_contract("Provider", &p);
    assert_answers(&app, "Provider", "/api/provider/ours", "/api/provider").await;
}

#[tokio::test]
async fn work_answers_carry_every_lytics_field() {
    let app = spawn_app().await;
    let body = json!({"workflow": "mailgun_export", "config": {"a": 1}});
    let w = app
        .post("/api/work", &app.token, body)
        .await
        .ok(201)
        .clone();
    assert_contract("Work", &w);
    let one = format!("/api/work/{}", w["id"].as_str().unwrap());
    assert_answers(&app, "Work", &one, "/api/work").await;
}
