//! authd-crypto: every cryptographic primitive authd uses, behind a small API.
//!
//! Owns: the master key and its key file ([`master`]), keyed hashing of bearer
//! tokens ([`token_hash`]), envelope encryption of stored secrets ([`keyring`])
//! and the error type ([`error`]).
//!
//! Must not: depend on `authd-core` or any storage/HTTP crate, read the clock
//! (callers pass `now_ms`), do I/O other than reading/creating the master key
//! file, or expose key material through `Debug`, `Display` or error messages.

pub mod error;
pub mod keyring;
pub mod master;
pub mod secret_buf;
pub mod token_hash;
pub mod worker_key;

pub use error::CryptoError;
pub use keyring::{
    Aad, CredentialBinding, FieldAad, KeyRing, KeyWrapper, Sealed, SecretAad, SecretBytes,
    WrappedKey,
};
pub use master::{MasterKey, Subkeys};
pub use secret_buf::SecretWriter;
pub use token_hash::TokenHasher;
pub use worker_key::worker_hasher;
