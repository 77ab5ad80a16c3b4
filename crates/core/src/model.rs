//! The records authd keeps. These are domain values, not wire DTOs: the server maps them to
//! the Lytics JSON shapes, and the stores map them to rows. Nothing here holds a plaintext
//! secret; token records carry only the keyed hash.

use crate::ids::{AccountId, AuthId, ProviderId, UserId};
use crate::roles::RoleSet;

/// An account (tenant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Public id.
    pub id: AccountId,
    /// The small integer id Lytics clients also use.
    pub aid: i64,
    /// Display name.
    pub name: String,
    /// Domain, may be empty.
    pub domain: String,
    /// Contact email, may be empty.
    pub email: String,
    /// IANA time zone name.
    pub timezone: String,
    /// Creation time (Unix ms).
    pub created_ms: i64,
    /// Last update (Unix ms).
    pub updated_ms: i64,
}

/// What is needed to create an account.
#[derive(Clone, Debug)]
pub struct NewAccount {
    /// Id to create it under.
    pub id: AccountId,
    /// Display name.
    pub name: String,
    /// Domain, may be empty.
    pub domain: String,
    /// Contact email, may be empty.
    pub email: String,
    /// IANA time zone name.
    pub timezone: String,
}

/// A user of an account. A user belongs to exactly one account — the same person in two
/// accounts is two users — so the user record is also its one membership: the account, the
/// roles, who granted them (`granted_by`) and when (`created_ms`, `roles_updated_ms`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Public id.
    pub id: UserId,
    /// Owning account.
    pub account_id: AccountId,
    /// Email, unique within the account.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Granted roles.
    pub roles: RoleSet,
    /// Creation time (Unix ms).
    pub created_ms: i64,
    /// Last update (Unix ms).
    pub updated_ms: i64,
    /// Last log-on, if any.
    pub last_logon_ms: Option<i64>,
    /// Who granted the current roles: a user of the account, `None` when authd itself did
    /// (the bootstrap admin) or the grant was made by a token acting for no user.
    pub granted_by: Option<UserId>,
    /// When the current roles were granted (Unix ms): the membership's last update.
    pub roles_updated_ms: i64,
}

/// A change to a user; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    /// New email.
    pub email: Option<String>,
    /// New name.
    pub name: Option<String>,
    /// New roles.
    pub roles: Option<RoleSet>,
    /// Who grants `roles` (recorded with them; ignored when `roles` is `None`).
    pub granted_by: Option<UserId>,
}

/// The two kinds of auth record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthKind {
    /// A Lytics API token (the secret is held only as a keyed hash).
    ApiToken,
    /// A stored third-party credential (secrets encrypted elsewhere).
    Credential,
}

impl AuthKind {
    /// Storage/wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthKind::ApiToken => "api_token",
            AuthKind::Credential => "credential",
        }
    }

    /// Parses the storage/wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api_token" => Some(AuthKind::ApiToken),
            "credential" => Some(AuthKind::Credential),
            _ => None,
        }
    }
}

/// The public part of an auth: what every auth has, and in [`Auth::model`] what only its kind
/// has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// Public id (for a token: the handle inside the token text).
    pub id: AuthId,
    /// Owning account.
    pub account_id: AccountId,
    /// The provider it is for (Lytics for tokens).
    pub provider_id: ProviderId,
    /// Name.
    pub name: String,
    /// Label (newer clients).
    pub label: String,
    /// Description.
    pub description: String,
    /// The user that provided it.
    pub user_id: Option<UserId>,
    /// That user's name at the time.
    pub user_name: String,
    /// The token that created this one, for the revocation cascade.
    pub parent_id: Option<AuthId>,
    /// Creation time (Unix ms).
    pub created_ms: i64,
    /// Last update (Unix ms).
    pub updated_ms: i64,
    /// An API token (with its grant) or a stored credential.
    pub model: AuthModel,
}

/// What an auth is, with what only that kind has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthModel {
    /// A Lytics API token (its secret is held only as a keyed hash).
    ApiToken(TokenGrant),
    /// A stored third-party credential (its secrets are sealed beside it).
    Credential,
}

