//! Credentials (encrypted secret rows) and the data-key table on PostgreSQL
//! ([`CredentialStore`], [`KeyStore`]). Every tenant query binds the account id; the
//! `KeyStore` methods are operator-wide by design.
//!
//! The delete cascade announces every deleted auth id on the invalidation channel inside its
//! transaction (a deleted API token must be refused by every node at commit). Credential
//! creates and updates change no token check and announce nothing.
//!
//! Concurrency (READ COMMITTED): the cascade deletes the auths first, so its later
//! statements — each with a fresh snapshot — see any work that a concurrent
//! `create_work` attached while holding a share lock on those auth rows. Adding a data key
//! locks the table, so two nodes bootstrapping at once write exactly one key (as SQLite's
//! single writer does).

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::credential::{
    CredentialPatch, CredentialRecord, DataKeyRecord, DeleteOutcome, KeyDestroy, NewCredential,
    SealGrant, SecretLocation, StoredSecret,
};
use authd_core::ids::{AccountId, AuthId, WorkId};
use authd_core::model::{Auth, AuthKind};
use authd_core::store::CredentialStore;
use authd_core::store::KeyStore;
use authd_core::{Error, Result};
use authd_store_sql::{data_key_from_row, secret_from_row};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;

use crate::audit::insert_audits;
use crate::auths::{lock_subtree, SUBTREE};
use crate::notify::publish;
use crate::retry::retry_conflicts;
use crate::works::stop_for_auth_delete;
use crate::{corrupt, db_err, get, id_col, limit, PgStore};
use authd_store_sql::{auth_from_row, AUTH_COLS};

/// Answer to a credential write that lost the generation compare-and-swap.
const CHANGED_CONCURRENTLY: &str = "The credential was changed by another request; retry";

async fn upsert_secret(
    tx: &mut PgConnection,
    account: AccountId,
    auth: AuthId,
    s: &StoredSecret,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO auth_secrets (account_id, auth_id, field, key_id, nonce, ciphertext) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (auth_id, field) DO UPDATE SET \
         key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext",
    )
    .bind(account.to_string())
    .bind(auth.to_string())
    .bind(&s.field)
    .bind(&s.key_id)
    .bind(s.nonce.as_slice())
    .bind(s.ciphertext.as_slice())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn auth_in_tx(
    tx: &mut PgConnection,
    account: AccountId,
    id: AuthId,
) -> Result<Option<PgRow>> {
    let sql = format!("SELECT {AUTH_COLS} FROM auths WHERE account_id = $1 AND id = $2");
    sqlx::query(&sql)
        .bind(account.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)
}

