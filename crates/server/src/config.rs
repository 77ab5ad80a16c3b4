//! authd's configuration: one [`Config`], resolved from the settings layered by [`layered`]
//! (defaults < optional TOML file (`--config`) < `AUTHD_*` environment < command-line flags;
//! docs/configuration.md lists every key). This module owns the shape, the defaults, the
//! validation and `authd config show`'s view of the result ([`Config::describe`]).
//!
//! The master key is never a flag (it would show in `ps`): it comes from `AUTHD_MASTER_KEY`
//! (base64), from a key file, or — for the embedded SQLite default only — is generated into the
//! data dir on first start.

pub mod layered;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use authd_crypto::MasterKey;
use ipnet::IpNet;

use layered::{read_secret_file, Either};
pub use layered::{Layered, Settings, Source, KEYS};

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

/// Default time a client has to send a whole request head (10 s).
pub const DEFAULT_HEAD_TIMEOUT_MS: u64 = 10_000;
/// Default time a client has to send a whole request body once its head arrived (30 s).
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 30_000;
/// Default time a kept-alive connection may wait for its next request (60 s).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Default cap on concurrent connections per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default number of refused credentials that may wait to be audited.
pub const DEFAULT_AUDIT_QUEUE: usize = 4_096;

/// Where the master key comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    /// Given directly (from `AUTHD_MASTER_KEY`, or by tests).
    Key(MasterKey),
    /// Read from this file; it must exist.
    File(PathBuf),
    /// Read from this file, creating it (mode 0600) if absent. Only for the embedded default.
    GenerateAt(PathBuf),
    /// The key was given directly and has been used: start-up took it out of the config and
    /// dropped it once its subkeys were derived.
    Used,
}

impl fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterKeySource::Key(_) => f.write_str("Key(<hidden>)"),
            MasterKeySource::File(p) => write!(f, "File({})", p.display()),
            MasterKeySource::GenerateAt(p) => write!(f, "GenerateAt({})", p.display()),
            MasterKeySource::Used => f.write_str("Used"),
        }
    }
}

impl MasterKeySource {
    /// Takes the source out for loading: a direct key moves out (leaving [`Self::Used`], so
    /// the config kept by a running server holds no key material); a file source stays.
    pub fn take(&mut self) -> Self {
        match self {
            MasterKeySource::Key(_) => std::mem::replace(self, MasterKeySource::Used),
            other => other.clone(),
        }
    }

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
            MasterKeySource::Used => anyhow::bail!(
                "the master key was already used and dropped; give it again to open the store"
            ),
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
    /// What a client may cost a listener: time limits and the connection cap.
    pub http: HttpLimits,
    /// Number of refused credentials that may wait for the audit writer; past it they are
    /// counted (and the count logged) instead of audited.
    pub audit_queue: usize,
    /// Seals a data key may make before it is rotated automatically
    /// ([`crate::keys::DEFAULT_SEAL_BUDGET`], 2^30, by default).
    pub data_key_seal_budget: u64,
}

