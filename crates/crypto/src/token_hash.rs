//! Keyed hashing of bearer-token secrets (HMAC-SHA256).
//!
//! Owns: [`TokenHasher`], the per-deployment HMAC key, its wrapped form as the
//! store keeps it (AES-256-GCM under the KEK, AAD `authd/token-hmac-key/v1`,
//! so a master-key rotation rewraps it and every token hash stays valid), and
//! the constant-time comparison of token hashes.
//!
//! Must not: allocate on the hot path ([`TokenHasher::hash`] runs on every
//! request), compare hashes with `==`, or reveal the HMAC key through `Debug`.
//!
//! Limitation: the precomputed HMAC state (SHA-256 midstates of the padded key)
//! comes from `hmac`/`sha2`, which offer no zeroize support; the derived key
//! bytes themselves are wiped right after the state is built.

use aes_gcm::aead::{Aead, Payload};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::CryptoError;
use crate::keyring::{KeyWrapper, NONCE_LEN};

/// AAD of the wrapped token-hash key (distinct from every data key's AAD).
pub const TOKEN_KEY_AAD: &[u8] = b"authd/token-hmac-key/v1";

type HmacSha256 = Hmac<Sha256>;

/// Builds an HMAC-SHA256 instance keyed with a 32-byte key, infallibly.
///
/// HMAC zero-pads keys shorter than the block size, so filling a zeroed
/// 64-byte block is exactly what `new_from_slice(key)` does, minus the
/// `Result` that can never be `Err` for HMAC.
pub(crate) fn hmac_sha256_with_key(key: &[u8; 32]) -> HmacSha256 {
    let mut block = hmac::digest::Key::<HmacSha256>::default();
    for (dst, src) in block.iter_mut().zip(key.iter()) {
        *dst = *src;
    }
    let mac = <HmacSha256 as KeyInit>::new(&block);
    block.as_mut_slice().zeroize();
    mac
}

/// Computes and checks HMAC-SHA256 hashes of token secrets under a key derived
/// from the master key. `Debug` prints `<hidden>`.
#[derive(Clone)]
pub struct TokenHasher {
    /// HMAC state with the key already absorbed; cloned per hash.
    keyed: HmacSha256,
}

impl TokenHasher {
    /// Builds a hasher from a 32-byte HMAC key (normally derived by
    /// [`crate::MasterKey::token_hasher`]).
    pub(crate) fn from_key(key: &[u8; 32]) -> Self {
        Self {
            keyed: hmac_sha256_with_key(key),
        }
    }

    /// HMAC-SHA256 of `secret`. Deterministic for one key; no heap allocation.
    pub fn hash(&self, secret: &[u8]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(secret);
        mac.finalize().into_bytes().into()
    }

    /// True if `secret` hashes to `expected`; the comparison is constant time.
    pub fn verify(&self, secret: &[u8], expected: &[u8; 32]) -> bool {
        let actual = self.hash(secret);
        actual.as_slice().ct_eq(expected.as_slice()).into()
    }
}

