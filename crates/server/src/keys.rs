//! The key ring at run time and the operator operations behind `authd keys`.
//!
//! Hierarchy: the master key (never in the database) derives a key-encryption key; data keys
//! are random, wrapped under that KEK and stored in `data_keys`; each secret field is sealed
//! with the current data key (AES-256-GCM, fresh nonce, AAD = the credential's whole binding,
//! built in `credential_seal`; v1 rows: account, auth, field) and stored with the key id. See
//! `docs/credentials.md`.
//!
//! [`KeyManager`] holds the unwrapped ring. Before every seal it reserves the seal under its
//! current key id in the store, which refuses when that key is no longer current; the ring is
//! then reloaded, so a rotation done by another process (`authd keys rotate`) is used for new
//! writes without a restart. An open that names a key
//! the ring lacks reloads once. Plaintext only ever exists inside [`SecretBytes`].
//!
//! Data-key lifecycle (docs/credentials.md, "Data-key lifecycle"): every seal is first
//! reserved in the store ([`KeyStore::reserve_seals`], its own committed transaction), so the
//! per-key seal count never falls behind the seals made, across crashes and nodes; a key is
//! replaced automatically when its count reaches the seal budget; `authd keys destroy`
//! removes a retired key no secret references.
//!
//! [`KeyStore::reserve_seals`]: authd_core::store::KeyStore::reserve_seals

use std::sync::{Arc, RwLock};

use authd_core::audit::{Audit, AuditAction};
use authd_core::clock::{Clock, SystemClock};
use authd_core::credential::{DataKeyRecord, KeyDestroy, StoredSecret};
use authd_core::ids::{AccountId, AuthId};
use authd_core::master_key::MasterRewrap;
use authd_core::store::Store;
use authd_core::{Error, Result};
use authd_crypto::{
    Aad, CredentialBinding, CryptoError, KeyRing, KeyWrapper, Sealed, SecretAad, SecretBytes,
    WrappedKey,
};

use crate::audit::By;

/// Default seal budget of a data key: 2^30, a quarter of the 2^32 seals that random 96-bit
/// nonces allow under one AES-GCM key (NIST SP 800-38D, 8.3).
pub const DEFAULT_SEAL_BUDGET: u64 = 1 << 30;
/// The largest seal budget accepted: the SP 800-38D limit itself.
pub const MAX_SEAL_BUDGET: u64 = 1 << 32;

/// Validates a configured seal budget (1 to [`MAX_SEAL_BUDGET`]).
pub fn check_seal_budget(budget: u64) -> anyhow::Result<u64> {
    anyhow::ensure!(
        (1..=MAX_SEAL_BUDGET).contains(&budget),
        "data_key_seal_budget must be from 1 to {MAX_SEAL_BUDGET} (2^32, the AES-GCM limit \
         for random nonces)"
    );
    Ok(budget)
}

/// Reservations that grant nothing in a row before a seal gives up (each one reloads the
/// ring or rotates the key, so more than a few means the store is not converging).
const MAX_IDLE_RESERVATIONS: u32 = 8;

/// The running key ring.
pub struct KeyManager {
    store: Arc<dyn Store>,
    wrapper: KeyWrapper,
    ring: RwLock<Arc<KeyRing>>,
    /// Seals a data key may make before it is replaced.
    budget: u64,
    /// Dates automatically rotated keys and their audit entries.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyManager(<hidden>)")
    }
}

pub(crate) fn to_wrapped(k: &DataKeyRecord) -> WrappedKey {
    WrappedKey {
        id: k.id.clone(),
        created_ms: k.created_ms,
        wrapped: k.wrapped.clone(),
    }
}

fn crypto_err(e: CryptoError) -> Error {
    // Crypto errors name key ids at most, never material; they are still only logged.
    Error::internal(anyhow::anyhow!("{e}"))
}

