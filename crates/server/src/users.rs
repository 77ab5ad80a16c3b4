//! The user service: changes to users that reach their tokens. A token acts with its scopes
//! limited to its user's current roles, so a role change drops the user's tokens from this
//! node's cache at once (the store publishes them to the other nodes in the same transaction),
//! and deleting a user revokes the user's tokens and everything they created. The store
//! refuses, atomically, to leave an account without a user holding `admin`. Each change's
//! audit entry (`user.update`, `user.delete`) commits with it. Either change drops the user
//! from this node's user cache at once ([`crate::records`]); the store publishes it to the
//! other nodes in the same transaction.

use authd_core::audit::{Audit, AuditAction, AuditEntry};
use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::model::{User, UserPatch};
use authd_core::Result;

use crate::audit::By;
use crate::state::AppState;

/// Applies a patch; `None` if there is no such user in this account.
pub async fn update(
    state: &AppState,
    by: &By,
    account: AccountId,
    id: UserId,
    patch: UserPatch,
) -> Result<Option<User>> {
    let entry = |(user, _): &(User, Vec<AuthId>)| -> Vec<AuditEntry> {
        let roles = format!("roles {}", user.roles.slugs().join(","));
        vec![by.entry(AuditAction::UserUpdate, &user.id.to_string(), &roles)]
    };
    let Some((user, tokens)) = state
        .store
        .update_user(
            account,
            id,
            patch,
            state.clock.now_ms(),
            Audit::Outcome(&entry),
        )
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
pub async fn delete(
    state: &AppState,
    by: &By,
    account: AccountId,
    id: UserId,
) -> Result<Option<usize>> {
    let entry = |revoked: &Vec<AuthId>| -> Vec<AuditEntry> {
        let detail = format!("revoked {} token(s)", revoked.len());
        vec![by.entry(AuditAction::UserDelete, &id.to_string(), &detail)]
    };
    let Some(revoked) = state
        .store
        .delete_user(account, id, Audit::Outcome(&entry))
        .await?
    else {
        return Ok(None);
    };
    state.tokens.evict(&revoked);
    state.records.evict_user(id);
    Ok(Some(revoked.len()))
}
