//! Accounts (tenants) on PostgreSQL.

use async_trait::async_trait;
use authd_core::ids::AccountId;
use authd_core::model::{Account, NewAccount};
use authd_core::store::AccountStore;
use authd_core::Result;
use authd_store_sql::account_from_row;

use crate::{corrupt, db_err, PgStore};

#[async_trait]
impl AccountStore for PgStore {
    async fn create_account(&self, new: NewAccount, now_ms: i64) -> Result<Account> {
        self.bounded(async {
            let row = sqlx::query(
                "INSERT INTO accounts (id, name, domain, email, timezone, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *",
            )
            .bind(new.id.to_string())
            .bind(&new.name)
            .bind(&new.domain)
            .bind(&new.email)
            .bind(&new.timezone)
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
            account_from_row(&row)
        })
        .await
    }

    async fn get_account(&self, id: AccountId) -> Result<Option<Account>> {
        self.bounded(async {
            sqlx::query("SELECT * FROM accounts WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(account_from_row)
                .transpose()
        })
        .await
    }

    async fn get_account_by_aid(&self, aid: i64) -> Result<Option<Account>> {
        self.bounded(async {
            sqlx::query("SELECT * FROM accounts WHERE aid = $1")
                .bind(aid)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(account_from_row)
                .transpose()
        })
        .await
    }

    async fn count_accounts(&self) -> Result<u64> {
        self.bounded(async {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
            u64::try_from(n).map_err(|_| corrupt("count"))
        })
        .await
    }
}
