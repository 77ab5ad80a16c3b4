//! Writing credential auths: `POST /api/auth`, `POST /api/auth/{id}` (create at a
//! caller-chosen id) and `PUT /api/auth/{id}`, and their body (`CredentialBody`). The
//! rules (provider validation, the secret merge, sealing) are the auth service's
//! ([`crate::services::auths::credentials`]).
//!
//! **Write-only:** `config`, `oauthtoken` and `oauth2token` go in and never come out. The
//! body is parsed from a `serde_json::Value` by hand so that no error message can quote a
//! submitted value (serde's type errors would); secret strings are moved out of it into
//! [`SecretBytes`] and what stays is zeroized when it drops.

use authd_core::credential::{FIELD_OAUTH1, FIELD_OAUTH2};
use authd_core::ids::AuthId;
use authd_core::text::{Description, FieldName, Label, Name, ProviderRef};
use authd_core::Error;
use authd_crypto::{SecretBytes, SecretWriter};
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use zeroize::Zeroize;

use super::dto::AuthDto;
use super::error::{ApiError, ApiResult};
use super::extract::{perm, ApiJson, ApiPath, Authed};
use super::Success;
use crate::audit::RequestId;
use crate::services::auths::credentials::{self, CredentialInput};
use crate::state::AppState;

/// Routes (merged with the read/delete routes of `auths`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth", post(create))
        .route("/api/auth/{id}", post(create_at).put(update))
}

/// Largest accepted secret value, in bytes.
const MAX_SECRET: usize = 16 * 1024;
/// Most config entries per credential.
const MAX_FIELDS: usize = 64;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// A string field of the body, parsed into its type (whose rule names the field).
fn text<T>(field: &str, v: &Value, parse: fn(String) -> Result<T, Error>) -> ApiResult<T> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{field} must be a string")))?;
    Ok(parse(s.to_owned())?)
}

/// Zeroizes every string in a JSON value (map keys are field names, not secrets).
fn wipe(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(o) => o.values_mut().for_each(wipe),
        _ => {}
    }
}

/// A credential create/update body (a JSON body as [`ApiJson`] reads it), parsed into a
/// [`CredentialInput`] by [`CredentialBody::parse`] once the path is checked; its strings
/// are zeroized however the parse ends.
struct CredentialBody(Body);

impl FromRequest<AppState> for CredentialBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let ApiJson(value) = ApiJson::<Value>::from_request(req, state).await?;
        Ok(CredentialBody(Body(value)))
    }
}

impl CredentialBody {
    /// The parsed input; the body (and what is left of it) is wiped here.
    fn parse(mut self) -> ApiResult<CredentialInput> {
        parse_input(&mut self.0 .0)
    }
}

/// A request body whose strings are zeroized when it drops, on every path: secret strings
/// are moved out of it into [`SecretBytes`] (no copy), the rest is wiped here.
struct Body(Value);

impl Drop for Body {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Moves a secret string out of the body into [`SecretBytes`] (its allocation, not a copy).
fn secret_string(field: &str, v: &mut Value) -> ApiResult<SecretBytes> {
    match v {
        Value::String(s) if s.len() <= MAX_SECRET => {
            Ok(SecretBytes::new(std::mem::take(s).into_bytes()))
        }
        Value::String(_) => Err(bad(format!("{field} must be at most {MAX_SECRET} bytes"))),
        _ => Err(bad(format!("{field} must be a string"))),
    }
}

fn config_pairs(v: &mut Value) -> ApiResult<Vec<(String, &mut Value)>> {
    match v {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter_mut() {
                let Value::Object(o) = item else {
                    return Err(bad(
                        "config entries must be {\"name\":…,\"value\":…} objects",
                    ));
                };
                if o.keys().any(|k| k != "name" && k != "value") {
                    return Err(bad("config entries have only name and value"));
                }
                let name = match o.get("name") {
                    Some(Value::String(n)) => n.clone(),
                    _ => return Err(bad("each config entry needs a string name")),
                };
                let value = o
                    .get_mut("value")
                    .ok_or_else(|| bad("each config entry needs a value"))?;
                out.push((name, value));
            }
            Ok(out)
        }
        Value::Object(o) => Ok(o.iter_mut().map(|(k, v)| (k.clone(), v)).collect()),
        _ => Err(bad("config must be a list of name/value pairs")),
    }
}

fn parse_config(v: &mut Value) -> ApiResult<Vec<(FieldName, SecretBytes)>> {
    let pairs = config_pairs(v)?;
    if pairs.len() > MAX_FIELDS {
        return Err(bad(format!("config may hold at most {MAX_FIELDS} fields")));
    }
    let mut out: Vec<(FieldName, SecretBytes)> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let name = FieldName::parse(name)?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(bad(format!(
                "config field {} is given twice",
                name.as_ref()
            )));
        }
        let v = secret_string(&format!("config field {}", name.as_ref()), value)?;
        out.push((name, v));
    }
    Ok(out)
}

