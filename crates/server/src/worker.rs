//! The worker plaintext path: the one place a stored credential leaves authd decrypted.
//!
//! It is a separate listener, off unless configured, loopback-only unless made public, with
//! its own router: none of the public API is reachable through it and it is not reachable
//! through the public API. It accepts only worker credentials (`Authorization: Bearer wk_…`,
//! see `auth`: named ones from `authd worker credential create`, optionally limited to
//! accounts, and the file credential) — `createtoken` cannot mint one. Every read is audited;
//! refusals go through the bounded refusal queue ([`audit::worker_refused`]), so a flood of
//! bad credentials costs no durable write per request. A credential limited to other
//! accounts gets the same 404 as an absent credential.
//!
//! `GET /worker/v1/account/{account_id}/auth/{auth_id}` answers the decrypted credential:
//! `config` name/value pairs, and `oauthtoken` / `oauth2token` objects when present.

use authd_core::credential::{CONFIG_PREFIX, FIELD_OAUTH1, FIELD_OAUTH2};
use authd_core::ids::{AccountId, AuthId};
use authd_crypto::TokenHasher;
use std::io::Write;

use authd_crypto::{SecretBytes, SecretWriter};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::api::error::{envelope, ApiError};
use crate::api::extract::ApiPath;
use crate::audit::{self, RequestId};
use crate::credential_seal::{self, Opened, ReadError};
use crate::services::auths::credentials::integrity_error;
use crate::services::providers;
use crate::state::AppState;

mod auth;
pub use auth::{read_credential_file, Caller, WorkerAuth, WorkerConfig, WorkerToken};

/// State of the worker router.
#[derive(Clone)]
pub struct WorkerState {
    app: AppState,
    auth: WorkerAuth,
}

/// Builds the worker router. `hasher` is the worker-credential hasher
/// ([`authd_crypto::worker_hasher`]); `file` the file credential, if any.
pub fn router(app: AppState, hasher: TokenHasher, file: Option<WorkerToken>) -> Router {
    let auth = WorkerAuth::new(hasher, file);
    let router = Router::new()
        .route(
            "/worker/v1/account/{account_id}/auth/{auth_id}",
            get(read_credential),
        )
        .fallback(|| async { envelope(StatusCode::NOT_FOUND, "Not found") });
    let limit = app.config.body_limit_bytes;
    crate::request_id::layered(router.with_state(WorkerState { app, auth }), limit)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => v.get(7..).map(str::trim),
        _ => Some(v),
    }
}