#[async_trait]
impl CredentialStore for PgStore {
    async fn create_credential(
        &self,
        account: AccountId,
        c: NewCredential,
        now_ms: i64,
        audit: Audit<'_, Auth>,
    ) -> Result<Auth> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            sqlx::query(
                "INSERT INTO auths (id, account_id, kind, provider_id, name, label, description, \
                 user_id, user_name, parent_id, created_ms, updated_ms, cred_incarnation, \
                 cred_generation) \
                 VALUES ($1, $2, 'credential', $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, 1)",
            )
            .bind(c.id.to_string())
            .bind(account.to_string())
            .bind(c.provider_id.to_string())
            .bind(&c.name)
            .bind(&c.label)
            .bind(&c.description)
            .bind(c.user_id.map(|u| u.to_string()))
            .bind(&c.user_name)
            .bind(c.parent_id.map(|p| p.to_string()))
            .bind(now_ms)
            .bind(&c.incarnation)
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                Error::Conflict(_) => Error::Conflict(format!("Auth {} already exists", c.id)),
                other => other,
            })?;
            for s in &c.secrets {
                upsert_secret(&mut tx, account, c.id, s).await?;
            }
            let row = auth_in_tx(&mut tx, account, c.id)
                .await?
                .ok_or_else(|| corrupt("auth"))?;
            let auth = auth_from_row(&row)?;
            insert_audits(&mut tx, &audit, &auth).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(auth)
        })
        .await
    }

    async fn update_credential(
        &self,
        account: AccountId,
        id: AuthId,
        p: CredentialPatch,
        now_ms: i64,
        audit: Audit<'_, Auth>,
    ) -> Result<Option<Auth>> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            // Compare-and-swap on the generation the new secrets were sealed for.
            let r = sqlx::query(
                "UPDATE auths SET provider_id = COALESCE($1, provider_id), \
                 name = COALESCE($2, name), label = COALESCE($3, label), \
                 description = COALESCE($4, description), updated_ms = $5, \
                 cred_generation = cred_generation + 1, cred_incarnation = $6 \
                 WHERE account_id = $7 AND id = $8 AND kind = 'credential' \
                 AND cred_generation = $9",
            )
            .bind(p.provider_id.map(|x| x.to_string()))
            .bind(p.name.as_deref())
            .bind(p.label.as_deref())
            .bind(p.description.as_deref())
            .bind(now_ms)
            .bind(&p.incarnation)
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(p.expected_generation)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if r.rows_affected() == 0 {
                let exists: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM auths WHERE account_id = $1 AND id = $2 \
                     AND kind = 'credential'",
                )
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                return match exists {
                    Some(_) => Err(Error::Conflict(CHANGED_CONCURRENTLY.into())),
                    None => Ok(None),
                };
            }
            sqlx::query("DELETE FROM auth_secrets WHERE account_id = $1 AND auth_id = $2")
                .bind(account.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            for s in &p.secrets {
                upsert_secret(&mut tx, account, id, s).await?;
            }
            let row = auth_in_tx(&mut tx, account, id)
                .await?
                .ok_or_else(|| corrupt("auth"))?;
            let auth = auth_from_row(&row)?;
            insert_audits(&mut tx, &audit, &auth).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(Some(auth))
        })
        .await
    }

    async fn get_credential(
        &self,
        account: AccountId,
        id: AuthId,
    ) -> Result<Option<CredentialRecord>> {
        self.bounded(async {
            // One REPEATABLE READ transaction: the auth row and its secrets come from the same
            // snapshot.
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let sql = format!(
                "SELECT {AUTH_COLS}, cred_incarnation, cred_generation FROM auths \
                 WHERE account_id = $1 AND id = $2"
            );
            let row = sqlx::query(&sql)
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            let Some(row) = row else {
                return Ok(None);
            };
            let auth = auth_from_row(&row)?;
            if auth.kind != AuthKind::Credential {
                return Ok(None);
            }
            let secrets = sqlx::query(
                "SELECT field, key_id, nonce, ciphertext FROM auth_secrets \
                 WHERE account_id = $1 AND auth_id = $2 ORDER BY field",
            )
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?
            .iter()
            .map(secret_from_row)
            .collect::<Result<Vec<_>>>()?;
            tx.commit().await.map_err(db_err)?;
            Ok(Some(CredentialRecord {
                auth,
                incarnation: get(&row, "cred_incarnation")?,
                generation: get(&row, "cred_generation")?,
                secrets,
            }))
        })
        .await
    }

    async fn delete_auth_cascade(
        &self,
        account: AccountId,
        id: AuthId,
        reason: &str,
        now_ms: i64,
        audit: Audit<'_, DeleteOutcome>,
    ) -> Result<DeleteOutcome> {
        let acct = account.to_string();
        let delete = format!(
            "{SUBTREE} DELETE FROM auths WHERE account_id = $1 \
             AND id IN (SELECT id FROM tree) RETURNING id"
        );
        // The whole transaction is rerun on a deadlock or serialization failure.
        let (acct, delete, audit) = (&acct, &delete, &audit);
        self.bounded(retry_conflicts("delete auth cascade", || async move {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            lock_subtree(&mut tx, acct, id).await?;
            let deleted: Vec<AuthId> = sqlx::query(delete)
                .bind(acct)
                .bind(id.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| id_col(r, "id", AuthId::parse))
                .collect::<Result<_>>()?;
            let mut out = DeleteOutcome {
                deleted,
                ..DeleteOutcome::default()
            };
            if out.deleted.is_empty() {
                return Ok(out);
            }
            let gone: Vec<String> = out.deleted.iter().map(ToString::to_string).collect();
            sqlx::query("DELETE FROM auth_secrets WHERE account_id = $1 AND auth_id = ANY($2)")
                .bind(acct)
                .bind(&gone)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let works: Vec<String> = sqlx::query_scalar(
                "WITH d AS (DELETE FROM work_auths WHERE account_id = $1 AND auth_id = ANY($2) \
                 RETURNING work_id) SELECT DISTINCT work_id FROM d ORDER BY work_id",
            )
            .bind(acct)
            .bind(&gone)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            for w in works {
                let wid = WorkId::parse(&w).ok_or_else(|| corrupt("work_id"))?;
                out.detached_works.push(wid);
                if stop_for_auth_delete(&mut tx, acct, &w, reason, now_ms).await? {
                    out.stopped_works.push(wid);
                }
            }
            // Deleted API tokens must be refused by every node from the moment this commits.
            publish(&mut tx, &out.deleted).await?;
            insert_audits(&mut tx, audit, &out).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(out)
        }))
        .await
    }
}

