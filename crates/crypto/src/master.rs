//! The deployment's master key and its key file.
//!
//! Owns: [`MasterKey`] (32 random bytes), its base64 key-file format, creating
//! the key file safely (0600, never overwriting an existing key), refusing a key
//! file that group or others can read, deriving purpose-specific subkeys with
//! HKDF-SHA256 and giving the key up for them ([`MasterKey::into_subkeys`]), and
//! rewrapping a data key under another master key (rotation).
//!
//! Must not: use the master key directly for any cryptographic operation
//! (always derive a subkey with a distinct `info` label), print or log key
//! material, or touch any file other than the key file and its temporary twin.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hkdf::Hkdf;
use hmac::Mac;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::CryptoError;
use crate::keyring::{KeyWrapper, WrappedKey, NONCE_LEN};
use crate::token_hash::{hmac_sha256_with_key, TokenHasher};

/// HKDF `info` label for the token-hashing HMAC key.
pub const TOKEN_HMAC_INFO: &[u8] = b"authd/token-hmac/v1";
/// HKDF `info` label for the data-key wrapping key (KEK).
pub const KEY_WRAP_INFO: &[u8] = b"authd/key-wrap/v1";

/// What a process keeps of the master key once it has been read: the KEK, and the
/// HKDF-derived token-hash key already wrapped under it (what a store that has no wrapped
/// token-hash key yet records, so hashes made before the key was stored stay valid).
/// The master key itself is dropped (zeroized) when this is made.
pub struct Subkeys {
    /// The key-encryption key.
    pub wrapper: KeyWrapper,
    /// `HKDF(master, "authd/token-hmac/v1")`, wrapped under `wrapper`.
    pub initial_token_key: Vec<u8>,
}

impl std::fmt::Debug for Subkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subkeys(<hidden>)")
    }
}

