//! The layering of authd's settings: defaults < TOML file (`--config`) < `AUTHD_*` environment
//! < command-line flags, done by [`figment`] (one merge, no hand-written `a.or(b)` chains).
//!
//! Every key in [`KEYS`] has the same three names: the file key (`db_timeout_ms`), the
//! environment variable (`AUTHD_DB_TIMEOUT_MS`) and the flag (`--db-timeout-ms`). Secrets may
//! also come from a file: `database_url` from `database_url_file` (`AUTHD_DATABASE_URL_FILE`,
//! `--database-url-file`), the master key from `master_key_file`; the higher layer of the two
//! wins, and the two set in the same layer are refused as ambiguous. The master key itself is
//! read only from `AUTHD_MASTER_KEY` (never a flag, which would show in `ps`, nor the file),
//! which ranks as the environment layer.
//!
//! Reported: an unknown key in the file is an error (as it always was: a typo must not fall
//! back to a default silently); an unknown `AUTHD_*` variable is a warning naming it (never its
//! value) and is otherwise ignored. Variables that are not settings (`AUTHD_CONFIG`, the
//! master key, the test and benchmark harness's `AUTHD_TEST_*`, `AUTHD_BENCH_*`, `AUTHD_BIN`)
//! are not reported.
//!
//! Must not: print a secret's value (errors and warnings name keys only), read the master key
//! file (start-up does, when it opens the store).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Where an effective value came from, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The built-in default.
    Default,
    /// The TOML file given by `--config` / `AUTHD_CONFIG`.
    File,
    /// An `AUTHD_*` environment variable.
    Env,
    /// A command-line flag.
    Flag,
}

impl Source {
    const FILE: &'static str = "config file";
    const ENV: &'static str = "environment variable (AUTHD_*)";
    const FLAG: &'static str = "command-line flag";

    fn of(meta: &Metadata) -> Self {
        match meta.name.as_ref() {
            Self::FLAG => Source::Flag,
            Self::ENV => Source::Env,
            Self::FILE => Source::File,
            _ => Source::Default,
        }
    }
}

/// A configuration key: its file key; the variable is `AUTHD_` + upper case, the flag `--` +
/// the key with `-` for `_` (docs/configuration.md).
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// The file key.
    pub name: &'static str,
}

impl Key {
    /// The environment variable.
    pub fn env(&self) -> String {
        format!("AUTHD_{}", self.name.to_ascii_uppercase())
    }
}

/// Every setting, in the order `authd config show` prints them. `master_key` (environment
/// only) is not here: see the module docs. `database_url` is the one secret among them.
pub const KEYS: &[Key] = &[
    Key { name: "data_dir" },
    Key {
        name: "database_url",
    },
    Key {
        name: "database_url_file",
    },
    Key {
        name: "master_key_file",
    },
    Key {
        name: "db_max_connections",
    },
    Key {
        name: "db_timeout_ms",
    },
    Key {
        name: "token_cache_max_age_ms",
    },
    Key {
        name: "data_key_seal_budget",
    },
    Key { name: "listen" },
    Key {
        name: "body_limit_bytes",
    },
    Key {
        name: "collect_limit_bytes",
    },
    Key {
        name: "token_cache_capacity",
    },
    Key {
        name: "trusted_proxies",
    },
    Key {
        name: "entity_key_field",
    },
    Key {
        name: "worker_listen",
    },
    Key {
        name: "worker_listen_public",
    },
    Key {
        name: "worker_token_file",
    },
    Key {
        name: "head_timeout_ms",
    },
    Key {
        name: "body_timeout_ms",
    },
    Key {
        name: "idle_timeout_ms",
    },
    Key {
        name: "max_connections",
    },
    Key {
        name: "audit_queue",
    },
];

/// `AUTHD_*` variables that are read but are not keys of [`Settings`].
const NOT_KEYS: &[&str] = &["AUTHD_CONFIG", "AUTHD_MASTER_KEY", "AUTHD_WORKER_TOKEN"];
/// Prefixes of `AUTHD_*` variables that belong to the test and benchmark harness.
const HARNESS_PREFIXES: &[&str] = &["AUTHD_TEST_", "AUTHD_BENCH_"];
/// Harness variables named in full.
const HARNESS_VARS: &[&str] = &["AUTHD_BIN"];