/// What one client may cost a listener (see `docs/http.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request head must arrive within this, counted from the connection's accept or, on a
    /// kept-alive connection, from the head's first byte.
    pub head_timeout: Duration,
    /// A request body must arrive within this, counted from the end of its head.
    pub body_timeout: Duration,
    /// A kept-alive connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_millis(DEFAULT_HEAD_TIMEOUT_MS),
            body_timeout: Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS),
            idle_timeout: Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl HttpLimits {
    /// Layers the given values (each already resolved flag > env > file) over the defaults and
    /// validates them: every time limit must be positive, the cap from 1 to 1,000,000.
    pub fn resolve(
        head_ms: Option<u64>,
        body_ms: Option<u64>,
        idle_ms: Option<u64>,
        max_connections: Option<usize>,
    ) -> anyhow::Result<Self> {
        let ms = |name: &str, v: Option<u64>, default: u64| -> anyhow::Result<Duration> {
            let v = v.unwrap_or(default);
            anyhow::ensure!(v > 0, "{name} must be a positive number of milliseconds");
            Ok(Duration::from_millis(v))
        };
        let max_connections = max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        anyhow::ensure!(
            (1..=1_000_000).contains(&max_connections),
            "max_connections must be from 1 to 1000000"
        );
        Ok(Self {
            head_timeout: ms("head_timeout_ms", head_ms, DEFAULT_HEAD_TIMEOUT_MS)?,
            body_timeout: ms("body_timeout_ms", body_ms, DEFAULT_BODY_TIMEOUT_MS)?,
            idle_timeout: ms("idle_timeout_ms", idle_ms, DEFAULT_IDLE_TIMEOUT_MS)?,
            max_connections,
        })
    }
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
            http: HttpLimits::default(),
            audit_queue: DEFAULT_AUDIT_QUEUE,
            data_key_seal_budget: crate::keys::DEFAULT_SEAL_BUDGET,
        }
    }

    /// The effective maximum age of a cached token record, in ms (`None`: no limit).
    pub fn effective_token_max_age_ms(&self) -> Option<i64> {
        let ms = match self.token_cache_max_age_ms {
            Some(ms) => ms,
            // PostgreSQL: the staleness backstop behind LISTEN/NOTIFY. SQLite: none — the
            // server evicts its own changes, and other processes' arrive through the file's
            // invalidations table (`store-sqlite/src/feed.rs`) within 250 ms.
            None if self.database_url.is_postgres() => DEFAULT_PG_TOKEN_CACHE_MAX_AGE_MS,
            None => 0,
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

    /// The SQLite database file this URL names (`None` for PostgreSQL, an empty path or
    /// `:memory:`).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        if self.is_postgres() {
            return None;
        }
        let url = self.0.as_str();
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
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

impl Config {
    /// Resolves the layered settings: applies the defaults, reads secret files, validates.
    /// `env_master_key` is `AUTHD_MASTER_KEY`, taken out of the environment earlier.
    pub fn resolve(l: &Layered, env_master_key: Option<&str>) -> anyhow::Result<Self> {
        let s = &l.settings;
        let data_dir = s
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match l.pick(
            ("database_url", s.database_url.as_deref()),
            ("database_url_file", s.database_url_file.as_deref()),
        )? {
            None => DatabaseUrl::sqlite_in(&data_dir),
            Some(Either::Value(u)) => DatabaseUrl::new(u),
            Some(Either::File(p)) => {
                DatabaseUrl::new(read_secret_file("database URL", p)?.as_str())
            }
        };
        let http = HttpLimits::resolve(
            s.head_timeout_ms,
            s.body_timeout_ms,
            s.idle_timeout_ms,
            s.max_connections,
        )?;
        let audit_queue = s.audit_queue.unwrap_or(DEFAULT_AUDIT_QUEUE);
        anyhow::ensure!(audit_queue >= 1, "audit_queue must be at least 1");
        let listen = match s.listen {
            Some(l) => l,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| anyhow::anyhow!("default listen address: {e}"))?,
        };
        let master_key = master_key_source(l, env_master_key, &database_url, &data_dir)?;
        let entity_key_field = s
            .entity_key_field
            .clone()
            .unwrap_or_else(|| DEFAULT_ENTITY_KEY_FIELD.to_owned());
        check_entity_key_field(&entity_key_field)?;
        let worker = match s.worker_listen {
            None => None,
            Some(listen) => {
                anyhow::ensure!(
                    !l.worker_token_env,
                    "AUTHD_WORKER_TOKEN is no longer read (an environment variable has no \
                     permissions to check): create a named credential with `authd worker \
                     credential create NAME` and unset it (see docs/credentials.md, \"Worker path\")"
                );
                Some(crate::worker::WorkerConfig::resolve(
                    listen,
                    s.worker_listen_public.unwrap_or(false),
                    s.worker_token_file.clone(),
                    &data_dir,
                )?)
            }
        };
        let data_key_seal_budget = crate::keys::check_seal_budget(
            s.data_key_seal_budget
                .unwrap_or(crate::keys::DEFAULT_SEAL_BUDGET),
        )?;
        Ok(Config {
            data_key_seal_budget,
            http,
            audit_queue,
            worker,
            data_dir,
            database_url,
            listen,
            master_key,
            body_limit_bytes: s.body_limit_bytes.unwrap_or(DEFAULT_BODY_LIMIT),
            token_cache_capacity: s.token_cache_capacity.unwrap_or(DEFAULT_TOKEN_CACHE),
            trusted_proxies: parse_trusted_proxies(s.trusted_proxies.as_deref().unwrap_or(&[]))?,
            entity_key_field,
            collect_limit_bytes: s.collect_limit_bytes.unwrap_or(DEFAULT_COLLECT_LIMIT),
            db_max_connections: s.db_max_connections.unwrap_or(DEFAULT_DB_MAX_CONNECTIONS),
            db_timeout_ms: s.db_timeout_ms.unwrap_or(DEFAULT_DB_TIMEOUT_MS),
            token_cache_max_age_ms: s.token_cache_max_age_ms,
        })
    }

    /// The effective configuration as `authd config show` prints it: every key of
    /// [`KEYS`] and `master_key`, with its value (`None`: unset, e.g. an optional file) and
    /// where it came from. Secrets are never shown: the database URL's password is `***`, the
    /// master key is `<hidden>`.
    pub fn describe(&self, l: &Layered) -> Vec<(&'static str, Option<String>, Source)> {
        let s = &l.settings;
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let mut rows = Vec::with_capacity(KEYS.len() + 1);
        for k in KEYS {
            let value = match k.name {
                "data_dir" => Some(self.data_dir.display().to_string()),
                "database_url" => Some(self.database_url.redacted()),
                "database_url_file" => path(&s.database_url_file),
                "master_key_file" => path(&s.master_key_file),
                "db_max_connections" => Some(self.db_max_connections.to_string()),
                "db_timeout_ms" => Some(self.db_timeout_ms.to_string()),
                "token_cache_max_age_ms" => {
                    Some(self.effective_token_max_age_ms().unwrap_or(0).to_string())
                }
                "data_key_seal_budget" => Some(self.data_key_seal_budget.to_string()),
                "listen" => Some(self.listen.to_string()),
                "body_limit_bytes" => Some(self.body_limit_bytes.to_string()),
                "collect_limit_bytes" => Some(self.collect_limit_bytes.to_string()),
                "token_cache_capacity" => Some(self.token_cache_capacity.to_string()),
                "trusted_proxies" => Some(
                    self.trusted_proxies
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                "entity_key_field" => Some(self.entity_key_field.clone()),
                "worker_listen" => s.worker_listen.map(|a| a.to_string()),
                "worker_listen_public" => Some(s.worker_listen_public.unwrap_or(false).to_string()),
                "worker_token_file" => path(&s.worker_token_file),
                "head_timeout_ms" => Some(self.http.head_timeout.as_millis().to_string()),
                "body_timeout_ms" => Some(self.http.body_timeout.as_millis().to_string()),
                "idle_timeout_ms" => Some(self.http.idle_timeout.as_millis().to_string()),
                "max_connections" => Some(self.http.max_connections.to_string()),
                "audit_queue" => Some(self.audit_queue.to_string()),
                _ => None,
            };
            let source = if k.name == "database_url" {
                l.source("database_url").max(l.source("database_url_file"))
            } else {
                l.source(k.name)
            };
            rows.push((k.name, value, source));
        }
        let (key, source) = match &self.master_key {
            MasterKeySource::Key(_) | MasterKeySource::Used => {
                (Some("<hidden>".to_owned()), Source::Env)
            }
            MasterKeySource::File(p) => (
                Some(format!("file {}", p.display())),
                l.source("master_key_file"),
            ),
            MasterKeySource::GenerateAt(p) => (
                Some(format!("file {} (generated if absent)", p.display())),
                Source::Default,
            ),
        };
        rows.push(("master_key", key, source));
        rows
    }
}

/// The master key's source: `AUTHD_MASTER_KEY` ranks as the environment layer against
/// `master_key_file` (so `--master-key-file` beats it, a file key loses to it, and
/// `AUTHD_MASTER_KEY_FILE` beside it is ambiguous); neither: generated in the data dir
/// (SQLite) or refused (PostgreSQL).
fn master_key_source(
    l: &Layered,
    env_key: Option<&str>,
    database_url: &DatabaseUrl,
    data_dir: &Path,
) -> anyhow::Result<MasterKeySource> {
    let env_key = env_key.filter(|k| !k.trim().is_empty());
    let file = l.settings.master_key_file.as_ref();
    let file_source = l.source("master_key_file");
    match (env_key, file) {
        (Some(_), Some(_)) if file_source == Source::Env => {
            anyhow::bail!("both AUTHD_MASTER_KEY and AUTHD_MASTER_KEY_FILE are set; set only one")
        }
        (Some(b64), f) if f.is_none() || file_source < Source::Env => Ok(MasterKeySource::Key(
            MasterKey::from_base64(b64)
                .map_err(|e| anyhow::anyhow!("AUTHD_MASTER_KEY is not a valid key: {e}"))?,
        )),
        (_, Some(p)) => Ok(MasterKeySource::File(p.clone())),
        _ if database_url.is_postgres() => anyhow::bail!(
            "with PostgreSQL the master key must be given: set AUTHD_MASTER_KEY \
             (base64 of 32 bytes) or --master-key-file, the same on every node"
        ),
        _ => Ok(MasterKeySource::GenerateAt(data_dir.join("master.key"))),
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
        assert!(toml::from_str::<Settings>("listen = \"127.0.0.1:1\"").is_ok());
        assert!(toml::from_str::<Settings>("lisen = \"127.0.0.1:1\"").is_err());
    }

    #[test]
    fn http_limits_default_and_validate() {
        let d = HttpLimits::resolve(None, None, None, None).unwrap();
        assert_eq!(d, HttpLimits::default());
        assert_eq!(d.head_timeout, Duration::from_secs(10));
        assert_eq!(d.body_timeout, Duration::from_secs(30));
        assert_eq!(d.idle_timeout, Duration::from_secs(60));
        assert_eq!(d.max_connections, 10_000);
        assert!(HttpLimits::resolve(Some(0), None, None, None).is_err());
        assert!(HttpLimits::resolve(None, None, None, Some(0)).is_err());
        let t = HttpLimits::resolve(Some(300), Some(400), Some(500), Some(3)).unwrap();
        assert_eq!(t.body_timeout, Duration::from_millis(400));
        assert_eq!(t.max_connections, 3);
    }
}
