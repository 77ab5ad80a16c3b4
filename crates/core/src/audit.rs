//! The audit trail: an append-only record of every mutation and every refused credential.
//!
//! **Invariant:** an entry never carries a secret. Targets are ids, actions are the fixed
//! names of [`AuditAction`], and `detail` is built by the server from non-secret facts only
//! (roles, field names, key ids, counts).
//!
//! **Atomicity:** a mutation's entries are handed to the store method that makes the change
//! (as an [`Audit`]) and are inserted in the change's own transaction: an entry exists if and
//! only if its change committed. [`AuditStore::append_audit`](crate::store::AuditStore::append_audit) is for what changes nothing
//! (refused credentials, decrypting reads) and for operator actions spanning many
//! transactions.

use crate::ids::AccountId;
use crate::Result;

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Sequence number (assigned by the store; 0 before insertion).
    pub seq: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// The account concerned, if known (refused anonymous credentials and operator actions
    /// such as key rotation have none).
    pub account_id: Option<AccountId>,
    /// Who: `token:<auth id>`, `user:<id>`, `worker`, `cli` or `anonymous`.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// On what (usually an id; may be empty).
    pub target: String,
    /// `ok`, or a short failure class (`unauthorized`, `forbidden`, `decrypt_failed`).
    pub outcome: String,
    /// The request id, if any.
    pub request_id: String,
    /// Non-secret detail.
    pub detail: String,
}

/// Declares [`AuditAction`] with the one text form of each action (stored and answered).
macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// What an audit entry records. The text form ([`Self::as_str`]) is what is stored
        /// and what `GET /api/audit` answers and filters on; it never changes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)*
        }

        impl AuditAction {
            /// Every action.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            /// The stored and answered name (`auth.create`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $text,)*
                }
            }

            /// The action named `text` (a stored row's), if it is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(AuditAction::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    /// A stored credential was created.
    AuthCreate = "auth.create",
    /// A stored credential was read (only failures are recorded: `integrity_failed`).
    AuthRead = "auth.read",
    /// A stored credential was changed.
    AuthUpdate = "auth.update",
    /// A stored credential was deleted (with the work cascade).
    AuthDelete = "auth.delete",
    /// An API token was minted (or its minting refused).
    TokenCreate = "token.create",
    /// An API token and the tokens it created were revoked (or the revocation refused).
    TokenRevoke = "token.revoke",
    /// An API token was rotated (or the rotation refused).
    TokenRotate = "token.rotate",
    /// A work was created.
    WorkCreate = "work.create",
    /// A work was deleted.
    WorkDelete = "work.delete",
    /// A work was stopped because an auth it used was deleted.
    WorkStop = "work.stop",
    /// A custom provider was created.
    ProviderCreate = "provider.create",
    /// A user was created.
    UserCreate = "user.create",
    /// A user was changed.
    UserUpdate = "user.update",
    /// A user was deleted (with their tokens).
    UserDelete = "user.delete",
    /// An account setting was set.
    SettingUpdate = "setting.update",
    /// An account setting was reset to its default.
    SettingReset = "setting.reset",
    /// Entities (user profiles) were uploaded through the collect API.
    EntityUpload = "entity.upload",
    /// A presented credential was refused (401, 403, ambiguous).
    CredentialRefused = "credential.refused",
    /// The worker listener decrypted (or refused to decrypt) a credential.
    WorkerDecrypt = "worker.decrypt",
    /// The operator created a worker credential.
    WorkerCredentialCreate = "worker.credential.create",
    /// The operator revoked a worker credential.
    WorkerCredentialRevoke = "worker.credential.revoke",
    /// A new current data key.
    KeysRotate = "keys.rotate",
    /// The master key was replaced and everything under it rewrapped.
    KeysRotateMaster = "keys.rotate_master",
    /// Secrets were resealed under the current data key.
    KeysRewrap = "keys.rewrap",
    /// A retired data key was destroyed (or its destruction refused).
    KeysDestroy = "keys.destroy",
    /// Development tooling seeded tokens.
    DevSeedTokens = "dev.seed_tokens",
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AuditAction {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s).ok_or_else(|| crate::Error::invalid(format!("Unknown audit action {s:?}")))
    }
}

/// The audit entries of one mutation, which the store inserts in the mutation's own
/// transaction once the change is made (and never if it is not: nothing to delete, a refused
/// check, a rollback). `T` is what the mutation did, for entries that depend on it.
pub enum Audit<'a, T> {
    /// Not audited: tests, provisioning and bulk tooling only; every request path audits.
    None,
    /// This entry, fully known before the change.
    Entry(AuditEntry),
    /// Entries built from what the change did (counts and ids known only inside the
    /// transaction); called once per attempt, inside it.
    Outcome(&'a (dyn Fn(&T) -> Vec<AuditEntry> + Send + Sync)),
}

impl<T> Audit<'_, T> {
    /// The entries to insert for `outcome`.
    pub fn entries(&self, outcome: &T) -> Vec<AuditEntry> {
        match self {
            Audit::None => Vec::new(),
            Audit::Entry(e) => vec![e.clone()],
            Audit::Outcome(f) => f(outcome),
        }
    }
}

impl<T> std::fmt::Debug for Audit<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Audit::None => f.write_str("Audit::None"),
            Audit::Entry(e) => f.debug_tuple("Audit::Entry").field(e).finish(),
            Audit::Outcome(_) => f.write_str("Audit::Outcome(..)"),
        }
    }
}

/// Filters for listing the audit trail; every given filter must match exactly.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only this action.
    pub action: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_parses_back_from_its_text_and_the_texts_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
            assert_eq!(a.to_string(), a.as_str());
            assert!(seen.insert(a.as_str()), "{a} twice");
        }
        assert_eq!(
            AuditAction::parse("auth.create"),
            Some(AuditAction::AuthCreate)
        );
        assert!(AuditAction::parse("Auth.Create").is_none());
        assert!("nope".parse::<AuditAction>().is_err());
    }
}
