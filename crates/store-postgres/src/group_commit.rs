//! Group commit for token creation on PostgreSQL.
//!
//! Each issuance used to be its own transaction: `BEGIN`, the token, its audit entry,
//! `COMMIT` — four round trips and a WAL flush per token, so a burst of createtokens ran
//! below the server's single-row commit rate (issue 12). Here a request queues its token and
//! waits; one task per store takes everything queued (up to [`MAX_BATCH`]) and writes it in
//! ONE transaction of three statements whatever the batch size: every token in one
//! `INSERT … SELECT FROM UNNEST(…)`, every audit entry in another, then `COMMIT`. Only after
//! the commit does each waiter get its answer: durable before acknowledged, exactly as a
//! single insert.
//!
//! If the batch fails (a token whose account was deleted meanwhile, a duplicate id), it is
//! rolled back as a whole and each of its tokens is then written in a transaction of its own
//! (store-sql's `create_token_in_transaction`), so one bad token fails alone and the others
//! are unaffected. A request that goes away after queuing cancels nothing: its token is
//! committed with the others and the answer is dropped.

use authd_core::ids::AccountId;
use authd_core::model::{Auth, NewToken};
use authd_core::{Error, Result};
use authd_store_sql::auths::{create_token_in_transaction, stored_token};
use authd_store_sql::{pg_err, Db, Mode};
use tokio::sync::{mpsc, oneshot};

use crate::PgDb;

/// The most tokens one transaction takes; the rest wait for the next.
pub(crate) const MAX_BATCH: usize = 512;

/// Tokens waiting for the writer at most; past this, issuers wait to queue.
const QUEUE: usize = 4096;

/// One queued issuance.
struct Job {
    account: AccountId,
    token: NewToken,
    now_ms: i64,
    answer: oneshot::Sender<Result<Auth>>,
}

/// The queue in front of the batching task.
#[derive(Clone, Debug)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("id", &self.token.id).finish()
    }
}

impl GroupCommit {
    /// Starts the batching task over `db` (it needs a runtime; `db` itself writes directly,
    /// without a group). The task ends when the last handle is dropped.
    pub(crate) fn start(db: PgDb) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, jobs));
        Self { queue }
    }

    /// Queues one token (its account, the token, the time) and waits until it is committed
    /// (or failed).
    pub(crate) async fn create_token(&self, queued: (AccountId, NewToken, i64)) -> Result<Auth> {
        let (answer, rx) = oneshot::channel();
        let (account, token, now_ms) = queued;
        let job = Job {
            account,
            token,
            now_ms,
            answer,
        };
        self.queue
            .send(job)
            .await
            .map_err(|_| Error::Unavailable(anyhow::anyhow!("the token writer has stopped")))?;
        rx.await
            .map_err(|_| Error::internal(anyhow::anyhow!("group commit dropped a token")))?
    }
}

async fn run(db: PgDb, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let taken = std::mem::take(&mut batch);
        match commit_batch(&db, &taken).await {
            Ok(()) => {
                for job in taken {
                    let auth = stored_token(job.account, &job.token, job.now_ms);
                    let _ = job.answer.send(Ok(auth));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, tokens = taken.len(), "token batch failed; one by one");
                for job in taken {
                    let r =
                        create_token_in_transaction(&db, job.account, &job.token, job.now_ms).await;
                    let _ = job.answer.send(r);
                }
            }
        }
    }
}

