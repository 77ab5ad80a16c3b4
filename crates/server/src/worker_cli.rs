//! `authd worker credential create | list | revoke`: the host operator's management of named
//! worker credentials (see [`crate::worker`]). Each runs directly on the store, with the
//! server stopped or running, on SQLite and PostgreSQL, and is audited with actor `operator`
//! (no account).
//!
//! `create` prints the new credential alone on stdout (shown once); messages go to stderr. A
//! revocation holds from the next worker request on, on every node: the listener reads the
//! credential from the store on every request.

use std::sync::Arc;

use authd_core::audit::{Audit, AuditAction};
use authd_core::clock::{rfc3339, Clock};
use authd_core::ids::{AccountId, WorkerCredentialId};
use authd_core::store::Store;
use authd_core::worker_credential::{NewWorkerCredential, WorkerCredential};
use authd_crypto::TokenHasher;
use clap::Subcommand;

use crate::worker::WorkerToken;

/// `authd worker …`
#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Named worker credentials.
    Credential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
}

/// `authd worker credential …`
#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Create a worker credential; prints it alone on stdout, once.
    Create {
        /// Its name (1-64 letters, digits, '_', '-' or '.'), unique among live credentials.
        name: String,
        /// Limit it to this account (id or aid); repeat for several. Every account if absent.
        #[arg(long = "account")]
        accounts: Vec<String>,
    },
    /// List worker credentials (never their secrets), revoked ones included.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a worker credential, by name (of a live one) or id.
    Revoke {
        /// Name or id.
        credential: String,
    },
}

/// Runs one `authd worker` subcommand. `hasher` is the worker-credential hasher.
pub async fn run(
    cmd: WorkerCommand,
    store: Arc<dyn Store>,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let WorkerCommand::Credential { command } = cmd;
    match command {
        CredentialCommand::Create { name, accounts } => {
            let (cred, token) =
                create(store.as_ref(), &hasher, clock.as_ref(), &name, &accounts).await?;
            let scope = match &cred.accounts {
                None => "every account".to_owned(),
                Some(a) => format!("{} account(s)", a.len()),
            };
            eprintln!(
                "authd: created worker credential {} ({}) for {scope}; it follows on stdout and is \
                 shown only once",
                cred.name, cred.id
            );
            crate::cli::print_token(token.expose())
        }
        CredentialCommand::List { json } => list(store.as_ref(), json).await,
        CredentialCommand::Revoke { credential } => {
            let cred = revoke(store.as_ref(), clock.as_ref(), &credential).await?;
            eprintln!(
                "authd: revoked worker credential {} ({}); running servers refuse it from their \
                 next request (it is checked against the store on every request)",
                cred.name, cred.id
            );
            Ok(())
        }
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')),
        "invalid worker credential name {name:?}: use 1-64 letters, digits, '_', '-' or '.'"
    );
    Ok(())
}

/// Creates a named credential limited to `accounts` (ids or aids; none: every account).
pub async fn create(
    store: &dyn Store,
    hasher: &TokenHasher,
    clock: &dyn Clock,
    name: &str,
    accounts: &[String],
) -> anyhow::Result<(WorkerCredential, WorkerToken)> {
    check_name(name)?;
    let mut ids: Vec<AccountId> = Vec::new();
    for a in accounts {
        let acct = crate::settings::resolve_account(store, a)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no account with id or aid {a:?}"))?;
        if !ids.contains(&acct.id) {
            ids.push(acct.id);
        }
    }
    let token = WorkerToken::generate();
    let cred = WorkerCredential {
        id: WorkerCredentialId::generate(),
        name: name.to_owned(),
        accounts: (!ids.is_empty()).then_some(ids),
        created_ms: clock.now_ms(),
        revoked_ms: None,
    };
    store
        .create_worker_credential(
            NewWorkerCredential {
                credential: cred.clone(),
                hash: hasher.hash(token.expose().as_bytes()),
            },
            audit(clock, AuditAction::WorkerCredentialCreate, &cred),
        )
        .await?;
    Ok((cred, token))
}

/// Revokes a live credential by name, or any by id.
pub async fn revoke(
    store: &dyn Store,
    clock: &dyn Clock,
    name_or_id: &str,
) -> anyhow::Result<WorkerCredential> {
    let key = name_or_id.trim();
    let all = store.list_worker_credentials().await?;
    let id = WorkerCredentialId::parse(key);
    let cred = all
        .into_iter()
        .find(|c| c.revoked_ms.is_none() && (Some(c.id) == id || c.name == key))
        .ok_or_else(|| anyhow::anyhow!("no live worker credential named or with id {key:?}"))?;
    anyhow::ensure!(
        store
            .revoke_worker_credential(
                cred.id,
                clock.now_ms(),
                audit(clock, AuditAction::WorkerCredentialRevoke, &cred)
            )
            .await?,
        "worker credential {key:?} was revoked meanwhile"
    );
    Ok(cred)
}

/// The operator's entry for `action` on `cred` (no account: an operator-level record),
/// written in the change's transaction.
fn audit(clock: &dyn Clock, action: AuditAction, cred: &WorkerCredential) -> Audit<'static, ()> {
    let scope = match &cred.accounts {
        None => "accounts all".to_owned(),
        Some(a) => {
            let ids: Vec<String> = a.iter().map(ToString::to_string).collect();
            format!("accounts {}", ids.join(","))
        }
    };
    let by = crate::audit::By::operator(clock, None);
    let detail = format!("name {}; {scope}", cred.name);
    Audit::Entry(by.entry(action, &cred.id.to_string(), &detail))
}

async fn list(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let all = store.list_worker_credentials().await?;
    if json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.id.to_string(),
                    "name": c.name,
                    "accounts": c.accounts.as_ref().map(|a| a.iter().map(ToString::to_string).collect::<Vec<_>>()),
                    "created": rfc3339(Some(c.created_ms)),
                    "revoked": c.revoked_ms.map(|r| rfc3339(Some(r))),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("id\tname\taccounts\tcreated\trevoked");
    for c in &all {
        let accounts = c.accounts.as_ref().map_or_else(
            || "all".to_owned(),
            |a| {
                a.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            },
        );
        println!(
            "{}\t{}\t{}\t{}\t{}",
            c.id,
            c.name,
            accounts,
            rfc3339(Some(c.created_ms)),
            c.revoked_ms
                .map_or_else(|| "-".to_owned(), |r| rfc3339(Some(r)))
        );
    }
    Ok(())
}
