//! Storage contract for token rotation. Every method takes the [`AccountId`] first and must not see
//! another account's rows.

use crate::ids::{AccountId, AuthId};
use crate::model::{Auth, NewToken};
use crate::Result;
use async_trait::async_trait;

/// Token rotation.
#[async_trait]
pub trait RotationStore: Send + Sync {
    /// In one transaction: checks that `old` is an API token of `account`, inserts `new`, caps
    /// `old`'s expiry at `old_expires_ms` (never extending it), and keeps the revocation tree:
    /// the tokens `old` created become `new`'s, and `old` itself hangs under `new` (so
    /// deleting `new` revokes all of them) and records `new` as its successor (see
    /// [`Self::rotated_successor`]), and inserts `new.audit` (the rotation's entry). Returns
    /// the new auth, or `None` if `old` does not exist in this account.
    async fn rotate_token(
        &self,
        account: AccountId,
        old: AuthId,
        new: NewToken,
        old_expires_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Auth>>;

    /// The token that replaced `id`, if `id` was rotated and its grace window is still open
    /// at `now_ms` (deleting it then means deleting its successor's whole tree).
    async fn rotated_successor(
        &self,
        account: AccountId,
        id: AuthId,
        now_ms: i64,
    ) -> Result<Option<AuthId>>;
}
