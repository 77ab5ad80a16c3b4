//! Works (import/export jobs) and their auth lists on PostgreSQL ([`WorkStore`]). Every query
//! binds the account id.
//!
//! `create_work` takes a share lock on each listed auth row while checking it, so a
//! concurrent delete cascade either waits for the work to commit (and then detaches it) or
//! has already removed the auth (and the check fails): no dangling id either way.

use async_trait::async_trait;
use authd_core::ids::{AccountId, WorkId};
use authd_core::model::Page;
use authd_core::work::{Work, WorkStore};
use authd_core::{Error, Result};
use authd_store_sql::work_from_row;

use crate::{corrupt, db_err, limit, PgStore};

/// One statement, so the work and its auth ids always come from the same snapshot.
const WORK_SELECT: &str = "SELECT w.id, w.account_id, w.user_id, w.name, w.description, \
     w.workflow, w.config, w.statuscode, w.status_reason, w.created_ms, w.updated_ms, \
     (SELECT string_agg(x.auth_id, ',' ORDER BY x.pos) FROM work_auths x \
      WHERE x.work_id = w.id) AS auth_list FROM works w";

#[async_trait]
impl WorkStore for PgStore {
    async fn create_work(&self, w: Work) -> Result<Work> {
        let acct = w.account_id.to_string();
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            sqlx::query(
                "INSERT INTO works (id, account_id, user_id, name, description, workflow, \
                 config, statuscode, status_reason, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(w.id.to_string())
            .bind(&acct)
            .bind(w.user_id.map(|u| u.to_string()))
            .bind(&w.name)
            .bind(&w.description)
            .bind(&w.workflow)
            .bind(&w.config)
            .bind(w.status.as_str())
            .bind(&w.status_reason)
            .bind(w.created_ms)
            .bind(w.updated_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                Error::Conflict(_) => Error::Conflict("Duplicate work config".into()),
                other => other,
            })?;
            for (pos, a) in w.auth_ids.iter().enumerate() {
                let exists: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM auths WHERE account_id = $1 AND id = $2 FOR SHARE",
                )
                .bind(&acct)
                .bind(a.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                if exists.is_none() {
                    return Err(Error::invalid(format!(
                        "auth_ids: no auth {a} in this account"
                    )));
                }
                sqlx::query(
                    "INSERT INTO work_auths (account_id, work_id, pos, auth_id) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&acct)
                .bind(w.id.to_string())
                .bind(i64::try_from(pos).map_err(|_| corrupt("pos"))?)
                .bind(a.to_string())
                .execute(&mut *tx)
                .await
                .map_err(|e| match db_err(e) {
                    Error::Conflict(_) => Error::invalid("auth_ids: duplicate id"),
                    other => other,
                })?;
            }
            let sql = format!("{WORK_SELECT} WHERE w.account_id = $1 AND w.id = $2");
            let row = sqlx::query(&sql)
                .bind(&acct)
                .bind(w.id.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            work_from_row(&row)
        })
        .await
    }

    async fn get_work(&self, account: AccountId, id: WorkId) -> Result<Option<Work>> {
        self.bounded(async {
            let sql = format!("{WORK_SELECT} WHERE w.account_id = $1 AND w.id = $2");
            sqlx::query(&sql)
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(work_from_row)
                .transpose()
        })
        .await
    }

    async fn list_works(&self, account: AccountId, page: Page<WorkId>) -> Result<Vec<Work>> {
        self.bounded(async {
            let sql = format!(
                "{WORK_SELECT} WHERE w.account_id = $1 AND w.id > $2 ORDER BY w.id LIMIT $3"
            );
            sqlx::query(&sql)
                .bind(account.to_string())
                .bind(page.after.map(|a| a.to_string()).unwrap_or_default())
                .bind(limit(page.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?
                .iter()
                .map(work_from_row)
                .collect()
        })
        .await
    }

    async fn delete_work(&self, account: AccountId, id: WorkId) -> Result<bool> {
        self.bounded(async {
            let r = sqlx::query("DELETE FROM works WHERE account_id = $1 AND id = $2")
                .bind(account.to_string())
                .bind(id.to_string())
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
            Ok(r.rows_affected() > 0)
        })
        .await
    }
}
