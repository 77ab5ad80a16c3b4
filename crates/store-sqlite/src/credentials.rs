//! SQL for credentials (encrypted secret rows), the data-key table, custom providers, works
//! and the audit trail. Same rules as the rest of the crate: every tenant query binds the
//! account id; the `KeyStore` methods are operator-wide by design.
//!
//! Transactions that both check and write start with a write so SQLite takes the write lock
//! first: a deferred transaction that reads, then writes, can fail with `SQLITE_BUSY` after
//! another writer commits in between.

use async_trait::async_trait;
use authd_core::audit::{Audit, AuditEntry, AuditFilter};
use authd_core::credential::{
    CredentialPatch, CredentialRecord, DataKeyRecord, DeleteOutcome, KeyDestroy, NewCredential,
    SealGrant, SecretLocation, StoredSecret,
};
use authd_core::ids::{AccountId, AuthId, WorkId};
use authd_core::model::Page;
use authd_core::provider::Provider;
use authd_core::store::AuditStore;
use authd_core::store::CredentialStore;
use authd_core::store::KeyStore;
use authd_core::store::ProviderStore;
use authd_core::store::WorkStore;
use authd_core::work::{StatusChange, Work, WorkStatus};
use authd_core::{Error, Result};
use authd_store_sql::{
    audit_from_row, data_key_from_row, provider_from_row, secret_from_row, work_from_row,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, Transaction};

use super::{
    auth_from_row, corrupt, db_err, get, id_col, insert_audits, limit, SqliteStore, AUTH_COLS,
};

type Tx<'a> = Transaction<'a, Sqlite>;

/// Answer to a credential write that lost the generation compare-and-swap.
const CHANGED_CONCURRENTLY: &str = "The credential was changed by another request; retry";