/// The 32-byte root secret. `Debug` prints `<hidden>`; the bytes are zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// A fresh random key from the OS random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses standard (padded) base64, ignoring surrounding whitespace; the
    /// result must be exactly 32 bytes. Errors never echo the input.
    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let decoded = Zeroizing::new(
            STANDARD
                .decode(s.trim())
                .map_err(|_| CryptoError::BadKey("master key is not valid base64".into()))?,
        );
        let bytes = <[u8; 32]>::try_from(decoded.as_slice()).map_err(|_| {
            CryptoError::BadKey(format!(
                "master key must decode to 32 bytes, got {}",
                decoded.len()
            ))
        })?;
        Ok(Self(bytes))
    }

    /// Standard base64 of the key, as written to the key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Reads a key file holding the base64 text of the key. A file that group or others may
    /// read is refused (the message names it and `chmod 600`).
    pub fn read_file(path: &Path) -> Result<Self, CryptoError> {
        check_private(path)?;
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| with_path(e, path))?);
        Self::from_base64(&text).map_err(|e| match e {
            CryptoError::BadKey(msg) => {
                CryptoError::BadKey(format!("{msg} (key file {})", path.display()))
            }
            other => other,
        })
    }

    /// Reads the key file, or if absent creates it and returns `(key, true)`.
    ///
    /// The new key is written to a 0600 temporary file created with
    /// `create_new`, synced, then hard-linked into place; the link fails with
    /// `AlreadyExists` if another process won the race, in which case that
    /// process's (complete) key is read and returned with `false`. A reader
    /// therefore never sees a half-written key file. The parent directory must exist.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), CryptoError> {
        match Self::read_file(path) {
            Ok(key) => return Ok((key, false)),
            Err(CryptoError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let key = Self::generate();
        let tmp = temp_path(path);
        let published = write_new_file(&tmp, key.to_base64().as_bytes())
            .and_then(|()| fs::hard_link(&tmp, path));
        // The temporary name is only a staging area; the link (if any) keeps the data.
        let _ = fs::remove_file(&tmp);
        match published {
            Ok(()) => {
                sync_parent_dir(path);
                Ok((key, true))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Ok((Self::read_file(path)?, false))
            }
            Err(e) => Err(with_path(e, path).into()),
        }
    }

    /// Writes a fresh key to `path` (mode 0600, refused if the file exists) and returns it.
    pub fn generate_file(path: &Path) -> Result<Self, CryptoError> {
        let key = Self::generate();
        write_new_file(path, key.to_base64().as_bytes()).map_err(|e| with_path(e, path))?;
        sync_parent_dir(path);
        Ok(key)
    }

    /// Derives the subkeys the process needs and drops the master key.
    pub fn into_subkeys(self) -> Result<Subkeys, CryptoError> {
        let wrapper = self.key_wrapper();
        let initial_token_key = wrapper.wrap_token_key(&self.derive(TOKEN_HMAC_INFO))?;
        Ok(Subkeys {
            wrapper,
            initial_token_key,
        })
    }

    /// The HMAC key for hashing token secrets:
    /// HKDF-SHA256(ikm = master, salt = none, info = `authd/token-hmac/v1`).
    pub fn token_hasher(&self) -> TokenHasher {
        TokenHasher::from_key(&self.derive(TOKEN_HMAC_INFO))
    }

    /// The key-encryption key for data keys:
    /// HKDF-SHA256(ikm = master, salt = none, info = `authd/key-wrap/v1`).
    pub fn key_wrapper(&self) -> KeyWrapper {
        KeyWrapper::from_kek(&self.derive(KEY_WRAP_INFO))
    }

    /// HKDF-SHA256 with no salt, 32 bytes of output.
    ///
    /// Extract uses the `hkdf` crate; the single-block expand
    /// (`T(1) = HMAC(PRK, info || 0x01)`, RFC 5869 §2.3) is done by hand so the
    /// derivation is infallible instead of returning a `Result` that can never
    /// be `Err` for a 32-byte output.
    fn derive(&self, info: &[u8]) -> Zeroizing<[u8; 32]> {
        let (mut prk, _) = Hkdf::<Sha256>::extract(None, &self.0);
        let mut prk_bytes = Zeroizing::new([0u8; 32]);
        for (dst, src) in prk_bytes.iter_mut().zip(prk.iter()) {
            *dst = *src;
        }
        prk.as_mut_slice().zeroize();
        let mut mac = hmac_sha256_with_key(&prk_bytes);
        mac.update(info);
        mac.update(&[1u8]);
        let mut okm = mac.finalize().into_bytes();
        let mut out = Zeroizing::new([0u8; 32]);
        for (dst, src) in out.iter_mut().zip(okm.iter()) {
            *dst = *src;
        }
        okm.as_mut_slice().zeroize();
        out
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<hidden>)")
    }
}

impl KeyWrapper {
    /// Unwraps data key `k` under this KEK and wraps it under `to` (fresh nonce, same id and
    /// AAD): one step of a master-key rotation. The key never leaves this function.
    pub fn rewrap_data_key(
        &self,
        k: &WrappedKey,
        to: &KeyWrapper,
    ) -> Result<WrappedKey, CryptoError> {
        let raw = self.unwrap_key(k)?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| CryptoError::Io(io::Error::other(e)))?;
        Ok(WrappedKey {
            id: k.id.clone(),
            created_ms: k.created_ms,
            wrapped: to.wrap(&k.id, &raw, &nonce)?,
        })
    }
}

/// Refuses a key file whose mode lets group or others read it (or write it).
fn check_private(path: &Path) -> Result<(), CryptoError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| with_path(e, path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(CryptoError::BadKey(format!(
                "key file {} is accessible to group or others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
    }
    Ok(())
}

/// Adds the path to an I/O error's message, keeping its kind.
fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("master key file {}: {e}", path.display()))
}

/// `<dir>/.<name>.tmp-<random>`, beside the key file so a hard link works.
fn temp_path(path: &Path) -> PathBuf {
    let mut suffix = [0u8; 8];
    OsRng.fill_bytes(&mut suffix);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "master-key".into());
    path.with_file_name(format!(".{name}.tmp-{}", hex::encode(suffix)))
}