/// Creates the first data key if the store has none (safe against a concurrent start).
pub async fn ensure_initialised(
    store: &dyn Store,
    wrapper: &KeyWrapper,
    clock: &dyn Clock,
) -> Result<()> {
    if store.current_data_key_id().await?.is_some() {
        return Ok(());
    }
    let k = wrapper.generate_data_key(clock.now_ms());
    let rec = DataKeyRecord {
        id: k.id,
        created_ms: k.created_ms,
        wrapped: k.wrapped,
        current: true,
    };
    // The bootstrap key of a new store, like the rest of provisioning, is not audited.
    store
        .add_data_key(rec, true, true, authd_core::audit::Audit::None)
        .await?;
    Ok(())
}

async fn load_ring(store: &dyn Store, wrapper: &KeyWrapper) -> Result<KeyRing> {
    let keys = store.list_data_keys().await?;
    let current = keys
        .iter()
        .find(|k| k.current)
        .map(|k| k.id.clone())
        .ok_or_else(|| Error::internal(anyhow::anyhow!("no current data key")))?;
    let wrapped: Vec<WrappedKey> = keys.iter().map(to_wrapped).collect();
    KeyRing::new(wrapper, &wrapped, &current).map_err(crypto_err)
}

impl KeyManager {
    /// Loads (initialising if needed) the ring. Fails if the master key cannot unwrap the
    /// stored data keys — the wrong master key must stop start-up, not corrupt writes.
    pub async fn load(
        store: Arc<dyn Store>,
        wrapper: KeyWrapper,
        clock: &dyn Clock,
    ) -> anyhow::Result<Self> {
        ensure_initialised(store.as_ref(), &wrapper, clock).await?;
        let ring = load_ring(store.as_ref(), &wrapper)
            .await
            .map_err(|e| anyhow::anyhow!("loading the data key ring: {e:#}"))?;
        Ok(Self {
            store,
            wrapper,
            ring: RwLock::new(Arc::new(ring)),
            budget: DEFAULT_SEAL_BUDGET,
            clock: Arc::new(SystemClock),
        })
    }

    /// Sets the seal budget (see [`check_seal_budget`]) and the clock that dates keys rotated
    /// when it is reached.
    pub fn with_seal_budget(mut self, budget: u64, clock: Arc<dyn Clock>) -> Self {
        self.budget = budget.clamp(1, MAX_SEAL_BUDGET);
        self.clock = clock;
        self
    }

    fn snapshot(&self) -> Result<Arc<KeyRing>> {
        self.ring
            .read()
            .map(|r| r.clone())
            .map_err(|_| Error::internal(anyhow::anyhow!("key ring lock poisoned")))
    }

    async fn reload(&self) -> Result<Arc<KeyRing>> {
        let ring = Arc::new(load_ring(self.store.as_ref(), &self.wrapper).await?);
        let mut guard = self
            .ring
            .write()
            .map_err(|_| Error::internal(anyhow::anyhow!("key ring lock poisoned")))?;
        *guard = ring.clone();
        tracing::info!(current = ring.current_id(), "data key ring reloaded");
        Ok(ring)
    }

    /// Seals every `(field, plaintext)` of a credential under the current data key, bound to
    /// `binding`, reserving their seals in one store call (normally one key).
    pub async fn seal_bound(
        &self,
        binding: &CredentialBinding,
        fields: &[(&str, &[u8])],
    ) -> Result<Vec<StoredSecret>> {
        let rings = self.reserve(fields.len()).await?;
        fields
            .iter()
            .zip(rings)
            .map(|((f, v), ring)| seal_with(&ring, &binding.field(f), f, v))
            .collect()
    }

    /// The only way to a ring to seal with (so that no seal goes uncounted): reserves `n`
    /// seals in the store before they are made and returns the ring to make each one with (exactly `n`; a budget reached midway splits them over two keys). A ring
    /// whose current key is no longer current in the store is reloaded (a rotation by
    /// another process); a key whose count reaches the budget is rotated at once, so the
    /// next seal uses a fresh key.
    async fn reserve(&self, n: usize) -> Result<Vec<Arc<KeyRing>>> {
        let mut rings = Vec::with_capacity(n);
        let mut idle = 0;
        while rings.len() < n {
            let ring = self.snapshot()?;
            let left = u64::try_from(n - rings.len()).unwrap_or(u64::MAX);
            let grant = self
                .store
                .reserve_seals(ring.current_id(), left, self.budget)
                .await?;
            match grant {
                None => {
                    self.reload().await?;
                }
                Some(g) => {
                    let granted = usize::try_from(g.granted).unwrap_or(0);
                    rings.extend(std::iter::repeat_n(ring.clone(), granted));
                    if g.seals >= self.budget {
                        self.rotate_spent(ring.current_id(), g.seals).await?;
                    }
                    if granted > 0 {
                        idle = 0;
                        continue;
                    }
                }
            }
            idle += 1;
            if idle >= MAX_IDLE_RESERVATIONS {
                return Err(Error::internal(anyhow::anyhow!(
                    "could not reserve a seal under any data key"
                )));
            }
        }
        Ok(rings)
    }

