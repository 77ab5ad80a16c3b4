//! Named worker credentials on PostgreSQL ([`WorkerCredentialStore`]): operator-level rows, not
//! tenant data, so no account binding; the account limit is data the server enforces. Every
//! node reads the table on every worker request, so a revocation holds everywhere at once.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::WorkerCredentialId;
use authd_core::store::WorkerCredentialStore;
use authd_core::worker_credential::{NewWorkerCredential, WorkerCredential};
use authd_core::{Error, Result};
use authd_store_sql::{worker_accounts_text, worker_credential_from_row, WORKER_CREDENTIAL_COLS};

use crate::audit::insert_audits;
use crate::{db_err, PgStore};

#[async_trait]
impl WorkerCredentialStore for PgStore {
    async fn create_worker_credential(
        &self,
        new: NewWorkerCredential,
        audit: Audit<'_, ()>,
    ) -> Result<()> {
        let c = &new.credential;
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            sqlx::query(
                "INSERT INTO worker_credentials (id, name, hash, accounts, created_ms, revoked_ms) \
                 VALUES ($1, $2, $3, $4, $5, NULL)",
            )
            .bind(c.id.to_string())
            .bind(&c.name)
            .bind(new.hash.as_slice())
            .bind(worker_accounts_text(&c.accounts))
            .bind(c.created_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                Error::Conflict(_) => Error::Conflict(format!(
                    "a worker credential named {:?} already exists",
                    c.name
                )),
                other => other,
            })?;
            insert_audits(&mut tx, &audit, &()).await?;
            tx.commit().await.map_err(db_err)
        })
        .await
    }

    async fn worker_credential_by_hash(&self, hash: &[u8; 32]) -> Result<Option<WorkerCredential>> {
        let sql = format!(
            "SELECT {WORKER_CREDENTIAL_COLS} FROM worker_credentials \
             WHERE hash = $1 AND revoked_ms IS NULL"
        );
        self.bounded(async {
            sqlx::query(&sql)
                .bind(hash.as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?
                .as_ref()
                .map(worker_credential_from_row)
                .transpose()
        })
        .await
    }

    async fn list_worker_credentials(&self) -> Result<Vec<WorkerCredential>> {
        let sql = format!(
            "SELECT {WORKER_CREDENTIAL_COLS} FROM worker_credentials ORDER BY created_ms, id"
        );
        self.bounded(async {
            sqlx::query(&sql)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?
                .iter()
                .map(worker_credential_from_row)
                .collect()
        })
        .await
    }

    async fn revoke_worker_credential(
        &self,
        id: WorkerCredentialId,
        now_ms: i64,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            let r = sqlx::query(
                "UPDATE worker_credentials SET revoked_ms = $1 \
                 WHERE id = $2 AND revoked_ms IS NULL",
            )
            .bind(now_ms)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            insert_audits(&mut tx, &audit, &()).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
        .await
    }
}
