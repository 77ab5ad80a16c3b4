//! The key ring at run time and the operator operations behind `authd keys`.
//!
//! Hierarchy: the master key (never in the database) derives a key-encryption key; data keys
//! are random, wrapped under that KEK and stored in `data_keys`; each secret field is sealed
//! with the current data key (AES-256-GCM, fresh nonce, AAD = account, auth, field) and stored
//! with the key id. See `docs/credentials.md`.
//!
//! [`KeyManager`] holds the unwrapped ring. Before every seal it asks the store for the
//! current key id and reloads the ring when it changed, so a rotation done by another process
//! (`authd keys rotate`) is used for new writes without a restart. An open that names a key
//! the ring lacks reloads once. Plaintext only ever exists inside [`SecretBytes`].

use std::sync::{Arc, RwLock};

use authd_core::clock::Clock;
use authd_core::credential::{DataKeyRecord, StoredSecret};
use authd_core::ids::{AccountId, AuthId};
use authd_core::master_key::MasterRewrap;
use authd_core::store::Store;
use authd_core::{Error, Result};
use authd_crypto::{Aad, CryptoError, KeyRing, KeyWrapper, Sealed, SecretBytes, WrappedKey};

/// The running key ring.
pub struct KeyManager {
    store: Arc<dyn Store>,
    wrapper: KeyWrapper,
    ring: RwLock<Arc<KeyRing>>,
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
    store.add_data_key(rec, true, true).await?;
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
        })
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

    /// The ring to seal with: reloaded first if the store's current key changed.
    async fn ring_for_write(&self) -> Result<Arc<KeyRing>> {
        let ring = self.snapshot()?;
        match self.store.current_data_key_id().await? {
            Some(id) if id != ring.current_id() => self.reload().await,
            _ => Ok(ring),
        }
    }

    /// Seals one field of a credential under the current data key.
    pub async fn seal(
        &self,
        account: AccountId,
        auth: AuthId,
        field: &str,
        plaintext: &[u8],
    ) -> Result<StoredSecret> {
        let ring = self.ring_for_write().await?;
        seal_with(&ring, account, auth, field, plaintext)
    }

    /// Seals several fields with one ring (one current-key check).
    pub async fn seal_all(
        &self,
        account: AccountId,
        auth: AuthId,
        fields: &[(String, SecretBytes)],
    ) -> Result<Vec<StoredSecret>> {
        let ring = self.ring_for_write().await?;
        fields
            .iter()
            .map(|(f, v)| seal_with(&ring, account, auth, f, v.expose()))
            .collect()
    }

    /// Opens one stored field. `Err(Invalid)`-free: a wrong AAD or tampered row is
    /// [`OpenError::Integrity`], which callers must report without detail.
    pub async fn open(
        &self,
        account: AccountId,
        auth: AuthId,
        s: &StoredSecret,
    ) -> std::result::Result<SecretBytes, OpenError> {
        let ring = self.snapshot().map_err(OpenError::Other)?;
        match open_with(&ring, account, auth, s) {
            Err(OpenError::UnknownKey) => {
                let ring = self.reload().await.map_err(OpenError::Other)?;
                open_with(&ring, account, auth, s)
            }
            other => other,
        }
    }

    /// The current key id as this process sees it (after a possible reload).
    pub async fn current_key_id(&self) -> Result<String> {
        Ok(self.ring_for_write().await?.current_id().to_owned())
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
    account: AccountId,
    auth: AuthId,
    field: &str,
    plaintext: &[u8],
) -> Result<StoredSecret> {
    let (a, b) = (account.to_string(), auth.to_string());
    let aad = Aad {
        account_id: &a,
        auth_id: &b,
        field,
    };
    let s = ring.seal(&aad, plaintext).map_err(crypto_err)?;
    Ok(StoredSecret {
        field: field.to_owned(),
        key_id: s.key_id,
        nonce: s.nonce.to_vec(),
        ciphertext: s.ciphertext,
    })
}

fn open_with(
    ring: &KeyRing,
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
    let nonce = <[u8; 12]>::try_from(s.nonce.as_slice()).map_err(|_| OpenError::Integrity)?;
    let sealed = Sealed {
        key_id: s.key_id.clone(),
        nonce,
        ciphertext: s.ciphertext.clone(),
    };
    ring.open(&aad, &sealed).map_err(|e| match e {
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
        )
        .await?;
    crate::audit::system(store, clock, "keys.rotate", &id, "new current data key").await;
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
    store
        .rewrap_master(MasterRewrap {
            data_keys,
            token_key: (token_key, token_key_new),
        })
        .await?;
    crate::audit::system(
        store,
        clock,
        "keys.rotate_master",
        "master",
        &format!("rewrapped {n} data keys and the token-hash key under a new master key"),
    )
    .await;
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

/// `authd keys rewrap`: re-encrypts every field not under the current key, in batches,
/// online (compare-and-swap per field) and resumable (a rerun continues with what is left).
/// Fields that fail to decrypt are left alone and counted in `remaining`.
pub async fn rewrap(
    store: Arc<dyn Store>,
    wrapper: KeyWrapper,
    clock: &dyn Clock,
    batch: u32,
    mut progress: impl FnMut(RewrapProgress),
) -> Result<RewrapProgress> {
    let keys = KeyManager::load(store.clone(), wrapper, clock)
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("{e:#}")))?;
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
        for at in rows {
            match keys.open(at.account_id, at.auth_id, &at.secret).await {
                Ok(plain) => {
                    let ring = keys.snapshot()?;
                    let new = seal_with(
                        &ring,
                        at.account_id,
                        at.auth_id,
                        &at.secret.field,
                        plain.expose(),
                    )?;
                    if store.replace_secret(&at, new).await? {
                        p.rewrapped += 1;
                    } else {
                        p.raced += 1;
                    }
                }
                Err(OpenError::Other(e)) => return Err(e),
                Err(_) => stuck += 1,
            }
        }
        p.remaining = stuck;
        progress(p);
    }
    p.remaining = stuck;
    crate::audit::system(
        store.as_ref(),
        clock,
        "keys.rewrap",
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
    /// How many secret fields it seals.
    pub secrets: u64,
}

/// `authd keys status`: ids, ages and counts — never material.
pub async fn status(store: &dyn Store) -> Result<Vec<KeyStatus>> {
    let counts = store.secret_counts_by_key().await?;
    Ok(store
        .list_data_keys()
        .await?
        .into_iter()
        .map(|k| KeyStatus {
            secrets: counts
                .iter()
                .find(|(id, _)| *id == k.id)
                .map(|(_, n)| *n)
                .unwrap_or(0),
            id: k.id,
            created_ms: k.created_ms,
            current: k.current,
        })
        .collect())
}