/// Serializes an OAuth object straight into a zeroizing, size-limited buffer; the body's
/// copy is wiped when the body drops.
fn parse_oauth(field: &str, v: &Value, oauth2: bool) -> ApiResult<SecretBytes> {
    let Value::Object(o) = v else {
        return Err(bad(format!("{field} must be an object")));
    };
    if o.is_empty() {
        return Err(bad(format!("{field} must not be empty")));
    }
    let has_access = o
        .get("access_token")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if oauth2 && !has_access {
        return Err(bad(format!("{field}.access_token is required")));
    }
    let mut w = SecretWriter::with_limit(MAX_SECRET);
    serde_json::to_writer(&mut w, v)
        .map_err(|_| bad(format!("{field} must be at most {MAX_SECRET} bytes")))?;
    Ok(w.into_secret())
}

fn parse_input(body: &mut Value) -> ApiResult<CredentialInput> {
    let Value::Object(map) = body else {
        return Err(bad("Expected a JSON object"));
    };
    let mut input = CredentialInput::default();
    for (k, v) in map.iter_mut() {
        match k.as_str() {
            "provider_id" => input.provider = Some(text(k, v, ProviderRef::parse)?),
            "name" => input.name = Some(text(k, v, Name::parse)?),
            "label" => input.label = Some(text(k, v, Label::parse)?),
            "description" => input.description = Some(text(k, v, Description::parse)?),
            "config" => input.config = Some(parse_config(v)?),
            "oauthtoken" => input.oauth1 = Some(parse_oauth(FIELD_OAUTH1, v, false)?),
            "oauth2token" => input.oauth2 = Some(parse_oauth(FIELD_OAUTH2, v, true)?),
            // Accepted for client compatibility; the account and id come from the token and
            // the path, and the providing user from the caller.
            "account_id" | "id" | "aid" | "user_id" | "auth_type" => {}
            other if FieldName::parse(other.to_owned()).is_ok() => {
                return Err(bad(format!("Unknown field {other}")))
            }
            _ => return Err(bad("Unknown field")),
        }
    }
    Ok(input)
}

async fn create(
    caller: Authed<perm::AuthsWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    body: CredentialBody,
) -> ApiResult<Response> {
    let input = body.parse()?;
    let view = credentials::create(
        &state,
        &caller,
        &rid,
        AuthId::generate_at(state.clock.now_ms()),
        input,
    )
    .await?;
    Ok(Success(
        StatusCode::CREATED,
        AuthDto::from_view(&view, caller.account_aid),
    )
    .into_response())
}

async fn create_at(
    caller: Authed<perm::AuthsWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
    body: CredentialBody,
) -> ApiResult<Response> {
    let id = AuthId::parse(&id)
        .ok_or_else(|| bad("Invalid auth id: expected 32 lowercase hex characters"))?;
    let input = body.parse()?;
    let view = credentials::create(&state, &caller, &rid, id, input).await?;
    Ok(Success(
        StatusCode::CREATED,
        AuthDto::from_view(&view, caller.account_aid),
    )
    .into_response())
}

async fn update(
    caller: Authed<perm::AuthsWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
    body: CredentialBody,
) -> ApiResult<Response> {
    let id = AuthId::parse(&id).ok_or_else(ApiError::not_found)?;
    let input = body.parse()?;
    let view = credentials::update(&state, &caller, &rid, id, input).await?;
    Ok(Success(
        StatusCode::OK,
        AuthDto::from_view(&view, caller.account_aid),
    )
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_never_quote_the_value() {
        let canary = "CANARY-do-not-echo";
        let bodies = [
            serde_json::json!({"config": canary}),
            serde_json::json!({"config": [{"name": "apikey", "value": [canary]}]}),
            serde_json::json!({"oauth2token": canary}),
            serde_json::json!({"oauth2token": {"refresh": canary}}),
            serde_json::json!({"name": [canary]}),
            serde_json::json!({"config": {"apikey": {"x": canary}}}),
        ];
        for mut b in bodies {
            let err = parse_input(&mut b).unwrap_err();
            let ApiError::Http(_, msg) = err else {
                panic!()
            };
            assert!(!msg.contains(canary), "{msg}");
        }
    }

    #[test]
    fn secrets_leave_the_body_and_what_stays_is_wiped() {
        let mut body = Body(serde_json::json!({
            "config": [{"name": "apikey", "value": "SECRET-1"}],
            "oauth2token": {"access_token": "SECRET-2"}
        }));
        let input = parse_input(&mut body.0).unwrap();
        // The config value was moved out, not copied.
        assert_eq!(body.0["config"][0]["value"], "");
        assert_eq!(input.config.unwrap()[0].1.expose(), b"SECRET-1");
        assert_eq!(
            input.oauth2.unwrap().expose(),
            br#"{"access_token":"SECRET-2"}"#
        );
        wipe(&mut body.0);
        assert_eq!(body.0["oauth2token"]["access_token"], "");
    }
}
