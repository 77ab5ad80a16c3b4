//! Credential integrity beyond the row: sealing a credential's fields together and opening
//! them only if they are exactly the set that the last write produced.
//!
//! Every row of a credential (each secret field plus the empty [`FIELD_MANIFEST`] row) is
//! sealed with the same [`CredentialBinding`] — account, auth id, provider, incarnation
//! (random per create), generation (incremented by every write) and the sorted set of field
//! names — plus its own field name. So a row rolled back to an older write, rows of a deleted
//! credential re-inserted under a re-created id, a dropped or added row and a re-labelled
//! provider each make an open fail: [`open`] fails closed with [`ReadError::Integrity`].
//! Every write reseals all rows for the next generation ([`seal_next`]); the store applies it
//! only if the generation did not move meanwhile.
//!
//! Credentials written before migration 0006 (generation 0) carry the per-field binding only.
//! They are opened with it (and checked against the provider's required fields), and
//! resealed under a binding on their first worker read ([`migrate_legacy`]), their next
//! write, or `authd keys rewrap` ([`rewrap_one`]).
//!
//! Must not: log or return plaintext; decide HTTP answers (callers map [`ReadError`]).

use authd_core::credential::{
    CredentialPatch, CredentialRecord, SecretLocation, StoredSecret, CONFIG_PREFIX, FIELD_MANIFEST,
};
use authd_core::ids::{AccountId, AuthId, ProviderId};
use authd_core::provider::Provider;
use authd_core::store::Store;
use authd_core::{Error, Result};
use authd_crypto::{CredentialBinding, SecretBytes};

use crate::keys::{KeyManager, OpenError, Rewrapped};

/// What a client is told when a credential fails its integrity check.
pub const INTEGRITY_MESSAGE: &str = "Credential failed its integrity check; re-enter it";

/// Why a credential could not be opened.
#[derive(Debug)]
pub enum ReadError {
    /// Its rows do not authenticate as one credential; `field` names the first failing row
    /// when there is one (a field name is not secret).
    Integrity(String),
    /// Anything else (store unreachable …).
    Other(Error),
}

impl From<Error> for ReadError {
    fn from(e: Error) -> Self {
        ReadError::Other(e)
    }
}

/// A verified credential: its record and every secret field's plaintext (the manifest row
/// is verified, not returned), in field-name order.
#[derive(Debug)]
pub struct Opened {
    /// The record as read.
    pub record: CredentialRecord,
    /// `(field, plaintext)` of every secret field.
    pub fields: Vec<(String, SecretBytes)>,
}

/// A new random incarnation (128 bits, hex).
pub fn new_incarnation() -> String {
    AuthId::generate().to_string()
}

/// The binding of a credential whose rows are `fields` (the manifest is added).
pub fn binding<'a>(
    account: AccountId,
    id: AuthId,
    provider: ProviderId,
    incarnation: &str,
    generation: i64,
    fields: impl IntoIterator<Item = &'a str>,
) -> Result<CredentialBinding> {
    let generation = u64::try_from(generation)
        .map_err(|_| Error::internal(anyhow::anyhow!("negative credential generation")))?;
    let mut names: Vec<String> = fields.into_iter().map(str::to_owned).collect();
    names.push(FIELD_MANIFEST.to_owned());
    Ok(CredentialBinding::new(
        account.to_string(),
        id.to_string(),
        provider.to_string(),
        incarnation.to_owned(),
        generation,
        names,
    ))
}

/// Seals `fields` (and the manifest) for `generation`: what a create (generation 1) or a
/// write on top of generation `generation - 1` stores.
pub async fn seal_next(
    keys: &KeyManager,
    account: AccountId,
    id: AuthId,
    provider: ProviderId,
    incarnation: &str,
    generation: i64,
    fields: &[(String, SecretBytes)],
) -> Result<Vec<StoredSecret>> {
    let b = binding(
        account,
        id,
        provider,
        incarnation,
        generation,
        fields.iter().map(|(f, _)| f.as_str()),
    )?;
    let mut rows: Vec<(&str, &[u8])> = fields
        .iter()
        .map(|(f, v)| (f.as_str(), v.expose()))
        .collect();
    rows.push((FIELD_MANIFEST, &[]));
    keys.seal_bound(&b, &rows).await
}

fn integrity(field: &str) -> ReadError {
    ReadError::Integrity(field.to_owned())
}

fn opened(
    r: std::result::Result<SecretBytes, OpenError>,
    field: &str,
) -> Result<SecretBytes, ReadError> {
    r.map_err(|e| match e {
        OpenError::Other(e) => ReadError::Other(e),
        // A row naming a key the store no longer holds cannot be verified either.
        OpenError::Integrity | OpenError::UnknownKey => integrity(field),
    })
}