#[async_trait]
impl KeyStore for PgStore {
    async fn list_data_keys(&self) -> Result<Vec<DataKeyRecord>> {
        self.bounded(async {
            sqlx::query(
                "SELECT id, created_ms, wrapped, current FROM data_keys ORDER BY created_ms, id",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(data_key_from_row)
            .collect()
        })
        .await
    }

    async fn current_data_key_id(&self) -> Result<Option<String>> {
        self.bounded(async {
            sqlx::query_scalar("SELECT id FROM data_keys WHERE current")
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)
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
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            // Serialises key writers (readers are not blocked), so the emptiness check and the
            // insert are one step, as under SQLite's single writer.
            sqlx::query("LOCK TABLE data_keys IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let r = sqlx::query(
                "INSERT INTO data_keys (id, created_ms, wrapped, current) \
                 SELECT $1, $2, $3, FALSE WHERE NOT $4 OR NOT EXISTS (SELECT 1 FROM data_keys)",
            )
            .bind(&key.id)
            .bind(key.created_ms)
            .bind(key.wrapped.as_slice())
            .bind(only_if_empty)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            if make_current {
                sqlx::query("UPDATE data_keys SET current = FALSE WHERE current")
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                sqlx::query("UPDATE data_keys SET current = TRUE WHERE id = $1")
                    .bind(&key.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            insert_audits(&mut tx, &audit, &()).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn secret_counts_by_key(&self) -> Result<Vec<(String, u64)>> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT k.id AS id, COUNT(s.key_id) AS n FROM data_keys k \
                 LEFT JOIN auth_secrets s ON s.key_id = k.id GROUP BY k.id \
                 ORDER BY MIN(k.created_ms), k.id",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
            rows.iter()
                .map(|r| {
                    let n: i64 = get(r, "n")?;
                    Ok((
                        get(r, "id")?,
                        u64::try_from(n).map_err(|_| corrupt("count"))?,
                    ))
                })
                .collect()
        })
        .await
    }

    async fn secrets_not_under(
        &self,
        key_id: &str,
        after: Option<(AuthId, String)>,
        lim: u32,
    ) -> Result<Vec<SecretLocation>> {
        let (a, f) = after.map(|(a, f)| (a.to_string(), f)).unwrap_or_default();
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT account_id, auth_id, field, key_id, nonce, ciphertext FROM auth_secrets \
                 WHERE key_id <> $1 AND (auth_id > $2 OR (auth_id = $2 AND field > $3)) \
                 ORDER BY auth_id, field LIMIT $4",
            )
            .bind(key_id)
            .bind(&a)
            .bind(&f)
            .bind(limit(lim))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
            rows.iter()
                .map(|r| {
                    Ok(SecretLocation {
                        account_id: id_col(r, "account_id", AccountId::parse)?,
                        auth_id: id_col(r, "auth_id", AuthId::parse)?,
                        secret: secret_from_row(r)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn replace_secret(&self, at: &SecretLocation, new: StoredSecret) -> Result<bool> {
        self.bounded(async {
            let r = sqlx::query(
                "UPDATE auth_secrets SET key_id = $1, nonce = $2, ciphertext = $3 \
                 WHERE account_id = $4 AND auth_id = $5 AND field = $6 AND key_id = $7 \
                 AND nonce = $8",
            )
            .bind(&new.key_id)
            .bind(new.nonce.as_slice())
            .bind(new.ciphertext.as_slice())
            .bind(at.account_id.to_string())
            .bind(at.auth_id.to_string())
            .bind(&at.secret.field)
            .bind(&at.secret.key_id)
            .bind(at.secret.nonce.as_slice())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
            Ok(r.rows_affected() > 0)
        })
        .await
    }
    async fn seal_counts_by_key(&self) -> Result<Vec<(String, u64)>> {
        self.bounded(async {
            let rows = sqlx::query("SELECT id, seals FROM data_keys ORDER BY created_ms, id")
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
            rows.iter()
                .map(|r| {
                    let n: i64 = get(r, "seals")?;
                    Ok((
                        get(r, "id")?,
                        u64::try_from(n).map_err(|_| corrupt("seals"))?,
                    ))
                })
                .collect()
        })
        .await
    }

    async fn reserve_seals(&self, key_id: &str, n: u64, budget: u64) -> Result<Option<SealGrant>> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            // The row lock serialises reservations of every node.
            let seals: Option<i64> = sqlx::query_scalar(
                "SELECT seals FROM data_keys WHERE id = $1 AND current FOR UPDATE",
            )
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            let Some(seals) = seals else {
                return Ok(None);
            };
            let seals = u64::try_from(seals).map_err(|_| corrupt("seals"))?;
            let granted = n.min(budget.saturating_sub(seals));
            let after = seals.saturating_add(granted);
            sqlx::query("UPDATE data_keys SET seals = $1 WHERE id = $2")
                .bind(i64::try_from(after).map_err(|_| corrupt("seals"))?)
                .bind(key_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(Some(SealGrant {
                granted,
                seals: after,
            }))
        })
        .await
    }

    async fn rotate_data_key_from(
        &self,
        expected: &str,
        key: DataKeyRecord,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            // The row lock on the expected key makes concurrent rotations of it wait, then
            // find it no longer current.
            let r = sqlx::query("UPDATE data_keys SET current = FALSE WHERE id = $1 AND current")
                .bind(expected)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO data_keys (id, created_ms, wrapped, current) \
                 VALUES ($1, $2, $3, TRUE)",
            )
            .bind(&key.id)
            .bind(key.created_ms)
            .bind(key.wrapped.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            insert_audits(&mut tx, &audit, &()).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn destroy_data_key(&self, key_id: &str, audit: Audit<'_, ()>) -> Result<KeyDestroy> {
        self.bounded(async {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            // Checks and deletes in one statement; the foreign key from auth_secrets makes a
            // row inserted concurrently fail rather than dangle.
            let r = sqlx::query(
                "DELETE FROM data_keys WHERE id = $1 AND NOT current \
                 AND NOT EXISTS (SELECT 1 FROM auth_secrets WHERE key_id = $1)",
            )
            .bind(key_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if r.rows_affected() > 0 {
                insert_audits(&mut tx, &audit, &()).await?;
                tx.commit().await.map_err(db_err)?;
                return Ok(KeyDestroy::Destroyed);
            }
            let row = sqlx::query(
                "SELECT current, (SELECT COUNT(*) FROM auth_secrets s WHERE s.key_id = k.id) AS n \
                 FROM data_keys k WHERE k.id = $1",
            )
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            let Some(row) = row else {
                return Ok(KeyDestroy::NotFound);
            };
            if get::<bool>(&row, "current")? {
                return Ok(KeyDestroy::Current);
            }
            let n: i64 = get(&row, "n")?;
            Ok(KeyDestroy::Referenced(
                u64::try_from(n).map_err(|_| corrupt("count"))?,
            ))
        })
        .await
    }
}
