//! Creating accounts with their first admin user and token — the one routine behind
//! `authd init`, `authd account create` and the bootstrap of `authd serve`.

use anyhow::Context;
use authd_core::clock::Clock;
use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::model::{Account, NewAccount, NewToken, User};
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
    let name = authd_core::text::AccountName::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = clock.now_ms();
    let account = store
        .create_account(
            NewAccount {
                id: AccountId::generate(),
                name: name.into(),
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
        .create_user(
            User {
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
            },
            // Provisioning (like the account itself) is not audited.
            authd_core::audit::Audit::None,
        )
        .await
        .context("creating the admin user")?;
    let token = ApiToken::generate(AuthId::generate_at(now));
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
