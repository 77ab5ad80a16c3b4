//! The data-key ring ([`KeyStore`]): the wrapped data keys, their seal counts, and the bulk
//! operations of `authd keys` over the sealed secret rows. Operator operations over the whole
//! store, deliberately not tenant-scoped; no HTTP handler calls them.
//!
//! Concurrency. SQLite: every write transaction is [`Mode::Write`] (`BEGIN IMMEDIATE`), so it
//! holds the one write lock before its first statement; checks and writes are one step.
//! PostgreSQL: adding a key locks the table (`LOCK TABLE data_keys IN EXCLUSIVE MODE`), so two
//! nodes bootstrapping at once write exactly one key; a seal reservation locks the key's row
//! (`FOR UPDATE`); a rotation's `UPDATE` of the expected key holds that row's lock, so a
//! concurrent rotation of the same key waits and then finds it no longer current.
//!
//! Booleans are written `TRUE`/`FALSE` and tested bare (`WHERE current`): PostgreSQL's
//! `boolean`, SQLite's 0/1 integers (its partial index `WHERE current = 1` holds the same
//! rows).

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::credential::{DataKeyRecord, KeyDestroy, SealGrant, SecretLocation, StoredSecret};
use authd_core::ids::{AccountId, AuthId};
use authd_core::store::KeyStore;
use authd_core::Result;

use crate::audit::insert_audits;
use crate::{
    args, bounded, corrupt, data_key_from_row, get, id_col, limit, secret_from_row, transaction,
    Db, Dialect, Exec, Mode, SqlRow, SqlStore,
};

/// A `(key id, count)` row, the count in column `col` (`what` names it in a corrupt-row
/// error).
fn key_count(r: &(impl SqlRow + ?Sized), col: &str, what: &str) -> Result<(String, u64)> {
    let n: i64 = get(r, col)?;
    Ok((get(r, "id")?, u64::try_from(n).map_err(|_| corrupt(what))?))
}

#[async_trait]
impl<D: Db> KeyStore for SqlStore<D> {
    async fn list_data_keys(&self) -> Result<Vec<DataKeyRecord>> {
        self.read_all(
            "SELECT id, created_ms, wrapped, current FROM data_keys \
                     ORDER BY created_ms, id",
            args![],
            |r| data_key_from_row(r),
        )
        .await
    }

    async fn current_data_key_id(&self) -> Result<Option<String>> {
        self.read_optional("SELECT id FROM data_keys WHERE current", args![], |r| {
            get(r, "id")
        })
        .await
    }

