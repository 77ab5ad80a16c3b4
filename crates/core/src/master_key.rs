//! Persistence of what the master key protects as a whole: the wrapped token-hash key (the
//! store's check that a master key opens it) and the one-transaction rewrap of every wrapped
//! key under a new master key.
//!
//! Owns: [`MasterKeyStore`](crate::store::MasterKeyStore) and [`MasterRewrap`]. Must not: hold or see key material (only
//! wrapped blobs pass through).

/// Every wrapped key of a store rewrapped under a new master key, with the blob each one must
/// still hold (compare-and-swap): a data key added or changed meanwhile makes the whole
/// rotation fail instead of leaving a key under the old master.
#[derive(Clone)]
pub struct MasterRewrap {
    /// `(data key id, wrapped now, wrapped under the new master)` for every data key.
    pub data_keys: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// The token-hash key: `(wrapped now, wrapped under the new master)`.
    pub token_key: (Vec<u8>, Vec<u8>),
}

impl std::fmt::Debug for MasterRewrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self
            .data_keys
            .iter()
            .map(|(id, _, _)| id.as_str())
            .collect();
        f.debug_struct("MasterRewrap")
            .field("data_keys", &ids)
            .finish()
    }
}