/// One layer of settings, and their merge: every key optional. The same shape is the TOML
/// file (unknown keys are an error), the environment and the flags. No `Debug`: it holds the
/// database URL, password included.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Data directory.
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub data_dir: Option<PathBuf>,
    /// Database URL (`sqlite://…` or `postgres://…`); a secret when it holds a password.
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub database_url: Option<String>,
    /// File holding the database URL (mode 0600 or stricter).
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub database_url_file: Option<PathBuf>,
    /// Listen address for `serve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Path of a file holding the base64 master key.
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub master_key_file: Option<PathBuf>,
    /// Maximum request body in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_limit_bytes: Option<usize>,
    /// Maximum number of token records cached in memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_cache_capacity: Option<usize>,
    /// Proxies (addresses or CIDRs) whose `X-Forwarded-For` header is believed; in the
    /// environment and on the command line a comma-separated list.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Option::is_none"
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// The field that identifies a user profile in collect uploads.
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub entity_key_field: Option<String>,
    /// Maximum size of one collect upload in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect_limit_bytes: Option<usize>,
    /// Listen address of the worker plaintext listener (off when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_listen: Option<SocketAddr>,
    /// Accept a non-loopback `worker_listen` (plaintext secrets over plain HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_listen_public: Option<bool>,
    /// File holding the file worker credential (mode 0600; generated format only).
    #[serde(
        default,
        deserialize_with = "text",
        skip_serializing_if = "Option::is_none"
    )]
    pub worker_token_file: Option<PathBuf>,
    /// Database pool size per node (PostgreSQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_max_connections: Option<u32>,
    /// Bound on one database call in ms (PostgreSQL); past it the request gets 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_timeout_ms: Option<u64>,
    /// Cached token records older than this (ms) are re-read from the store; 0 disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_cache_max_age_ms: Option<u64>,
    /// Time a client has to send a request head, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_timeout_ms: Option<u64>,
    /// Time a client has to send a request body once its head arrived, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_timeout_ms: Option<u64>,
    /// Time a kept-alive connection may wait for its next request, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// Cap on concurrent connections per listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Number of refused credentials that may wait to be audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_queue: Option<usize>,
    /// Seals a data key may make before it is rotated automatically (1 to 2^32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key_seal_budget: Option<u64>,
}

/// The merged settings and where each came from.
#[derive(Default)]
pub struct Layered {
    /// The merged values.
    pub settings: Settings,
    /// The layer of every key that is set (absent: the default).
    pub sources: BTreeMap<&'static str, Source>,
    /// `AUTHD_*` variables that name no setting (reported by [`Layered::warn_unknown`]).
    pub unknown_env: Vec<String>,
    /// Whether the retired `AUTHD_WORKER_TOKEN` is set (refused when the worker listener is on).
    pub worker_token_env: bool,
}

impl Layered {
    /// Merges the file (if any), the environment and the flags (`flags` serializes to the
    /// flags given, absent ones left out).
    pub fn load(file: Option<&Path>, flags: &impl Serialize) -> anyhow::Result<Self> {
        let env = EnvSnapshot::take();
        let mut figment = Figment::new();
        if let Some(path) = file {
            // figment treats a missing file as empty; a named file must exist.
            std::fs::metadata(path)
                .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
            figment = figment.merge(Named::new(Toml::file_exact(path), Source::FILE, Some(path)));
        }
        let known = env.known.clone();
        figment = figment.merge(Named::new(
            Env::prefixed("AUTHD_")
                .filter(move |k| known.contains(&k.as_str().to_ascii_lowercase())),
            Source::ENV,
            None,
        ));
        figment = figment.merge(Named::new(Serialized::defaults(flags), Source::FLAG, None));
        // Lossy: `true`/`yes`/`1` for a switch, `"3000"` for a number, wherever they came from.
        let settings: Settings = figment.extract_lossy().map_err(describe_error)?;
        let sources = KEYS
            .iter()
            .filter_map(|k| {
                figment
                    .find_metadata(k.name)
                    .map(|m| (k.name, Source::of(m)))
            })
            .collect();
        Ok(Self {
            settings,
            sources,
            unknown_env: env.unknown,
            worker_token_env: env.worker_token,
        })
    }

    /// Warns on stderr about each unknown `AUTHD_*` variable, by name.
    pub fn warn_unknown(&self) {
        for name in &self.unknown_env {
            eprintln!(
                "authd: warning: {name} is not an authd setting and is ignored (see \
                 docs/configuration.md for the AUTHD_* variables)"
            );
        }
    }

    /// The layer a key came from.
    pub fn source(&self, key: &str) -> Source {
        self.sources.get(key).copied().unwrap_or(Source::Default)
    }