/// Opens and verifies a credential. `provider` is its provider as resolved by the caller
/// (`None` if it no longer exists); a pre-0006 credential missing a field its provider
/// requires is an integrity failure too (a dropped row), since its rows are bound one by one.
pub async fn open(
    keys: &KeyManager,
    record: CredentialRecord,
    provider: Option<&Provider>,
) -> std::result::Result<Opened, ReadError> {
    let (account, id) = (record.auth.account_id, record.auth.id);
    let mut fields = Vec::with_capacity(record.secrets.len());
    if record.generation == 0 {
        for s in &record.secrets {
            let plain = opened(keys.open(account, id, s).await, &s.field)?;
            fields.push((s.field.clone(), plain));
        }
        if let Some(p) = provider {
            for c in p.config.iter().filter(|c| !c.optional) {
                let f = format!("{CONFIG_PREFIX}{}", c.name);
                if !fields.iter().any(|(n, _)| *n == f) {
                    return Err(integrity(&f));
                }
            }
        }
        return Ok(Opened { record, fields });
    }
    if record.incarnation.is_empty() {
        return Err(integrity(FIELD_MANIFEST));
    }
    if !record.secrets.iter().any(|s| s.field == FIELD_MANIFEST) {
        return Err(integrity(FIELD_MANIFEST));
    }
    let b = binding(
        account,
        id,
        record.auth.provider_id,
        &record.incarnation,
        record.generation,
        record
            .secrets
            .iter()
            .map(|s| s.field.as_str())
            .filter(|f| *f != FIELD_MANIFEST),
    )?;
    for s in &record.secrets {
        let plain = opened(keys.open_bound(&b, s).await, &s.field)?;
        if s.field == FIELD_MANIFEST {
            if !plain.expose().is_empty() {
                return Err(integrity(FIELD_MANIFEST));
            }
        } else {
            fields.push((s.field.clone(), plain));
        }
    }
    Ok(Opened { record, fields })
}

/// Reseals a verified pre-0006 credential under a binding (new incarnation, generation 1),
/// keeping its `updated` time. Returns whether it did (`false`: not a pre-0006 credential,
/// or another write got there first, which migrated it anyway).
pub async fn migrate_legacy(store: &dyn Store, keys: &KeyManager, o: &Opened) -> Result<bool> {
    let rec = &o.record;
    if rec.generation != 0 {
        return Ok(false);
    }
    let incarnation = new_incarnation();
    let secrets = seal_next(
        keys,
        rec.auth.account_id,
        rec.auth.id,
        rec.auth.provider_id,
        &incarnation,
        1,
        &o.fields,
    )
    .await?;
    let patch = CredentialPatch {
        expected_generation: 0,
        incarnation,
        secrets,
        ..CredentialPatch::default()
    };
    match store
        // Part of an operator's `keys rewrap`, audited as a whole when it ends.
        .update_credential(
            rec.auth.account_id,
            rec.auth.id,
            patch,
            rec.auth.updated_ms,
            authd_core::audit::Audit::None,
        )
        .await
    {
        Ok(done) => {
            if done.is_some() {
                tracing::info!(auth = %rec.auth.id, "credential resealed under its binding");
            }
            Ok(done.is_some())
        }
        Err(Error::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `authd keys rewrap` for one stored row not under the current key: reseals it under the
/// current key with its credential's binding (unchanged generation: the content does not
/// change). A pre-0006 credential is resealed whole under a new binding instead, which also
/// moves it to the current key.
pub async fn rewrap_one(
    store: &dyn Store,
    keys: &KeyManager,
    at: &SecretLocation,
) -> Result<Rewrapped> {
    let Some(rec) = store.get_credential(at.account_id, at.auth_id).await? else {
        return Ok(Rewrapped::Raced);
    };
    // The row as it is now: a write since the listing replaced it (or the whole set).
    if !rec.secrets.contains(&at.secret) {
        return Ok(Rewrapped::Raced);
    }
    let provider =
        crate::services::providers::by_id(store, at.account_id, rec.auth.provider_id).await?;
    let o = match open(keys, rec, provider.as_ref()).await {
        Ok(o) => o,
        Err(ReadError::Integrity(_)) => return Ok(Rewrapped::Unreadable),
        Err(ReadError::Other(e)) => return Err(e),
    };
    let rec = &o.record;
    if rec.generation == 0 {
        return Ok(match migrate_legacy(store, keys, &o).await? {
            true => Rewrapped::Done,
            false => Rewrapped::Raced,
        });
    }
    let b = binding(
        rec.auth.account_id,
        rec.auth.id,
        rec.auth.provider_id,
        &rec.incarnation,
        rec.generation,
        o.fields.iter().map(|(f, _)| f.as_str()),
    )?;
    let plain = match o.fields.iter().find(|(f, _)| *f == at.secret.field) {
        Some((_, v)) => v.expose(),
        None => &[],
    };
    let mut new = keys.seal_bound(&b, &[(&at.secret.field, plain)]).await?;
    let Some(new) = new.pop() else {
        return Ok(Rewrapped::Unreadable);
    };
    Ok(match store.replace_secret(at, new).await? {
        true => Rewrapped::Done,
        false => Rewrapped::Raced,
    })
}