    /// Replaces the data key `spent` (its count reached the budget) by a fresh current key,
    /// unless another process did first, and reloads the ring. Audited as actor `authd`.
    async fn rotate_spent(&self, spent: &str, seals: u64) -> Result<()> {
        let k = self.wrapper.generate_data_key(self.clock.now_ms());
        let id = k.id.clone();
        let rec = DataKeyRecord {
            id: k.id,
            created_ms: k.created_ms,
            wrapped: k.wrapped,
            current: true,
        };
        let detail = format!(
            "automatic: data key {spent} reached its seal budget ({seals} of {} seals)",
            self.budget
        );
        let entry =
            By::keyring(self.clock.as_ref(), "authd").entry(AuditAction::KeysRotate, &id, &detail);
        if self
            .store
            .rotate_data_key_from(spent, rec, Audit::Entry(entry))
            .await?
        {
            tracing::info!(old = spent, new = %id, seals, "data key seal budget reached; rotated");
        }
        self.reload().await.map(|_| ())
    }

    /// Opens one row of a credential sealed under `binding`; errors as [`KeyManager::open`].
    pub async fn open_bound(
        &self,
        binding: &CredentialBinding,
        s: &StoredSecret,
    ) -> std::result::Result<SecretBytes, OpenError> {
        self.open_aad(&binding.field(&s.field), s).await
    }

    /// Opens one stored field written before migration 0006 (per-field binding: account,
    /// auth, field). A wrong AAD or tampered row is [`OpenError::Integrity`], which callers
    /// must report without detail.
    pub async fn open(
        &self,
        account: AccountId,
        auth: AuthId,
        s: &StoredSecret,
    ) -> std::result::Result<SecretBytes, OpenError> {
        let (a, b) = (account.to_string(), auth.to_string());
        let aad = Aad {
            account_id: &a,
            auth_id: &b,
            field: &s.field,
        };
        self.open_aad(&aad, s).await
    }

    async fn open_aad(
        &self,
        aad: &impl SecretAad,
        s: &StoredSecret,
    ) -> std::result::Result<SecretBytes, OpenError> {
        let ring = self.snapshot().map_err(OpenError::Other)?;
        match open_with(&ring, aad, s) {
            Err(OpenError::UnknownKey) => {
                let ring = self.reload().await.map_err(OpenError::Other)?;
                open_with(&ring, aad, s)
            }
            other => other,
        }
    }

    /// The current key id as this process sees it (after a possible reload). Not a licence
    /// to seal: every seal goes through `KeyManager::reserve`.
    pub async fn current_key_id(&self) -> Result<String> {
        let ring = self.snapshot()?;
        let ring = match self.store.current_data_key_id().await? {
            Some(id) if id != ring.current_id() => self.reload().await?,
            _ => ring,
        };
        Ok(ring.current_id().to_owned())
    }
}

/// Why a stored field could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The ciphertext does not authenticate for this account/auth/field (moved, swapped or
    /// tampered) — an integrity failure.
    Integrity,
    /// The row names a key that is not in the store.
    UnknownKey,
    /// Anything else (store unreachable …).
    Other(Error),
}

fn seal_with(
    ring: &KeyRing,
    aad: &impl SecretAad,
    field: &str,
    plaintext: &[u8],
) -> Result<StoredSecret> {
    let s = ring.seal(aad, plaintext).map_err(crypto_err)?;
    Ok(StoredSecret {
        field: field.to_owned(),
        key_id: s.key_id,
        nonce: s.nonce.to_vec(),
        ciphertext: s.ciphertext,
    })
}