    /// Chooses between a value and the file holding it (the higher layer wins; both in one
    /// layer is refused). `Ok(None)`: neither is set.
    pub fn pick<'a, V, F>(
        &self,
        value: (&str, Option<&'a V>),
        file: (&str, Option<&'a F>),
    ) -> anyhow::Result<Option<Either<&'a V, &'a F>>>
    where
        V: ?Sized,
        F: ?Sized,
    {
        let (vs, fs) = (self.source(value.0), self.source(file.0));
        match (value.1, file.1) {
            (None, None) => Ok(None),
            (Some(v), None) => Ok(Some(Either::Value(v))),
            (None, Some(f)) => Ok(Some(Either::File(f))),
            (Some(v), Some(f)) => match vs.cmp(&fs) {
                std::cmp::Ordering::Greater => Ok(Some(Either::Value(v))),
                std::cmp::Ordering::Less => Ok(Some(Either::File(f))),
                std::cmp::Ordering::Equal => anyhow::bail!(
                    "both {} and {} are set ({:?}); set only one",
                    value.0,
                    file.0,
                    vs
                ),
            },
        }
    }
}

/// A value or the file holding it (see [`Layered::pick`]).
#[derive(Debug)]
pub enum Either<V, F> {
    /// The value itself.
    Value(V),
    /// A file holding it.
    File(F),
}

/// Reads a secret from a file: refused if group or others have any access to it (the mode is
/// checked on the opened file, like the master key and worker credential files), trailing
/// newlines trimmed. The error names the file, never its content.
pub fn read_secret_file(what: &str, path: &Path) -> anyhow::Result<Zeroizing<String>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {what} file {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = f
            .metadata()
            .map_err(|e| anyhow::anyhow!("cannot read {what} file {}: {e}", path.display()))?
            .permissions()
            .mode();
        anyhow::ensure!(
            mode & 0o077 == 0,
            "{what} file {} is accessible to group or others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let mut text = Zeroizing::new(String::new());
    f.read_to_string(&mut text)
        .map_err(|e| anyhow::anyhow!("cannot read {what} file {}: {e}", path.display()))?;
    let trimmed = Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned());
    anyhow::ensure!(
        !trimmed.is_empty(),
        "{what} file {} is empty",
        path.display()
    );
    Ok(trimmed)
}

/// Describes a figment error by key and layer (`AUTHD_HEAD_TIMEOUT_MS`, `head_timeout_ms in
/// config file /etc/authd.toml`), never quoting the value found: it may be a secret (a
/// malformed database URL), and so may a source line quoted by a TOML syntax error.
fn describe_error(err: figment::Error) -> anyhow::Error {
    use figment::error::Kind;
    let mut lines = Vec::new();
    for e in err {
        let key = e.path.last().cloned().unwrap_or_default();
        let layer = e.metadata.as_ref().map(Source::of);
        let place = match (layer, &e.metadata) {
            (Some(Source::Env), _) => {
                format!("environment variable AUTHD_{}", key.to_ascii_uppercase())
            }
            (Some(Source::Flag), _) => format!("flag --{}", key.replace('_', "-")),
            (_, Some(m)) => match m.source.as_ref() {
                Some(src) => format!("{key} in {} {src}", m.name),
                None => format!("{key} in {}", m.name),
            },
            (_, None) => key.clone(),
        };
        let what = match &e.kind {
            Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
                format!("invalid value, expected {expected}")
            }
            Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
            Kind::Message(m) => m
                .lines()
                .filter(|l| !l.contains('|'))
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        lines.push(format!("{what} ({place})"));
    }
    anyhow::anyhow!("invalid configuration: {}", lines.join("; "))
}

/// What the environment holds of authd's: which keys are set (non-empty), which `AUTHD_*`
/// names are unknown.
struct EnvSnapshot {
    known: BTreeSet<String>,
    unknown: Vec<String>,
    worker_token: bool,
}

impl EnvSnapshot {
    fn take() -> Self {
        let keys: BTreeSet<String> = KEYS.iter().map(Key::env).collect();
        let mut known = BTreeSet::new();
        let mut unknown = Vec::new();
        let mut worker_token = false;
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with("AUTHD_") {
                continue;
            }
            if keys.contains(name) {
                // An empty variable counts as unset (as clap treated it).
                if !value.is_empty() {
                    known.insert(name["AUTHD_".len()..].to_ascii_lowercase());
                }
            } else if name == "AUTHD_WORKER_TOKEN" {
                worker_token = !value.is_empty();
            } else if !NOT_KEYS.contains(&name)
                && !HARNESS_VARS.contains(&name)
                && !HARNESS_PREFIXES.iter().any(|p| name.starts_with(p))
            {
                unknown.push(name.to_owned());
            }
        }
        unknown.sort();
        Self {
            known,
            unknown,
            worker_token,
        }
    }
}

/// A provider under one of [`Source`]'s names (so [`Source::of`] can tell the layers apart,
/// and errors say "in config file …", "in environment variable (AUTHD_*)").
struct Named<P> {
    inner: P,
    name: &'static str,
    path: Option<PathBuf>,
}

impl<P> Named<P> {
    fn new(inner: P, name: &'static str, path: Option<&Path>) -> Self {
        Self {
            inner,
            name,
            path: path.map(Path::to_path_buf),
        }
    }
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        match &self.path {
            Some(p) => Metadata::from(self.name, p.as_path()),
            None => Metadata::named(self.name),
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

/// Deserializes text leniently: the environment's `AUTHD_ENTITY_KEY_FIELD=123` arrives as a
/// number, `AUTHD_DATA_DIR=true` as a switch.
fn text<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: From<String>,
{
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("text")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_char<E: de::Error>(self, v: char) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(V).map(|s| Some(T::from(s)))
}

/// Deserializes a list: an array (the file), or comma-separated text (the environment).
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list, or comma-separated text")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_a_field_of_settings_and_back() {
        for k in KEYS {
            let err = toml::from_str::<Settings>(&format!("{} = 1", k.name)).err();
            assert!(
                err.is_none_or(|e| !e.to_string().contains("unknown field")),
                "{} is not a field",
                k.name
            );
        }
        // Every field is a key: the unknown-field error lists the fields.
        let err = toml::from_str::<Settings>("nope = 1")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let listed = err.matches('`').count() / 2 - 1;
        assert_eq!(listed, KEYS.len(), "{err}");
    }
}
