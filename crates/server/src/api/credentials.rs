//! Writing credential auths: `POST /api/auth`, `POST /api/auth/{id}` (create at a
//! caller-chosen id), `PUT /api/auth/{id}`, and the delete cascade behind
//! `DELETE /api/auth/{id}`.
//!
//! **Write-only:** `config`, `oauthtoken` and `oauth2token` go in and never come out. The
//! body is parsed from a `serde_json::Value` by hand so that no error message can quote a
//! submitted value (serde's type errors would), every value is sealed field by field before
//! the store sees it, and responses, logs and audit entries name fields, never values.

use authd_core::audit::{Audit, AuditAction};
use authd_core::credential::{
    CredentialPatch, CredentialRecord, DeleteOutcome, NewCredential, CONFIG_PREFIX, FIELD_OAUTH1,
    FIELD_OAUTH2,
};
use authd_core::ids::{AccountId, AuthId, ProviderId};
use authd_core::model::{Auth, AuthKind};
use authd_core::provider::{self, AuthMethod, Provider};
use authd_crypto::{SecretBytes, SecretWriter};
use axum::extract::State;
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
use crate::audit::{self, RequestId};
use crate::credential_seal::{self, ReadError};
use crate::state::AppState;
use crate::tokens::Principal;

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
/// Longest name, label or description.
const MAX_TEXT: usize = 256;

/// A parsed create/update body. Holds plaintext only inside [`SecretBytes`].
#[derive(Debug, Default)]
struct Input {
    provider: Option<String>,
    name: Option<String>,
    label: Option<String>,
    description: Option<String>,
    /// `(field name, value)`; the name is not secret.
    config: Option<Vec<(String, SecretBytes)>>,
    oauth1: Option<SecretBytes>,
    oauth2: Option<SecretBytes>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

fn valid_field_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn text(field: &str, v: &Value) -> ApiResult<String> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("{field} must be a string")))?;
    authd_core::text::validate(field, s, MAX_TEXT)?;
    Ok(s.to_owned())
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