async fn upsert_secret(
    tx: &mut Tx<'_>,
    account: AccountId,
    auth: AuthId,
    s: &StoredSecret,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO auth_secrets (account_id, auth_id, field, key_id, nonce, ciphertext) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (auth_id, field) DO UPDATE SET \
         key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext",
    )
    .bind(account.to_string())
    .bind(auth.to_string())
    .bind(&s.field)
    .bind(&s.key_id)
    .bind(s.nonce.as_slice())
    .bind(s.ciphertext.as_slice())
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn auth_in_tx(tx: &mut Tx<'_>, account: AccountId, id: AuthId) -> Result<Option<SqliteRow>> {
    let sql = format!("SELECT {AUTH_COLS} FROM auths WHERE account_id = ? AND id = ?");
    sqlx::query(&sql)
        .bind(account.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)
}

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn create_credential(
        &self,
        account: AccountId,
        c: NewCredential,
        now_ms: i64,
        audit: Audit<'_, authd_core::model::Auth>,
    ) -> Result<authd_core::model::Auth> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO auths (id, account_id, kind, provider_id, name, label, description, \
             user_id, user_name, parent_id, created_ms, updated_ms, cred_incarnation, \
             cred_generation) \
             VALUES (?, ?, 'credential', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
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
    }

    async fn update_credential(
        &self,
        account: AccountId,
        id: AuthId,
        p: CredentialPatch,
        now_ms: i64,
        audit: Audit<'_, authd_core::model::Auth>,
    ) -> Result<Option<authd_core::model::Auth>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Compare-and-swap on the generation the new secrets were sealed for.
        let r = sqlx::query(
            "UPDATE auths SET provider_id = COALESCE(?, provider_id), name = COALESCE(?, name), \
             label = COALESCE(?, label), description = COALESCE(?, description), updated_ms = ?, \
             cred_generation = cred_generation + 1, cred_incarnation = ? \
             WHERE account_id = ? AND id = ? AND kind = 'credential' AND cred_generation = ?",
        )
        .bind(p.provider_id.map(|x| x.to_string()))
        .bind(p.name)
        .bind(p.label)
        .bind(p.description)
        .bind(now_ms)
        .bind(&p.incarnation)
        .bind(account.to_string())
        .bind(id.to_string())
        .bind(p.expected_generation)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if r.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM auths WHERE account_id = ? AND id = ? AND kind = 'credential'",
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
        sqlx::query("DELETE FROM auth_secrets WHERE account_id = ? AND auth_id = ?")
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
    }

    async fn get_credential(
        &self,
        account: AccountId,
        id: AuthId,
    ) -> Result<Option<CredentialRecord>> {
        // One read transaction: the auth row and its secrets come from the same snapshot.
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let sql = format!(
            "SELECT {AUTH_COLS}, cred_incarnation, cred_generation FROM auths \
             WHERE account_id = ? AND id = ?"
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
        if auth.kind != authd_core::model::AuthKind::Credential {
            return Ok(None);
        }
        let secrets = sqlx::query(
            "SELECT field, key_id, nonce, ciphertext FROM auth_secrets \
             WHERE account_id = ? AND auth_id = ? ORDER BY field",
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // The delete comes first, so the transaction holds the write lock from here on.
        let deleted: Vec<AuthId> = sqlx::query(
            "DELETE FROM auths WHERE account_id = ?1 AND id IN ( \
               WITH RECURSIVE tree(id) AS ( \
                 SELECT id FROM auths WHERE account_id = ?1 AND id = ?2 \
                 UNION SELECT a.id FROM auths a JOIN tree t ON a.parent_id = t.id \
                   WHERE a.account_id = ?1) \
               SELECT id FROM tree) \
             RETURNING id",
        )
        .bind(&acct)
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
        for gone in &out.deleted {
            let gone = gone.to_string();
            sqlx::query("DELETE FROM auth_secrets WHERE account_id = ? AND auth_id = ?")
                .bind(&acct)
                .bind(&gone)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let works: Vec<String> = sqlx::query_scalar(
                "DELETE FROM work_auths WHERE account_id = ? AND auth_id = ? RETURNING work_id",
            )
            .bind(&acct)
            .bind(&gone)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            for w in works {
                let wid = WorkId::parse(&w).ok_or_else(|| corrupt("work_id"))?;
                if out.detached_works.contains(&wid) {
                    continue;
                }
                out.detached_works.push(wid);
                if stop_for_auth_delete(&mut tx, &acct, &w, reason, now_ms).await? {
                    out.stopped_works.push(wid);
                }
            }
        }
        crate::feed::publish(&mut tx, &out.deleted).await?;
        insert_audits(&mut tx, &audit, &out).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn list_data_keys(&self) -> Result<Vec<DataKeyRecord>> {
        sqlx::query("SELECT * FROM data_keys ORDER BY created_ms, id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(data_key_from_row)
            .collect()
    }

    async fn current_data_key_id(&self) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT id FROM data_keys WHERE current = 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn add_data_key(
        &self,
        key: DataKeyRecord,
        make_current: bool,
        only_if_empty: bool,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let r = sqlx::query(
            "INSERT INTO data_keys (id, created_ms, wrapped, current) SELECT ?, ?, ?, 0 \
             WHERE ? = 0 OR NOT EXISTS (SELECT 1 FROM data_keys)",
        )
        .bind(&key.id)
        .bind(key.created_ms)
        .bind(key.wrapped.as_slice())
        .bind(i64::from(only_if_empty))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        if make_current {
            sqlx::query("UPDATE data_keys SET current = 0 WHERE current = 1")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query("UPDATE data_keys SET current = 1 WHERE id = ?")
                .bind(&key.id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        insert_audits(&mut tx, &audit, &()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn secret_counts_by_key(&self) -> Result<Vec<(String, u64)>> {
        let rows = sqlx::query(
            "SELECT k.id AS id, COUNT(s.key_id) AS n FROM data_keys k \
             LEFT JOIN auth_secrets s ON s.key_id = k.id GROUP BY k.id ORDER BY k.created_ms, k.id",
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
    }

    async fn secrets_not_under(
        &self,
        key_id: &str,
        after: Option<(AuthId, String)>,
        lim: u32,
    ) -> Result<Vec<SecretLocation>> {
        let (a, f) = after.map(|(a, f)| (a.to_string(), f)).unwrap_or_default();
        let rows = sqlx::query(
            "SELECT account_id, auth_id, field, key_id, nonce, ciphertext FROM auth_secrets \
             WHERE key_id <> ? AND (auth_id > ? OR (auth_id = ? AND field > ?)) \
             ORDER BY auth_id, field LIMIT ?",
        )
        .bind(key_id)
        .bind(&a)
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
    }

    async fn replace_secret(&self, at: &SecretLocation, new: StoredSecret) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE auth_secrets SET key_id = ?, nonce = ?, ciphertext = ? \
             WHERE account_id = ? AND auth_id = ? AND field = ? AND key_id = ? AND nonce = ?",
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
    }

    async fn seal_counts_by_key(&self) -> Result<Vec<(String, u64)>> {
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
    }

    async fn reserve_seals(&self, key_id: &str, n: u64, budget: u64) -> Result<Option<SealGrant>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // A no-op write first: the transaction holds the write lock before it reads the count.
        let seals: Option<i64> = sqlx::query_scalar(
            "UPDATE data_keys SET seals = seals WHERE id = ? AND current = 1 RETURNING seals",
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
        sqlx::query("UPDATE data_keys SET seals = ? WHERE id = ?")
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
    }

    async fn rotate_data_key_from(
        &self,
        expected: &str,
        key: DataKeyRecord,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let r = sqlx::query("UPDATE data_keys SET current = 0 WHERE id = ? AND current = 1")
            .bind(expected)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO data_keys (id, created_ms, wrapped, current) VALUES (?, ?, ?, 1)")
            .bind(&key.id)
            .bind(key.created_ms)
            .bind(key.wrapped.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        insert_audits(&mut tx, &audit, &()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn destroy_data_key(&self, key_id: &str, audit: Audit<'_, ()>) -> Result<KeyDestroy> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // The delete comes first (write lock), and checks in the same statement; the foreign
        // key from auth_secrets backs it up.
        let r = sqlx::query(
            "DELETE FROM data_keys WHERE id = ?1 AND current = 0 \
             AND NOT EXISTS (SELECT 1 FROM auth_secrets WHERE key_id = ?1)",
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
             FROM data_keys k WHERE k.id = ?",
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
    }
}

/// What deleting a listed auth does to one work, inside the cascade's transaction: the state
/// machine decides (`WorkStatus::on_auth_delete`) and [`apply_status_change`] applies it; a
/// work it does not stop is only marked updated. Returns whether the work was stopped.
async fn stop_for_auth_delete(
    tx: &mut Tx<'_>,
    acct: &str,
    work: &str,
    reason: &str,
    now_ms: i64,
) -> Result<bool> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT statuscode FROM works WHERE account_id = ? AND id = ?")
            .bind(acct)
            .bind(work)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
    let Some(status) = status else {
        return Ok(false);
    };
    let status = WorkStatus::parse(&status).ok_or_else(|| corrupt("statuscode"))?;
    if let Some(change) = status.on_auth_delete() {
        if apply_status_change(tx, acct, work, change, reason, now_ms).await? {
            return Ok(true);
        }
    }
    sqlx::query("UPDATE works SET updated_ms = ? WHERE account_id = ? AND id = ?")
        .bind(now_ms)
        .bind(acct)
        .bind(work)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(false)
}

/// The one statement that changes a work's status: only from `change.from()`, and counted
/// in `work_state_version`. `false` if the work is gone or no longer in that status.
async fn apply_status_change(
    tx: &mut Tx<'_>,
    acct: &str,
    work: &str,
    change: StatusChange,
    reason: &str,
    now_ms: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE works SET statuscode = ?, status_reason = ?, updated_ms = ?, \
         work_state_version = work_state_version + 1 \
         WHERE account_id = ? AND id = ? AND statuscode = ?",
    )
    .bind(change.to().as_str())
    .bind(reason)
    .bind(now_ms)
    .bind(acct)
    .bind(work)
    .bind(change.from().as_str())
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(r.rows_affected() > 0)
}

/// One statement, so the work and its auth ids always come from the same snapshot.
const WORK_SELECT: &str = "SELECT w.*, (SELECT group_concat(auth_id, ',') FROM \
     (SELECT auth_id FROM work_auths x WHERE x.work_id = w.id ORDER BY x.pos)) AS auth_list \
     FROM works w";

#[async_trait]
impl WorkStore for SqliteStore {
    async fn create_work(&self, w: Work, audit: Audit<'_, Work>) -> Result<Work> {
        let acct = w.account_id.to_string();
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO works (id, account_id, user_id, name, description, workflow, config, \
             statuscode, status_reason, created_ms, updated_ms, workflow_id, tag, hidden, \
             verbose_logging, runtime, work_state_version) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(w.id.to_string())
        .bind(&acct)
        .bind(w.user_id.map(|u| u.to_string()))
        .bind(&w.name)
        .bind(&w.description)
        .bind(&w.workflow)
        .bind(&w.config)
        .bind(w.status.as_str())
        .bind(&w.status_reason)
        .bind(w.created_ms)
        .bind(w.updated_ms)
        .bind(&w.workflow_id)
        .bind(&w.tag)
        .bind(w.hidden)
        .bind(w.verbose_logging)
        .bind(&w.runtime)
        .bind(w.state_version)
        .execute(&mut *tx)
        .await
        .map_err(|e| match db_err(e) {
            Error::Conflict(_) => Error::Conflict("Duplicate work config".into()),
            other => other,
        })?;
        for (pos, a) in w.auth_ids.iter().enumerate() {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM auths WHERE account_id = ? AND id = ?")
                    .bind(&acct)
                    .bind(a.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if exists.is_none() {
                return Err(Error::invalid(format!(
                    "auth_ids: no auth {a} in this account"
                )));
            }
            sqlx::query(
                "INSERT INTO work_auths (account_id, work_id, pos, auth_id) VALUES (?, ?, ?, ?)",
            )
            .bind(&acct)
            .bind(w.id.to_string())
            .bind(i64::try_from(pos).map_err(|_| corrupt("pos"))?)
            .bind(a.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                Error::Conflict(_) => Error::invalid("auth_ids: duplicate id"),
                other => other,
            })?;
        }
        let sql = format!("{WORK_SELECT} WHERE w.account_id = ? AND w.id = ?");
        let row = sqlx::query(&sql)
            .bind(&acct)
            .bind(w.id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let work = work_from_row(&row)?;
        insert_audits(&mut tx, &audit, &work).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(work)
    }

    async fn get_work(&self, account: AccountId, id: WorkId) -> Result<Option<Work>> {
        let sql = format!("{WORK_SELECT} WHERE w.account_id = ? AND w.id = ?");
        self.read
            .one(&sql, [account.to_string(), id.to_string()], |r| {
                work_from_row(r)
            })
    }

    async fn list_works(&self, account: AccountId, page: Page<WorkId>) -> Result<Vec<Work>> {
        let sql =
            format!("{WORK_SELECT} WHERE w.account_id = ? AND w.id > ? ORDER BY w.id LIMIT ?");
        self.read.all(
            &sql,
            rusqlite::params![
                account.to_string(),
                page.after.map(|a| a.to_string()).unwrap_or_default(),
                limit(page.limit),
            ],
            |r| work_from_row(r),
        )
    }

    async fn delete_work(
        &self,
        account: AccountId,
        id: WorkId,
        audit: Audit<'_, ()>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let r = sqlx::query("DELETE FROM works WHERE account_id = ? AND id = ?")
            .bind(account.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        insert_audits(&mut tx, &audit, &()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, e: AuditEntry) -> Result<i64> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        crate::insert_audit(&mut conn, &e).await
    }

    async fn list_audit(
        &self,
        account: AccountId,
        f: AuditFilter,
        before: Option<i64>,
        lim: u32,
    ) -> Result<Vec<AuditEntry>> {
        sqlx::query(
            "SELECT * FROM audit WHERE account_id = ? AND seq < ? \
             AND (? IS NULL OR action = ?) AND (? IS NULL OR target = ?) \
             AND (? IS NULL OR actor = ?) ORDER BY seq DESC LIMIT ?",
        )
        .bind(account.to_string())
        .bind(before.unwrap_or(i64::MAX))
        .bind(f.action.clone())
        .bind(f.action)
        .bind(f.target.clone())
        .bind(f.target)
        .bind(f.actor.clone())
        .bind(f.actor)
        .bind(limit(lim))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(audit_from_row)
        .collect()
    }
}

#[async_trait]
impl ProviderStore for SqliteStore {
    async fn create_provider(
        &self,
        account: AccountId,
        p: Provider,
        now_ms: i64,
        audit: Audit<'_, Provider>,
    ) -> Result<Provider> {
        let fields: Vec<(&str, &str, &str, bool)> = p
            .config
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.label.as_str(),
                    f.kind.as_str(),
                    f.optional,
                )
            })
            .collect();
        let config = serde_json::to_string(&fields).map_err(Error::internal)?;
        let categories = serde_json::to_string(&p.categories).map_err(Error::internal)?;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO providers (id, account_id, slug, name, namespace, description, \
             categories, auth_method, hidden, no_auth, config, created_ms, auth_description) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(p.id.to_string())
        .bind(account.to_string())
        .bind(&p.slug)
        .bind(&p.name)
        .bind(&p.namespace)
        .bind(&p.description)
        .bind(categories)
        .bind(p.auth_method.as_str())
        .bind(i64::from(p.hidden))
        .bind(i64::from(p.no_auth))
        .bind(config)
        .bind(now_ms)
        .bind(&p.auth_description)
        .execute(&mut *tx)
        .await
        .map_err(|e| match db_err(e) {
            Error::Conflict(_) => {
                Error::Conflict(format!("A provider with slug {:?} already exists", p.slug))
            }
            other => other,
        })?;
        insert_audits(&mut tx, &audit, &p).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(p)
    }

    async fn list_providers(&self, account: AccountId) -> Result<Vec<Provider>> {
        self.read.all(
            "SELECT * FROM providers WHERE account_id = ? ORDER BY slug",
            [account.to_string()],
            |r| provider_from_row(r),
        )
    }

    async fn get_provider(&self, account: AccountId, key: &str) -> Result<Option<Provider>> {
        self.read.one(
            "SELECT * FROM providers WHERE account_id = ? AND (id = ? OR slug = ?)",
            rusqlite::params![account.to_string(), key, key],
            |r| provider_from_row(r),
        )
    }
}
