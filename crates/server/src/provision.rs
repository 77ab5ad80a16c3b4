//! Creating accounts with their first admin user and token — the one routine behind
//! `authd init`, `authd account create` and the bootstrap of `authd serve` — plus bulk token
//! seeding for benchmarks.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use authd_core::clock::Clock;
use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::model::{Account, NewAccount, NewToken, Page, User};
use authd_core::roles::{Role, RoleSet};
use authd_core::store::Store;
use authd_core::token::ApiToken;
use authd_crypto::TokenHasher;

/// A freshly provisioned account and its admin token (shown once).
#[derive(Debug)]
pub struct Provisioned {
    /// The account.
    pub account: Account,
    /// Its first admin token.
    pub token: ApiToken,
}

/// Creates an account, an `admin` user and an admin API token for it.
pub async fn account(
    store: &dyn Store,
    hasher: &TokenHasher,
    clock: &dyn Clock,
    name: &str,
) -> anyhow::Result<Provisioned> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "account name must be 1–200 characters");
    authd_core::text::validate("account name", name, 200).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = clock.now_ms();
    let account = store
        .create_account(
            NewAccount {
                id: AccountId::generate(),
                name: name.to_owned(),
                domain: String::new(),
                email: String::new(),
                timezone: "UTC".into(),
            },
            now,
        )
        .await
        .context("creating the account")?;
    let admin = RoleSet::of(&[Role::Admin]);
    let user = store
        .create_user(User {
            id: UserId::generate(),
            account_id: account.id,
            email: "admin@localhost".into(),
            name: "admin".into(),
            roles: admin,
            created_ms: now,
            updated_ms: now,
            last_logon_ms: None,
            granted_by: None,
            roles_updated_ms: now,
        })
        .await
        .context("creating the admin user")?;
    let token = ApiToken::generate(AuthId::generate());
    store
        .create_token(
            account.id,
            NewToken {
                id: token.id(),
                hash: hasher.hash(token.expose().as_bytes()),
                name: "bootstrap admin".into(),
                label: "bootstrap admin".into(),
                description: "created by authd for the first administrator".into(),
                user_id: Some(user.id),
                user_name: user.name.clone(),
                parent_id: None,
                scopes: admin,
                expires_ms: None,
                ttl_secs: None,
                audit: None,
            },
            now,
        )
        .await
        .context("creating the admin token")?;
    Ok(Provisioned { account, token })
}

/// Inserts `count` admin tokens into the first account (by aid) and writes them to `out`.
pub async fn seed_tokens(
    store: &dyn Store,
    hasher: &TokenHasher,
    clock: &dyn Clock,
    count: usize,
    out: &Path,
) -> anyhow::Result<usize> {
    let account = match store.get_account_by_aid(1).await? {
        Some(a) => a,
        None => account(store, hasher, clock, "default").await?.account,
    };
    let user = store
        .list_users(
            account.id,
            Page {
                after: None,
                limit: 1,
            },
        )
        .await?
        .into_iter()
        .next();
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let now = clock.now_ms();
    let mut done = 0;
    while done < count {
        let n = (count - done).min(5_000);
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            let t = ApiToken::generate(AuthId::generate());
            writeln!(w, "{}", t.expose())?;
            batch.push(NewToken {
                id: t.id(),
                hash: hasher.hash(t.expose().as_bytes()),
                name: "seed".into(),
                label: "seed".into(),
                description: "seed".into(),
                user_id: user.as_ref().map(|u| u.id),
                user_name: user.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
                parent_id: None,
                scopes: RoleSet::of(&[Role::Admin]),
                expires_ms: None,
                ttl_secs: None,
                audit: None,
            });
        }
        store.create_tokens(account.id, &batch, now).await?;
        done += n;
    }
    w.flush()?;
    Ok(done)
}
