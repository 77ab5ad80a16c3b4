//! authd's configuration: one [`Config`], layered defaults → optional TOML file (`--config`) →
//! `AUTHD_*` environment → command-line flags. The CLI in [`crate::cli`] does the layering;
//! this module owns the shape, the defaults and validation.
//!
//! The master key is never a flag (it would show in `ps`): it comes from `AUTHD_MASTER_KEY`
//! (base64), from a key file, or — for the embedded SQLite default only — is generated into the
//! data dir on first start.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use authd_crypto::MasterKey;
use ipnet::IpNet;
use serde::Deserialize;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
/// Default data dir.
pub const DEFAULT_DATA_DIR: &str = "./authd-data";
/// Default request body limit (1 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// Default number of token records kept in memory.
pub const DEFAULT_TOKEN_CACHE: usize = 200_000;
/// Default key field of user profiles uploaded through the collect API.
pub const DEFAULT_ENTITY_KEY_FIELD: &str = "user_id";
/// Default size limit of one collect upload (1 MiB).
pub const DEFAULT_COLLECT_LIMIT: usize = 1 << 20;
/// Default database pool size per node (PostgreSQL).
pub const DEFAULT_DB_MAX_CONNECTIONS: u32 = 16;
/// Default bound on one database call (PostgreSQL): pool acquire, statement, whole call.
pub const DEFAULT_DB_TIMEOUT_MS: u64 = 3_000;
/// Default maximum age of a cached token record with PostgreSQL (the staleness backstop
/// behind LISTEN/NOTIFY invalidation).
pub const DEFAULT_PG_TOKEN_CACHE_MAX_AGE_MS: u64 = 10_000;

/// The optional TOML file. Every field is optional; unknown keys are an error so typos do not
/// silently fall back to defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Database URL (`sqlite://…` or `postgres://…`).
    pub database_url: Option<String>,
    /// Listen address for `serve`.
    pub listen: Option<SocketAddr>,
    /// Path of a file holding the base64 master key.
    pub master_key_file: Option<PathBuf>,
    /// Maximum request body in bytes.
    pub body_limit_bytes: Option<usize>,
    /// Maximum number of token records cached in memory.
    pub token_cache_capacity: Option<usize>,
    /// Proxies (addresses or CIDRs) whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Option<Vec<String>>,
    /// The field that identifies a user profile in collect uploads.
    pub entity_key_field: Option<String>,
    /// Maximum size of one collect upload in bytes.
    pub collect_limit_bytes: Option<usize>,
    /// Listen address of the worker plaintext listener (off when absent).
    pub worker_listen: Option<SocketAddr>,
    /// File holding the worker credential.
    pub worker_token_file: Option<PathBuf>,
    /// Database pool size per node (PostgreSQL).
    pub db_max_connections: Option<u32>,
    /// Bound on one database call in ms (PostgreSQL); past it the request gets 503.
    pub db_timeout_ms: Option<u64>,
    /// Cached token records older than this (ms) are re-read from the store; 0 disables.
    pub token_cache_max_age_ms: Option<u64>,
}

impl FileConfig {
    /// Reads and parses a TOML config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))
    }
}

/// Where the master key comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    /// Given directly (from `AUTHD_MASTER_KEY`, or by tests).
    Key(MasterKey),
    /// Read from this file; it must exist.
    File(PathBuf),
    /// Read from this file, creating it (mode 0600) if absent. Only for the embedded default.
    GenerateAt(PathBuf),
}

impl fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterKeySource::Key(_) => f.write_str("Key(<hidden>)"),
            MasterKeySource::File(p) => write!(f, "File({})", p.display()),
            MasterKeySource::GenerateAt(p) => write!(f, "GenerateAt({})", p.display()),
        }
    }
}

