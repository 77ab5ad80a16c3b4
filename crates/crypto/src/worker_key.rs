//! The key that hashes worker credentials, apart from the API-token key.
//!
//! Owns: [`worker_hasher`] and its HKDF label [`WORKER_CREDENTIAL_INFO`].
//!
//! The worker key is `HKDF-Expand(PRK = token-hash key, info = "authd/worker-credential/v1")`
//! (one 32-byte block: `HMAC(token key, info || 0x01)`, RFC 5869 §2.3). The token-hash key is
//! itself a pseudorandom key (HKDF output of the master key), so it is a valid PRK; the label
//! separates the two uses, so a worker credential hash never verifies as an API-token hash and
//! knowing one key says nothing about the other. Deriving from the token-hash key rather than
//! from the master key makes the worker key follow the token key across a master-key rotation
//! (which keeps every token hash valid), so worker credentials survive it too.
//!
//! Must not: reveal the derived key (the returned [`TokenHasher`] hides it).

use zeroize::Zeroizing;

use crate::token_hash::TokenHasher;

/// HKDF `info` label for the worker-credential HMAC key.
pub const WORKER_CREDENTIAL_INFO: &[u8] = b"authd/worker-credential/v1";

/// The hasher for worker credentials, derived from the API-token hasher's key.
pub fn worker_hasher(token: &TokenHasher) -> TokenHasher {
    let mut info = Vec::with_capacity(WORKER_CREDENTIAL_INFO.len() + 1);
    info.extend_from_slice(WORKER_CREDENTIAL_INFO);
    info.push(1);
    let key = Zeroizing::new(token.hash(&info));
    TokenHasher::from_key(&key)
}

#[cfg(test)]
mod tests {
    use hkdf::Hkdf;
    use sha2::Sha256;

    use super::*;

    #[test]
    fn is_hkdf_expand_of_the_token_key_with_its_own_label() {
        let token_key = [5u8; 32];
        let mut expected = [0u8; 32];
        Hkdf::<Sha256>::from_prk(&token_key)
            .unwrap()
            .expand(WORKER_CREDENTIAL_INFO, &mut expected)
            .unwrap();
        let token = TokenHasher::from_key(&token_key);
        let worker = worker_hasher(&token);
        assert_eq!(
            worker.hash(b"wk_x"),
            TokenHasher::from_key(&expected).hash(b"wk_x")
        );
        assert_ne!(worker.hash(b"wk_x"), token.hash(b"wk_x"));
    }
}
