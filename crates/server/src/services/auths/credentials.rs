//! Writing stored credentials: create (at a generated or caller-chosen id) and update, and
//! the integrity checks of reading one through the API.
//!
//! The rules live here: the provider must exist, be usable for a credential (not Lytics, not
//! a no-auth provider) and accept exactly the secret fields the credential will hold; an
//! update merges the given secrets over the kept ones (unless the provider changes or the
//! stored credential failed its integrity check, when the body must be complete); every
//! value is sealed field by field ([`credential_seal`]) before the store sees it; entries,
//! logs and answers name fields, never values. The request body is parsed into a
//! [`CredentialInput`] at the edge (`crate::api::credentials`), plaintext held only in
//! [`SecretBytes`].

use authd_core::audit::{Audit, AuditAction};
use authd_core::credential::{
    CredentialPatch, CredentialRecord, NewCredential, CONFIG_PREFIX, FIELD_OAUTH1, FIELD_OAUTH2,
};
use authd_core::ids::AuthId;
use authd_core::model::AuthKind;
use authd_core::provider::{self, AuthMethod, Provider};
use authd_core::text::{Description, FieldName, Label, Name, ProviderRef};
use authd_core::{Error, Result};
use authd_crypto::SecretBytes;
use std::sync::Arc;

use super::AuthView;
use crate::audit::{self, RequestId};
use crate::credential_seal::{self, ReadError};
use crate::services::providers;
use crate::state::AppState;
use crate::tokens::Principal;

/// A parsed create/update body. Holds plaintext only inside [`SecretBytes`].
#[derive(Debug, Default)]
pub struct CredentialInput {
    /// The provider, by id or slug.
    pub provider: Option<ProviderRef>,
    /// Name.
    pub name: Option<Name>,
    /// Label.
    pub label: Option<Label>,
    /// Description.
    pub description: Option<Description>,
    /// `(field name, value)`; the name is not secret.
    pub config: Option<Vec<(FieldName, SecretBytes)>>,
    /// The OAuth 1 token object, serialized.
    pub oauth1: Option<SecretBytes>,
    /// The OAuth 2 token object, serialized.
    pub oauth2: Option<SecretBytes>,
}

impl CredentialInput {
    /// The secret fields as `(storage field name, value)`, taken out of the input.
    fn take_secrets(&mut self) -> Vec<(String, SecretBytes)> {
        let mut out = Vec::new();
        if let Some(cfg) = self.config.take() {
            for (n, v) in cfg {
                out.push((format!("{CONFIG_PREFIX}{}", n.as_ref()), v));
            }
        }
        if let Some(v) = self.oauth1.take() {
            out.push((FIELD_OAUTH1.to_owned(), v));
        }
        if let Some(v) = self.oauth2.take() {
            out.push((FIELD_OAUTH2.to_owned(), v));
        }
        out
    }
}

/// The error of a credential that failed its integrity check: a 409 — the stored data is in
/// a state the request cannot proceed from; re-entering it fixes that. Callers log (field
/// name only) and audit with outcome `integrity_failed` (the worker: `decrypt_failed`).
pub fn integrity_error() -> Error {
    Error::Conflict(credential_seal::INTEGRITY_MESSAGE.into())
}

/// A provider that can hold a credential: it exists, is not Lytics (whose auths are API
/// tokens) and needs a credential.
async fn usable_provider(state: &AppState, caller: &Principal, key: &str) -> Result<Provider> {
    let p = providers::resolve(state.store.as_ref(), caller.account_id, key)
        .await?
        .ok_or_else(|| Error::invalid("provider_id: no such provider"))?;
    if p.id == provider::LYTICS_PROVIDER_ID {
        return Err(Error::invalid(
            "provider_id: Lytics API tokens are created with POST /api/auth/createtoken",
        ));
    }
    if p.no_auth {
        return Err(Error::invalid(format!(
            "provider_id: provider {} needs no credential",
            p.slug
        )));
    }
    Ok(p)
}

