//! The entity service: upserting uploaded user profiles and reading one, with the account's
//! private fields (`schema_user_private_fields`) removed from reads, and refused as the
//! lookup field, unless the caller holds `entity.pii`.
//!
//! Each upload is audited (`entity.upload`, in the upsert's transaction) with its stream and
//! counts only — how many records and fields — never a key or a value.

use authd_core::audit::{Audit, AuditAction};
use authd_core::roles::Permission;
use authd_core::settings::SettingSlug;
use authd_core::{Error, Result};
use serde_json::{Map, Value};

use crate::audit::{By, RequestId};
use crate::settings;
use crate::state::AppState;
use crate::tokens::Principal;

/// The only entity kind so far.
const USER: &str = "user";
/// Longest accepted key value.
const MAX_KEY: usize = 512;

/// The key of one uploaded profile: a non-empty string or a number, as text.
fn key_of(i: usize, obj: &Map<String, Value>, field: &str) -> Result<String> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_KEY => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(Error::invalid(format!(
            "Record {i} needs a {field:?} field (a non-empty string of at most {MAX_KEY} characters, or a number)"
        ))),
    }
}

/// The audit detail of an upload: the entity kind and counts, never a key or a value.
fn upload_detail(items: &[(String, Value)]) -> String {
    let fields: usize = items
        .iter()
        .map(|(_, v)| v.as_object().map_or(0, Map::len))
        .sum();
    format!("kind {USER}; records {}; fields {fields}", items.len())
}

/// What an upload did.
#[derive(Debug)]
pub struct Uploaded {
    /// Profiles upserted.
    pub count: usize,
    /// The field that keys them (`entity_key_field`).
    pub key_field: String,
}

/// Upserts user profiles uploaded to `stream`, each keyed by the configured key field.
pub async fn upload(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    stream: &str,
    objects: Vec<Map<String, Value>>,
) -> Result<Uploaded> {
    let field = state.config.entity_key_field.as_str();
    let items = objects
        .into_iter()
        .enumerate()
        .map(|(i, o)| Ok((key_of(i, &o, field)?, Value::Object(o))))
        .collect::<Result<Vec<_>>>()?;
    let entry = By::caller(state, caller, rid).entry(
        AuditAction::EntityUpload,
        stream,
        &upload_detail(&items),
    );
    state
        .store
        .upsert_entities(
            caller.account_id,
            USER,
            &items,
            state.clock.now_ms(),
            Audit::Entry(entry),
        )
        .await?;
    tracing::debug!(account = %caller.account_id, stream, count = items.len(), "profiles collected");
    Ok(Uploaded {
        count: items.len(),
        key_field: field.to_owned(),
    })
}

/// The user profile whose `field` is `value`, without the account's private fields unless
/// the caller may read them; looking up by a private field needs that permission too.
pub async fn read_user(
    state: &AppState,
    caller: &Principal,
    field: &str,
    value: &str,
) -> Result<Value> {
    let private = settings::get(
        &state.records,
        caller.account_id,
        SettingSlug::SchemaUserPrivateFields,
    )
    .await?
    .value;
    let private: Vec<&str> = private
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let pii = caller.permissions.contains(Permission::PiiRead);
    if !pii && private.contains(&field) {
        return Err(Error::Forbidden(format!(
            "Not authorized: {field:?} is a private field and this token's roles do not grant entity.pii"
        )));
    }
    let mut profile = state
        .store
        .find_entity(caller.account_id, USER, field, value)
        .await?
        .ok_or(Error::NotFound)?;
    if !pii {
        if let Some(obj) = profile.as_object_mut() {
            for f in &private {
                obj.remove(*f);
            }
        }
    }
    Ok(profile)
}