impl MasterKeySource {
    /// Loads the key; the flag says whether it was just generated.
    pub fn load(&self) -> anyhow::Result<(MasterKey, bool)> {
        match self {
            MasterKeySource::Key(k) => Ok((k.clone(), false)),
            MasterKeySource::File(p) => MasterKey::read_file(p)
                .map(|k| (k, false))
                .map_err(|e| anyhow::anyhow!("cannot read master key file {}: {e}", p.display())),
            MasterKeySource::GenerateAt(p) => MasterKey::load_or_generate(p).map_err(|e| {
                anyhow::anyhow!("cannot load or create master key file {}: {e}", p.display())
            }),
        }
    }
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Data directory (SQLite file, generated key file).
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: DatabaseUrl,
    /// Listen address for `serve` (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Master key source.
    pub master_key: MasterKeySource,
    /// Maximum request body in bytes.
    pub body_limit_bytes: usize,
    /// Maximum number of token records cached in memory.
    pub token_cache_capacity: usize,
    /// Proxies whose `X-Forwarded-For` header is believed when finding the client address
    /// (for the `api_ip_whitelist` setting). Empty: only the socket peer counts.
    pub trusted_proxies: Vec<IpNet>,
    /// The field that identifies a user profile in collect uploads (`user_id`).
    pub entity_key_field: String,
    /// Maximum size of one collect upload in bytes (larger is 413).
    pub collect_limit_bytes: usize,
    /// The worker plaintext listener; `None` (the default) keeps it off.
    pub worker: Option<crate::worker::WorkerConfig>,
    /// Database pool size per node (PostgreSQL).
    pub db_max_connections: u32,
    /// Bound on one database call in ms (PostgreSQL): pool acquire, statement timeout and
    /// the call as a whole. Past it the request gets 503.
    pub db_timeout_ms: u64,
    /// Cached token records older than this (ms) are re-read from the store. `None` uses the
    /// backend default: never for SQLite (one node), 10 s for PostgreSQL; `Some(0)` disables.
    pub token_cache_max_age_ms: Option<u64>,
}

impl Config {
    /// A configuration for an embedded store under `data_dir`, everything else default.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            database_url: DatabaseUrl::sqlite_in(&data_dir),
            master_key: MasterKeySource::GenerateAt(data_dir.join("master.key")),
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 5353)),
            body_limit_bytes: DEFAULT_BODY_LIMIT,
            token_cache_capacity: DEFAULT_TOKEN_CACHE,
            trusted_proxies: Vec::new(),
            entity_key_field: DEFAULT_ENTITY_KEY_FIELD.to_owned(),
            collect_limit_bytes: DEFAULT_COLLECT_LIMIT,
            worker: None,
            db_max_connections: DEFAULT_DB_MAX_CONNECTIONS,
            db_timeout_ms: DEFAULT_DB_TIMEOUT_MS,
            token_cache_max_age_ms: None,
        }
    }

    /// The effective maximum age of a cached token record, in ms (`None`: no limit).
    pub fn effective_token_max_age_ms(&self) -> Option<i64> {
        let ms = match self.token_cache_max_age_ms {
            Some(ms) => ms,
            // Both backends: on SQLite it bounds how long a running server honours a token
            // revoked by `authd token revoke` (another process; no feed) or changed in the file.
            None => DEFAULT_PG_TOKEN_CACHE_MAX_AGE_MS,
        };
        i64::try_from(ms).ok().filter(|m| *m > 0)
    }
}

/// Parses the `trusted_proxies` list (addresses or CIDRs, IPv4 or IPv6).
pub fn parse_trusted_proxies(list: &[String]) -> anyhow::Result<Vec<IpNet>> {
    list.iter()
        .map(|s| {
            authd_core::settings::parse_net(s).ok_or_else(|| {
                anyhow::anyhow!("invalid trusted_proxies entry {s:?}: expected an address or CIDR")
            })
        })
        .collect()
}

/// Validates the `entity_key_field` setting.
pub fn check_entity_key_field(field: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        authd_core::settings::valid_field_name(field),
        "invalid entity_key_field {field:?}: use 1-128 letters, digits, '_', '-' or '.'"
    );
    Ok(())
}

/// A database URL whose `Debug`/`Display` hide any password.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The default SQLite file inside a data dir.
    pub fn sqlite_in(data_dir: &Path) -> Self {
        Self(format!("sqlite://{}", data_dir.join("authd.db").display()))
    }

    /// The full URL, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether this is a PostgreSQL URL.
    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }

    /// The URL with any `user:password@` reduced to `user:***@`.
    pub fn redacted(&self) -> String {
        let s = &self.0;
        let Some(scheme_end) = s.find("://") else {
            return s.clone();
        };
        let rest = &s[scheme_end + 3..];
        let Some(at) = rest.find('@') else {
            return s.clone();
        };
        let creds = &rest[..at];
        match creds.find(':') {
            Some(colon) => format!(
                "{}://{}:***@{}",
                &s[..scheme_end],
                &creds[..colon],
                &rest[at + 1..]
            ),
            None => s.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_password_is_never_printed() {
        let u = DatabaseUrl::new("postgres://authd:s3cr3t@127.0.0.1:5432/authd");
        assert!(!format!("{u:?}").contains("s3cr3t"));
        assert!(!u.to_string().contains("s3cr3t"));
        assert_eq!(u.redacted(), "postgres://authd:***@127.0.0.1:5432/authd");
        assert!(u.is_postgres());
    }

    #[test]
    fn file_config_rejects_unknown_keys() {
        assert!(toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"").is_ok());
        assert!(toml::from_str::<FileConfig>("lisen = \"127.0.0.1:1\"").is_err());
    }
}
