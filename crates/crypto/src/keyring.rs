//! Envelope encryption of stored secrets with AES-256-GCM.
//!
//! Owns: wrapping data keys under the key-encryption key derived from the
//! master key ([`KeyWrapper`], [`WrappedKey`]), the in-memory ring of unwrapped
//! data keys ([`KeyRing`]), sealing/opening secrets bound to their storage
//! location ([`Aad`], [`Sealed`]) and the plaintext holder ([`SecretBytes`]).
//!
//! Must not: persist anything (the store saves [`WrappedKey`] and [`Sealed`]),
//! reuse a nonce (every seal draws 96 fresh random bits), expose unwrapped key
//! bytes outside this module, or print key material through `Debug`/errors.

use std::collections::BTreeMap;
use std::io;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::CryptoError;

/// AAD prefix for wrapping a data key; the key id follows.
pub const DATA_KEY_AAD_PREFIX: &[u8] = b"authd/data-key/";
/// Version tag that starts every secret's AAD encoding.
pub const SECRET_AAD_TAG: &[u8] = b"authd/secret/v1";
/// Length of an AES-GCM nonce in bytes.
pub const NONCE_LEN: usize = 12;

type AesNonce = aes_gcm::Nonce<aes_gcm::aead::consts::U12>;

/// Builds an AES-256-GCM instance from raw key bytes.
fn cipher_from(key: &[u8; 32]) -> Aes256Gcm {
    let key: &Key<Aes256Gcm> = key.into();
    Aes256Gcm::new(key)
}

/// Views a 12-byte array as an AES-GCM nonce (no length check needed).
fn as_nonce(nonce: &[u8; NONCE_LEN]) -> &AesNonce {
    nonce.into()
}

/// 96 random bits from the OS; failure of the random source is reported, not panicked on.
fn random_nonce() -> Result<[u8; NONCE_LEN], CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| CryptoError::Io(io::Error::other(e)))?;
    Ok(nonce)
}

fn too_large() -> CryptoError {
    CryptoError::Io(io::Error::new(
        io::ErrorKind::InvalidInput,
        "input too large for AES-GCM",
    ))
}

/// The key-encryption key (KEK) that wraps data keys. `Debug` prints `<hidden>`.
#[derive(Clone)]
pub struct KeyWrapper {
    kek: Aes256Gcm,
}

/// What the store persists for one data key; contains no plaintext key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// Key id, `k_` followed by 16 lowercase hex digits.
    pub id: String,
    /// Creation time in milliseconds since the Unix epoch, as passed by the caller.
    pub created_ms: i64,
    /// `nonce (12 bytes) || ciphertext || tag (16 bytes)` of the 32-byte data key.
    pub wrapped: Vec<u8>,
}

impl KeyWrapper {
    /// Builds a wrapper from a 32-byte KEK (normally derived by
    /// [`crate::MasterKey::key_wrapper`]).
    pub(crate) fn from_kek(kek: &[u8; 32]) -> Self {
        Self {
            kek: cipher_from(kek),
        }
    }

    /// New random 32-byte data key with id `k_<16 lowercase hex>`, wrapped under
    /// the KEK with AAD = `authd/data-key/` + id.
    ///
    /// Uses the OS random source (which aborts via panic inside `rand` only if
    /// the OS cannot supply randomness at all). Encrypting 32 bytes cannot fail;
    /// were it ever to, `wrapped` would be left empty, which fails closed in
    /// [`KeyWrapper::check`] and [`KeyRing::new`].
    pub fn generate_data_key(&self, now_ms: i64) -> WrappedKey {
        let mut id_bytes = [0u8; 8];
        OsRng.fill_bytes(&mut id_bytes);
        let id = format!("k_{}", hex::encode(id_bytes));
        let mut data_key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(data_key.as_mut());
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let wrapped = self.wrap(&id, &data_key, &nonce).unwrap_or_default();
        WrappedKey {
            id,
            created_ms: now_ms,
            wrapped,
        }
    }

    /// The KEK cipher, for wrapping keys other than data keys (see `token_hash`).
    pub(crate) fn kek(&self) -> &Aes256Gcm {
        &self.kek
    }

    /// Re-wrap check: unwraps `k` and returns `Ok(())` if this KEK can open it.
    /// The error names the key id, never material.
    pub fn check(&self, k: &WrappedKey) -> Result<(), CryptoError> {
        self.unwrap_key(k).map(|_| ())
    }

