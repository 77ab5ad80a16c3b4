//! Account settings ([`SettingsStore`]): validated JSON values by slug. Every query binds the
//! account id; a change tells every node (its cached account carries the settings) in the
//! change's transaction.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::AccountId;
use authd_core::invalidation::Invalidation;
use authd_core::settings::StoredSetting;
use authd_core::store::SettingsStore;
use authd_core::{Error, Result};
use serde_json::Value;

use crate::audit::{change_one, insert_audits};
use crate::{args, bounded, setting_from_row, transaction, Db, Exec, Mode, SqlStore};

/// A JSON value as the text the store keeps (settings and entity bodies).
pub(crate) fn to_json(v: &Value) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

#[async_trait]
impl<D: Db> SettingsStore for SqlStore<D> {
    async fn list_settings(&self, account: AccountId) -> Result<Vec<StoredSetting>> {
        self.read_all(
            "SELECT slug, value, updated_ms FROM account_settings WHERE account_id = $1 \
                     ORDER BY slug",
            args![account],
            |r| setting_from_row(r),
        )
        .await
    }

    async fn get_setting(&self, account: AccountId, slug: &str) -> Result<Option<StoredSetting>> {
        self.read_optional(
            "SELECT slug, value, updated_ms FROM account_settings \
                     WHERE account_id = $1 AND slug = $2",
            args![account, slug],
            |r| setting_from_row(r),
        )
        .await
    }

    async fn put_setting(
        &self,
        account: AccountId,
        slug: &str,
        value: &Value,
        now_ms: i64,
        audit: Audit<'_, ()>,
    ) -> Result<()> {
        let text = to_json(value)?;
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                tx.execute(
                    "INSERT INTO account_settings (account_id, slug, value, updated_ms) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account_id, slug) DO UPDATE SET value = excluded.value, \
                     updated_ms = excluded.updated_ms",
                    args![account, slug, &text, now_ms],
                )
                .await?;
                self.db
                    .publish(tx, Invalidation::Accounts(vec![account]))
                    .await?;
                insert_audits(tx, &audit, &()).await
            })
        })
        .await
    }

    async fn delete_setting(
        &self,
        account: AccountId,
        slug: &str,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        // Nothing set: nothing to announce or audit.
        change_one(
            &self.db,
            (
                "DELETE FROM account_settings WHERE account_id = $1 AND slug = $2",
                args![account, slug],
            ),
            Some(Invalidation::Accounts(vec![account])),
            &audit,
        )
        .await
    }
}
