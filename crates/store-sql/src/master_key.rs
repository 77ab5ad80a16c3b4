//! [`MasterKeyStore`]: the wrapped token-hash key (table `token_hash_key`, migration 0009) and
//! the one-transaction master-key rewrap. Operator/start-up operations, not tenant-scoped.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::master_key::MasterRewrap;
use authd_core::store::MasterKeyStore;
use authd_core::{Error, Result};

use crate::audit::insert_audits;
use crate::{args, bounded, get, transaction, Db, Dialect, Exec, Mode, SqlStore};

fn changed() -> Error {
    Error::Conflict("the stored keys changed during the master-key rotation; run it again".into())
}

const SELECT_TOKEN_HASH_KEY: &str = "SELECT wrapped FROM token_hash_key WHERE id = 1";

#[async_trait]
impl<D: Db> MasterKeyStore for SqlStore<D> {
    async fn token_hash_key(&self) -> Result<Option<Vec<u8>>> {
        self.read_optional(SELECT_TOKEN_HASH_KEY, args![], |r| get(r, "wrapped"))
            .await
    }

    async fn init_token_hash_key(&self, wrapped: Vec<u8>) -> Result<Vec<u8>> {
        bounded(&self.db, async {
            // The insert and the read back in one transaction: the key read is ours or the
            // one a concurrent starter committed first (its insert made ours do nothing).
            transaction!(&self.db, Mode::Write, |tx| {
                tx.execute(
                    "INSERT INTO token_hash_key (id, wrapped) VALUES (1, $1) \
                     ON CONFLICT (id) DO NOTHING",
                    args![&wrapped],
                )
                .await?;
                tx.optional(SELECT_TOKEN_HASH_KEY, args![], |r| get(r, "wrapped"))
                    .await?
                    .ok_or_else(|| {
                        Error::internal(anyhow::anyhow!("token-hash key missing after insert"))
                    })
            })
        })
        .await
    }

    async fn rewrap_master(&self, rewrap: MasterRewrap, audit: Audit<'_, ()>) -> Result<()> {
        bounded(&self.db, async {
            // The data_keys lock (as `add_data_key` takes) makes the count and the swaps one
            // step against a concurrent `keys rotate`. On SQLite the write transaction
            // (BEGIN IMMEDIATE) is that lock: a concurrent `keys rotate` waits. Any early
            // return rolls back.
            transaction!(&self.db, Mode::Write, |tx| {
                match D::DIALECT {
                    Dialect::Postgres => {
                        tx.execute("LOCK TABLE data_keys IN EXCLUSIVE MODE", args![])
                            .await?;
                    }
                    Dialect::Sqlite => {}
                }
                let n: i64 = tx
                    .one("SELECT COUNT(*) AS n FROM data_keys", args![], |r| {
                        get(r, "n")
                    })
                    .await?;
                if usize::try_from(n).ok() != Some(rewrap.data_keys.len()) {
                    return Err(changed());
                }
                for (id, old, new) in &rewrap.data_keys {
                    let n = tx
                        .execute(
                            "UPDATE data_keys SET wrapped = $1 WHERE id = $2 AND wrapped = $3",
                            args![new, id, old],
                        )
                        .await?;
                    if n != 1 {
                        return Err(changed());
                    }
                }
                let (old, new) = &rewrap.token_key;
                let n = tx
                    .execute(
                        "UPDATE token_hash_key SET wrapped = $1 WHERE id = 1 AND wrapped = $2",
                        args![new, old],
                    )
                    .await?;
                if n != 1 {
                    return Err(changed());
                }
                insert_audits(tx, &audit, &()).await
            })
        })
        .await
    }
}