async fn read_credential(
    State(ws): State<WorkerState>,
    rid: RequestId,
    headers: HeaderMap,
    ApiPath((account, auth)): ApiPath<(String, String)>,
) -> Response {
    let state = &ws.app;
    let target = format!("{account}/{auth}");
    let target = if target.len() > 80 {
        String::new()
    } else {
        target
    };
    let caller = match ws
        .auth
        .authenticate(state.store.as_ref(), bearer(&headers))
        .await
    {
        Ok(Some(c)) => c,
        Ok(None) => {
            audit::worker_refused(state, &rid, None, "unauthorized", target);
            return envelope(StatusCode::UNAUTHORIZED, "Not authorized");
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (Some(account), Some(auth)) = (AccountId::parse(&account), AuthId::parse(&auth)) else {
        return envelope(StatusCode::NOT_FOUND, "Not found");
    };
    if !caller.may_read(account) {
        // Outside the credential's accounts: the same answer as an absent credential.
        audit::worker_refused(state, &rid, Some(caller.actor()), "not_permitted", target);
        return envelope(StatusCode::NOT_FOUND, "Not found");
    }
    let actor = caller.actor();
    let audit_out = |outcome: &'static str, detail: String| {
        let rid = rid.as_str().to_owned();
        let target = auth.to_string();
        let actor = actor.clone();
        async move {
            audit::record_as(
                state,
                Some(account),
                &actor,
                &rid,
                authd_core::audit::AuditAction::WorkerDecrypt,
                &target,
                outcome,
                &detail,
            )
            .await;
        }
    };
    let rec = match state.store.get_credential(account, auth).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            audit_out("not_found", String::new()).await;
            return envelope(StatusCode::NOT_FOUND, "Not found");
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let provider = match providers::by_id(state.store.as_ref(), account, rec.auth.provider_id).await
    {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let opened = match credential_seal::open(&state.keys, rec, provider.as_ref()).await {
        Ok(o) => o,
        Err(ReadError::Other(e)) => return ApiError::from(e).into_response(),
        Err(ReadError::Integrity(field)) => {
            // Rows moved, rolled back, dropped, added or re-labelled. The field name is safe
            // to log; nothing else is.
            tracing::error!(auth = %auth, field = %field, "stored credential failed its integrity check");
            audit_out("decrypt_failed", format!("field {field}")).await;
            return ApiError::from(integrity_error()).into_response();
        }
    };
    // A credential written before migration 0006 gets its binding on its first read.
    if let Err(e) =
        credential_seal::migrate_legacy(state.store.as_ref(), &state.keys, &opened).await
    {
        tracing::warn!(auth = %auth, error = %e, "could not reseal a pre-0006 credential");
    }
    let body = match response_body(&opened) {
        Some(b) => b,
        None => {
            tracing::error!(auth = %auth, "stored credential does not decode");
            audit_out("decrypt_failed", "undecodable plaintext".into()).await;
            return ApiError::from(integrity_error()).into_response();
        }
    };
    let fields: Vec<&str> = opened.fields.iter().map(|(f, _)| f.as_str()).collect();
    audit_out("ok", format!("fields {}", fields.join(","))).await;
    let mut resp = Response::new(Body::from(Bytes::from_owner(ZeroizedBody(body))));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Response bytes that are zeroized when the response body is dropped (after sending).
struct ZeroizedBody(SecretBytes);

impl AsRef<[u8]> for ZeroizedBody {
    fn as_ref(&self) -> &[u8] {
        self.0.expose()
    }
}

/// The success envelope with the decrypted credential, written straight from the opened
/// plaintexts into one zeroizing buffer (no intermediate `String` or `Value`): `config`
/// name/value pairs and the `oauthtoken` / `oauth2token` objects when present. `None` if a
/// plaintext is not what authd sealed (not UTF-8 text, not a JSON object).
fn response_body(o: &Opened) -> Option<SecretBytes> {
    let size: usize = o
        .fields
        .iter()
        .map(|(f, v)| f.len() + 6 * v.expose().len() + 32)
        .sum();
    let mut w = SecretWriter::with_limit(size + 512);
    let a = &o.record.auth;
    let head = json!({"id": a.id.to_string(), "account_id": a.account_id.to_string(),
        "provider_id": a.provider_id.to_string()});
    let head = serde_json::to_string(&head).ok()?;
    // `{"status":"success","data":{…head…,"config":[…],…}}`
    write!(
        w,
        "{{\"status\":\"success\",\"data\":{},\"config\":[",
        head.strip_suffix('}')?
    )
    .ok()?;
    let mut first = true;
    for (f, v) in &o.fields {
        let Some(name) = f.strip_prefix(CONFIG_PREFIX) else {
            continue;
        };
        let value = std::str::from_utf8(v.expose()).ok()?;
        w.write_all(if first { b"{\"name\":" } else { b",{\"name\":" })
            .ok()?;
        serde_json::to_writer(&mut w, name).ok()?;
        w.write_all(b",\"value\":").ok()?;
        serde_json::to_writer(&mut w, value).ok()?;
        w.write_all(b"}").ok()?;
        first = false;
    }
    w.write_all(b"]").ok()?;
    for (f, v) in &o.fields {
        if f != FIELD_OAUTH1 && f != FIELD_OAUTH2 {
            continue;
        }
        // Sealed by authd from a JSON object serialized by serde_json, authenticated since.
        let raw = v.expose();
        if raw.first() != Some(&b'{') || raw.last() != Some(&b'}') {
            return None;
        }
        write!(w, ",\"{f}\":").ok()?;
        w.write_all(raw).ok()?;
    }
    w.write_all(b"}}").ok()?;
    Some(w.into_secret())
}
