//! Stored credentials ([`CredentialStore`]): an auth row of kind `credential` and its sealed
//! secret rows, written and read together, and the delete cascade every auth delete of the
//! API runs. Every query binds the account id.
//!
//! The delete cascade announces every deleted auth id on the invalidation feed inside its
//! transaction (a deleted API token must be refused by every node at commit), and writes its
//! audit entries in the same transaction. Credential creates and updates change no token
//! check and announce nothing.
//!
//! Concurrency. SQLite: every write transaction is [`Mode::Write`] (`BEGIN IMMEDIATE`), so it
//! holds the one write lock before its first read and nothing it read can change before it
//! writes. PostgreSQL (READ COMMITTED): the cascade first locks the auth subtree in id order
//! (`lock_subtree`), then deletes the auths, so its later statements — each with a fresh
//! snapshot — see any work that a concurrent `create_work` attached while holding a share
//! lock on those auth rows; each work row is locked (`FOR UPDATE`) before its status is read,
//! and works are visited in id order. A deadlock or serialization victim is run again
//! ([`Db::retry_after`]).
//!
//! The work-status rule is core's: the cascade reads each detached work's status and asks
//! [`WorkStatus::on_auth_delete`] (built on [`WorkStatus::stopped_by_auth_delete`] and
//! [`WorkStatus::can_become`]) what to do; the store only applies the [`StatusChange`] it
//! gets, guarded on its `from` status. No status appears in this module's SQL.

use async_trait::async_trait;
use authd_core::audit::Audit;
use authd_core::credential::{
    CredentialPatch, CredentialRecord, DeleteOutcome, NewCredential, StoredSecret,
};
use authd_core::ids::{AccountId, AuthId, WorkId};
use authd_core::invalidation::Invalidation;
use authd_core::model::{Auth, AuthKind};
use authd_core::store::CredentialStore;
use authd_core::work::{StatusChange, WorkStatus};
use authd_core::{Error, Result};

use crate::audit::insert_audits;
use crate::auths::{lock_subtree, SUBTREE};
use crate::{
    args, auth_from_row, bounded, corrupt, get, id_col, secret_from_row, transaction, Db, Exec,
    Mode, SqlStore, AUTH_COLS,
};

/// Answer to a credential write that lost the generation compare-and-swap.
const CHANGED_CONCURRENTLY: &str = "The credential was changed by another request; retry";

