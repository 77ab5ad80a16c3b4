//! Row decoding: turning a row of any driver into a domain record, written once against
//! [`SqlRow`]. Both schemas use the same column names and compatible types (TEXT ids, 64-bit
//! integers for times and role bits, blobs/bytea, booleans).
//!
//! A column that does not decode, or holds an id or enum that does not parse, is a corrupt
//! row: `Error::Internal`, whose cause is logged and never shown to a client.

use authd_core::audit::AuditEntry;
use authd_core::credential::{DataKeyRecord, StoredSecret};
use authd_core::ids::{AccountId, AuthId, ProviderId, UserId, WorkId};
use authd_core::model::{Account, Auth, AuthKind, AuthModel, TokenGrant, TokenVerifier, User};
use authd_core::provider::{AuthMethod, ConfigField, Provider};
use authd_core::roles::RoleSet;
use authd_core::settings::StoredSetting;
use authd_core::work::{Work, WorkStatus};
use authd_core::{Error, Result};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

/// A result row of any backend driver: sqlx's `SqliteRow` and `PgRow`, and the SQLite read pool's row
/// (SQLite's synchronous read path). Object-safe, so one decoder serves every driver.
pub trait SqlRow {
    /// A TEXT column (`None` for NULL).
    fn text(&self, col: &str) -> anyhow::Result<Option<String>>;
    /// A 64-bit integer column.
    fn int(&self, col: &str) -> anyhow::Result<Option<i64>>;
    /// A BLOB / BYTEA column.
    fn blob(&self, col: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// A boolean column (an integer 0/1 on SQLite).
    fn boolean(&self, col: &str) -> anyhow::Result<Option<bool>>;
    /// A TEXT column lent to `f` without copying it (`None` for NULL): ids are parsed
    /// straight from the row.
    fn with_text(&self, col: &str, f: &mut dyn FnMut(Option<&str>)) -> anyhow::Result<()> {
        let text = self.text(col)?;
        f(text.as_deref());
        Ok(())
    }
}

macro_rules! sql_row {
    ($row:ty, $get:ident) => {
        impl SqlRow for $row {
            fn text(&self, col: &str) -> anyhow::Result<Option<String>> {
                Ok(self.$get(col)?)
            }
            fn int(&self, col: &str) -> anyhow::Result<Option<i64>> {
                Ok(self.$get(col)?)
            }
            fn blob(&self, col: &str) -> anyhow::Result<Option<Vec<u8>>> {
                Ok(self.$get(col)?)
            }
            fn boolean(&self, col: &str) -> anyhow::Result<Option<bool>> {
                Ok(self.$get(col)?)
            }
            fn with_text(&self, col: &str, f: &mut dyn FnMut(Option<&str>)) -> anyhow::Result<()> {
                let text: Option<&str> = self.$get(col)?;
                f(text);
                Ok(())
            }
        }
    };
}

sql_row!(SqliteRow, try_get);
sql_row!(PgRow, try_get);

/// A value that can be read from a column of any row.
pub trait Column: Sized {
    /// Reads column `col` of `row`.
    fn read(row: &(impl SqlRow + ?Sized), col: &str) -> anyhow::Result<Self>;
}

macro_rules! column {
    ($($t:ty => $get:ident),* $(,)?) => {$(
        impl Column for $t {
            fn read(row: &(impl SqlRow + ?Sized), col: &str) -> anyhow::Result<Self> {
                row.$get(col)?.ok_or_else(|| anyhow::anyhow!("column {col} is NULL"))
            }
        }
        impl Column for Option<$t> {
            fn read(row: &(impl SqlRow + ?Sized), col: &str) -> anyhow::Result<Self> {
                row.$get(col)
            }
        }
    )*};
}

column!(String => text, i64 => int, Vec<u8> => blob, bool => boolean);

/// The error for a row whose content cannot be right.
pub fn corrupt(what: &str) -> Error {
    Error::Internal(anyhow::anyhow!("corrupt row: bad {what}"))
}

/// Reads a column; a decode failure is an internal error.
pub fn get<T: Column>(row: &(impl SqlRow + ?Sized), col: &str) -> Result<T> {
    T::read(row, col).map_err(Error::Internal)
}

/// Reads a TEXT id column.
pub fn id_col<T>(
    row: &(impl SqlRow + ?Sized),
    col: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T> {
    opt_id_col(row, col, parse)?.ok_or_else(|| corrupt(col))
}

/// Reads a nullable TEXT id column.
pub fn opt_id_col<T>(
    row: &(impl SqlRow + ?Sized),
    col: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    let mut out = Ok(None);
    row.with_text(col, &mut |s| {
        out = s.map(|s| parse(s).ok_or_else(|| corrupt(col))).transpose();
    })
    .map_err(Error::Internal)?;
    out
}

/// Reads a role bit-set column.
pub fn roles_col(row: &(impl SqlRow + ?Sized), col: &str) -> Result<RoleSet> {
    let bits: i64 = get(row, col)?;
    let bits = u16::try_from(bits).map_err(|_| corrupt(col))?;
    Ok(RoleSet::from_bits(bits))
}

/// Reads the `user_roles` column of a token read (`LEFT JOIN users`): `None` for a token
/// without a user, the empty set when its user no longer exists.
pub fn user_roles_col(row: &(impl SqlRow + ?Sized), has_user: bool) -> Result<Option<RoleSet>> {
    if !has_user {
        return Ok(None);
    }
    let bits: Option<i64> = get(row, "user_roles")?;
    let bits = u16::try_from(bits.unwrap_or(0)).map_err(|_| corrupt("user_roles"))?;
    Ok(Some(RoleSet::from_bits(bits)))
}

/// The columns [`auth_from_row`] reads, in `SELECT` order.
pub const AUTH_COLS: &str =
    "id, account_id, kind, provider_id, name, label, description, user_id, \
     user_name, parent_id, scopes, expires_ms, ttl_secs, created_ms, updated_ms, last_accessed_ms";

/// The columns [`account_from_row`] reads, for reads that must not depend on the table's
/// column order (`SELECT *` would: the SQLite read pool keeps each statement's column names).
pub const ACCOUNT_COLS: &str = "id, aid, name, domain, email, timezone, created_ms, updated_ms";

/// The columns [`user_from_row`] reads (see [`ACCOUNT_COLS`]).
pub const USER_COLS: &str = "id, account_id, email, name, roles, created_ms, updated_ms, \
     last_logon_ms, granted_by, roles_updated_ms";

/// Decodes an account.
pub fn account_from_row(row: &(impl SqlRow + ?Sized)) -> Result<Account> {
    Ok(Account {
        id: id_col(row, "id", AccountId::parse)?,
        aid: get(row, "aid")?,
        name: get(row, "name")?,
        domain: get(row, "domain")?,
        email: get(row, "email")?,
        timezone: get(row, "timezone")?,
        created_ms: get(row, "created_ms")?,
        updated_ms: get(row, "updated_ms")?,
    })
}

/// Decodes a user.
pub fn user_from_row(row: &(impl SqlRow + ?Sized)) -> Result<User> {
    Ok(User {
        id: id_col(row, "id", UserId::parse)?,
        account_id: id_col(row, "account_id", AccountId::parse)?,
        email: get(row, "email")?,
        name: get(row, "name")?,
        roles: roles_col(row, "roles")?,
        created_ms: get(row, "created_ms")?,
        updated_ms: get(row, "updated_ms")?,
        last_logon_ms: get(row, "last_logon_ms")?,
        granted_by: opt_id_col(row, "granted_by", UserId::parse)?,
        roles_updated_ms: get(row, "roles_updated_ms")?,
    })
}

/// Decodes an auth (`AUTH_COLS`). A credential's row has no grant: its token columns are
/// not read.
pub fn auth_from_row(row: &(impl SqlRow + ?Sized)) -> Result<Auth> {
    // Read in `AUTH_COLS` order: a row finds each column by name starting after the last.
    let id = id_col(row, "id", AuthId::parse)?;
    let account_id = id_col(row, "account_id", AccountId::parse)?;
    let kind = id_col(row, "kind", AuthKind::parse)?;
    let provider_id = id_col(row, "provider_id", ProviderId::parse)?;
    let name = get(row, "name")?;
    let label = get(row, "label")?;
    let description = get(row, "description")?;
    let user_id = opt_id_col(row, "user_id", UserId::parse)?;
    let user_name = get(row, "user_name")?;
    let parent_id = opt_id_col(row, "parent_id", AuthId::parse)?;
    let model = match kind {
        AuthKind::ApiToken => AuthModel::ApiToken(TokenGrant {
            scopes: roles_col(row, "scopes")?,
            expires_ms: get(row, "expires_ms")?,
            ttl_secs: get(row, "ttl_secs")?,
            last_accessed_ms: get(row, "last_accessed_ms")?,
        }),
        AuthKind::Credential => AuthModel::Credential,
    };
    Ok(Auth {
        id,
        account_id,
        provider_id,
        name,
        label,
        description,
        user_id,
        user_name,
        parent_id,
        created_ms: get(row, "created_ms")?,
        updated_ms: get(row, "updated_ms")?,
        model,
    })
}

/// Decodes an audit entry.
pub fn audit_from_row(row: &(impl SqlRow + ?Sized)) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: get(row, "seq")?,
        at_ms: get(row, "at_ms")?,
        account_id: opt_id_col(row, "account_id", AccountId::parse)?,
        actor: get(row, "actor")?,
        action: {
            let text: String = get(row, "action")?;
            authd_core::audit::AuditAction::parse(&text).ok_or_else(|| corrupt("action"))?
        },
        target: get(row, "target")?,
        outcome: get(row, "outcome")?,
        request_id: get(row, "request_id")?,
        detail: get(row, "detail")?,
    })
}

