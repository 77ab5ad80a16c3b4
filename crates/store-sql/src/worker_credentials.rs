//! Named worker credentials ([`WorkerCredentialStore`]): operator-level rows, not tenant
//! data, so no account binding; the account limit is data the server enforces. Every node
//! reads the table on every worker request, so a revocation holds everywhere at once.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::ids::WorkerCredentialId;
use authd_core::store::WorkerCredentialStore;
use authd_core::worker_credential::{NewWorkerCredential, WorkerCredential};
use authd_core::{Error, Result};

use crate::audit::{change_one, insert_audits};
use crate::{
    args, bounded, transaction, worker_accounts_text, worker_credential_from_row, Db, Exec, Mode,
    SqlStore, WORKER_CREDENTIAL_COLS,
};

#[async_trait]
impl<D: Db> WorkerCredentialStore for SqlStore<D> {
    async fn create_worker_credential(
        &self,
        new: NewWorkerCredential,
        audit: Audit<'_, ()>,
    ) -> Result<()> {
        let c = &new.credential;
        let accounts = worker_accounts_text(&c.accounts);
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                tx.execute(
                    "INSERT INTO worker_credentials (id, name, hash, accounts, created_ms, \
                     revoked_ms) VALUES ($1, $2, $3, $4, $5, NULL)",
                    args![c.id, &c.name, &new.hash[..], &accounts, c.created_ms],
                )
                .await
                .map_err(|e| match e {
                    Error::Conflict(_) => Error::Conflict(format!(
                        "a worker credential named {:?} already exists",
                        c.name
                    )),
                    other => other,
                })?;
                insert_audits(tx, &audit, &()).await
            })
        })
        .await
    }

    async fn worker_credential_by_hash(&self, hash: &[u8; 32]) -> Result<Option<WorkerCredential>> {
        let sql = format!(
            "SELECT {WORKER_CREDENTIAL_COLS} FROM worker_credentials \
             WHERE hash = $1 AND revoked_ms IS NULL"
        );
        self.read_optional(&sql, args![&hash[..]], |r| worker_credential_from_row(r))
            .await
    }

    async fn list_worker_credentials(&self) -> Result<Vec<WorkerCredential>> {
        let sql = format!(
            "SELECT {WORKER_CREDENTIAL_COLS} FROM worker_credentials ORDER BY created_ms, id"
        );
        self.read_all(&sql, args![], |r| worker_credential_from_row(r))
            .await
    }

    async fn revoke_worker_credential(
        &self,
        id: WorkerCredentialId,
        now_ms: i64,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        change_one(
            &self.db,
            (
                "UPDATE worker_credentials SET revoked_ms = $1 \
                 WHERE id = $2 AND revoked_ms IS NULL",
                args![now_ms, id],
            ),
            None,
            &audit,
        )
        .await
    }
}
