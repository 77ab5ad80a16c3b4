//! PostgreSQL as a [`Db`]: what is particular to a shared server and nothing else.
//!
//! - Every call is bounded ([`Db::deadline`]: pool acquire, the server-side
//!   `statement_timeout`, and this overall deadline); connection-level failures map to
//!   `Unavailable` (HTTP 503) in [`authd_store_sql::pg_err`].
//! - Deadlock and serialization victims are rerun with a jittered back-off
//!   ([`crate::retry`]).
//! - Invalidations are `NOTIFY`s sent inside the transaction ([`crate::notify`]), delivered
//!   to every node when (and if) it commits.
//! - Issuance is group-committed ([`crate::group_commit`]); last-access batches lock their rows in id order and
//!   update them in one `UNNEST` statement.

use std::time::Duration;

use async_trait::async_trait;
use authd_core::ids::{AccountId, AuthId};
use authd_core::invalidation::Invalidation;
use authd_core::model::{Auth, NewToken};
use authd_core::{Error, Result};
use authd_store_sql::{args, pg_err, transaction, Db, Dialect, Exec, Mode, Sqlx};
use sqlx::postgres::PgPool;
use sqlx::Postgres;

use crate::group_commit::GroupCommit;

/// The PostgreSQL backend (see the module docs).
#[derive(Clone, Debug)]
pub struct PgDb {
    pub(crate) pool: PgPool,
    pub(crate) timeout: Duration,
    /// Issuance's batching task (`None` inside that task, which writes directly).
    pub(crate) group: Option<GroupCommit>,
}

impl PgDb {
    /// The underlying pool (for tooling).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The feed of invalidations made by any node on this database.
    pub fn feed(&self) -> crate::PgFeed {
        crate::PgFeed::new(self.pool.clone())
    }
}

#[async_trait]
impl Db for PgDb {
    type Tx = Sqlx<sqlx::Transaction<'static, Postgres>>;
    type Read<'a> = Sqlx<PgPool>;
    type Autocommit = Sqlx<PgPool>;

    const DIALECT: Dialect = Dialect::Postgres;
    const NAME: &'static str = "postgres";

    fn read(&self) -> Sqlx<PgPool> {
        Sqlx(self.pool.clone())
    }

    fn autocommit(&self) -> Self::Autocommit {
        Sqlx(self.pool.clone())
    }

    async fn begin(&self, mode: Mode) -> Result<Self::Tx> {
        let mut tx = Sqlx(self.pool.begin().await.map_err(pg_err)?);
        if mode == Mode::Snapshot {
            tx.execute(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                args![],
            )
            .await?;
        }
        Ok(tx)
    }

    async fn commit(&self, tx: Self::Tx) -> Result<()> {
        tx.0.commit().await.map_err(pg_err)
    }

    async fn publish(&self, tx: &mut Self::Tx, msg: Invalidation) -> Result<()> {
        crate::notify::publish(tx, msg).await
    }

    fn deadline(&self) -> Option<Duration> {
        Some(self.timeout)
    }

    fn retry_after(&self, e: &Error, attempt: u32) -> Option<Duration> {
        (attempt < crate::retry::ATTEMPTS && crate::retry::is_conflict(e)).then(|| {
            tracing::debug!(attempt, "transaction conflict; retrying");
            crate::retry::backoff(attempt)
        })
    }

    async fn ping(&self) -> Result<()> {
        authd_store_sql::bounded(self, async {
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map_err(|e| Error::Unavailable(e.into()))?;
            Ok(())
        })
        .await
    }

    async fn create_token(&self, account: AccountId, t: NewToken, now_ms: i64) -> Result<Auth> {
        match &self.group {
            Some(group) => {
                authd_store_sql::bounded(self, group.create_token((account, t, now_ms))).await
            }
            None => {
                authd_store_sql::auths::create_token_in_transaction(self, account, &t, now_ms).await
            }
        }
    }

    async fn touch_tokens(&self, touches: &[(AuthId, i64)]) -> Result<()> {
        let mut sorted: Vec<(String, i64)> = touches
            .iter()
            .map(|(id, at)| (id.to_string(), *at))
            .collect();
        sorted.sort_unstable();
        let (ids, ats): (Vec<String>, Vec<i64>) = sorted.into_iter().unzip();
        authd_store_sql::bounded(self, async {
            transaction!(self, Mode::Write, |tx| {
                // Lock in id order first (see store-sql's `auths`); rows deleted meanwhile
                // are skipped.
                sqlx::query(
                    "SELECT id FROM auths WHERE id = ANY($1::text[]) ORDER BY id \
                     FOR NO KEY UPDATE",
                )
                .bind(&ids)
                .execute(&mut *tx.0)
                .await
                .map_err(pg_err)?;
                sqlx::query(
                    "UPDATE auths a SET last_accessed_ms = \
                     GREATEST(COALESCE(a.last_accessed_ms, 0), t.at) \
                     FROM UNNEST($1::text[], $2::bigint[]) AS t(id, at) WHERE a.id = t.id",
                )
                .bind(&ids)
                .bind(&ats)
                .execute(&mut *tx.0)
                .await
                .map_err(pg_err)?;
                Ok(())
            })
        })
        .await
    }
}