/// Decodes a sealed secret field.
pub fn secret_from_row(row: &(impl SqlRow + ?Sized)) -> Result<StoredSecret> {
    Ok(StoredSecret {
        field: get(row, "field")?,
        key_id: get(row, "key_id")?,
        nonce: get(row, "nonce")?,
        ciphertext: get(row, "ciphertext")?,
    })
}

/// Decodes a wrapped data key.
pub fn data_key_from_row(row: &(impl SqlRow + ?Sized)) -> Result<DataKeyRecord> {
    Ok(DataKeyRecord {
        id: get(row, "id")?,
        created_ms: get(row, "created_ms")?,
        wrapped: get(row, "wrapped")?,
        current: get(row, "current")?,
    })
}

/// Decodes a custom provider.
pub fn provider_from_row(row: &(impl SqlRow + ?Sized)) -> Result<Provider> {
    let method: String = get(row, "auth_method")?;
    let categories: String = get(row, "categories")?;
    let config: String = get(row, "config")?;
    let fields: Vec<(String, String, String, bool)> =
        serde_json::from_str(&config).map_err(|_| corrupt("provider config"))?;
    Ok(Provider {
        id: id_col(row, "id", ProviderId::parse)?,
        slug: get(row, "slug")?,
        name: get(row, "name")?,
        namespace: get(row, "namespace")?,
        description: get(row, "description")?,
        categories: serde_json::from_str(&categories).map_err(|_| corrupt("categories"))?,
        auth_method: AuthMethod::parse(&method).ok_or_else(|| corrupt("auth_method"))?,
        auth_description: get(row, "auth_description")?,
        hidden: get(row, "hidden")?,
        no_auth: get(row, "no_auth")?,
        config: fields
            .into_iter()
            .map(|(name, label, kind, optional)| ConfigField {
                name,
                label,
                kind,
                optional,
            })
            .collect(),
    })
}