impl KeyWrapper {
    /// Wraps a 32-byte token-hash key: `nonce (12) || ciphertext || tag (16)`.
    pub(crate) fn wrap_token_key(&self, key: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| CryptoError::Io(std::io::Error::other(e)))?;
        let ciphertext = self
            .kek()
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: key,
                    aad: TOKEN_KEY_AAD,
                },
            )
            .map_err(|_| CryptoError::BadKey("cannot wrap the token-hash key".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn unwrap_token_key(&self, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let bad = || {
            CryptoError::BadKey(
                "the token-hash key cannot be unwrapped with this master key".into(),
            )
        };
        let (nonce, ciphertext) = wrapped.split_at_checked(NONCE_LEN).ok_or_else(bad)?;
        let nonce = <&[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| bad())?;
        let plain = Zeroizing::new(
            self.kek()
                .decrypt(
                    nonce.into(),
                    Payload {
                        msg: ciphertext,
                        aad: TOKEN_KEY_AAD,
                    },
                )
                .map_err(|_| bad())?,
        );
        let key = <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| bad())?;
        Ok(Zeroizing::new(key))
    }

    /// The token hasher from the stored wrapped key. Fails (naming no material) when this
    /// KEK did not wrap it — the check that the master key opens the store.
    pub fn open_token_hasher(&self, wrapped: &[u8]) -> Result<TokenHasher, CryptoError> {
        Ok(TokenHasher::from_key(&*self.unwrap_token_key(wrapped)?))
    }

    /// Unwraps the token-hash key under this KEK and wraps it under `to` (master-key
    /// rotation). The key itself never leaves this function.
    pub fn rewrap_token_key(
        &self,
        wrapped: &[u8],
        to: &KeyWrapper,
    ) -> Result<Vec<u8>, CryptoError> {
        to.wrap_token_key(&*self.unwrap_token_key(wrapped)?)
    }
}

impl std::fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHasher(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infallible_keying_matches_new_from_slice() {
        let key = [7u8; 32];
        let mut reference = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
        reference.update(b"abc");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(TokenHasher::from_key(&key).hash(b"abc"), expected);
    }

    #[test]
    fn hash_matches_rfc4231_test_case_2() {
        // RFC 4231 case 2 uses a 4-byte key ("Jefe"); zero-padding to 32 bytes
        // gives the same HMAC because HMAC pads keys to the block size anyway.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let out = TokenHasher::from_key(&key).hash(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_the_right_secret_and_rejects_others() {
        let h = TokenHasher::from_key(&[1u8; 32]);
        let stored = h.hash(b"secret-token");
        assert!(h.verify(b"secret-token", &stored));
        assert!(!h.verify(b"secret-tokem", &stored));
        assert!(!h.verify(b"", &stored));
        let mut flipped = stored;
        flipped[31] ^= 1;
        assert!(!h.verify(b"secret-token", &flipped));
    }

    #[test]
    fn hash_is_deterministic_and_clones_agree() {
        let h = TokenHasher::from_key(&[2u8; 32]);
        let c = h.clone();
        assert_eq!(h.hash(b"x"), h.hash(b"x"));
        assert_eq!(h.hash(b"x"), c.hash(b"x"));
        assert_ne!(h.hash(b"x"), h.hash(b"y"));
    }

    #[test]
    fn different_keys_give_different_hashes() {
        let a = TokenHasher::from_key(&[3u8; 32]);
        let b = TokenHasher::from_key(&[4u8; 32]);
        assert_ne!(a.hash(b"same"), b.hash(b"same"));
    }

    #[test]
    fn a_wrapped_token_key_opens_only_under_its_kek_and_survives_a_rewrap() {
        let (old, new) = (
            crate::MasterKey::generate().key_wrapper(),
            crate::MasterKey::generate().key_wrapper(),
        );
        let key = [5u8; 32];
        let wrapped = old.wrap_token_key(&key).unwrap();
        let expected = TokenHasher::from_key(&key).hash(b"tok");
        assert_eq!(
            old.open_token_hasher(&wrapped).unwrap().hash(b"tok"),
            expected
        );
        assert!(new.open_token_hasher(&wrapped).is_err());
        let rewrapped = old.rewrap_token_key(&wrapped, &new).unwrap();
        assert_eq!(
            new.open_token_hasher(&rewrapped).unwrap().hash(b"tok"),
            expected
        );
        assert!(old.open_token_hasher(&rewrapped).is_err());
        assert!(old.open_token_hasher(&wrapped[..20]).is_err());
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let key = [0xabu8; 32];
        let s = format!("{:?}", TokenHasher::from_key(&key));
        assert_eq!(s, "TokenHasher(<hidden>)");
        assert!(!s.contains(&hex::encode(key)));
    }
}
