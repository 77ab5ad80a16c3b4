//! The user service: changes to users that reach their tokens. A token acts with its scopes
//! limited to its user's current roles, so a role change drops the user's tokens from this
//! node's cache at once (the store publishes them to the other nodes in the same transaction),
//! and deleting a user revokes the user's tokens and everything they created. The store
//! refuses, atomically, to leave an account without a user holding `admin`. Either change
//! drops the user from this node's user cache at once ([`crate::records`]); the store
//! publishes it to the other nodes in the same transaction.

use authd_core::ids::{AccountId, UserId};
use authd_core::model::{User, UserPatch};
use authd_core::Result;

use crate::state::AppState;

/// Applies a patch; `None` if there is no such user in this account.
pub async fn update(
    state: &AppState,
    account: AccountId,
    id: UserId,
    patch: UserPatch,
) -> Result<Option<User>> {
    let Some((user, tokens)) = state
        .store
        .update_user(account, id, patch, state.clock.now_ms())
        .await?
    else {
        return Ok(None);
    };
    state.tokens.evict(&tokens);
    state.records.evict_user(id);
    Ok(Some(user))
}

/// Deletes a user and revokes the user's tokens; returns how many tokens were revoked, `None`
/// if there is no such user in this account.
pub async fn delete(state: &AppState, account: AccountId, id: UserId) -> Result<Option<usize>> {
    let Some(revoked) = state.store.delete_user(account, id).await? else {
        return Ok(None);
    };
    state.tokens.evict(&revoked);
    state.records.evict_user(id);
    Ok(Some(revoked.len()))
}
