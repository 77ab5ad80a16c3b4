//! PostgreSQL side of [`MasterKeyStore`]: the wrapped token-hash key (table `token_hash_key`,
//! migration 0009) and the one-transaction master-key rewrap.

use async_trait::async_trait;
use authd_core::master_key::MasterRewrap;
use authd_core::store::MasterKeyStore;
use authd_core::{Error, Result};

use crate::{db_err, PgStore};

fn changed() -> Error {
    Error::Conflict("the stored keys changed during the master-key rotation; run it again".into())
}

#[async_trait]
impl MasterKeyStore for PgStore {
    async fn token_hash_key(&self) -> Result<Option<Vec<u8>>> {
        self.bounded(async {
            sqlx::query_scalar("SELECT wrapped FROM token_hash_key WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)
        })
        .await
    }

    async fn init_token_hash_key(&self, wrapped: Vec<u8>) -> Result<Vec<u8>> {
        self.bounded(async {
            sqlx::query("INSERT INTO token_hash_key (id, wrapped) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
                .bind(wrapped.as_slice())
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
            self.token_hash_key()
                .await?
                .ok_or_else(|| Error::internal(anyhow::anyhow!("token-hash key missing after insert")))
        })
        .await
    }

    async fn rewrap_master(
        &self,
        rewrap: MasterRewrap,
        audit: authd_core::audit::Audit<'_, ()>,
    ) -> Result<()> {
        self.bounded(async {
            // The data_keys lock (as `add_data_key` takes) makes the count and the swaps one step
            // against a concurrent `keys rotate`. Any early return rolls back.
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            sqlx::query("LOCK TABLE data_keys IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_keys")
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            if usize::try_from(n).ok() != Some(rewrap.data_keys.len()) {
                return Err(changed());
            }
            for (id, old, new) in &rewrap.data_keys {
                let r =
                    sqlx::query("UPDATE data_keys SET wrapped = $1 WHERE id = $2 AND wrapped = $3")
                        .bind(new.as_slice())
                        .bind(id)
                        .bind(old.as_slice())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                if r.rows_affected() != 1 {
                    return Err(changed());
                }
            }
            let (old, new) = &rewrap.token_key;
            let r =
                sqlx::query("UPDATE token_hash_key SET wrapped = $1 WHERE id = 1 AND wrapped = $2")
                    .bind(new.as_slice())
                    .bind(old.as_slice())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Err(changed());
            }
            crate::audit::insert_audits(&mut tx, &audit, &()).await?;
            tx.commit().await.map_err(db_err)
        })
        .await
    }
}
