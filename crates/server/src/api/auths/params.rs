//! createtoken's parameters, from wherever a Lytics client puts them: a JSON body (with any
//! content type [`ApiJson`] reads, including none), a form body
//! (`application/x-www-form-urlencoded`; `scopes` comma-separated or repeated) or the query string
//! (`?scopes=admin,data&expires=100h&name=x`). The credential parameters of the query
//! (`access_token`, `key`, `account_id`) are not createtoken parameters. When the query and the
//! body give the same field different values the request is refused with 400 rather than one
//! silently winning; no value is quoted back.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{accept_json, body_bytes, ApiJson};
use crate::state::AppState;

/// `scopes` as an array of slugs or a comma-separated string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Scopes {
    List(Vec<String>),
    Csv(String),
}

impl Scopes {
    /// The slugs, trimmed, without empties, sorted and deduplicated: two spellings of the
    /// same scopes compare equal.
    fn normalized(&self) -> Vec<&str> {
        let mut v: Vec<&str> = match self {
            Scopes::List(l) => l.iter().flat_map(|s| s.split(',')).collect(),
            Scopes::Csv(s) => s.split(',').collect(),
        };
        v = v
            .into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// The createtoken parameters. Unknown fields are refused: a typo such as `scope` would
/// otherwise mint a token with different roles than intended.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTokenBody {
    pub(super) scopes: Option<Scopes>,
    pub(super) expires: Option<String>,
    pub(super) name: Option<String>,
    pub(super) label: Option<String>,
    pub(super) description: Option<String>,
    /// Accepted for client compatibility; the token's account is always the caller's.
    #[allow(dead_code)]
    pub(super) account_id: Option<String>,
}

/// The fields a form or query may carry.
const FIELDS: [&str; 6] = [
    "scopes",
    "expires",
    "name",
    "label",
    "description",
    "account_id",
];

/// Query parameters that carry or scope the credential, never a createtoken parameter.
const CREDENTIAL_PARAMS: [&str; 3] = ["access_token", "key", "account_id"];

/// createtoken's parameters merged from the query string and the body.
#[derive(Debug)]
pub(super) struct TokenParams(pub(super) CreateTokenBody);

impl FromRequest<AppState> for TokenParams {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let query = match req.uri().query() {
            Some(q) => from_pairs(q.as_bytes(), Source::Query)?,
            None => None,
        };
        let form = is_form(req.headers());
        let declared = req.headers().contains_key(header::CONTENT_TYPE);
        if !form {
            accept_json(req.headers())?;
        }
        let bytes = body_bytes(req, state).await?;
        let body = if form {
            from_pairs(&bytes, Source::Form)?
        } else if !declared && bytes.iter().all(u8::is_ascii_whitespace) {
            // No body at all (the parameters are in the query).
            None
        } else {
            Some(ApiJson::<CreateTokenBody>::decode(&bytes)?.0)
        };
        merge(query, body).map(TokenParams)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Source {
    Query,
    Form,
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Parses `a=b&c=d` pairs into parameters; `None` when there are none (only credential
/// parameters, in a query).
fn from_pairs(raw: &[u8], source: Source) -> ApiResult<Option<CreateTokenBody>> {
    let mut map = Map::new();
    let mut scopes: Vec<Value> = Vec::new();
    for (k, v) in form_urlencoded::parse(raw) {
        if source == Source::Query && CREDENTIAL_PARAMS.contains(&k.as_ref()) {
            continue;
        }
        if !FIELDS.contains(&k.as_ref()) {
            // The name is quoted only when it is plainly a parameter name, never a secret.
            let shown = if k.len() <= 32 && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                format!(" {k:?}")
            } else {
                String::new()
            };
            return Err(ApiError::bad_request(format!(
                "Unknown createtoken parameter{shown} (use scopes, expires, name, label, description)"
            )));
        }
        if k == "scopes" {
            // `scopes=admin,data` and `scopes=admin&scopes=data` alike.
            scopes.extend(v.split(',').map(|s| Value::String(s.to_owned())));
        } else if map
            .insert(k.clone().into_owned(), Value::String(v.into_owned()))
            .is_some()
        {
            return Err(ApiError::bad_request(format!(
                "createtoken parameter {k} is given more than once"
            )));
        }
    }
    if !scopes.is_empty() {
        map.insert("scopes".into(), Value::Array(scopes));
    }
    if map.is_empty() {
        return Ok(None);
    }
    serde_json::from_value(Value::Object(map))
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("Invalid createtoken parameters: {e}")))
}

/// One set of parameters from the query and the body; 400 when they disagree on a field.
fn merge(
    query: Option<CreateTokenBody>,
    body: Option<CreateTokenBody>,
) -> ApiResult<CreateTokenBody> {
    let (q, b) = match (query, body) {
        (Some(q), Some(b)) => (q, b),
        (q, b) => return Ok(q.or(b).unwrap_or_default()),
    };
    if let (Some(x), Some(y)) = (&q.scopes, &b.scopes) {
        if x.normalized() != y.normalized() {
            return Err(disagree("scopes"));
        }
    }
    Ok(CreateTokenBody {
        scopes: b.scopes.or(q.scopes),
        expires: one("expires", q.expires, b.expires)?,
        name: one("name", q.name, b.name)?,
        label: one("label", q.label, b.label)?,
        description: one("description", q.description, b.description)?,
        account_id: b.account_id.or(q.account_id),
    })
}

/// The value of a field given by either source, or 400 when both give different values.
fn one(field: &str, query: Option<String>, body: Option<String>) -> ApiResult<Option<String>> {
    match (query, body) {
        (Some(q), Some(b)) if q != b => Err(disagree(field)),
        (q, b) => Ok(b.or(q)),
    }
}

fn disagree(field: &str) -> ApiError {
    ApiError::bad_request(format!(
        "createtoken parameter {field} differs between the query string and the body"
    ))
}