/// Creates `path` (must not exist) with mode 0600, writes `contents` plus a
/// newline and syncs it to disk.
fn write_new_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path)?;
    file.write_all(contents)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Best effort: make the new directory entry durable. Failure here does not
/// invalidate the key we already hold, so it is ignored.
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let dir = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material_strings(key: &MasterKey) -> Vec<String> {
        vec![hex::encode(key.0), key.to_base64(), format!("{:?}", key.0)]
    }

    #[test]
    fn base64_round_trips() {
        let key = MasterKey::generate();
        let back = MasterKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(key.0, back.0);
    }

    #[test]
    fn from_base64_trims_surrounding_whitespace() {
        let key = MasterKey::generate();
        let text = format!("  {}\n", key.to_base64());
        assert_eq!(MasterKey::from_base64(&text).unwrap().0, key.0);
    }

    #[test]
    fn from_base64_rejects_wrong_lengths() {
        for len in [0usize, 16, 31, 33, 64] {
            let text = STANDARD.encode(vec![9u8; len]);
            let err = MasterKey::from_base64(&text).unwrap_err();
            assert!(
                matches!(&err, CryptoError::BadKey(m) if m.contains("32 bytes")),
                "{len}: {err}"
            );
        }
    }

    #[test]
    fn from_base64_rejects_garbage_without_echoing_it() {
        for text in ["not base64 at all!!", "%%%%", "YWJj*GVm"] {
            let err = MasterKey::from_base64(text).unwrap_err();
            assert!(matches!(err, CryptoError::BadKey(_)));
            assert!(!err.to_string().contains(text));
        }
    }

    #[test]
    fn from_base64_rejects_url_safe_alphabet() {
        // 32 bytes of 0xff encode with '/' in standard and '_' in URL-safe base64.
        let url_safe = base64::engine::general_purpose::URL_SAFE.encode([0xffu8; 32]);
        assert!(MasterKey::from_base64(&url_safe).is_err());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = MasterKey::generate();
        let s = format!("{key:?} {key:#?}");
        assert!(s.contains("<hidden>"));
        for m in material_strings(&key) {
            assert!(!s.contains(&m));
        }
    }

    #[test]
    fn derivation_matches_the_hkdf_crate() {
        let key = MasterKey::generate();
        for info in [TOKEN_HMAC_INFO, KEY_WRAP_INFO] {
            let mut expected = [0u8; 32];
            Hkdf::<Sha256>::new(None, &key.0)
                .expand(info, &mut expected)
                .unwrap();
            assert_eq!(*key.derive(info), expected);
        }
    }

    #[test]
    fn derived_keys_and_token_hashes_are_pinned() {
        // Token hashes are persisted, so this derivation must never change.
        // Expected values computed independently with Python's hmac module.
        let mut ikm = [0u8; 32];
        for (i, b) in ikm.iter_mut().enumerate() {
            *b = i as u8;
        }
        let key = MasterKey(ikm);
        assert_eq!(
            hex::encode(*key.derive(TOKEN_HMAC_INFO)),
            "08d250d55b002e917c52f60b48dbc9d8e6978e8d6c7dd6520100013ed48f0bab"
        );
        assert_eq!(
            hex::encode(*key.derive(KEY_WRAP_INFO)),
            "add07a99d8d50045697ed310a93d4412673b9bd23e05816b8faa22b7ec79a663"
        );
        assert_eq!(
            hex::encode(key.token_hasher().hash(b"tok")),
            "866c677b40d9389cd66160978de52bf9a688b26633ae52f9df69e508864b04f3"
        );
    }

    #[test]
    fn subkeys_differ_by_purpose() {
        let key = MasterKey::generate();
        assert_ne!(*key.derive(TOKEN_HMAC_INFO), *key.derive(KEY_WRAP_INFO));
    }

    #[test]
    fn token_hash_is_deterministic_per_master_key() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(
            key.token_hasher().hash(b"tok"),
            again.token_hasher().hash(b"tok")
        );
    }

    #[test]
    fn token_hash_differs_across_master_keys() {
        let a = MasterKey::generate().token_hasher();
        let b = MasterKey::generate().token_hasher();
        assert_ne!(a.hash(b"tok"), b.hash(b"tok"));
    }

    #[test]
    fn token_hasher_debug_hides_the_derived_key() {
        let key = MasterKey::generate();
        let s = format!("{:?}", key.token_hasher());
        let derived = key.derive(TOKEN_HMAC_INFO);
        assert!(!s.contains(&hex::encode(*derived)));
        assert!(!s.contains(&STANDARD.encode(*derived)));
        for m in material_strings(&key) {
            assert!(!s.contains(&m));
        }
    }

    /// Writes `text` to a 0600 file, as an operator following the docs would.
    fn write_private(path: &Path, text: &str) {
        write_new_file(path, text.trim_end().as_bytes()).unwrap();
    }

    #[test]
    fn read_file_refuses_a_key_file_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        write_private(&path, &MasterKey::generate().to_base64());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = MasterKey::read_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("chmod 600") && err.contains("master.key"),
            "{err}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(MasterKey::read_file(&path).is_ok());
    }

    #[test]
    fn a_data_key_rewrapped_under_a_new_master_opens_only_there() {
        let (old, new) = (
            MasterKey::generate().key_wrapper(),
            MasterKey::generate().key_wrapper(),
        );
        let k = old.generate_data_key(1);
        let moved = old.rewrap_data_key(&k, &new).unwrap();
        assert_eq!((moved.id.as_str(), moved.created_ms), (k.id.as_str(), 1));
        assert!(new.check(&moved).is_ok() && old.check(&moved).is_err());
        assert!(new.rewrap_data_key(&k, &old).is_err());
    }

    #[test]
    fn subkeys_wrap_the_derived_token_key() {
        let key = MasterKey::generate();
        let expected = key.token_hasher().hash(b"tok");
        let sub = key.into_subkeys().unwrap();
        let hasher = sub
            .wrapper
            .open_token_hasher(&sub.initial_token_key)
            .unwrap();
        assert_eq!(hasher.hash(b"tok"), expected);
    }

    #[test]
    fn read_file_accepts_a_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = MasterKey::generate();
        write_private(&path, &format!("{}\n", key.to_base64()));
        assert_eq!(MasterKey::read_file(&path).unwrap().0, key.0);
    }

    #[test]
    fn read_file_reports_missing_files_as_io_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = MasterKey::read_file(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, CryptoError::Io(e) if e.kind() == io::ErrorKind::NotFound));
    }

    #[test]
    fn read_file_rejects_a_corrupt_file_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        write_private(&path, "c2hvcnQ=\n");
        let err = MasterKey::read_file(&path).unwrap_err();
        assert!(matches!(&err, CryptoError::BadKey(m) if m.contains("master.key")));
    }

    #[test]
    fn load_or_generate_creates_a_private_file_then_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (first, created) = MasterKey::load_or_generate(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, created_again) = MasterKey::load_or_generate(&path).unwrap();
        assert!(!created_again);
        assert_eq!(first.0, second.0);
        // Only the key file remains: the temporary staging file is cleaned up.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn load_or_generate_never_overwrites_an_existing_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let existing = MasterKey::generate();
        write_private(&path, &existing.to_base64());
        let (loaded, created) = MasterKey::load_or_generate(&path).unwrap();
        assert!(!created);
        assert_eq!(loaded.0, existing.0);
    }

    #[test]
    fn load_or_generate_refuses_a_corrupt_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        write_private(&path, "garbage");
        assert!(matches!(
            MasterKey::load_or_generate(&path),
            Err(CryptoError::BadKey(_))
        ));
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), "garbage");
    }

    #[test]
    fn racing_load_or_generate_calls_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| MasterKey::load_or_generate(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
        let on_disk = MasterKey::read_file(&path).unwrap();
        assert!(results.iter().all(|(k, _)| k.0 == on_disk.0));
    }
}