/// Writes one sealed secret field of `auth` (inserting it, or replacing the field's row).
async fn upsert_secret(
    tx: &mut impl Exec,
    account: AccountId,
    auth: AuthId,
    s: &StoredSecret,
) -> Result<()> {
    tx.execute(
        "INSERT INTO auth_secrets (account_id, auth_id, field, key_id, nonce, ciphertext) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (auth_id, field) DO UPDATE SET \
         key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext",
        args![account, auth, &s.field, &s.key_id, &s.nonce, &s.ciphertext],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl<D: Db> CredentialStore for SqlStore<D> {
    async fn create_credential(
        &self,
        account: AccountId,
        c: NewCredential,
        now_ms: i64,
        audit: Audit<'_, Auth>,
    ) -> Result<Auth> {
        let insert = format!(
            "INSERT INTO auths (id, account_id, kind, provider_id, name, label, description, \
             user_id, user_name, parent_id, created_ms, updated_ms, cred_incarnation, \
             cred_generation) \
             VALUES ($1, $2, 'credential', $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, 1) \
             RETURNING {AUTH_COLS}"
        );
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                let auth = tx
                    .one(
                        &insert,
                        args![
                            c.id,
                            account,
                            c.provider_id,
                            &c.name,
                            &c.label,
                            &c.description,
                            c.user_id,
                            &c.user_name,
                            c.parent_id,
                            now_ms,
                            &c.incarnation
                        ],
                        |r| auth_from_row(r),
                    )
                    .await
                    .map_err(|e| match e {
                        Error::Conflict(_) => {
                            Error::Conflict(format!("Auth {} already exists", c.id))
                        }
                        other => other,
                    })?;
                for s in &c.secrets {
                    upsert_secret(tx, account, c.id, s).await?;
                }
                insert_audits(tx, &audit, &auth).await?;
                Ok(auth)
            })
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
        // Compare-and-swap on the generation the new secrets were sealed for.
        let update = format!(
            "UPDATE auths SET provider_id = COALESCE($1, provider_id), \
             name = COALESCE($2, name), label = COALESCE($3, label), \
             description = COALESCE($4, description), updated_ms = $5, \
             cred_generation = cred_generation + 1, cred_incarnation = $6 \
             WHERE account_id = $7 AND id = $8 AND kind = 'credential' \
             AND cred_generation = $9 RETURNING {AUTH_COLS}"
        );
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                let updated = tx
                    .optional(
                        &update,
                        args![
                            p.provider_id,
                            &p.name,
                            &p.label,
                            &p.description,
                            now_ms,
                            &p.incarnation,
                            account,
                            id,
                            p.expected_generation
                        ],
                        |r| auth_from_row(r),
                    )
                    .await?;
                let Some(auth) = updated else {
                    let exists = tx
                        .optional(
                            "SELECT 1 AS one FROM auths WHERE account_id = $1 AND id = $2 \
                             AND kind = 'credential'",
                            args![account, id],
                            |_| Ok(()),
                        )
                        .await?;
                    return match exists {
                        Some(()) => Err(Error::Conflict(CHANGED_CONCURRENTLY.into())),
                        None => Ok(None),
                    };
                };
                tx.execute(
                    "DELETE FROM auth_secrets WHERE account_id = $1 AND auth_id = $2",
                    args![account, id],
                )
                .await?;
                for s in &p.secrets {
                    upsert_secret(tx, account, id, s).await?;
                }
                insert_audits(tx, &audit, &auth).await?;
                Ok(Some(auth))
            })
        })
        .await
    }

    async fn get_credential(
        &self,
        account: AccountId,
        id: AuthId,
    ) -> Result<Option<CredentialRecord>> {
        let select = format!(
            "SELECT {AUTH_COLS}, cred_incarnation, cred_generation FROM auths \
             WHERE account_id = $1 AND id = $2"
        );
        bounded(&self.db, async {
            // One snapshot (REPEATABLE READ READ ONLY on PostgreSQL, a deferred transaction
            // on SQLite): the auth row and its secrets come from the same state.
            transaction!(&self.db, Mode::Snapshot, |tx| {
                let row = tx
                    .optional(&select, args![account, id], |r| {
                        Ok((
                            auth_from_row(r)?,
                            get::<String>(r, "cred_incarnation")?,
                            get::<i64>(r, "cred_generation")?,
                        ))
                    })
                    .await?;
                let Some((auth, incarnation, generation)) = row else {
                    return Ok(None);
                };
                if auth.kind() != AuthKind::Credential {
                    return Ok(None);
                }
                let secrets = tx
                    .all(
                        "SELECT field, key_id, nonce, ciphertext FROM auth_secrets \
                         WHERE account_id = $1 AND auth_id = $2 ORDER BY field",
                        args![account, id],
                        |r| secret_from_row(r),
                    )
                    .await?;
                Ok(Some(CredentialRecord {
                    auth,
                    incarnation,
                    generation,
                    secrets,
                }))
            })
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
        let delete = format!(
            "{SUBTREE} DELETE FROM auths WHERE account_id = $1 \
             AND id IN (SELECT id FROM tree) RETURNING id"
        );
        let detach = format!(
            "DELETE FROM work_auths WHERE account_id = $1 AND {} RETURNING work_id",
            D::DIALECT.in_list("auth_id", "$2")
        );
        let drop_secrets = format!(
            "DELETE FROM auth_secrets WHERE account_id = $1 AND {}",
            D::DIALECT.in_list("auth_id", "$2")
        );
        bounded(&self.db, async {
            transaction!(&self.db, Mode::Write, |tx| {
                lock_subtree::<D>(tx, account, id).await?;
                let deleted: Vec<AuthId> = tx
                    .all(&delete, args![account, id], |r| {
                        id_col(r, "id", AuthId::parse)
                    })
                    .await?;
                let mut out = DeleteOutcome {
                    deleted,
                    ..DeleteOutcome::default()
                };
                if out.deleted.is_empty() {
                    return Ok(out);
                }
                let gone: &[AuthId] = &out.deleted;
                tx.execute(&drop_secrets, args![account, gone]).await?;
                let mut works: Vec<WorkId> = tx
                    .all(&detach, args![account, gone], |r| {
                        id_col(r, "work_id", WorkId::parse)
                    })
                    .await?;
                // Each work once, in id order: the order PostgreSQL locks them in. (Ids are
                // 32 lowercase hex digits: their byte order is their text order.)
                works.sort_unstable();
                works.dedup();
                for w in works {
                    out.detached_works.push(w);
                    if stop_for_auth_delete::<D>(tx, account, w, reason, now_ms).await? {
                        out.stopped_works.push(w);
                    }
                }
                // Deleted API tokens must be refused by every node from the moment this
                // commits.
                self.db
                    .publish(tx, Invalidation::Auths(out.deleted.clone()))
                    .await?;
                insert_audits(tx, &audit, &out).await?;
                Ok(out)
            })
        })
        .await
    }
}

/// What deleting a listed auth does to one work, inside the cascade's transaction: the state
/// machine decides ([`WorkStatus::on_auth_delete`]) and [`apply_status_change`] applies it; a
/// work it does not stop is only marked updated. On PostgreSQL the row is locked first, so a
/// concurrent status change cannot slip between the read and the write (SQLite's write
/// transaction already excludes it). Returns whether the work was stopped.
async fn stop_for_auth_delete<D: Db>(
    tx: &mut impl Exec,
    account: AccountId,
    work: WorkId,
    reason: &str,
    now_ms: i64,
) -> Result<bool> {
    let sql = format!(
        "SELECT statuscode FROM works WHERE account_id = $1 AND id = $2{}",
        D::DIALECT.for_update()
    );
    let status: Option<String> = tx
        .optional(&sql, args![account, work], |r| get(r, "statuscode"))
        .await?;
    let Some(status) = status else {
        return Ok(false);
    };
    let status = WorkStatus::parse(&status).ok_or_else(|| corrupt("statuscode"))?;
    if let Some(change) = status.on_auth_delete() {
        if apply_status_change(tx, account, work, change, reason, now_ms).await? {
            return Ok(true);
        }
    }
    tx.execute(
        "UPDATE works SET updated_ms = $1 WHERE account_id = $2 AND id = $3",
        args![now_ms, account, work],
    )
    .await?;
    Ok(false)
}

/// The one statement that changes a work's status: only from `change.from()`, and counted
/// in `work_state_version`. `false` if the work is gone or no longer in that status.
async fn apply_status_change(
    tx: &mut impl Exec,
    account: AccountId,
    work: WorkId,
    change: StatusChange,
    reason: &str,
    now_ms: i64,
) -> Result<bool> {
    let n = tx
        .execute(
            "UPDATE works SET statuscode = $1, status_reason = $2, updated_ms = $3, \
             work_state_version = work_state_version + 1 \
             WHERE account_id = $4 AND id = $5 AND statuscode = $6",
            args![
                change.to().as_str(),
                reason,
                now_ms,
                account,
                work,
                change.from().as_str()
            ],
        )
        .await?;
    Ok(n > 0)
}
