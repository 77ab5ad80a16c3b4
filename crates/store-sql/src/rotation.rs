//! Token rotation ([`RotationStore`]). Every query binds the account id.

use async_trait::async_trait;
use authd_core::ids::{AccountId, AuthId};
use authd_core::invalidation::Invalidation;
use authd_core::model::{Auth, NewToken};
use authd_core::store::RotationStore;
use authd_core::Result;

use crate::audit::insert_audit;
use crate::{
    args, auth_from_row, bounded, opt_id_col, transaction, Db, Exec, Mode, SqlStore, AUTH_COLS,
};

#[async_trait]
impl<D: Db> RotationStore for SqlStore<D> {
    async fn rotate_token(
        &self,
        account: AccountId,
        old: AuthId,
        new: NewToken,
        old_expires_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Auth>> {
        let select_new = format!("SELECT {AUTH_COLS} FROM auths WHERE account_id = $1 AND id = $2");
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                // Lock `old` first (the order a cascade takes: parent before children), then
                // hand the tokens it created to `new`. (On SQLite the write transaction holds
                // the database's one write lock from BEGIN, so the order does not matter
                // there.) The cap never extends: an expiry below `$1` stays, NULL becomes `$1`.
                let capped = tx
                    .execute(
                        "UPDATE auths SET expires_ms = CASE WHEN expires_ms < $1 \
                         THEN expires_ms ELSE $1 END, updated_ms = $2 \
                         WHERE account_id = $3 AND id = $4 AND kind = 'api_token'",
                        args![old_expires_ms, now_ms, account, old],
                    )
                    .await?;
                if capped == 0 {
                    return Ok(None);
                }
                insert_token(tx, account, &new, now_ms).await?;
                if let Some(e) = &new.audit {
                    insert_audit(tx, e).await?;
                }
                // `new` inherits `old`'s parent, never `old`: this moves only `old`'s children.
                tx.execute(
                    "UPDATE auths SET parent_id = $1 WHERE account_id = $2 AND parent_id = $3",
                    args![new.id, account, old],
                )
                .await?;
                tx.execute(
                    "UPDATE auths SET parent_id = $1, rotated_to = $1 \
                     WHERE account_id = $2 AND id = $3",
                    args![new.id, account, old],
                )
                .await?;
                let auth = tx
                    .one(&select_new, args![account, new.id], |r| auth_from_row(r))
                    .await?;
                // The old token's expiry changed: every node must drop its cached record.
                self.db.publish(tx, Invalidation::Auths(vec![old])).await?;
                Ok(Some(auth))
            })
        })
        .await
    }

    async fn rotated_successor(
        &self,
        account: AccountId,
        id: AuthId,
        now_ms: i64,
    ) -> Result<Option<AuthId>> {
        bounded(&self.db, async {
            let next: Option<Option<AuthId>> = self
                .db
                .read()
                .optional(
                    "SELECT rotated_to FROM auths WHERE account_id = $1 AND id = $2 \
                     AND (expires_ms IS NULL OR expires_ms > $3)",
                    args![account, id, now_ms],
                    |r| opt_id_col(r, "rotated_to", AuthId::parse),
                )
                .await?;
            Ok(next.flatten())
        })
        .await
    }
}

use crate::auths::insert_token;