/// Decodes an account setting.
pub fn setting_from_row(row: &(impl SqlRow + ?Sized)) -> Result<StoredSetting> {
    let text: String = get(row, "value")?;
    Ok(StoredSetting {
        slug: get(row, "slug")?,
        value: serde_json::from_str(&text).map_err(|_| corrupt("setting value"))?,
        updated_ms: get(row, "updated_ms")?,
    })
}

/// Decodes a work.
pub fn work_from_row(row: &(impl SqlRow + ?Sized)) -> Result<Work> {
    let status: String = get(row, "statuscode")?;
    let ids: Option<String> = get(row, "auth_list")?;
    let auth_ids = ids
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| AuthId::parse(s).ok_or_else(|| corrupt("work auth id")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Work {
        id: id_col(row, "id", WorkId::parse)?,
        account_id: id_col(row, "account_id", AccountId::parse)?,
        user_id: opt_id_col(row, "user_id", UserId::parse)?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        workflow: get(row, "workflow")?,
        workflow_id: get(row, "workflow_id")?,
        config: get(row, "config")?,
        auth_ids,
        status: WorkStatus::parse(&status).ok_or_else(|| corrupt("statuscode"))?,
        status_reason: get(row, "status_reason")?,
        state_version: get(row, "work_state_version")?,
        tag: get(row, "tag")?,
        hidden: get(row, "hidden")?,
        verbose_logging: get(row, "verbose_logging")?,
        runtime: get(row, "runtime")?,
        created_ms: get(row, "created_ms")?,
        updated_ms: get(row, "updated_ms")?,
    })
}

