//! Wire shapes (Lytics JSON) of authd's records. Domain types never derive `Serialize`; the
//! mapping happens here so renaming a domain field cannot silently change the wire.
//!
//! Dates are RFC 3339 UTC with "never" as `0001-01-01T00:00:00Z`; epoch-millisecond side
//! fields (`created_ms`, `updated_ms`, and Lytics' `modified_ms`) are added for convenience.
//! No DTO has a field that could hold a secret, except [`CreatedToken`], used only in the
//! createtoken response; no DTO has a `password` field at all.
//!
//! Every field of the Lytics answers in docs/lytics-compat.md is here with its JSON type;
//! where authd has no source for one, it carries the zero value Lytics uses, as that page
//! lists (the contract test `tests/api/wire_contract.rs` holds the two together).

use authd_core::clock::{rfc3339, Rfc3339};
use authd_core::ids::{AccountId, AuthId, ProviderId, UserId};
use authd_core::model::{Account, Auth, User};
use authd_core::provider::Provider;
use authd_core::roles::RoleSet;
use serde::Serialize;

use crate::services::auths::AuthView;

/// An auth (token or credential), public fields only. Borrows the record: this is built on
/// the read path of every `GET /api/auth/{id}`, so it allocates nothing.
#[derive(Debug, Serialize)]
pub struct AuthDto<'a> {
    id: AuthId,
    aid: i64,
    account_id: AccountId,
    name: &'a str,
    label: &'a str,
    description: &'a str,
    auth_type: &'static str,
    provider_id: ProviderId,
    provider_name: &'a str,
    #[serde(serialize_with = "opt_id")]
    user_id: Option<UserId>,
    user_name: &'a str,
    #[serde(serialize_with = "date")]
    created: Rfc3339,
    #[serde(serialize_with = "date")]
    updated: Rfc3339,
    created_ms: i64,
    updated_ms: i64,
    /// Lytics' name for `updated_ms`.
    modified_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_slugs")]
    scopes: Option<RoleSet>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_date")]
    expires: Option<Rfc3339>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_date")]
    last_accessed_at: Option<Rfc3339>,
}

fn date<S: serde::Serializer>(d: &Rfc3339, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(d, s)
}

fn opt_date<S: serde::Serializer>(d: &Option<Rfc3339>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serde::Serialize::serialize(d, s),
        None => s.serialize_none(),
    }
}

/// A missing user id is written as `""` (typed clients expect a string).
fn opt_id<S: serde::Serializer>(id: &Option<UserId>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => serde::Serialize::serialize(id, s),
        None => s.serialize_str(""),
    }
}

fn opt_slugs<S: serde::Serializer>(r: &Option<RoleSet>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => s.collect_seq(r.iter().map(|role| role.slug())),
        None => s.serialize_none(),
    }
}

impl<'a> AuthDto<'a> {
    /// Maps an auth; `aid` is the account's, `last_accessed` the freshest known touch.
    pub fn new(a: &'a Auth, aid: i64, provider_name: &'a str, last_accessed: Option<i64>) -> Self {
        let grant = a.token();
        Self {
            id: a.id,
            aid,
            account_id: a.account_id,
            name: &a.name,
            label: &a.label,
            description: &a.description,
            auth_type: a.kind().as_str(),
            provider_id: a.provider_id,
            provider_name,
            user_id: a.user_id,
            user_name: &a.user_name,
            created: Rfc3339(Some(a.created_ms)),
            updated: Rfc3339(Some(a.updated_ms)),
            created_ms: a.created_ms,
            updated_ms: a.updated_ms,
            modified_ms: a.updated_ms,
            scopes: grant.map(|g| g.scopes),
            expires: grant.map(|g| Rfc3339(g.expires_ms)),
            ttl: grant.map(|g| g.ttl_secs.unwrap_or(0)),
            last_accessed_at: grant.map(|_| Rfc3339(last_accessed)),
        }
    }

    /// Maps an auth as the auth service answers it; `aid` is the account's.
    pub fn from_view(v: &'a AuthView, aid: i64) -> Self {
        Self::new(&v.auth, aid, &v.provider_name, v.last_accessed_ms)
    }
}

/// One `config` entry of the createtoken (and rotate) response. It carries the secret both
/// as the seed shows it (`{"api_key":"<token>"}`) and as name/value
/// (`"name":"api_key","value":"<token>"`), so clients written against either read it.
#[derive(Debug, Serialize)]
pub struct ConfigEntry<'a> {
    /// The token under the seed's key.
    api_key: &'a str,
    /// Always `api_key`.
    name: &'static str,
    /// The token again, for name/value readers.
    value: &'a str,
}

impl<'a> ConfigEntry<'a> {
    /// The entry for a freshly minted token, shown this once.
    pub fn api_key(token: &'a str) -> Self {
        Self {
            api_key: token,
            name: "api_key",
            value: token,
        }
    }
}

/// The createtoken response: the auth plus the one-time `config`.
#[derive(Debug, Serialize)]
pub struct CreatedToken<'a> {
    /// The auth.
    #[serde(flatten)]
    pub auth: AuthDto<'a>,
    /// `[{"api_key":"<token>","name":"api_key","value":"<token>"}]`.
    pub config: [ConfigEntry<'a>; 1],
}