    async fn add_data_key(
        &self,
        key: DataKeyRecord,
        make_current: bool,
        only_if_empty: bool,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                // Serialises key writers (readers are not blocked), so the emptiness check
                // and the insert are one step, as under SQLite's single writer (which
                // `Mode::Write` already holds).
                if D::DIALECT == Dialect::Postgres {
                    tx.execute("LOCK TABLE data_keys IN EXCLUSIVE MODE", args![])
                        .await?;
                }
                let n = tx
                    .execute(
                        "INSERT INTO data_keys (id, created_ms, wrapped, current) \
                         SELECT $1, $2, $3, FALSE \
                         WHERE NOT $4 OR NOT EXISTS (SELECT 1 FROM data_keys)",
                        args![&key.id, key.created_ms, &key.wrapped, only_if_empty],
                    )
                    .await?;
                if n == 0 {
                    return Ok(false);
                }
                if make_current {
                    tx.execute(
                        "UPDATE data_keys SET current = FALSE WHERE current",
                        args![],
                    )
                    .await?;
                    tx.execute(
                        "UPDATE data_keys SET current = TRUE WHERE id = $1",
                        args![&key.id],
                    )
                    .await?;
                }
                insert_audits(tx, &audit, &()).await?;
                Ok(true)
            })
        })
        .await
    }

    async fn secret_counts_by_key(&self) -> Result<Vec<(String, u64)>> {
        self.read_all(
            "SELECT k.id AS id, COUNT(s.key_id) AS n FROM data_keys k \
                     LEFT JOIN auth_secrets s ON s.key_id = k.id GROUP BY k.id \
                     ORDER BY MIN(k.created_ms), k.id",
            args![],
            |r| key_count(r, "n", "count"),
        )
        .await
    }

    async fn secrets_not_under(
        &self,
        key_id: &str,
        after: Option<(AuthId, String)>,
        lim: u32,
    ) -> Result<Vec<SecretLocation>> {
        let (a, f) = after.map(|(a, f)| (a.to_string(), f)).unwrap_or_default();
        self.read_all(
            "SELECT account_id, auth_id, field, key_id, nonce, ciphertext \
                     FROM auth_secrets \
                     WHERE key_id <> $1 AND (auth_id > $2 OR (auth_id = $2 AND field > $3)) \
                     ORDER BY auth_id, field LIMIT $4",
            args![key_id, &a, &f, limit(lim)],
            |r| {
                Ok(SecretLocation {
                    account_id: id_col(r, "account_id", AccountId::parse)?,
                    auth_id: id_col(r, "auth_id", AuthId::parse)?,
                    secret: secret_from_row(r)?,
                })
            },
        )
        .await
    }

    async fn replace_secret(&self, at: &SecretLocation, new: StoredSecret) -> Result<bool> {
        // One statement (a compare-and-swap on key id and nonce); in a transaction because
        // the backends write only in one (SQLite's read handle is query-only).
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                let n = tx
                    .execute(
                        "UPDATE auth_secrets SET key_id = $1, nonce = $2, ciphertext = $3 \
                         WHERE account_id = $4 AND auth_id = $5 AND field = $6 \
                         AND key_id = $7 AND nonce = $8",
                        args![
                            &new.key_id,
                            &new.nonce,
                            &new.ciphertext,
                            at.account_id,
                            at.auth_id,
                            &at.secret.field,
                            &at.secret.key_id,
                            &at.secret.nonce
                        ],
                    )
                    .await?;
                Ok(n > 0)
            })
        })
        .await
    }

    async fn seal_counts_by_key(&self) -> Result<Vec<(String, u64)>> {
        self.read_all(
            "SELECT id, seals FROM data_keys ORDER BY created_ms, id",
            args![],
            |r| key_count(r, "seals", "seals"),
        )
        .await
    }

    async fn reserve_seals(&self, key_id: &str, n: u64, budget: u64) -> Result<Option<SealGrant>> {
        let select = format!(
            "SELECT seals FROM data_keys WHERE id = $1 AND current{}",
            D::DIALECT.for_update()
        );
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                // The row lock (PostgreSQL) or the write lock (SQLite) serialises the
                // reservations of every node and process.
                let seals: Option<i64> = tx
                    .optional(&select, args![key_id], |r| get(r, "seals"))
                    .await?;
                let Some(seals) = seals else {
                    return Ok(None);
                };
                let seals = u64::try_from(seals).map_err(|_| corrupt("seals"))?;
                let granted = n.min(budget.saturating_sub(seals));
                let after = seals.saturating_add(granted);
                tx.execute(
                    "UPDATE data_keys SET seals = $1 WHERE id = $2",
                    args![i64::try_from(after).map_err(|_| corrupt("seals"))?, key_id],
                )
                .await?;
                Ok(Some(SealGrant {
                    granted,
                    seals: after,
                }))
            })
        })
        .await
    }

    async fn rotate_data_key_from(
        &self,
        expected: &str,
        key: DataKeyRecord,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                // The row lock on the expected key makes concurrent rotations of it wait, then
                // find it no longer current.
                let n = tx
                    .execute(
                        "UPDATE data_keys SET current = FALSE WHERE id = $1 AND current",
                        args![expected],
                    )
                    .await?;
                if n == 0 {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO data_keys (id, created_ms, wrapped, current) \
                     VALUES ($1, $2, $3, TRUE)",
                    args![&key.id, key.created_ms, &key.wrapped],
                )
                .await?;
                insert_audits(tx, &audit, &()).await?;
                Ok(true)
            })
        })
        .await
    }

    async fn destroy_data_key(&self, key_id: &str, audit: Audit<'_, ()>) -> Result<KeyDestroy> {
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                // Checks and deletes in one statement; the foreign key from auth_secrets makes
                // a row inserted concurrently fail rather than dangle.
                let n = tx
                    .execute(
                        "DELETE FROM data_keys WHERE id = $1 AND NOT current \
                         AND NOT EXISTS (SELECT 1 FROM auth_secrets WHERE key_id = $1)",
                        args![key_id],
                    )
                    .await?;
                if n > 0 {
                    insert_audits(tx, &audit, &()).await?;
                    return Ok(KeyDestroy::Destroyed);
                }
                // Nothing written: say why not.
                let row: Option<(bool, i64)> = tx
                    .optional(
                        "SELECT current, \
                         (SELECT COUNT(*) FROM auth_secrets s WHERE s.key_id = k.id) AS n \
                         FROM data_keys k WHERE k.id = $1",
                        args![key_id],
                        |r| Ok((get(r, "current")?, get(r, "n")?)),
                    )
                    .await?;
                Ok(match row {
                    None => KeyDestroy::NotFound,
                    Some((true, _)) => KeyDestroy::Current,
                    Some((false, n)) => {
                        KeyDestroy::Referenced(u64::try_from(n).map_err(|_| corrupt("count"))?)
                    }
                })
            })
        })
        .await
    }
}