/// Writes a batch of tokens and their audit entries in one transaction.
async fn commit_batch(db: &PgDb, jobs: &[Job]) -> Result<()> {
    let mut tx = db.begin(Mode::Write).await?;
    let cols = TokenColumns::of(jobs);
    sqlx::query(
        "INSERT INTO auths (id, account_id, kind, provider_id, name, label, description, \
         user_id, user_name, parent_id, scopes, expires_ms, ttl_secs, token_hash, created_ms, \
         updated_ms) \
         SELECT t.id, t.account_id, 'api_token', $1, t.name, t.label, t.description, \
         t.user_id, t.user_name, t.parent_id, t.scopes, t.expires_ms, t.ttl_secs, \
         t.token_hash, t.now, t.now \
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bytea[], \
         $14::bigint[]) AS t(id, account_id, name, label, description, user_id, user_name, \
         parent_id, scopes, expires_ms, ttl_secs, token_hash, now)",
    )
    .bind(authd_core::provider::LYTICS_PROVIDER_ID.to_string())
    .bind(&cols.id)
    .bind(&cols.account)
    .bind(&cols.name)
    .bind(&cols.label)
    .bind(&cols.description)
    .bind(&cols.user_id)
    .bind(&cols.user_name)
    .bind(&cols.parent_id)
    .bind(&cols.scopes)
    .bind(&cols.expires_ms)
    .bind(&cols.ttl_secs)
    .bind(&cols.hash)
    .bind(&cols.now)
    .execute(&mut *tx.0)
    .await
    .map_err(pg_err)?;
    let audit = AuditColumns::of(jobs);
    if !audit.at.is_empty() {
        // In queue order, so the trail's sequence follows the issuances'.
        sqlx::query(
            "INSERT INTO audit (at_ms, account_id, actor, action, target, outcome, \
             request_id, detail) \
             SELECT e.at_ms, e.account_id, e.actor, e.action, e.target, e.outcome, \
             e.request_id, e.detail \
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY \
             AS e(at_ms, account_id, actor, action, target, outcome, request_id, detail, n) \
             ORDER BY n",
        )
        .bind(&audit.at)
        .bind(&audit.account)
        .bind(&audit.actor)
        .bind(&audit.action)
        .bind(&audit.target)
        .bind(&audit.outcome)
        .bind(&audit.request_id)
        .bind(&audit.detail)
        .execute(&mut *tx.0)
        .await
        .map_err(pg_err)?;
    }
    db.commit(tx).await
}

/// A batch of tokens as one array per column (what `UNNEST` takes).
#[derive(Default)]
struct TokenColumns {
    id: Vec<String>,
    account: Vec<String>,
    name: Vec<String>,
    label: Vec<String>,
    description: Vec<String>,
    user_id: Vec<Option<String>>,
    user_name: Vec<String>,
    parent_id: Vec<Option<String>>,
    scopes: Vec<i64>,
    expires_ms: Vec<Option<i64>>,
    ttl_secs: Vec<Option<i64>>,
    hash: Vec<Vec<u8>>,
    now: Vec<i64>,
}

impl TokenColumns {
    fn of(jobs: &[Job]) -> Self {
        let mut c = Self::default();
        for j in jobs {
            let t = &j.token;
            c.id.push(t.id.to_string());
            c.account.push(j.account.to_string());
            c.name.push(t.name.clone());
            c.label.push(t.label.clone());
            c.description.push(t.description.clone());
            c.user_id.push(t.user_id.map(|u| u.to_string()));
            c.user_name.push(t.user_name.clone());
            c.parent_id.push(t.parent_id.map(|p| p.to_string()));
            c.scopes.push(i64::from(t.scopes.bits()));
            c.expires_ms.push(t.expires_ms);
            c.ttl_secs.push(t.ttl_secs);
            c.hash.push(t.hash.to_vec());
            c.now.push(j.now_ms);
        }
        c
    }
}

/// The audit entries of a batch, one array per column.
#[derive(Default)]
struct AuditColumns {
    at: Vec<i64>,
    account: Vec<Option<String>>,
    actor: Vec<String>,
    action: Vec<String>,
    target: Vec<String>,
    outcome: Vec<String>,
    request_id: Vec<String>,
    detail: Vec<String>,
}

impl AuditColumns {
    fn of(jobs: &[Job]) -> Self {
        let mut c = Self::default();
        for e in jobs.iter().filter_map(|j| j.token.audit.as_ref()) {
            c.at.push(e.at_ms);
            c.account.push(e.account_id.map(|a| a.to_string()));
            c.actor.push(e.actor.clone());
            c.action.push(e.action.as_str().to_owned());
            c.target.push(e.target.clone());
            c.outcome.push(e.outcome.clone());
            c.request_id.push(e.request_id.clone());
            c.detail.push(e.detail.clone());
        }
        c
    }
}
