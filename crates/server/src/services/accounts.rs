//! The account service: the caller's own account, from the account cache
//! ([`crate::records`]). Another account is never visible: it is the same `NotFound` as one
//! that does not exist.

use std::sync::Arc;

use authd_core::ids::AccountId;
use authd_core::model::Account;
use authd_core::{Error, Result};

use crate::state::AppState;
use crate::tokens::Principal;

/// The caller's account.
pub async fn own(state: &AppState, caller: &Principal) -> Result<Arc<Account>> {
    state
        .records
        .account(caller.account_id)
        .await?
        .ok_or(Error::NotFound)
}

/// The account named `id` (`current`, its 32-hex id or its aid) if it is the caller's own;
/// `NotFound` otherwise.
pub async fn read(state: &AppState, caller: &Principal, id: &str) -> Result<Arc<Account>> {
    let own_account = id == "current"
        || AccountId::parse(id) == Some(caller.account_id)
        || id.parse::<i64>().ok() == Some(caller.account_aid);
    if !own_account {
        return Err(Error::NotFound);
    }
    own(state, caller).await
}