/// An account.
#[derive(Debug, Serialize)]
pub struct AccountDto {
    id: String,
    aid: i64,
    name: String,
    domain: String,
    email: String,
    timezone: String,
    created: String,
    updated: String,
    created_ms: i64,
    updated_ms: i64,
    /// Lytics' "friendly id"; authd keeps none (`""`).
    fid: &'static str,
    /// Whether users are shared with sub-accounts; authd has none (`false`).
    pubusers: bool,
    /// The aid of the master account; authd accounts have no master (`0`).
    masteraid: i64,
}

impl From<&Account> for AccountDto {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id.to_string(),
            aid: a.aid,
            name: a.name.clone(),
            domain: a.domain.clone(),
            email: a.email.clone(),
            timezone: a.timezone.clone(),
            created: rfc3339(Some(a.created_ms)),
            updated: rfc3339(Some(a.updated_ms)),
            created_ms: a.created_ms,
            updated_ms: a.updated_ms,
            fid: "",
            pubusers: false,
            masteraid: 0,
        }
    }
}

/// One membership of a user: an account it belongs to, its roles there and their grant.
#[derive(Debug, Serialize)]
pub struct MembershipDto {
    aid: i64,
    account_id: AccountId,
    #[serde(serialize_with = "slugs")]
    roles: RoleSet,
    /// The user who granted the roles, `""` when authd itself did.
    #[serde(serialize_with = "opt_id")]
    granted_by: Option<UserId>,
    #[serde(serialize_with = "date")]
    created: Rfc3339,
    #[serde(serialize_with = "date")]
    updated: Rfc3339,
}

/// A user. `aid`, `account_id` and `roles` are its membership of the caller's account;
/// `accounts` lists every membership (in authd a user belongs to exactly one account). There
/// is no `password` field: authd never emits one, in any form. Borrows the record (nothing
/// allocated to answer `GET /api/user/{id}` but the answer's buffer).
#[derive(Debug, Serialize)]
pub struct UserDto<'a> {
    id: UserId,
    email: &'a str,
    name: &'a str,
    #[serde(serialize_with = "slugs")]
    roles: RoleSet,
    aid: i64,
    account_id: AccountId,
    accounts: [MembershipDto; 1],
    /// How the user logs in; authd users have no login of their own (`""`).
    auth_type: &'static str,
    /// When the user was added to the account (Lytics' `date`).
    #[serde(serialize_with = "date")]
    date: Rfc3339,
    /// authd holds no passwords: always "never".
    #[serde(serialize_with = "date")]
    last_pwd_change: Rfc3339,
    #[serde(serialize_with = "date")]
    created: Rfc3339,
    #[serde(serialize_with = "date")]
    updated: Rfc3339,
    #[serde(serialize_with = "date")]
    last_logon: Rfc3339,
}

fn slugs<S: serde::Serializer>(r: &RoleSet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(r.iter().map(|role| role.slug()))
}

impl<'a> UserDto<'a> {
    /// Maps a user of the caller's account (whose integer id is `aid`).
    pub fn new(u: &'a User, aid: i64) -> Self {
        let created = Rfc3339(Some(u.created_ms));
        Self {
            id: u.id,
            email: &u.email,
            name: &u.name,
            roles: u.roles,
            aid,
            account_id: u.account_id,
            accounts: [MembershipDto {
                aid,
                account_id: u.account_id,
                roles: u.roles,
                granted_by: u.granted_by,
                created,
                updated: Rfc3339(Some(u.roles_updated_ms)),
            }],
            auth_type: "",
            date: created,
            last_pwd_change: Rfc3339(None),
            created,
            updated: Rfc3339(Some(u.updated_ms)),
            last_logon: Rfc3339(u.last_logon_ms),
        }
    }
}

/// One config form field of a provider.
#[derive(Debug, Serialize)]
pub struct ConfigFieldDto {
    name: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    optional: bool,
}

/// A provider.
#[derive(Debug, Serialize)]
pub struct ProviderDto {
    id: String,
    slug: String,
    name: String,
    namespace: String,
    description: String,
    categories: Vec<String>,
    auth_method: &'static str,
    auth_description: String,
    hidden: bool,
    no_auth: bool,
    config: Vec<ConfigFieldDto>,
}

impl From<&Provider> for ProviderDto {
    fn from(p: &Provider) -> Self {
        Self {
            id: p.id.to_string(),
            slug: p.slug.clone(),
            name: p.name.clone(),
            namespace: p.namespace.clone(),
            description: p.description.clone(),
            categories: p.categories.clone(),
            auth_method: p.auth_method.as_str(),
            auth_description: p.auth_description.clone(),
            hidden: p.hidden,
            no_auth: p.no_auth,
            config: p
                .config
                .iter()
                .map(|f| ConfigFieldDto {
                    name: f.name.clone(),
                    label: f.label.clone(),
                    kind: f.kind.clone(),
                    optional: f.optional,
                })
                .collect(),
        }
    }
}