/// What an API token grants, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    /// Roles.
    pub scopes: RoleSet,
    /// Expiry; `None` is never.
    pub expires_ms: Option<i64>,
    /// The requested lifetime in seconds; `None` is never.
    pub ttl_secs: Option<i64>,
    /// Last time the token authenticated a request (coalesced, may lag a few seconds).
    pub last_accessed_ms: Option<i64>,
}

impl Auth {
    /// Token or credential.
    pub const fn kind(&self) -> AuthKind {
        match self.model {
            AuthModel::ApiToken(_) => AuthKind::ApiToken,
            AuthModel::Credential => AuthKind::Credential,
        }
    }

    /// The token's grant; `None` for a credential.
    pub const fn token(&self) -> Option<&TokenGrant> {
        match &self.model {
            AuthModel::ApiToken(g) => Some(g),
            AuthModel::Credential => None,
        }
    }
}

/// What the store needs to persist a new API token.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// The auth id (also the token's public handle).
    pub id: AuthId,
    /// Keyed hash of the token text.
    pub hash: [u8; 32],
    /// Name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Description.
    pub description: String,
    /// Creating user.
    pub user_id: Option<UserId>,
    /// Creating user's name.
    pub user_name: String,
    /// Creating token.
    pub parent_id: Option<AuthId>,
    /// Granted roles.
    pub scopes: RoleSet,
    /// Expiry.
    pub expires_ms: Option<i64>,
    /// Requested lifetime in seconds.
    pub ttl_secs: Option<i64>,
    /// The audit entry of this creation (`token.create`) or rotation (`token.rotate`),
    /// written in the same transaction as the token (`create_token`, `rotate_token`; bulk
    /// inserts ignore it).
    pub audit: Option<crate::audit::AuditEntry>,
}

/// The verification entry of a token: what checking a presented token needs (its keyed
/// hash, account, scopes, expiry and its user's current roles), loaded by the public handle
/// alone, since the token is what tells authd the account. Not the token's public record
/// ([`Auth`]), and not a stored third-party credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenVerifier {
    /// The auth id.
    pub id: AuthId,
    /// The account the token acts for.
    pub account_id: AccountId,
    /// That account's integer id.
    pub account_aid: i64,
    /// The user it acts for.
    pub user_id: Option<UserId>,
    /// Keyed hash of the token text.
    pub hash: [u8; 32],
    /// Roles.
    pub scopes: RoleSet,
    /// Expiry; `None` is never.
    pub expires_ms: Option<i64>,
    /// The current roles of the token's user: `None` for a token without a user, empty when
    /// the user no longer exists. The token acts with `scopes.limited_to(user_roles)`.
    pub user_roles: Option<RoleSet>,
}

impl TokenVerifier {
    /// The roles the token acts with now: its scopes limited to its user's current roles
    /// (a token without a user keeps its scopes).
    pub fn effective_scopes(&self) -> RoleSet {
        match self.user_roles {
            Some(user) => self.scopes.limited_to(user),
            None => self.scopes,
        }
    }
}

/// Filters for listing auths.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthFilter {
    /// Only this kind.
    pub kind: Option<AuthKind>,
    /// Only auths for this provider.
    pub provider_id: Option<ProviderId>,
}

/// Keyset pagination: items strictly after `after`, in id order, at most `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Page<K> {
    /// Resume after this key.
    pub after: Option<K>,
    /// Maximum number of items.
    pub limit: u32,
}

/// The largest page a list endpoint serves (`?limit=` is 1..=`MAX_PAGE`).
pub const MAX_PAGE: u32 = 1000;

/// The rows to fetch for a page of `size` items: one more than the page, so the extra row
/// tells whether another page follows (its presence is `_next`).
pub const fn with_lookahead(size: u32) -> u32 {
    size.saturating_add(1)
}

/// The SQL `LIMIT` a store binds for a requested `limit`: at least 1 and at most a full page
/// plus its look-ahead row, so every allowed page size keeps its `_next`.
pub fn sql_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, with_lookahead(MAX_PAGE)))
}

impl<K> Page<K> {
    /// The fetch for a page of `size` items after `after`, with its look-ahead row.
    pub const fn lookahead(after: Option<K>, size: u32) -> Self {
        Self {
            after,
            limit: with_lookahead(size),
        }
    }
}