fn open_with(
    ring: &KeyRing,
    aad: &impl SecretAad,
    s: &StoredSecret,
) -> std::result::Result<SecretBytes, OpenError> {
    let nonce = <[u8; 12]>::try_from(s.nonce.as_slice()).map_err(|_| OpenError::Integrity)?;
    let sealed = Sealed {
        key_id: s.key_id.clone(),
        nonce,
        ciphertext: s.ciphertext.clone(),
    };
    ring.open(aad, &sealed).map_err(|e| match e {
        CryptoError::UnknownKey(_) => OpenError::UnknownKey,
        _ => OpenError::Integrity,
    })
}

/// `authd keys rotate`: adds a new data key and makes it current. Running servers pick it up
/// on their next write. Returns the new key id.
pub async fn rotate(store: &dyn Store, wrapper: &KeyWrapper, clock: &dyn Clock) -> Result<String> {
    // Refuse to rotate under a master key that cannot open the existing keys: the new key
    // would be unreadable by the servers that hold the right one.
    for k in store.list_data_keys().await? {
        wrapper.check(&to_wrapped(&k)).map_err(crypto_err)?;
    }
    let k = wrapper.generate_data_key(clock.now_ms());
    let id = k.id.clone();
    let entry =
        By::keyring(clock, "cli").entry(AuditAction::KeysRotate, &id, "new current data key");
    store
        .add_data_key(
            DataKeyRecord {
                id: k.id,
                created_ms: k.created_ms,
                wrapped: k.wrapped,
                current: true,
            },
            true,
            false,
            Audit::Entry(entry),
        )
        .await?;
    Ok(id)
}

/// `authd keys rotate-master`: every data key and the token-hash key, unwrapped under `old`
/// (each must open: the old master key is checked against all of them first) and wrapped
/// under `new`, written in one transaction that fails if any of them changed meanwhile.
/// Token hashes and sealed secrets are untouched, so every API token stays valid. Returns the
/// number of data keys rewrapped.
pub async fn rotate_master(
    store: &dyn Store,
    old: &KeyWrapper,
    new: &KeyWrapper,
    clock: &dyn Clock,
) -> Result<usize> {
    let token_key = store
        .token_hash_key()
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("the store has no token-hash key")))?;
    let token_key_new = old.rewrap_token_key(&token_key, new).map_err(crypto_err)?;
    let mut data_keys = Vec::new();
    for k in store.list_data_keys().await? {
        let moved = old
            .rewrap_data_key(&to_wrapped(&k), new)
            .map_err(crypto_err)?;
        data_keys.push((k.id, k.wrapped, moved.wrapped));
    }
    let n = data_keys.len();
    let entry = By::keyring(clock, "cli").entry(
        AuditAction::KeysRotateMaster,
        "master",
        &format!("rewrapped {n} data keys and the token-hash key under a new master key"),
    );
    store
        .rewrap_master(
            MasterRewrap {
                data_keys,
                token_key: (token_key, token_key_new),
            },
            Audit::Entry(entry),
        )
        .await?;
    Ok(n)
}

/// Progress of a rewrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RewrapProgress {
    /// Fields re-encrypted so far.
    pub rewrapped: u64,
    /// Fields skipped because an API write replaced them meanwhile.
    pub raced: u64,
    /// Fields left under old keys when this run stopped.
    pub remaining: u64,
}

/// What rewrapping one stored field did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rewrapped {
    /// Resealed under the current key (for a pre-0006 credential: the whole credential
    /// resealed under its new binding).
    Done,
    /// An API write or delete replaced it meanwhile.
    Raced,
    /// It failed to open (integrity failure); left alone.
    Unreadable,
}

/// `authd keys rewrap`: re-encrypts every field not under the current key, in batches,
/// online (compare-and-swap per field) and resumable (a rerun continues with what is left).
/// Fields that fail to decrypt are left alone and counted in `remaining`.
pub async fn rewrap(
    store: Arc<dyn Store>,
    wrapper: KeyWrapper,
    clock: &dyn Clock,
    batch: u32,
    progress: impl FnMut(RewrapProgress),
) -> Result<RewrapProgress> {
    rewrap_within(store, wrapper, clock, DEFAULT_SEAL_BUDGET, batch, progress).await
}