/// The columns [`worker_credential_from_row`] reads, in `SELECT` order.
pub const WORKER_CREDENTIAL_COLS: &str = "id, name, accounts, created_ms, revoked_ms";

/// The `accounts` column of a worker credential: a JSON array of account ids, NULL for every
/// account.
pub fn worker_accounts_text(accounts: &Option<Vec<authd_core::ids::AccountId>>) -> Option<String> {
    accounts.as_ref().map(|list| {
        let ids: Vec<String> = list.iter().map(ToString::to_string).collect();
        serde_json::Value::from(ids).to_string()
    })
}

/// Decodes a worker credential (never its hash).
pub fn worker_credential_from_row(
    row: &(impl SqlRow + ?Sized),
) -> Result<authd_core::worker_credential::WorkerCredential> {
    let accounts: Option<String> = get(row, "accounts")?;
    let accounts = accounts
        .map(|text| {
            let ids: Vec<String> = serde_json::from_str(&text).map_err(|_| corrupt("accounts"))?;
            ids.iter()
                .map(|s| AccountId::parse(s).ok_or_else(|| corrupt("accounts")))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    Ok(authd_core::worker_credential::WorkerCredential {
        id: id_col(row, "id", authd_core::ids::WorkerCredentialId::parse)?,
        name: get(row, "name")?,
        accounts,
        created_ms: get(row, "created_ms")?,
        revoked_ms: get(row, "revoked_ms")?,
    })
}

/// A token's verifier and public record in one read: `TOKEN_RECORD_SELECT` followed by the
/// backend's placeholder for the token id (`?` or `$1`). The cache-miss path of every backend:
/// one round trip.
pub const TOKEN_RECORD_SELECT: &str = "SELECT a.id, a.account_id, a.kind, a.provider_id, \
     a.name, a.label, a.description, a.user_id, a.user_name, a.parent_id, a.scopes, \
     a.expires_ms, a.ttl_secs, a.created_ms, a.updated_ms, a.last_accessed_ms, c.aid, \
     a.token_hash, u.roles AS user_roles FROM auths a JOIN accounts c ON c.id = a.account_id \
     LEFT JOIN users u ON u.account_id = a.account_id AND u.id = a.user_id \
     WHERE a.kind = 'api_token' AND a.id = ";

/// Decodes a row of [`TOKEN_RECORD_SELECT`].
pub fn token_record_from_row(row: &(impl SqlRow + ?Sized)) -> Result<(TokenVerifier, Auth)> {
    let auth = auth_from_row(row)?;
    // The query selects API tokens only.
    let grant = *auth.token().ok_or_else(|| corrupt("kind"))?;
    let hash: Vec<u8> = get(row, "token_hash")?;
    let verifier = TokenVerifier {
        id: auth.id,
        account_id: auth.account_id,
        account_aid: get(row, "aid")?,
        user_id: auth.user_id,
        hash: hash.try_into().map_err(|_| corrupt("token_hash"))?,
        scopes: grant.scopes,
        expires_ms: grant.expires_ms,
        user_roles: user_roles_col(row, auth.user_id.is_some())?,
    };
    Ok((verifier, auth))
}