    pub(crate) fn wrap(
        &self,
        id: &str,
        data_key: &[u8; 32],
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        let aad = data_key_aad(id);
        let ciphertext = self
            .kek
            .encrypt(
                as_nonce(nonce),
                Payload {
                    msg: data_key,
                    aad: &aad,
                },
            )
            .map_err(|_| too_large())?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    pub(crate) fn unwrap_key(&self, k: &WrappedKey) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let bad = |why: &str| CryptoError::BadKey(format!("data key {:?} {why}", k.id));
        let (nonce, ciphertext) = k
            .wrapped
            .split_at_checked(NONCE_LEN)
            .ok_or_else(|| bad("is truncated"))?;
        let nonce = <&[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| bad("is truncated"))?;
        let aad = data_key_aad(&k.id);
        let plain = Zeroizing::new(
            self.kek
                .decrypt(
                    as_nonce(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| {
                    bad("cannot be unwrapped with this master key (wrong master key or corrupted)")
                })?,
        );
        let bytes = <[u8; 32]>::try_from(plain.as_slice())
            .map_err(|_| bad("does not unwrap to a 32-byte key"))?;
        Ok(Zeroizing::new(bytes))
    }
}

impl std::fmt::Debug for KeyWrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyWrapper(<hidden>)")
    }
}

fn data_key_aad(id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DATA_KEY_AAD_PREFIX.len() + id.len());
    aad.extend_from_slice(DATA_KEY_AAD_PREFIX);
    aad.extend_from_slice(id.as_bytes());
    aad
}

/// Binds a ciphertext to where it lives: copying it to another row, field or
/// account must fail to decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aad<'a> {
    /// Account that owns the secret.
    pub account_id: &'a str,
    /// Auth method / credential row holding the secret.
    pub auth_id: &'a str,
    /// Name of the field within that row.
    pub field: &'a str,
}

/// What a sealed secret is bound to: encodes the associated data of one seal/open.
/// Implemented by the v1 per-field binding ([`Aad`]) and the v2 whole-credential binding
/// ([`FieldAad`]); the two encodings start with different tags, so they never collide.
pub trait SecretAad {
    /// The associated-data bytes.
    fn encode(&self) -> Result<Vec<u8>, CryptoError>;
}

/// `tag` followed by each part as a u32 big-endian length and its bytes, so no two distinct
/// part lists encode the same way.
fn encode_parts(tag: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, CryptoError> {
    let total = tag.len() + parts.iter().map(|p| 4 + p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(tag);
    for part in parts {
        let len = u32::try_from(part.len()).map_err(|_| too_large())?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    Ok(out)
}

impl SecretAad for Aad<'_> {
    /// `authd/secret/v1` followed by account, auth and field, each length-prefixed.
    fn encode(&self) -> Result<Vec<u8>, CryptoError> {
        let parts = [self.account_id, self.auth_id, self.field].map(str::as_bytes);
        encode_parts(SECRET_AAD_TAG, &parts)
    }
}

/// Version tag of the whole-credential binding (v2).
pub const CREDENTIAL_AAD_TAG: &[u8] = b"authd/credential/v2";

/// Everything one credential's secret rows are bound to together (v2): its account, auth id,
/// provider, incarnation (random per create, so a re-created id never repeats a binding),
/// generation (incremented by every write) and the complete, sorted set of its stored field
/// names. Every row of the credential is sealed with this binding plus its own field name,
/// so a row from another generation or incarnation, a dropped or added row, or another
/// provider makes every open fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialBinding {
    /// Owning account.
    pub account_id: String,
    /// The credential's auth id.
    pub auth_id: String,
    /// Its provider id.
    pub provider_id: String,
    /// Random per credential, fixed for its life.
    pub incarnation: String,
    /// Write counter.
    pub generation: u64,
    /// Every stored field name; sorted and deduplicated by [`CredentialBinding::new`].
    fields: Vec<String>,
}

impl CredentialBinding {
    /// A binding over `fields` (in any order).
    pub fn new(
        account_id: String,
        auth_id: String,
        provider_id: String,
        incarnation: String,
        generation: u64,
        mut fields: Vec<String>,
    ) -> Self {
        fields.sort_unstable();
        fields.dedup();
        Self {
            account_id,
            auth_id,
            provider_id,
            incarnation,
            generation,
            fields,
        }
    }

    /// The field names this binding covers, sorted.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The associated data for sealing/opening `field` of this credential.
    pub fn field<'a>(&'a self, field: &'a str) -> FieldAad<'a> {
        FieldAad {
            binding: self,
            field,
        }
    }
}

/// One row's associated data under a [`CredentialBinding`].
#[derive(Clone, Copy, Debug)]
pub struct FieldAad<'a> {
    binding: &'a CredentialBinding,
    field: &'a str,
}