/// Checks the complete set of secret field names a credential will hold against the
/// provider's declared method and fields. Errors name the field.
fn check_fields(p: &Provider, fields: &[String]) -> Result<()> {
    let has = |f: &str| fields.iter().any(|x| x == f);
    let method = p.auth_method.as_str();
    for f in fields {
        if let Some(name) = f.strip_prefix(CONFIG_PREFIX) {
            if !p.config.iter().any(|c| c.name == name) {
                return Err(Error::invalid(format!(
                    "config field {name} is not a field of provider {}",
                    p.slug
                )));
            }
        }
    }
    for c in p.config.iter().filter(|c| !c.optional) {
        if !has(&format!("{CONFIG_PREFIX}{}", c.name)) {
            return Err(Error::invalid(format!(
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
            return Err(Error::invalid(format!(
                "{w} is not accepted by provider {} (auth_method {method})",
                p.slug
            )));
        }
    }
    if let Some(w) = wanted {
        if !has(w) {
            return Err(Error::invalid(format!(
                "{w} is required by provider {} (auth_method {method})",
                p.slug
            )));
        }
    }
    Ok(())
}

fn names_of(fields: &[(String, SecretBytes)]) -> Vec<String> {
    fields.iter().map(|(f, _)| f.clone()).collect()
}

fn field_list(fields: &[(String, SecretBytes)]) -> String {
    fields
        .iter()
        .map(|(f, _)| f.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Creates a credential at `id` for the caller (its user, under its token in the tree).
pub async fn create(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
    mut input: CredentialInput,
) -> Result<AuthView> {
    let key = input
        .provider
        .take()
        .ok_or_else(|| Error::invalid("provider_id is required"))?;
    let p = usable_provider(state, caller, key.as_ref()).await?;
    let fields = input.take_secrets();
    check_fields(&p, &names_of(&fields))?;
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
    let name: String = input.name.map(String::from).unwrap_or_default();
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
                label: input.label.map_or_else(|| name.clone(), String::from),
                description: input.description.map(String::from).unwrap_or_default(),
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
    Ok(AuthView::new(
        state,
        Arc::new(auth),
        &providers::Names::of_one(&p),
    ))
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
pub(super) async fn verify_for_read(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
) -> Result<()> {
    let Some(rec) = state.store.get_credential(caller.account_id, id).await? else {
        return Ok(());
    };
    let provider = providers::by_id(
        state.store.as_ref(),
        caller.account_id,
        rec.auth.provider_id,
    )
    .await?;
    match credential_seal::open(&state.keys, rec, provider.as_ref()).await {
        Ok(_) => Ok(()),
        Err(ReadError::Other(e)) => Err(e),
        Err(ReadError::Integrity(field)) => {
            let detail = format!("field {field}");
            integrity_failed(state, caller, rid, AuditAction::AuthRead, id, &detail).await;
            Err(integrity_error())
        }
    }
}

/// The stored credential an update builds on, verified: its record and the plaintext of the
/// fields it keeps. A credential that fails its integrity check can only be replaced whole.
async fn current_for_update(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
) -> Result<(CredentialRecord, Option<Vec<(String, SecretBytes)>>)> {
    let Some(rec) = state.store.get_credential(caller.account_id, id).await? else {
        return match state.store.get_auth(caller.account_id, id).await? {
            Some(a) if a.kind() == AuthKind::ApiToken => Err(Error::invalid(
                "API tokens cannot be updated; create a new token instead",
            )),
            _ => Err(Error::NotFound),
        };
    };
    let provider = providers::by_id(
        state.store.as_ref(),
        caller.account_id,
        rec.auth.provider_id,
    )
    .await?;
    match credential_seal::open(&state.keys, rec.clone(), provider.as_ref()).await {
        Ok(o) => Ok((o.record, Some(o.fields))),
        Err(ReadError::Other(e)) => Err(e),
        Err(ReadError::Integrity(field)) => {
            let detail = format!("field {field}; only a complete re-entry is accepted");
            integrity_failed(state, caller, rid, AuditAction::AuthUpdate, id, &detail).await;
            Ok((rec, None))
        }
    }
}

/// Updates credential `id`: given parts replace, the rest are kept — unless the provider
/// changes, in which case the old provider's secrets do not carry over, or the stored
/// credential failed its integrity check, in which case nothing of it is trusted and the
/// body must be complete. The generation compare-and-swap is the store's.
pub async fn update(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: AuthId,
    mut input: CredentialInput,
) -> Result<AuthView> {
    let (current, stored) = current_for_update(state, caller, rid, id).await?;
    let (p, provider_changed) = match &input.provider {
        Some(key) => {
            let p = usable_provider(state, caller, key.as_ref()).await?;
            let changed = p.id != current.auth.provider_id;
            (p, changed)
        }
        None => {
            let p = providers::by_id(
                state.store.as_ref(),
                caller.account_id,
                current.auth.provider_id,
            )
            .await?
            .ok_or_else(|| {
                Error::invalid("provider_id: the credential's provider no longer exists")
            })?;
            (p, false)
        }
    };
    let given = input.take_secrets();
    let given_names = names_of(&given);
    let kept: Vec<(String, SecretBytes)> = match stored {
        Some(fields) if !provider_changed => fields
            .into_iter()
            .filter(|(f, _)| !given_names.contains(f))
            .collect(),
        Some(_) => Vec::new(),
        None => {
            if check_fields(&p, &given_names).is_err() {
                return Err(integrity_error());
            }
            Vec::new()
        }
    };
    let mut all = kept;
    let replaced = field_list(&given);
    all.extend(given);
    all.sort_by(|a, b| a.0.cmp(&b.0));
    check_fields(&p, &names_of(&all))?;
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
    let entry = audit::By::caller(state, caller, rid).entry(
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
                name: input.name.map(String::from),
                label: input.label.map(String::from),
                description: input.description.map(String::from),
                expected_generation: current.generation,
                incarnation,
                secrets,
            },
            state.clock.now_ms(),
            Audit::Entry(entry),
        )
        .await?
        .ok_or(Error::NotFound)?;
    tracing::info!(auth = %auth.id, "credential updated");
    Ok(AuthView::new(
        state,
        Arc::new(auth),
        &providers::Names::of_one(&p),
    ))
}
