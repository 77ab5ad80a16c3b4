//! Named worker credentials: the bearer secrets the worker plaintext listener accepts.
//!
//! They are operator-level (created, listed and revoked with `authd worker credential …`, never
//! through the API), so the store methods here are not scoped by account; a credential may
//! instead be *limited to* accounts, which the worker listener enforces. The store keeps only a
//! keyed hash of the secret (HMAC under its own HKDF label, computed by the server), a name,
//! the account limit and the revocation time. Revoked rows stay for the record; a revoked
//! credential's name may be reused.

use crate::ids::{AccountId, WorkerCredentialId};

/// A stored worker credential (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCredential {
    /// Its id.
    pub id: WorkerCredentialId,
    /// Its operator-chosen name, unique among credentials not revoked.
    pub name: String,
    /// The accounts it may read; `None` means every account.
    pub accounts: Option<Vec<AccountId>>,
    /// When it was created (Unix ms).
    pub created_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
}

impl WorkerCredential {
    /// Whether this credential may read credentials of `account`.
    pub fn may_read(&self, account: AccountId) -> bool {
        self.accounts.as_ref().is_none_or(|a| a.contains(&account))
    }
}

/// A credential to insert: its record and the keyed hash of its secret.
#[derive(Clone, Debug)]
pub struct NewWorkerCredential {
    /// The record (`revoked_ms` must be `None`).
    pub credential: WorkerCredential,
    /// HMAC of the secret under the worker-credential key.
    pub hash: [u8; 32],
}
