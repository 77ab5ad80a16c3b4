//! Works (import/export jobs) and their auth lists on PostgreSQL ([`WorkStore`]). Every query
//! binds the account id.
//!
//! `create_work` takes a share lock on each listed auth row while checking it, so a
//! concurrent delete cascade either waits for the work to commit (and then detaches it) or
//! has already removed the auth (and the check fails): no dangling id either way.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::{AccountId, WorkId};
use authd_core::model::Page;
use authd_core::store::WorkStore;
use authd_core::work::{StatusChange, Work, WorkStatus};
use authd_core::{Error, Result};
use authd_store_sql::work_from_row;

use sqlx::PgConnection;

use crate::audit::insert_audits;
use crate::{corrupt, db_err, limit, PgStore};

/// One statement, so the work and its auth ids always come from the same snapshot.
const WORK_SELECT: &str = "SELECT w.id, w.account_id, w.user_id, w.name, w.description, \
     w.workflow, w.config, w.statuscode, w.status_reason, w.created_ms, w.updated_ms, \
     w.workflow_id, w.tag, w.hidden, w.verbose_logging, w.runtime, w.work_state_version, \
     (SELECT string_agg(x.auth_id, ',' ORDER BY x.pos) FROM work_auths x \
      WHERE x.work_id = w.id) AS auth_list FROM works w";

/// What deleting a listed auth does to one work, inside the cascade's transaction: the state
/// machine decides (`WorkStatus::on_auth_delete`) and [`apply_status_change`] applies it; a
/// work it does not stop is only marked updated. The row is locked first, so a concurrent
/// status change cannot slip between the read and the write. Returns whether it was stopped.
pub(crate) async fn stop_for_auth_delete(
    tx: &mut PgConnection,
    acct: &str,
    work: &str,
    reason: &str,
    now_ms: i64,
) -> Result<bool> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT statuscode FROM works WHERE account_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(acct)
    .bind(work)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let Some(status) = status else {
        return Ok(false);
    };
    let status = WorkStatus::parse(&status).ok_or_else(|| corrupt("statuscode"))?;
    if let Some(change) = status.on_auth_delete() {
        if apply_status_change(tx, acct, work, change, reason, now_ms).await? {
            return Ok(true);
        }
    }
    sqlx::query("UPDATE works SET updated_ms = $1 WHERE account_id = $2 AND id = $3")
        .bind(now_ms)
        .bind(acct)
        .bind(work)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    Ok(false)
}

/// The one statement that changes a work's status: only from `change.from()`, and counted
/// in `work_state_version`. `false` if the work is gone or no longer in that status.
async fn apply_status_change(
    tx: &mut PgConnection,
    acct: &str,
    work: &str,
    change: StatusChange,
    reason: &str,
    now_ms: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE works SET statuscode = $1, status_reason = $2, updated_ms = $3, \
         work_state_version = work_state_version + 1 \
         WHERE account_id = $4 AND id = $5 AND statuscode = $6",
    )
    .bind(change.to().as_str())
    .bind(reason)
    .bind(now_ms)
    .bind(acct)
    .bind(work)
    .bind(change.from().as_str())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    Ok(r.rows_affected() > 0)
}

#[async_trait]
impl WorkStore for PgStore {
    async fn create_work(&self, w: Work, audit: Audit<'_, Work>) -> Result<Work> {
        let acct = w.account_id.to_string();
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            sqlx::query(
                "INSERT INTO works (id, account_id, user_id, name, description, workflow, \
                 config, statuscode, status_reason, created_ms, updated_ms, workflow_id, tag, \
                 hidden, verbose_logging, runtime, work_state_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17)",
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
            .bind(&w.workflow_id)
            .bind(&w.tag)
            .bind(w.hidden)
            .bind(w.verbose_logging)
            .bind(&w.runtime)
            .bind(w.state_version)
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
            let work = work_from_row(&row)?;
            insert_audits(&mut tx, &audit, &work).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(work)
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

    async fn delete_work(
        &self,
        account: AccountId,
        id: WorkId,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            let r = sqlx::query("DELETE FROM works WHERE account_id = $1 AND id = $2")
                .bind(account.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            insert_audits(&mut tx, &audit, &()).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
        .await
    }
}
