//! `authd token create | list | revoke`: the host operator's way back into an account whose
//! admins are gone or locked out. Each runs the same token service as the API (the delegation
//! rule, the expiry parsing, the revocation cascade), directly on the store, so it works with
//! the server stopped or running, on SQLite and PostgreSQL, and every action is audited with
//! actor `operator`.
//!
//! A revocation reaches running servers like any other: on PostgreSQL the store publishes it on
//! the invalidation feed (every node within 1 s); on SQLite, where the CLI is another process
//! writing the same file, the revocation's transaction appends to the file's invalidations
//! table, which every running server polls (`authd_store_sqlite::POLL_EVERY`, 250 ms).
//!
//! `create` prints the new token alone on stdout's last line; messages go to stderr.

use std::sync::Arc;

use anyhow::Context;
use authd_core::audit::{Audit, AuditAction};
use authd_core::clock::{rfc3339, Clock};
use authd_core::credential::DeleteOutcome;
use authd_core::ids::{AuthId, UserId};
use authd_core::model::{Account, AuthFilter, AuthKind, Page, User};
use authd_core::roles::RoleSet;
use authd_core::store::Store;
use clap::Subcommand;

use crate::tokens::{TokenRequest, TokenService};

/// `authd token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint an API token in an account (no creator token: it is capped by nothing but
    /// `--expires`); prints the token alone on stdout's last line.
    Create {
        /// The account, by id or aid.
        #[arg(long)]
        account: String,
        /// The user the token acts for, by id or email (its roles then bound the token's).
        #[arg(long)]
        user: Option<String>,
        /// Roles, comma-separated (`admin`, `data_manager,data`).
        #[arg(long)]
        scopes: String,
        /// Lifetime as a Go duration (`100h`); never expires when absent.
        #[arg(long)]
        expires: Option<String>,
        /// Name (also its label and description).
        #[arg(long, default_value = "operator")]
        name: String,
    },
    /// List the API tokens of an account (never their secrets).
    List {
        /// The account, by id or aid.
        #[arg(long)]
        account: String,
        /// One JSON array in the API's auth shape instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token and every token it created, transitively.
    Revoke {
        /// The token's auth id.
        id: String,
    },
}

/// Runs one `authd token` subcommand against an existing store. `postgres` says which feed
/// carries a revocation to running servers, for the message only.
pub async fn run(
    cmd: TokenCommand,
    store: Arc<dyn Store>,
    tokens: TokenService,
    clock: Arc<dyn Clock>,
    postgres: bool,
) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            account,
            user,
            scopes,
            expires,
            name,
        } => {
            let acct = account_of(store.as_ref(), &account).await?;
            let user = match user {
                Some(u) => Some(user_of(store.as_ref(), &acct, &u).await?),
                None => None,
            };
            let req = TokenRequest {
                scopes: RoleSet::parse_slugs(scopes.split(','))?,
                expires: expires.filter(|e| !e.trim().is_empty()),
                label: name.clone(),
                description: name.clone(),
                name,
            };
            let (auth, token) = tokens
                .mint_as_operator(acct.id, user.as_ref(), req)
                .await
                .context("creating the token")?;
            eprintln!(
                "authd: created token {} in account {} (aid {}) with roles {}; it follows on stdout",
                auth.id,
                acct.id,
                acct.aid,
                auth.token().map(|g| g.scopes).unwrap_or_default().slugs().join(",")
            );
            crate::cli::print_token(token.expose())
        }
        TokenCommand::List { account, json } => {
            let acct = account_of(store.as_ref(), &account).await?;
            list(store.as_ref(), &acct, json).await
        }
        TokenCommand::Revoke { id } => {
            let id = AuthId::parse(id.trim())
                .ok_or_else(|| anyhow::anyhow!("not a token id: expected 32 hex characters"))?;
            // The token's handle tells its account (the one unscoped read, as for a request).
            let cred = store
                .token_verifier(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no API token with id {id}"))?;
            let by = crate::audit::By::operator(clock.as_ref(), Some(cred.account_id));
            let entries = |out: &DeleteOutcome| {
                crate::audit::deletion(&by, AuditAction::TokenRevoke, id, out)
            };
            let out = tokens
                .revoke(cred.account_id, id, None, Audit::Outcome(&entries))
                .await?;
            let bound = if postgres {
                "within 1 s (every node, through NOTIFY)".to_owned()
            } else {
                format!(
                    "within {} ms (through the file's invalidations table)",
                    authd_store_sqlite::POLL_EVERY.as_millis()
                )
            };
            eprintln!(
                "authd: revoked {id} and {} auth(s) under it; running servers refuse them {bound}",
                out.deleted.len() - 1
            );
            Ok(())
        }
    }
}

async fn account_of(store: &dyn Store, account: &str) -> anyhow::Result<Account> {
    crate::settings::resolve_account(store, account)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no account with id or aid {account:?}"))
}

/// A user of the account by id or email (emails are compared case-insensitively).
async fn user_of(store: &dyn Store, acct: &Account, user: &str) -> anyhow::Result<User> {
    let user = user.trim();
    if let Some(id) = UserId::parse(user) {
        if let Some(u) = store.get_user(acct.id, id).await? {
            return Ok(u);
        }
    }
    let mut after = None;
    loop {
        let page = store
            .list_users(acct.id, Page { after, limit: 500 })
            .await?;
        if let Some(u) = page.iter().find(|u| u.email.eq_ignore_ascii_case(user)) {
            return Ok(u.clone());
        }
        match page.last() {
            Some(last) if page.len() == 500 => after = Some(last.id),
            _ => anyhow::bail!("no user {user:?} in account {} (aid {})", acct.id, acct.aid),
        }
    }
}

async fn list(store: &dyn Store, acct: &Account, json: bool) -> anyhow::Result<()> {
    let filter = AuthFilter {
        kind: Some(AuthKind::ApiToken),
        provider_id: None,
    };
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_auths(acct.id, filter, Page { after, limit: 500 })
            .await?;
        let full = page.len() == 500;
        after = page.last().map(|a| a.id);
        all.extend(page);
        if !full {
            break;
        }
    }
    if json {
        let names =
            crate::services::providers::names(store, acct.id, all.iter().map(|a| a.provider_id))
                .await?;
        let dtos: Vec<_> = all
            .iter()
            .map(|a| {
                crate::api::dto::AuthDto::new(
                    a,
                    acct.aid,
                    names.of(a.provider_id),
                    a.token().and_then(|g| g.last_accessed_ms),
                )
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&dtos)?);
        return Ok(());
    }
    println!("id\tname\tscopes\tuser\texpires");
    for a in &all {
        let grant = a.token();
        println!(
            "{}\t{}\t{}\t{}\t{}",
            a.id,
            a.name.escape_debug(),
            grant
                .map(|g| g.scopes)
                .unwrap_or_default()
                .slugs()
                .join(","),
            a.user_name.escape_debug(),
            grant
                .and_then(|g| g.expires_ms)
                .map_or_else(|| "never".to_owned(), |e| rfc3339(Some(e)))
        );
    }
    Ok(())
}