impl SecretAad for FieldAad<'_> {
    /// `authd/credential/v2`, then account, auth, provider, incarnation, generation (8 bytes
    /// big-endian), the field, the number of fields (4 bytes) and every field name, each
    /// length-prefixed.
    fn encode(&self) -> Result<Vec<u8>, CryptoError> {
        let b = self.binding;
        let generation = b.generation.to_be_bytes();
        let count = u32::try_from(b.fields.len())
            .map_err(|_| too_large())?
            .to_be_bytes();
        let mut parts: Vec<&[u8]> = vec![
            b.account_id.as_bytes(),
            b.auth_id.as_bytes(),
            b.provider_id.as_bytes(),
            b.incarnation.as_bytes(),
            &generation,
            self.field.as_bytes(),
            &count,
        ];
        parts.extend(b.fields.iter().map(String::as_bytes));
        encode_parts(CREDENTIAL_AAD_TAG, &parts)
    }
}

/// An encrypted secret as stored: which data key, the nonce, and ciphertext with tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// Id of the data key that sealed it.
    pub key_id: String,
    /// Random 96-bit AES-GCM nonce.
    pub nonce: [u8; 12],
    /// Ciphertext followed by the 16-byte authentication tag.
    pub ciphertext: Vec<u8>,
}

/// Unwrapped data keys by id plus the id used for new seals.
/// `Debug` prints key ids only.
#[derive(Clone)]
pub struct KeyRing {
    keys: BTreeMap<String, Aes256Gcm>,
    current: String,
}

impl KeyRing {
    /// Unwraps every key; `current` must be one of them.
    ///
    /// Errors: [`CryptoError::BadKey`] naming the first key that fails to unwrap
    /// or a duplicated id; [`CryptoError::UnknownKey`] if `current` is not in `keys`.
    pub fn new(
        wrapper: &KeyWrapper,
        keys: &[WrappedKey],
        current: &str,
    ) -> Result<Self, CryptoError> {
        let mut ring = BTreeMap::new();
        for k in keys {
            let raw = wrapper.unwrap_key(k)?;
            if ring.insert(k.id.clone(), cipher_from(&raw)).is_some() {
                return Err(CryptoError::BadKey(format!(
                    "data key {:?} appears more than once",
                    k.id
                )));
            }
        }
        if !ring.contains_key(current) {
            return Err(CryptoError::UnknownKey(current.to_owned()));
        }
        Ok(Self {
            keys: ring,
            current: current.to_owned(),
        })
    }

    /// Id of the key used by [`KeyRing::seal`].
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Ids of all keys in the ring, in sorted order.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Encrypts `plaintext` under the current key with a fresh random nonce,
    /// bound to `aad`. Fails only if the OS random source fails or the input
    /// exceeds AES-GCM limits (both reported as [`CryptoError::Io`]).
    pub fn seal(&self, aad: &impl SecretAad, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let cipher = self
            .keys
            .get(&self.current)
            .ok_or_else(|| CryptoError::UnknownKey(self.current.clone()))?;
        let nonce = random_nonce()?;
        let aad_bytes = aad.encode()?;
        let ciphertext = cipher
            .encrypt(
                as_nonce(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad_bytes,
                },
            )
            .map_err(|_| too_large())?;
        Ok(Sealed {
            key_id: self.current.clone(),
            nonce,
            ciphertext,
        })
    }

