//! The audit trail on PostgreSQL ([`AuditStore`]): append-only, listed per account newest
//! first. Sequence numbers come from an identity column.

use async_trait::async_trait;
use authd_core::audit::{Audit, AuditEntry, AuditFilter};
use authd_core::ids::AccountId;
use authd_core::store::AuditStore;
use authd_core::Result;
use authd_store_sql::audit_from_row;

use crate::{db_err, limit, PgStore};

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, e: AuditEntry) -> Result<i64> {
        self.bounded(async {
            let mut conn = self.pool.acquire().await.map_err(db_err)?;
            insert_audit(&mut conn, &e).await
        })
        .await
    }

    async fn list_audit(
        &self,
        account: AccountId,
        f: AuditFilter,
        before: Option<i64>,
        lim: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.bounded(async {
            sqlx::query(
                "SELECT seq, at_ms, account_id, actor, action, target, outcome, request_id, \
                 detail FROM audit WHERE account_id = $1 AND seq < $2 \
                 AND ($3::text IS NULL OR action = $3) AND ($4::text IS NULL OR target = $4) \
                 AND ($5::text IS NULL OR actor = $5) ORDER BY seq DESC LIMIT $6",
            )
            .bind(account.to_string())
            .bind(before.unwrap_or(i64::MAX))
            .bind(f.action.as_deref())
            .bind(f.target.as_deref())
            .bind(f.actor.as_deref())
            .bind(limit(lim))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(audit_from_row)
            .collect()
        })
        .await
    }
}

/// Appends one audit row on `conn` (inside the caller's transaction when it has one).
pub(crate) async fn insert_audit(conn: &mut sqlx::PgConnection, e: &AuditEntry) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO audit (at_ms, account_id, actor, action, target, outcome, \
         request_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
    )
    .bind(e.at_ms)
    .bind(e.account_id.map(|a| a.to_string()))
    .bind(&e.actor)
    .bind(e.action.as_str())
    .bind(&e.target)
    .bind(&e.outcome)
    .bind(&e.request_id)
    .bind(&e.detail)
    .fetch_one(conn)
    .await
    .map_err(db_err)
}

/// Inserts a mutation's audit entries for what it did, inside its transaction.
pub(crate) async fn insert_audits<T>(
    conn: &mut sqlx::PgConnection,
    audit: &Audit<'_, T>,
    outcome: &T,
) -> Result<()> {
    for e in audit.entries(outcome) {
        insert_audit(&mut *conn, &e).await?;
    }
    Ok(())
}
