//! Works (import/export jobs) and their auth lists ([`WorkStore`]). Every query binds the
//! account id.
//!
//! `create_work` takes a share lock on each listed auth row while checking it (PostgreSQL's
//! `FOR SHARE`), so a concurrent delete cascade either waits for the work to commit (and then
//! detaches it) or has already removed the auth (and the check fails): no dangling id either
//! way. On SQLite the write transaction holds the database's one write lock from its first
//! statement ([`Mode::Write`]), which gives the same guarantee.
//!
//! No method here changes a work's status: a work is created in the status its caller chose
//! (the server admits only `WorkStatus::is_initial` ones), and the one status change the
//! store makes is the auth delete cascade's (`stop_for_auth_delete` in `crate::credentials`),
//! decided by `WorkStatus::on_auth_delete` and applied as a `StatusChange`.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::{AccountId, WorkId};
use authd_core::model::Page;
use authd_core::store::WorkStore;
use authd_core::work::Work;
use authd_core::{Error, Result};

use crate::audit::{change_one, insert_audits};
use crate::{
    args, bounded, corrupt, limit, transaction, work_from_row, Db, Dialect, Exec, Mode, SqlStore,
};

/// The work columns [`work_from_row`] reads, without the auth list.
const WORK_COLS: &str = "w.id, w.account_id, w.user_id, w.name, w.description, w.workflow, \
     w.config, w.statuscode, w.status_reason, w.created_ms, w.updated_ms, w.workflow_id, \
     w.tag, w.hidden, w.verbose_logging, w.runtime, w.work_state_version";

/// One statement, so the work and its auth ids always come from the same snapshot. The auth
/// ids are aggregated in list order: `string_agg … ORDER BY` on PostgreSQL, `group_concat`
/// over an ordered subquery on SQLite.
fn work_select(dialect: Dialect) -> String {
    let auth_list = match dialect {
        Dialect::Sqlite => {
            "(SELECT group_concat(auth_id, ',') FROM \
             (SELECT auth_id FROM work_auths x WHERE x.work_id = w.id ORDER BY x.pos))"
        }
        Dialect::Postgres => {
            "(SELECT string_agg(x.auth_id, ',' ORDER BY x.pos) FROM work_auths x \
             WHERE x.work_id = w.id)"
        }
    };
    format!("SELECT {WORK_COLS}, {auth_list} AS auth_list FROM works w")
}

#[async_trait]
impl<D: Db> WorkStore for SqlStore<D> {
    async fn create_work(&self, w: Work, audit: Audit<'_, Work>) -> Result<Work> {
        let auth_check = format!(
            "SELECT 1 AS one FROM auths WHERE account_id = $1 AND id = $2{}",
            match D::DIALECT {
                // The write transaction already holds SQLite's write lock.
                Dialect::Sqlite => "",
                // A share lock: a concurrent delete cascade waits for this work to commit.
                Dialect::Postgres => " FOR SHARE",
            }
        );
        let select = format!(
            "{} WHERE w.account_id = $1 AND w.id = $2",
            work_select(D::DIALECT)
        );
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                tx.execute(
                    "INSERT INTO works (id, account_id, user_id, name, description, workflow, \
                     config, statuscode, status_reason, created_ms, updated_ms, workflow_id, \
                     tag, hidden, verbose_logging, runtime, work_state_version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17)",
                    args![
                        w.id,
                        w.account_id,
                        w.user_id,
                        &w.name,
                        &w.description,
                        &w.workflow,
                        &w.config,
                        w.status.as_str(),
                        &w.status_reason,
                        w.created_ms,
                        w.updated_ms,
                        &w.workflow_id,
                        &w.tag,
                        w.hidden,
                        w.verbose_logging,
                        &w.runtime,
                        w.state_version
                    ],
                )
                .await
                .map_err(|e| match e {
                    Error::Conflict(_) => Error::Conflict("Duplicate work config".into()),
                    other => other,
                })?;
                for (pos, a) in w.auth_ids.iter().enumerate() {
                    let exists = tx
                        .optional(&auth_check, args![w.account_id, *a], |_| Ok(()))
                        .await?;
                    if exists.is_none() {
                        return Err(Error::invalid(format!(
                            "auth_ids: no auth {a} in this account"
                        )));
                    }
                    tx.execute(
                        "INSERT INTO work_auths (account_id, work_id, pos, auth_id) \
                         VALUES ($1, $2, $3, $4)",
                        args![
                            w.account_id,
                            w.id,
                            i64::try_from(pos).map_err(|_| corrupt("pos"))?,
                            *a
                        ],
                    )
                    .await
                    .map_err(|e| match e {
                        Error::Conflict(_) => Error::invalid("auth_ids: duplicate id"),
                        other => other,
                    })?;
                }
                let work = tx
                    .one(&select, args![w.account_id, w.id], |r| work_from_row(r))
                    .await?;
                insert_audits(tx, &audit, &work).await?;
                Ok(work)
            })
        })
        .await
    }

    async fn get_work(&self, account: AccountId, id: WorkId) -> Result<Option<Work>> {
        let sql = format!(
            "{} WHERE w.account_id = $1 AND w.id = $2",
            work_select(D::DIALECT)
        );
        self.read_optional(&sql, args![account, id], |r| work_from_row(r))
            .await
    }

    async fn list_works(&self, account: AccountId, page: Page<WorkId>) -> Result<Vec<Work>> {
        let sql = format!(
            "{} WHERE w.account_id = $1 AND w.id > $2 ORDER BY w.id LIMIT $3",
            work_select(D::DIALECT)
        );
        self.read_all(
            &sql,
            args![
                account,
                page.after.map(|a| a.to_string()).unwrap_or_default(),
                limit(page.limit)
            ],
            |r| work_from_row(r),
        )
        .await
    }

    async fn delete_work(
        &self,
        account: AccountId,
        id: WorkId,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        change_one(
            &self.db,
            (
                "DELETE FROM works WHERE account_id = $1 AND id = $2",
                args![account, id],
            ),
            None,
            &audit,
        )
        .await
    }
}
