//! Wire shapes (Lytics JSON) of authd's records. Domain types never derive `Serialize`; the
//! mapping happens here so renaming a domain field cannot silently change the wire.
//!
//! Dates are RFC 3339 UTC with "never" as `0001-01-01T00:00:00Z`; epoch-millisecond side
//! fields (`created_ms`, `updated_ms`) are added for convenience. No DTO has a field that
//! could hold a secret, except [`CreatedToken`], used only in the createtoken response.

use authd_core::clock::rfc3339;
use authd_core::model::{Account, Auth, AuthKind, User};
use authd_core::provider::Provider;
use serde::Serialize;

/// An auth (token or credential), public fields only.
#[derive(Debug, Serialize)]
pub struct AuthDto {
    id: String,
    aid: i64,
    account_id: String,
    name: String,
    label: String,
    description: String,
    auth_type: &'static str,
    provider_id: String,
    provider_name: String,
    user_id: String,
    user_name: String,
    created: String,
    updated: String,
    created_ms: i64,
    updated_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_accessed_at: Option<String>,
}

impl AuthDto {
    /// Maps an auth; `aid` is the account's, `last_accessed` the freshest known touch.
    pub fn new(a: &Auth, aid: i64, provider_name: &str, last_accessed: Option<i64>) -> Self {
        let token = a.kind == AuthKind::ApiToken;
        Self {
            id: a.id.to_string(),
            aid,
            account_id: a.account_id.to_string(),
            name: a.name.clone(),
            label: a.label.clone(),
            description: a.description.clone(),
            auth_type: a.kind.as_str(),
            provider_id: a.provider_id.to_string(),
            provider_name: provider_name.to_owned(),
            user_id: a.user_id.map(|u| u.to_string()).unwrap_or_default(),
            user_name: a.user_name.clone(),
            created: rfc3339(Some(a.created_ms)),
            updated: rfc3339(Some(a.updated_ms)),
            created_ms: a.created_ms,
            updated_ms: a.updated_ms,
            scopes: token.then(|| a.scopes.slugs()),
            expires: token.then(|| rfc3339(a.expires_ms)),
            ttl: token.then(|| a.ttl_secs.unwrap_or(0)),
            last_accessed_at: token.then(|| rfc3339(last_accessed)),
        }
    }
}

/// One `config` entry of the createtoken response.
#[derive(Debug, Serialize)]
pub struct ConfigEntry<'a> {
    /// Always `api_key`.
    pub name: &'static str,
    /// The token, shown this once.
    pub value: &'a str,
}

/// The createtoken response: the auth plus the one-time `config`.
#[derive(Debug, Serialize)]
pub struct CreatedToken<'a> {
    /// The auth.
    #[serde(flatten)]
    pub auth: AuthDto,
    /// `[{"name":"api_key","value":"<token>"}]`.
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
        }
    }
}

/// A user.
#[derive(Debug, Serialize)]
pub struct UserDto {
    id: String,
    email: String,
    name: String,
    roles: Vec<&'static str>,
    account_id: String,
    created: String,
    updated: String,
    last_logon: String,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            roles: u.roles.slugs(),
            account_id: u.account_id.to_string(),
            created: rfc3339(Some(u.created_ms)),
            updated: rfc3339(Some(u.updated_ms)),
            last_logon: rfc3339(u.last_logon_ms),
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
