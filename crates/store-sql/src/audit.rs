//! The audit trail ([`AuditStore`]): append-only, listed per account newest first, and the
//! insert every mutation uses to commit its entries in its own transaction.

use async_trait::async_trait;
use authd_core::audit::{Audit, AuditEntry, AuditFilter};
use authd_core::ids::AccountId;
use authd_core::invalidation::Invalidation;
use authd_core::store::AuditStore;
use authd_core::Result;

use crate::{
    args, audit_from_row, bounded, get, limit, transaction, Arg, Db, Exec, Mode, SqlStore,
};

#[async_trait]
impl<D: Db> AuditStore for SqlStore<D> {
    async fn append_audit(&self, e: AuditEntry) -> Result<i64> {
        // One statement: an append needs no transaction around it.
        bounded(&self.db, insert_audit(&mut self.db.autocommit(), &e)).await
    }

    async fn list_audit(
        &self,
        account: AccountId,
        f: AuditFilter,
        before: Option<i64>,
        lim: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.read_all(
            "SELECT seq, at_ms, account_id, actor, action, target, outcome, request_id, \
                     detail FROM audit WHERE account_id = $1 AND seq < $2 \
                     AND (CAST($3 AS TEXT) IS NULL OR action = $3) \
                     AND (CAST($4 AS TEXT) IS NULL OR target = $4) \
                     AND (CAST($5 AS TEXT) IS NULL OR actor = $5) ORDER BY seq DESC LIMIT $6",
            args![
                account,
                before.unwrap_or(i64::MAX),
                &f.action,
                &f.target,
                &f.actor,
                limit(lim)
            ],
            |r| audit_from_row(r),
        )
        .await
    }
}

/// Appends one audit row and returns its sequence number (the arguments: [`insert_audit_args`]).
pub const INSERT_AUDIT_SQL: &str =
    "INSERT INTO audit (at_ms, account_id, actor, action, target, outcome, request_id, \
     detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq";

/// The arguments of [`INSERT_AUDIT_SQL`].
pub fn insert_audit_args(e: &AuditEntry) -> [Arg<'_>; 8] {
    [
        Arg::from(e.at_ms),
        Arg::from(e.account_id),
        Arg::from(&e.actor),
        Arg::from(e.action.as_str()),
        Arg::from(&e.target),
        Arg::from(&e.outcome),
        Arg::from(&e.request_id),
        Arg::from(&e.detail),
    ]
}

/// Appends one audit row inside the caller's transaction; returns its sequence number.
pub(crate) async fn insert_audit<E: Exec>(tx: &mut E, e: &AuditEntry) -> Result<i64> {
    tx.one(INSERT_AUDIT_SQL, &insert_audit_args(e), |r| get(r, "seq"))
        .await
}

/// Inserts a mutation's audit entries for what it did, inside its transaction.
pub(crate) async fn insert_audits<E: Exec, T>(
    tx: &mut E,
    audit: &Audit<'_, T>,
    outcome: &T,
) -> Result<()> {
    for e in audit.entries(outcome) {
        insert_audit(tx, &e).await?;
    }
    Ok(())
}

/// Runs `sql`, a change of at most one row, in a write transaction and commits the mutation's
/// audit entries with it (and `publish`, if given); `false` — nothing announced, nothing
/// audited — when it changed no row. The shape of every delete or revoke by key.
pub(crate) async fn change_one<D: Db>(
    db: &D,
    (sql, args): (&str, &[Arg<'_>]),
    publish: Option<Invalidation>,
    audit: &Audit<'_, ()>,
) -> Result<bool> {
    bounded(db, async {
        transaction!(db, Mode::Write, |tx| {
            if tx.execute(sql, args).await? != 1 {
                return Ok(false);
            }
            if let Some(msg) = &publish {
                db.publish(tx, msg.clone()).await?;
            }
            insert_audits(tx, audit, &()).await?;
            Ok(true)
        })
    })
    .await
}
