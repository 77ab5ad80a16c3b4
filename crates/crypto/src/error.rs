//! The crate's single error type.
//!
//! Owns: [`CryptoError`] and its user-facing texts.
//!
//! Must not: carry key material, plaintext or base64/hex of either in any
//! variant or message; key ids and file paths are the only identifiers allowed.

/// Everything that can go wrong in authd-crypto. Display texts never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Key material is malformed or cannot be unwrapped; the message names the
    /// key (file or id) but never includes the material.
    #[error("bad key material: {0}")]
    BadKey(String),
    /// Reading or writing the key file failed, the OS random source failed, or
    /// an input was too large to encrypt.
    #[error("crypto i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Authentication failed: wrong key, wrong associated data, or tampered ciphertext.
    #[error("decryption failed: wrong key, wrong context or tampered data")]
    Decrypt,
    /// A ciphertext or the key ring refers to a data key id the ring does not hold.
    #[error("unknown data key id {0:?}")]
    UnknownKey(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_texts_name_the_problem() {
        assert_eq!(
            CryptoError::UnknownKey("k_0011".into()).to_string(),
            "unknown data key id \"k_0011\""
        );
        assert!(CryptoError::Decrypt
            .to_string()
            .contains("decryption failed"));
        assert!(CryptoError::BadKey("too short".into())
            .to_string()
            .contains("too short"));
    }

    #[test]
    fn io_errors_convert_with_question_mark() {
        fn fails() -> Result<(), CryptoError> {
            Err(std::io::Error::other("disk gone"))?;
            Ok(())
        }
        assert!(matches!(fails(), Err(CryptoError::Io(_))));
    }
}
