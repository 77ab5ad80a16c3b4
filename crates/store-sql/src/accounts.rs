//! Accounts (tenants).

use async_trait::async_trait;
use authd_core::ids::AccountId;
use authd_core::model::{Account, NewAccount};
use authd_core::store::AccountStore;
use authd_core::Result;

use crate::{
    account_from_row, args, bounded, corrupt, get, transaction, Db, Exec, Mode, SqlStore,
    ACCOUNT_COLS,
};

#[async_trait]
impl<D: Db> AccountStore for SqlStore<D> {
    async fn create_account(&self, new: NewAccount, now_ms: i64) -> Result<Account> {
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                tx.one(
                    "INSERT INTO accounts (id, name, domain, email, timezone, created_ms, \
                     updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *",
                    args![
                        new.id,
                        &new.name,
                        &new.domain,
                        &new.email,
                        &new.timezone,
                        now_ms
                    ],
                    |r| account_from_row(r),
                )
                .await
            })
        })
        .await
    }

    async fn get_account(&self, id: AccountId) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1");
        self.read_optional(&sql, args![id], |r| account_from_row(r))
            .await
    }

    async fn get_account_by_aid(&self, aid: i64) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE aid = $1");
        self.read_optional(&sql, args![aid], |r| account_from_row(r))
            .await
    }

    async fn count_accounts(&self) -> Result<u64> {
        let n: i64 = self
            .read_one("SELECT COUNT(*) AS n FROM accounts", args![], |r| {
                get(r, "n")
            })
            .await?;
        u64::try_from(n).map_err(|_| corrupt("count"))
    }
}
