//! The worker plaintext path: the one place a stored credential leaves authd decrypted.
//!
//! It is a separate listener, off unless configured, loopback-only unless made public, with
//! its own router: none of the public API is reachable through it and it is not reachable
//! through the public API. It accepts only worker credentials (`Authorization: Bearer wk_…`,
//! see [`auth`]: named ones from `authd worker credential create`, optionally limited to
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
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};

use crate::api::error::{envelope, ApiError};
use crate::api::extract::ApiPath;
use crate::api::Success;
use crate::audit::{self, RequestId};
use crate::keys::OpenError;
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
    Router::new()
        .route(
            "/worker/v1/account/{account_id}/auth/{auth_id}",
            get(read_credential),
        )
        .fallback(|| async { envelope(StatusCode::NOT_FOUND, "Not found") })
        .layer(axum::middleware::from_fn(audit::assign_request_id))
        .with_state(WorkerState { app, auth })
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
        let rid = rid.0.clone();
        let target = auth.to_string();
        let actor = actor.clone();
        async move {
            audit::record_as(
                state,
                Some(account),
                &actor,
                &rid,
                "worker.decrypt",
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
    let mut config = Vec::new();
    let mut out = Map::new();
    for s in &rec.secrets {
        let plain = match state.keys.open(account, auth, s).await {
            Ok(p) => p,
            Err(OpenError::Other(e)) => return ApiError::from(e).into_response(),
            Err(_) => {
                // An integrity failure: the row was moved, swapped or tampered with. The
                // field name and key id are safe to log; nothing else is.
                tracing::error!(auth = %auth, field = %s.field, key_id = %s.key_id, "stored secret failed to authenticate");
                audit_out("decrypt_failed", format!("field {}", s.field)).await;
                return envelope(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Stored credential failed its integrity check",
                );
            }
        };
        if let Some(name) = s.field.strip_prefix(CONFIG_PREFIX) {
            let value = String::from_utf8_lossy(plain.expose()).into_owned();
            config.push(json!({ "name": name, "value": value }));
        } else if s.field == FIELD_OAUTH1 || s.field == FIELD_OAUTH2 {
            let v: Value = serde_json::from_slice(plain.expose()).unwrap_or(Value::Null);
            out.insert(s.field.clone(), v);
        }
    }
    let fields: Vec<&str> = rec.secrets.iter().map(|s| s.field.as_str()).collect();
    audit_out("ok", format!("fields {}", fields.join(","))).await;
    out.insert("id".into(), json!(auth.to_string()));
    out.insert("account_id".into(), json!(account.to_string()));
    out.insert(
        "provider_id".into(),
        json!(rec.auth.provider_id.to_string()),
    );
    out.insert("config".into(), Value::Array(config));
    Success(StatusCode::OK, Value::Object(out)).into_response()
}