    /// Decrypts `sealed` with the key it names. [`CryptoError::UnknownKey`] if
    /// the ring lacks that key; [`CryptoError::Decrypt`] if `aad` differs from
    /// the one used to seal or the data was altered.
    pub fn open(&self, aad: &impl SecretAad, sealed: &Sealed) -> Result<SecretBytes, CryptoError> {
        let cipher = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| CryptoError::UnknownKey(sealed.key_id.clone()))?;
        let aad_bytes = aad.encode().map_err(|_| CryptoError::Decrypt)?;
        let plaintext = cipher
            .decrypt(
                as_nonce(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad_bytes,
                },
            )
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(SecretBytes(plaintext))
    }
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Decrypted bytes. `Debug` prints `<hidden>`; zeroized on drop;
/// [`SecretBytes::expose`] is the only accessor.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are zeroized when this value drops.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The plaintext. Do not copy it into long-lived, non-zeroizing storage.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    const AAD: Aad<'static> = Aad {
        account_id: "acct_1",
        auth_id: "auth_1",
        field: "totp_secret",
    };

    fn ring_with_one_key() -> (KeyWrapper, WrappedKey, KeyRing) {
        let wrapper = MasterKey::generate().key_wrapper();
        let k = wrapper.generate_data_key(1_000);
        let ring = KeyRing::new(&wrapper, std::slice::from_ref(&k), &k.id).unwrap();
        (wrapper, k, ring)
    }

    #[test]
    fn generated_data_keys_have_the_documented_shape() {
        let wrapper = MasterKey::generate().key_wrapper();
        let k = wrapper.generate_data_key(42);
        assert_eq!(k.created_ms, 42);
        assert_eq!(k.id.len(), 18);
        assert!(k.id.starts_with("k_"));
        assert!(k.id[2..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_eq!(k.wrapped.len(), NONCE_LEN + 32 + 16);
        assert_ne!(k.id, wrapper.generate_data_key(42).id);
    }

    #[test]
    fn check_accepts_keys_from_the_same_master() {
        let master = MasterKey::generate();
        let k = master.key_wrapper().generate_data_key(0);
        let reloaded = MasterKey::from_base64(&master.to_base64()).unwrap();
        reloaded.key_wrapper().check(&k).unwrap();
    }

    #[test]
    fn check_rejects_keys_from_another_master_and_names_the_id() {
        let k = MasterKey::generate().key_wrapper().generate_data_key(0);
        let err = MasterKey::generate().key_wrapper().check(&k).unwrap_err();
        assert!(matches!(&err, CryptoError::BadKey(m) if m.contains(&k.id)));
    }

    #[test]
    fn check_rejects_a_renamed_key() {
        let wrapper = MasterKey::generate().key_wrapper();
        let mut k = wrapper.generate_data_key(0);
        k.id = "k_0000000000000000".into();
        assert!(matches!(wrapper.check(&k), Err(CryptoError::BadKey(_))));
    }

    #[test]
    fn check_rejects_truncated_and_empty_blobs() {
        let wrapper = MasterKey::generate().key_wrapper();
        let mut k = wrapper.generate_data_key(0);
        k.wrapped.truncate(5);
        assert!(matches!(wrapper.check(&k), Err(CryptoError::BadKey(_))));
        k.wrapped.clear();
        assert!(matches!(wrapper.check(&k), Err(CryptoError::BadKey(_))));
    }

    #[test]
    fn seal_then_open_round_trips() {
        let (_, k, ring) = ring_with_one_key();
        let sealed = ring.seal(&AAD, b"JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(sealed.key_id, k.id);
        assert_eq!(
            ring.open(&AAD, &sealed).unwrap().expose(),
            b"JBSWY3DPEHPK3PXP"
        );
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let (_, _, ring) = ring_with_one_key();
        let sealed = ring.seal(&AAD, b"").unwrap();
        assert_eq!(sealed.ciphertext.len(), 16);
        assert!(ring.open(&AAD, &sealed).unwrap().expose().is_empty());
    }

    #[test]
    fn open_with_a_different_aad_fails() {
        let (_, _, ring) = ring_with_one_key();
        let sealed = ring.seal(&AAD, b"secret").unwrap();
        let others = [
            Aad {
                account_id: "acct_2",
                ..AAD
            },
            Aad {
                auth_id: "auth_2",
                ..AAD
            },
            Aad {
                field: "recovery_codes",
                ..AAD
            },
        ];
        for other in others {
            assert!(
                matches!(ring.open(&other, &sealed), Err(CryptoError::Decrypt)),
                "{other:?}"
            );
        }
    }

    #[test]
    fn aad_encoding_is_unambiguous_across_part_boundaries() {
        let a = Aad {
            account_id: "ab",
            auth_id: "c",
            field: "f",
        };
        let b = Aad {
            account_id: "a",
            auth_id: "bc",
            field: "f",
        };
        assert_ne!(a.encode().unwrap(), b.encode().unwrap());
        let (_, _, ring) = ring_with_one_key();
        let sealed = ring.seal(&a, b"x").unwrap();
        assert!(matches!(ring.open(&b, &sealed), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn aad_encoding_has_the_documented_layout() {
        let enc = Aad {
            account_id: "a",
            auth_id: "",
            field: "xyz",
        }
        .encode()
        .unwrap();
        let mut expected = b"authd/secret/v1".to_vec();
        expected.extend_from_slice(&[0, 0, 0, 1, b'a']);
        expected.extend_from_slice(&[0, 0, 0, 0]);
        expected.extend_from_slice(&[0, 0, 0, 3, b'x', b'y', b'z']);
        assert_eq!(enc, expected);
    }

    #[test]
    fn tampered_ciphertext_fails_to_open() {
        let (_, _, ring) = ring_with_one_key();
        let sealed = ring.seal(&AAD, b"secret value").unwrap();
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 0x01;
            assert!(matches!(ring.open(&AAD, &bad), Err(CryptoError::Decrypt)));
        }
        let mut bad_nonce = sealed.clone();
        bad_nonce.nonce[0] ^= 0x01;
        assert!(matches!(
            ring.open(&AAD, &bad_nonce),
            Err(CryptoError::Decrypt)
        ));
        let mut truncated = sealed;
        truncated.ciphertext.truncate(3);
        assert!(matches!(
            ring.open(&AAD, &truncated),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn sealing_twice_gives_different_nonces_and_ciphertexts() {
        let (_, _, ring) = ring_with_one_key();
        let a = ring.seal(&AAD, b"same").unwrap();
        let b = ring.seal(&AAD, b"same").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn rotation_seals_with_the_new_key_and_still_opens_old_ciphertexts() {
        let wrapper = MasterKey::generate().key_wrapper();
        let old = wrapper.generate_data_key(1);
        let old_ring = KeyRing::new(&wrapper, std::slice::from_ref(&old), &old.id).unwrap();
        let old_sealed = old_ring.seal(&AAD, b"before rotation").unwrap();

        let new = wrapper.generate_data_key(2);
        let ring = KeyRing::new(&wrapper, &[old.clone(), new.clone()], &new.id).unwrap();
        assert_eq!(ring.current_id(), new.id);
        let mut ids: Vec<_> = ring.key_ids().collect();
        ids.sort_unstable();
        let mut expected = vec![old.id.as_str(), new.id.as_str()];
        expected.sort_unstable();
        assert_eq!(ids, expected);

        let new_sealed = ring.seal(&AAD, b"after rotation").unwrap();
        assert_eq!(new_sealed.key_id, new.id);
        assert_eq!(
            ring.open(&AAD, &old_sealed).unwrap().expose(),
            b"before rotation"
        );
        assert_eq!(
            ring.open(&AAD, &new_sealed).unwrap().expose(),
            b"after rotation"
        );
        // A ring without the new key cannot open what it sealed.
        assert!(matches!(
            old_ring.open(&AAD, &new_sealed),
            Err(CryptoError::UnknownKey(id)) if id == new.id
        ));
    }

    #[test]
    fn ciphertext_relabelled_to_another_key_fails() {
        let wrapper = MasterKey::generate().key_wrapper();
        let a = wrapper.generate_data_key(1);
        let b = wrapper.generate_data_key(2);
        let ring = KeyRing::new(&wrapper, &[a.clone(), b.clone()], &a.id).unwrap();
        let mut sealed = ring.seal(&AAD, b"x").unwrap();
        sealed.key_id = b.id.clone();
        assert!(matches!(
            ring.open(&AAD, &sealed),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn open_with_an_unknown_key_id_names_it() {
        let (_, _, ring) = ring_with_one_key();
        let mut sealed = ring.seal(&AAD, b"x").unwrap();
        sealed.key_id = "k_ffffffffffffffff".into();
        assert!(matches!(
            ring.open(&AAD, &sealed),
            Err(CryptoError::UnknownKey(id)) if id == "k_ffffffffffffffff"
        ));
    }

    #[test]
    fn new_rejects_a_key_wrapped_by_a_different_master() {
        let wrapper = MasterKey::generate().key_wrapper();
        let good = wrapper.generate_data_key(1);
        let foreign = MasterKey::generate().key_wrapper().generate_data_key(2);
        let err = KeyRing::new(&wrapper, &[good.clone(), foreign.clone()], &good.id).unwrap_err();
        match err {
            CryptoError::BadKey(msg) => {
                assert!(msg.contains(&foreign.id));
                assert!(!msg.contains(&hex::encode(&foreign.wrapped)));
            }
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn new_rejects_a_current_id_that_is_not_in_the_ring() {
        let wrapper = MasterKey::generate().key_wrapper();
        let k = wrapper.generate_data_key(1);
        assert!(matches!(
            KeyRing::new(&wrapper, &[k], "k_missing"),
            Err(CryptoError::UnknownKey(id)) if id == "k_missing"
        ));
        assert!(matches!(
            KeyRing::new(&wrapper, &[], "k_missing"),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn new_rejects_duplicate_ids() {
        let wrapper = MasterKey::generate().key_wrapper();
        let k = wrapper.generate_data_key(1);
        assert!(matches!(
            KeyRing::new(&wrapper, &[k.clone(), k.clone()], &k.id),
            Err(CryptoError::BadKey(m)) if m.contains(&k.id)
        ));
    }

    #[test]
    fn debug_output_never_contains_key_material_or_plaintext() {
        let master = MasterKey::generate();
        let wrapper = master.key_wrapper();
        let k = wrapper.generate_data_key(1);
        let raw = wrapper.unwrap_key(&k).unwrap();
        let ring = KeyRing::new(&wrapper, std::slice::from_ref(&k), &k.id).unwrap();
        let plaintext = b"very-secret-plaintext";
        let opened = ring
            .open(&AAD, &ring.seal(&AAD, plaintext).unwrap())
            .unwrap();

        let ring_dbg = format!("{ring:?} {ring:#?}");
        assert!(ring_dbg.contains(&k.id));
        let all = format!(
            "{ring_dbg} {wrapper:?} {opened:?} {opened:#?} {master:?} {:?}",
            master.token_hasher()
        );
        let forbidden = [
            hex::encode(*raw),
            STANDARD.encode(*raw),
            format!("{:?}", *raw),
            hex::encode(plaintext),
            String::from_utf8_lossy(plaintext).into_owned(),
            master.to_base64(),
        ];
        for f in &forbidden {
            assert!(!all.contains(f.as_str()), "debug output leaked {f}");
        }
        assert_eq!(format!("{opened:?}"), "SecretBytes(<hidden>)");
        assert_eq!(format!("{wrapper:?}"), "KeyWrapper(<hidden>)");
    }

    fn binding(generation: u64, fields: &[&str]) -> CredentialBinding {
        CredentialBinding::new(
            "acct_1".into(),
            "auth_1".into(),
            "prov_1".into(),
            "inc_1".into(),
            generation,
            fields.iter().map(|f| (*f).to_owned()).collect(),
        )
    }

    #[test]
    fn a_credential_binding_detects_every_change_of_its_context() {
        let (_, _, ring) = ring_with_one_key();
        let b = binding(3, &["config.b", "config.a"]);
        assert_eq!(b.fields(), ["config.a", "config.b"]);
        let sealed = ring.seal(&b.field("config.a"), b"v").unwrap();
        assert_eq!(
            ring.open(&b.field("config.a"), &sealed).unwrap().expose(),
            b"v"
        );
        let mut others = vec![
            binding(2, &["config.a", "config.b"]),
            binding(3, &["config.a"]),
            binding(3, &["config.a", "config.b", "config.c"]),
        ];
        for change in 0..4 {
            let mut o = b.clone();
            match change {
                0 => o.account_id = "acct_2".into(),
                1 => o.auth_id = "auth_2".into(),
                2 => o.provider_id = "prov_2".into(),
                _ => o.incarnation = "inc_2".into(),
            }
            others.push(o);
        }
        for o in &others {
            assert!(matches!(
                ring.open(&o.field("config.a"), &sealed),
                Err(CryptoError::Decrypt)
            ));
        }
        assert!(ring.open(&b.field("config.b"), &sealed).is_err());
        // v1 and v2 encodings never collide.
        assert!(ring.open(&AAD, &sealed).is_err());
    }

    #[test]
    fn secret_bytes_exposes_its_contents() {
        assert_eq!(SecretBytes::new(vec![1, 2, 3]).expose(), &[1, 2, 3]);
    }
}