fn parse_config(v: &mut Value) -> ApiResult<Vec<(String, SecretBytes)>> {
    let pairs = config_pairs(v)?;
    if pairs.len() > MAX_FIELDS {
        return Err(bad(format!("config may hold at most {MAX_FIELDS} fields")));
    }
    let mut out: Vec<(String, SecretBytes)> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        if !valid_field_name(&name) {
            return Err(bad(
                "config field names are 1–64 letters, digits, '_', '-' or '.'",
            ));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(bad(format!("config field {name} is given twice")));
        }
        let v = secret_string(&format!("config field {name}"), value)?;
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

fn parse_input(body: &mut Value) -> ApiResult<Input> {
    let Value::Object(map) = body else {
        return Err(bad("Expected a JSON object"));
    };
    let mut input = Input::default();
    for (k, v) in map.iter_mut() {
        match k.as_str() {
            "provider_id" => input.provider = Some(text("provider_id", v)?),
            "name" => input.name = Some(text("name", v)?),
            "label" => input.label = Some(text("label", v)?),
            "description" => input.description = Some(text("description", v)?),
            "config" => input.config = Some(parse_config(v)?),
            "oauthtoken" => input.oauth1 = Some(parse_oauth(FIELD_OAUTH1, v, false)?),
            "oauth2token" => input.oauth2 = Some(parse_oauth(FIELD_OAUTH2, v, true)?),
            // Accepted for client compatibility; the account and id come from the token and
            // the path, and the providing user from the caller.
            "account_id" | "id" | "aid" | "user_id" | "auth_type" => {}
            other if valid_field_name(other) => return Err(bad(format!("Unknown field {other}"))),
            _ => return Err(bad("Unknown field")),
        }
    }
    Ok(input)
}

/// Resolves a provider by id or slug: the built-in catalog first, then the account's own.
pub async fn resolve_provider(
    state: &AppState,
    account: AccountId,
    key: &str,
) -> ApiResult<Option<Provider>> {
    if let Some(p) = provider::builtin(key) {
        return Ok(Some(p));
    }
    Ok(state.store.get_provider(account, key).await?)
}

/// A provider's display name by id (built-in or the account's own).
pub async fn provider_name(state: &AppState, account: AccountId, id: ProviderId) -> String {
    // Built-ins (Lytics for every token) resolve in memory, without a query.
    if let Some(p) = provider::builtin_by_id(id) {
        return p.name.clone();
    }
    match resolve_provider(state, account, &id.to_string()).await {
        Ok(Some(p)) => p.name,
        _ => String::new(),
    }
}

async fn usable_provider(state: &AppState, account: AccountId, key: &str) -> ApiResult<Provider> {
    let p = resolve_provider(state, account, key)
        .await?
        .ok_or_else(|| bad("provider_id: no such provider"))?;
    if p.id == provider::LYTICS_PROVIDER_ID {
        return Err(bad(
            "provider_id: Lytics API tokens are created with POST /api/auth/createtoken",
        ));
    }
    if p.no_auth {
        return Err(bad(format!(
            "provider_id: provider {} needs no credential",
            p.slug
        )));
    }
    Ok(p)
}

/// Checks the complete set of secret field names a credential will hold against the
/// provider's declared method and fields. Errors name the field.
fn validate(p: &Provider, fields: &[String]) -> ApiResult<()> {
    let has = |f: &str| fields.iter().any(|x| x == f);
    let method = p.auth_method.as_str();
    for f in fields {
        if let Some(name) = f.strip_prefix(CONFIG_PREFIX) {
            if !p.config.iter().any(|c| c.name == name) {
                return Err(bad(format!(
                    "config field {name} is not a field of provider {}",
                    p.slug
                )));
            }
        }
    }
    for c in p.config.iter().filter(|c| !c.optional) {
        if !has(&format!("{CONFIG_PREFIX}{}", c.name)) {
            return Err(bad(format!(
                "config field {} is required by provider {}",
                c.name, p.slug
            )));
        }
    }
    let (wanted, wrong) = match p.auth_method {
        AuthMethod::Config => (None, [FIELD_OAUTH1, FIELD_OAUTH2].as_slice()),
        AuthMethod::OAuth1 => (Some(FIELD_OAUTH1), [FIELD_OAUTH2].as_slice()),
        AuthMethod::OAuth2 => (Some(FIELD_OAUTH2), [FIELD_OAUTH1].as_slice()),
    };
    for w in wrong {
        if has(w) {
            return Err(bad(format!(
                "{w} is not accepted by provider {} (auth_method {method})",
                p.slug
            )));
        }
    }
    if let Some(w) = wanted {
        if !has(w) {
            return Err(bad(format!(
                "{w} is required by provider {} (auth_method {method})",
                p.slug
            )));
        }
    }
    Ok(())
}

/// The secret fields of an input as `(storage field name, value)`.
fn secret_fields(input: &mut Input) -> Vec<(String, SecretBytes)> {
    let mut out = Vec::new();
    if let Some(cfg) = input.config.take() {
        for (n, v) in cfg {
            out.push((format!("{CONFIG_PREFIX}{n}"), v));
        }
    }
    if let Some(v) = input.oauth1.take() {
        out.push((FIELD_OAUTH1.to_owned(), v));
    }
    if let Some(v) = input.oauth2.take() {
        out.push((FIELD_OAUTH2.to_owned(), v));
    }
    out
}

fn field_list(fields: &[(String, SecretBytes)]) -> String {
    fields
        .iter()
        .map(|(f, _)| f.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

async fn dto<'a>(state: &AppState, caller: &Principal, a: &'a Auth) -> AuthDto<'a> {
    let name = provider_name(state, caller.account_id, a.provider_id).await;
    AuthDto::new(a, caller.account_aid, &name, None)
}

async fn create_with_id(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
    mut body: Body,
) -> ApiResult<Response> {
    let mut input = parse_input(&mut body.0)?;
    drop(body);
    let key = input
        .provider
        .clone()
        .ok_or_else(|| bad("provider_id is required"))?;
    let p = usable_provider(state, caller.account_id, &key).await?;
    let fields = secret_fields(&mut input);
    let names: Vec<String> = fields.iter().map(|(f, _)| f.clone()).collect();
    validate(&p, &names)?;
    let user_name = match caller.user_id {
        Some(u) => state
            .store
            .get_user(caller.account_id, u)
            .await?
            .map(|u| u.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let incarnation = credential_seal::new_incarnation();
    let secrets = credential_seal::seal_next(
        &state.keys,
        caller.account_id,
        id,
        p.id,
        &incarnation,
        1,
        &fields,
    )
    .await?;
    let name = input.name.unwrap_or_default();
    let entry = audit::By::caller(state, caller, rid).entry(
        AuditAction::AuthCreate,
        &id.to_string(),
        &format!("provider {}; fields {}", p.slug, field_list(&fields)),
    );
    let auth = state
        .store
        .create_credential(
            caller.account_id,
            NewCredential {
                id,
                provider_id: p.id,
                label: input.label.unwrap_or_else(|| name.clone()),
                description: input.description.unwrap_or_default(),
                name,
                user_id: caller.user_id,
                user_name,
                parent_id: Some(caller.auth_id),
                incarnation,
                secrets,
            },
            state.clock.now_ms(),
            Audit::Entry(entry),
        )
        .await?;
    tracing::info!(auth = %auth.id, provider = %p.slug, "credential created");
    Ok(Success(StatusCode::CREATED, dto(state, caller, &auth).await).into_response())
}

async fn create(
    caller: Authed<perm::AuthsWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let body = Body(body);
    create_with_id(&state, &caller, &rid, AuthId::generate(), body).await
}

async fn create_at(
    caller: Authed<perm::AuthsWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let body = Body(body);
    let id = AuthId::parse(&id)
        .ok_or_else(|| bad("Invalid auth id: expected 32 lowercase hex characters"))?;
    create_with_id(&state, &caller, &rid, id, body).await
}

/// The answer to a credential that failed its integrity check: a 409 in the envelope — the
/// stored data is in a state the request cannot proceed from; re-entering it fixes that.
/// Callers log (field name only) and audit with outcome `integrity_failed`.
pub fn integrity_error() -> ApiError {
    ApiError::Http(
        StatusCode::CONFLICT,
        credential_seal::INTEGRITY_MESSAGE.into(),
    )
}

/// Logs (auth id and detail naming a field, never a value) and audits a credential that
/// failed its integrity check on the API path, with outcome `integrity_failed`.
async fn integrity_failed(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    action: AuditAction,
    id: AuthId,
    detail: &str,
) {
    tracing::error!(auth = %id, detail, "stored credential failed its integrity check");
    let target = id.to_string();
    audit::record_outcome(
        state,
        caller,
        rid,
        action,
        &target,
        "integrity_failed",
        detail,
    )
    .await;
}

/// `GET /api/auth/{id}` of a credential: its public record is answered only if the
/// credential opens as a whole (so a re-labelled provider, a rolled-back, dropped or added
/// row is not reported as if it were fine). The plaintexts are dropped (zeroized) at once.
/// A failure is logged, audited (`auth.read`, `integrity_failed`) and answered with
/// [`integrity_error`].
pub async fn verify_for_read(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
) -> ApiResult<()> {
    let Some(rec) = state.store.get_credential(caller.account_id, id).await? else {
        return Ok(());
    };
    let key = rec.auth.provider_id.to_string();
    let provider = resolve_provider(state, caller.account_id, &key).await?;
    match credential_seal::open(&state.keys, rec, provider.as_ref()).await {
        Ok(_) => Ok(()),
        Err(ReadError::Other(e)) => Err(e.into()),
        Err(ReadError::Integrity(field)) => {
            integrity_failed(
                state,
                caller,
                rid,
                AuditAction::AuthRead,
                id,
                &format!("field {field}"),
            )
            .await;
            Err(integrity_error())
        }
    }
}

/// The stored credential a PUT builds on, verified: its record and the plaintext of the
/// fields it keeps. A credential that fails its integrity check can only be replaced whole.
async fn current_for_update(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
) -> ApiResult<(CredentialRecord, Option<Vec<(String, SecretBytes)>>)> {
    let Some(rec) = state.store.get_credential(caller.account_id, id).await? else {
        return match state.store.get_auth(caller.account_id, id).await? {
            Some(a) if a.kind == AuthKind::ApiToken => Err(bad(
                "API tokens cannot be updated; create a new token instead",
            )),
            _ => Err(ApiError::not_found()),
        };
    };
    let key = rec.auth.provider_id.to_string();
    let provider = resolve_provider(state, caller.account_id, &key).await?;
    match credential_seal::open(&state.keys, rec.clone(), provider.as_ref()).await {
        Ok(o) => Ok((o.record, Some(o.fields))),
        Err(ReadError::Other(e)) => Err(e.into()),
        Err(ReadError::Integrity(field)) => {
            let detail = format!("field {field}; only a complete re-entry is accepted");
            integrity_failed(state, caller, rid, AuditAction::AuthUpdate, id, &detail).await;
            Ok((rec, None))
        }
    }
}

async fn update(
    caller: Authed<perm::AuthsWrite>,
    State(state): State<AppState>,
    rid: RequestId,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let mut body = Body(body);
    let id = AuthId::parse(&id).ok_or_else(ApiError::not_found)?;
    let mut input = parse_input(&mut body.0)?;
    drop(body);
    let (current, stored) = current_for_update(&state, &caller, &rid, id).await?;
    let (p, provider_changed) = match &input.provider {
        Some(key) => {
            let p = usable_provider(&state, caller.account_id, key).await?;
            let changed = p.id != current.auth.provider_id;
            (p, changed)
        }
        None => {
            let key = current.auth.provider_id.to_string();
            let p = resolve_provider(&state, caller.account_id, &key)
                .await?
                .ok_or_else(|| bad("provider_id: the credential's provider no longer exists"))?;
            (p, false)
        }
    };
    let given = secret_fields(&mut input);
    let given_names: Vec<String> = given.iter().map(|(f, _)| f.clone()).collect();
    // Given parts replace, the rest are kept — unless the provider changes, in which case
    // the old provider's secrets do not carry over, or the stored credential failed its
    // integrity check, in which case nothing of it is trusted: the body must be complete.
    let kept: Vec<(String, SecretBytes)> = match stored {
        Some(fields) if !provider_changed => fields
            .into_iter()
            .filter(|(f, _)| !given_names.contains(f))
            .collect(),
        Some(_) => Vec::new(),
        None => {
            if validate(&p, &given_names).is_err() {
                return Err(integrity_error());
            }
            Vec::new()
        }
    };
    let mut all = kept;
    let replaced = field_list(&given);
    all.extend(given);
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<String> = all.iter().map(|(f, _)| f.clone()).collect();
    validate(&p, &names)?;
    // A pre-0006 credential gets its incarnation with this write.
    let incarnation = match current.incarnation.as_str() {
        "" => credential_seal::new_incarnation(),
        i => i.to_owned(),
    };
    let secrets = credential_seal::seal_next(
        &state.keys,
        caller.account_id,
        id,
        p.id,
        &incarnation,
        current.generation.saturating_add(1),
        &all,
    )
    .await?;
    let entry = audit::By::caller(&state, &caller, &rid).entry(
        AuditAction::AuthUpdate,
        &id.to_string(),
        &format!("provider {}; replaced fields {replaced}", p.slug),
    );
    let auth = state
        .store
        .update_credential(
            caller.account_id,
            id,
            CredentialPatch {
                provider_id: provider_changed.then_some(p.id),
                name: input.name,
                label: input.label,
                description: input.description,
                expected_generation: current.generation,
                incarnation,
                secrets,
            },
            state.clock.now_ms(),
            Audit::Entry(entry),
        )
        .await?
        .ok_or_else(ApiError::not_found)?;
    tracing::info!(auth = %auth.id, "credential updated");
    Ok(Success(StatusCode::OK, dto(&state, &caller, &auth).await).into_response())
}

/// Deletes any auth with the full cascade, in one store transaction: the auth (for tokens,
/// every token it created), its secret rows, its id in every work, and those works stopped.
/// The audit entries ([`audit::deletion`]) commit in the same transaction. Then evicts revoked
/// tokens from the cache. `NotFound` if nothing was deleted.
pub async fn delete(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
) -> ApiResult<()> {
    let kind = state
        .store
        .get_auth(caller.account_id, id)
        .await?
        .map(|a| a.kind)
        .ok_or_else(ApiError::not_found)?;
    let reason = audit::deletion_reason(id);
    let action = match kind {
        AuthKind::ApiToken => AuditAction::TokenRevoke,
        AuthKind::Credential => AuditAction::AuthDelete,
    };
    let by = audit::By::caller(state, caller, rid);
    let entries = |out: &DeleteOutcome| audit::deletion(&by, action, id, out);
    let out = match kind {
        // Tokens go through the token service: the delegation rule, the rotation link, the
        // cascade and the cache eviction live there.
        AuthKind::ApiToken => {
            state
                .tokens
                .revoke(
                    caller.account_id,
                    id,
                    Some((caller, rid.as_str())),
                    Audit::Outcome(&entries),
                )
                .await?
        }
        AuthKind::Credential => {
            let out = state
                .store
                .delete_auth_cascade(
                    caller.account_id,
                    id,
                    &reason,
                    state.clock.now_ms(),
                    Audit::Outcome(&entries),
                )
                .await?;
            if out.deleted.is_empty() {
                return Err(ApiError::not_found());
            }
            state.tokens.evict(&out.deleted);
            out
        }
    };
    tracing::info!(auth = %id, cascade = out.deleted.len() - 1, stopped_works = out.stopped_works.len(), "auth deleted");
    Ok(())
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