/// [`rewrap`] under a configured seal budget (`authd keys rewrap` passes the configured one).
/// Should the budget rotate the key midway, the rest goes under the new key and what was
/// rewrapped before stays under the intermediate one until the next run.
pub async fn rewrap_within(
    store: Arc<dyn Store>,
    wrapper: KeyWrapper,
    clock: &dyn Clock,
    budget: u64,
    batch: u32,
    mut progress: impl FnMut(RewrapProgress),
) -> Result<RewrapProgress> {
    let keys = KeyManager::load(store.clone(), wrapper, clock)
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("{e:#}")))?
        .with_seal_budget(budget, Arc::new(SystemClock));
    let current = keys.current_key_id().await?;
    let mut p = RewrapProgress::default();
    let mut stuck = 0u64;
    let mut after: Option<(AuthId, String)> = None;
    loop {
        let rows = store
            .secrets_not_under(&current, after.clone(), batch)
            .await?;
        let Some(last) = rows.last() else { break };
        after = Some((last.auth_id, last.secret.field.clone()));
        // Each reseal reserves its seals through `KeyManager::seal_bound` (an unreadable row
        // reserves nothing: the count may run ahead of the seals, never behind).
        for at in rows {
            match crate::credential_seal::rewrap_one(store.as_ref(), &keys, &at).await? {
                Rewrapped::Done => p.rewrapped += 1,
                Rewrapped::Raced => p.raced += 1,
                Rewrapped::Unreadable => stuck += 1,
            }
        }
        p.remaining = stuck;
        progress(p);
    }
    p.remaining = stuck;
    crate::audit::system(
        store.as_ref(),
        clock,
        AuditAction::KeysRewrap,
        &current,
        &format!("rewrapped {} fields, {} unreadable", p.rewrapped, stuck),
    )
    .await;
    Ok(p)
}

/// One row of `authd keys status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// Key id.
    pub id: String,
    /// Creation time (Unix ms).
    pub created_ms: i64,
    /// Whether it is current.
    pub current: bool,
    /// How many secret fields it seals (rows referencing it).
    pub secrets: u64,
    /// How many seals it has made or reserved (never fewer than it made).
    pub seals: u64,
}

/// `authd keys status`: ids, ages and counts — never material.
pub async fn status(store: &dyn Store) -> Result<Vec<KeyStatus>> {
    let counts = store.secret_counts_by_key().await?;
    let seals = store.seal_counts_by_key().await?;
    let of = |counts: &[(String, u64)], id: &str| {
        counts
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    Ok(store
        .list_data_keys()
        .await?
        .into_iter()
        .map(|k| KeyStatus {
            secrets: of(&counts, &k.id),
            seals: of(&seals, &k.id),
            id: k.id,
            created_ms: k.created_ms,
            current: k.current,
        })
        .collect())
}

/// `authd keys destroy`: removes a retired data key that no secret row references (one store
/// transaction; refused for the current key and for a referenced one, with the count). Once
/// destroyed, backups taken before can no longer be decrypted with it. Every attempt is
/// audited as actor `operator`: `ok` in the destroying transaction, `refused` appended.
pub async fn destroy(store: &dyn Store, clock: &dyn Clock, key_id: &str) -> Result<KeyDestroy> {
    let entry = By::keyring(clock, "operator").entry(
        AuditAction::KeysDestroy,
        key_id,
        "retired data key destroyed",
    );
    let outcome = store.destroy_data_key(key_id, Audit::Entry(entry)).await?;
    let refused = match outcome {
        KeyDestroy::Destroyed => return Ok(outcome),
        KeyDestroy::NotFound => "no such data key".to_owned(),
        KeyDestroy::Current => "the current data key".to_owned(),
        KeyDestroy::Referenced(n) => format!("still seals {n} secrets"),
    };
    crate::audit::keyring(
        store,
        clock,
        "operator",
        AuditAction::KeysDestroy,
        key_id,
        "refused",
        &refused,
    )
    .await;
    Ok(outcome)
}
