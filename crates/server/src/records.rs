//! Accounts and users served from memory: every authenticated client reads its account on
//! connect and users are read far more often than they change, so both are kept in
//! [`EpochCache`]s with the token cache's guarantees (see [`crate::cache`]): a change is seen
//! at once on the node that made it (the service that changes a user evicts it), on other
//! nodes when the invalidation feed delivers it (PostgreSQL NOTIFY, SQLite's invalidations
//! table: the store publishes [`Invalidation::Users`] in the changing transaction), and never
//! from a copy read before the change.
//!
//! An account's stored settings are cached too (the few it has set): a settings change evicts
//! them on its node and publishes [`Invalidation::Accounts`] for the others, which drops the
//! account's record and its settings. Accounts themselves have no update path today; the
//! path that adds one only has to publish and evict.
//!
//! Reads stay tenant-scoped: a user is loaded with its account, and a cached user is returned
//! only to its own account — another tenant's id answers like an absent one.

use std::sync::Arc;

use authd_core::clock::Clock;
use authd_core::ids::{AccountId, UserId};
use authd_core::invalidation::{Invalidation, InvalidationSink};
use authd_core::model::{Account, User};
use authd_core::settings::StoredSetting;
use authd_core::store::Store;
use authd_core::Result;

use crate::cache::EpochCache;

/// Cached account and user records.
pub struct Records {
    store: Arc<dyn Store>,
    accounts: EpochCache<AccountId, Arc<Account>>,
    users: EpochCache<UserId, Arc<User>>,
    /// Each account's stored settings (the few it has set; defaults are not stored).
    settings: EpochCache<AccountId, Arc<Vec<StoredSetting>>>,
}

impl Records {
    /// Empty caches of at most `capacity` entries each, with the token cache's policy: trusted
    /// at start or only once the feed listens, and an optional maximum age.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        capacity: usize,
        trusted_at_start: bool,
        max_age_ms: Option<i64>,
    ) -> Self {
        Self {
            store,
            accounts: EpochCache::new(capacity, clock.clone())
                .with_policy(trusted_at_start, max_age_ms),
            users: EpochCache::new(capacity, clock.clone())
                .with_policy(trusted_at_start, max_age_ms),
            settings: EpochCache::new(capacity, clock).with_policy(trusted_at_start, max_age_ms),
        }
    }

    /// Account `id`, from memory when possible.
    pub async fn account(&self, id: AccountId) -> Result<Option<Arc<Account>>> {
        self.accounts
            .get_or_load(&id, || async {
                Ok(self.store.get_account(id).await?.map(Arc::new))
            })
            .await
    }

    /// User `id` of `account`, from memory when possible; `None` if there is no such user in
    /// this account.
    pub async fn user(&self, account: AccountId, id: UserId) -> Result<Option<Arc<User>>> {
        let user = self
            .users
            .get_or_load(&id, || async {
                Ok(self.store.get_user(account, id).await?.map(Arc::new))
            })
            .await?;
        Ok(user.filter(|u| u.account_id == account))
    }

    /// The stored settings of `account`, from memory when possible.
    pub async fn settings(&self, account: AccountId) -> Result<Arc<Vec<StoredSetting>>> {
        let loaded = self
            .settings
            .get_or_load(&account, || async {
                Ok(Some(Arc::new(self.store.list_settings(account).await?)))
            })
            .await?;
        Ok(loaded.unwrap_or_default())
    }

    /// Drops an account's settings this node changed (after the store committed the change).
    pub fn evict_settings(&self, account: AccountId) {
        self.settings.evict([&account]);
    }

    /// Whether a read of user `id` would be answered from memory (tests and diagnostics).
    pub fn serves_user(&self, id: UserId) -> bool {
        self.users.get(&id).is_some()
    }

    /// Drops a user this node changed or deleted (after the store committed the change).
    pub fn evict_user(&self, id: UserId) {
        self.users.evict([&id]);
    }
}

impl InvalidationSink for Records {
    fn invalidate(&self, msg: Invalidation) {
        // Feed-state messages concern both caches; listed ones only their own.
        if let Some(listed) = self.accounts.apply_feed_state(msg.clone()) {
            match listed {
                Invalidation::Users(ids) => self.users.evict(&ids),
                Invalidation::Accounts(ids) => {
                    self.accounts.evict(&ids);
                    self.settings.evict(&ids);
                }
                _ => {}
            }
        } else {
            self.users.apply_feed_state(msg.clone());
            self.settings.apply_feed_state(msg);
        }
    }
}
