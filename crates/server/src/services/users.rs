//! The user service: listing, reading (from the user cache, [`crate::records`]) and creating
//! users, and the changes to users that reach their tokens. A token acts with its scopes
//! limited to its user's current roles, so a role change drops the user's tokens from this
//! node's cache at once (the store publishes them to the other nodes in the same transaction),
//! and deleting a user revokes the user's tokens and everything they created. The store
//! refuses, atomically, to leave an account without a user holding `admin`. Each change's
//! audit entry (`user.update`, `user.delete`) commits with it. Either change drops the user
//! from this node's user cache at once ([`crate::records`]); the store publishes it to the
//! other nodes in the same transaction.

use std::sync::Arc;

use authd_core::audit::{Audit, AuditAction, AuditEntry};
use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::model::{Page, User, UserPatch};
use authd_core::roles::RoleSet;
use authd_core::text::{Email, UserName};
use authd_core::{Error, Result};

use crate::audit::{By, RequestId};
use crate::state::AppState;
use crate::tokens::Principal;

/// A page of the account's users.
pub async fn list(state: &AppState, account: AccountId, page: Page<UserId>) -> Result<Vec<User>> {
    state.store.list_users(account, page).await
}

/// One user of the account, from the user cache; `NotFound` if the account has none by `id`.
pub async fn read(state: &AppState, account: AccountId, id: UserId) -> Result<Arc<User>> {
    state
        .records
        .user(account, id)
        .await?
        .ok_or(Error::NotFound)
}

/// A user to add (parsed at the edge).
#[derive(Debug)]
pub struct NewUser {
    /// Email.
    pub email: Email,
    /// Display name.
    pub name: UserName,
    /// Roles in the account.
    pub roles: RoleSet,
}

/// Adds a user to the caller's account, its roles granted by the caller's user; its
/// `user.create` entry commits with it.
pub async fn create(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    new: NewUser,
) -> Result<User> {
    let by = &By::caller(state, caller, rid);
    let now = state.clock.now_ms();
    let entry = |u: &User| -> Vec<AuditEntry> {
        let detail = format!("roles {}", u.roles.slugs().join(","));
        vec![by.entry(AuditAction::UserCreate, &u.id.to_string(), &detail)]
    };
    let user = state
        .store
        .create_user(
            User {
                id: UserId::generate(),
                account_id: caller.account_id,
                email: new.email.into(),
                name: new.name.into(),
                roles: new.roles,
                created_ms: now,
                updated_ms: now,
                last_logon_ms: None,
                granted_by: caller.user_id,
                roles_updated_ms: now,
            },
            Audit::Outcome(&entry),
        )
        .await?;
    tracing::info!(user = %user.id, roles = ?user.roles.slugs(), "user created");
    Ok(user)
}

/// Applies a patch; `NotFound` if there is no such user in this account.
pub async fn update(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: UserId,
    patch: UserPatch,
) -> Result<User> {
    let (by, account) = (&By::caller(state, caller, rid), caller.account_id);
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
        return Err(Error::NotFound);
    };
    state.tokens.evict(&tokens);
    state.records.evict_user(id);
    tracing::info!(user = %user.id, roles = ?user.roles.slugs(), "user updated");
    Ok(user)
}

/// Deletes a user and revokes the user's tokens; returns how many tokens were revoked,
/// `NotFound` if there is no such user in this account.
pub async fn delete(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: UserId,
) -> Result<usize> {
    let (by, account) = (&By::caller(state, caller, rid), caller.account_id);
    let entry = |revoked: &Vec<AuthId>| -> Vec<AuditEntry> {
        let detail = format!("revoked {} token(s)", revoked.len());
        vec![by.entry(AuditAction::UserDelete, &id.to_string(), &detail)]
    };
    let Some(revoked) = state
        .store
        .delete_user(account, id, Audit::Outcome(&entry))
        .await?
    else {
        return Err(Error::NotFound);
    };
    state.tokens.evict(&revoked);
    state.records.evict_user(id);
    tracing::info!(user = %id, revoked = revoked.len(), "user deleted");
    Ok(revoked.len())
}
