//! The command line: `authd serve | config show | init | account … | keys … | token … |
//! worker … | dev …` (`dev` only with the `dev-tools` cargo feature, off in release builds).
//! Its flags are the top layer of the settings that [`crate::config::layered`] merges with the
//! `AUTHD_*` environment, the TOML file and the defaults into one [`Config`]; clap reads no
//! environment variable but `AUTHD_CONFIG` (where the file is).
//!
//! Machine-readable output (a new token) goes to stdout alone; every message goes to stderr,
//! so `TOKEN=$(authd init)` works. Only `init` and `serve` create a store; every other
//! command (but the hidden `dev` tooling) refuses with "no authd store at …; run `authd init`"
//! when there is none ([`open_existing`]).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use authd_core::clock::{Clock, SystemClock};
use clap::{Args, Parser, Subcommand};
use zeroize::Zeroizing;

use serde::Serialize;

use crate::config::{Config, Layered};
use crate::provision;
use crate::startup::{self, Application};

/// authd: a multi-tenant, Lytics-compatible auth service.
#[derive(Debug, Parser)]
#[command(
    name = "authd",
    version,
    about,
    after_help = "Every setting flag --some-key can also be set with the AUTHD_SOME_KEY variable or the \
                  some_key key of the --config file (flag > variable > file > default); the master key \
                  only with AUTHD_MASTER_KEY or --master-key-file. `authd config show` prints the \
                  effective values; docs/configuration.md lists every key."
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
    /// `AUTHD_MASTER_KEY`, once taken out of the environment ([`Cli::take_master_key_env`]).
    #[arg(skip)]
    env_master_key: Option<EnvSecret>,
    /// Whether the environment was already read (so it is read, and changed, once).
    #[arg(skip)]
    env_taken: bool,
}

/// A secret read from the environment: zeroized on drop, `Debug` prints `<hidden>`.
#[derive(Clone, Default)]
struct EnvSecret(Zeroizing<String>);

impl std::fmt::Debug for EnvSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvSecret(<hidden>)")
    }
}

/// Reads `name` and removes it from the process environment, so a key given there is not
/// inherited by child processes nor readable later through `std::env`. Call it before other
/// threads start (`main` does, before the runtime). The kernel's copy of the initial
/// environment (`/proc/<pid>/environ`, readable by the same user and root) is not erased.
pub fn take_env(name: &str) -> Option<Zeroizing<String>> {
    let value = std::env::var(name).ok().map(Zeroizing::new);
    std::env::remove_var(name);
    value
}

/// Options every subcommand accepts. Each setting flag has an `AUTHD_*` variable and a file
/// key of the same name (docs/configuration.md); [`crate::config::layered`] merges them.
#[derive(Debug, Args, Serialize)]
struct GlobalArgs {
    /// TOML config file (defaults < file < AUTHD_* env < flags).
    #[arg(long, global = true, env = "AUTHD_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Data directory [default: ./authd-data].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// Database URL [default: a SQLite file in the data dir]; better in AUTHD_DATABASE_URL or
    /// a file (--database-url-file) when it holds a password.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// File holding the database URL (mode 0600).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url_file: Option<PathBuf>,
    /// File holding the base64 master key (or set AUTHD_MASTER_KEY).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    master_key_file: Option<PathBuf>,
    /// Bound on one database call in ms (PostgreSQL) [default: 3000].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    db_timeout_ms: Option<u64>,
    /// Database pool size per node (PostgreSQL) [default: 16].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    db_max_connections: Option<u32>,
    /// Re-read cached token records older than this many ms [default: 10000 with
    /// PostgreSQL, none with SQLite; 0 disables].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    token_cache_max_age_ms: Option<u64>,
    /// Seals a data key may make before it is rotated automatically [default: 2^30].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_key_seal_budget: Option<u64>,
}

/// The settings of a running server (`serve`, and `config show` to preview them).
#[derive(Debug, Default, Clone, Args, Serialize)]
struct ServeArgs {
    /// Listen address [default: 127.0.0.1:5353].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Enable the worker plaintext listener on this address (off by default; loopback
    /// only unless --worker-listen-public).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    worker_listen: Option<SocketAddr>,
    /// Accept a non-loopback --worker-listen (it answers plaintext over plain HTTP).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    worker_listen_public: bool,
    /// File holding a worker credential that reads every account (mode 0600, the format
    /// `authd worker credential create` prints); `<data dir>/worker.token` if it exists.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    worker_token_file: Option<PathBuf>,
    /// Maximum request body in bytes [default: 1048576].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    body_limit_bytes: Option<usize>,
    /// Maximum size of one collect upload in bytes [default: 1048576].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    collect_limit_bytes: Option<usize>,
    /// Token records kept in memory [default: 200000].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    token_cache_capacity: Option<usize>,
    /// Proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For is believed.
    #[arg(long, value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    trusted_proxies: Vec<String>,
    /// The field that identifies a user profile in collect uploads [default: user_id].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_key_field: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    limits: LimitArgs,
}

/// Every flag that carries a setting, as one layer.
#[derive(Serialize)]
struct FlagLayer<'a> {
    #[serde(flatten)]
    global: &'a GlobalArgs,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    serve: Option<&'a ServeArgs>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve {
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// The effective configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage the data keys that encrypt stored credentials.
    Keys {
        #[command(subcommand)]
        command: crate::keys_cli::KeysCommand,
    },
    /// Create the store and the first account; prints its admin token on stdout.
    Init {
        /// Name of the first account.
        #[arg(long, default_value = "default")]
        account: String,
    },
    /// Manage accounts (tenants).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Operator access to API tokens: create, list, revoke (works with the server stopped or
    /// running; audited as actor `operator`).
    Token {
        #[command(subcommand)]
        command: crate::token_cli::TokenCommand,
    },
    /// Named credentials of the worker plaintext listener: create (shown once), list, revoke.
    Worker {
        #[command(subcommand)]
        command: crate::worker_cli::WorkerCommand,
    },
    /// Developer and benchmark tooling (only in builds with the `dev-tools` feature).
    #[cfg(feature = "dev-tools")]
    #[command(hide = true)]
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

/// What one client may cost the server (`serve` only); see docs/http.md.
#[derive(Debug, Default, Clone, Args, Serialize)]
struct LimitArgs {
    /// Time a client has to send a request head, in ms [default: 10000].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    head_timeout_ms: Option<u64>,
    /// Time a client has to send a request body after its head, in ms [default: 30000].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    body_timeout_ms: Option<u64>,
    /// Time a kept-alive connection may wait for its next request, in ms [default: 60000].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout_ms: Option<u64>,
    /// Connections open at once per listener; one more gets 503 [default: 10000].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<usize>,
    /// Refused credentials that may wait to be audited; more are counted [default: 4096].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_queue: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (every key, its value and whether it came from a
    /// flag, the environment, the file or the default), secrets hidden, and exit. Takes the
    /// flags of `serve`, so `authd config show ARGS` previews `authd serve ARGS`.
    Show {
        /// One JSON object: key -> {"value", "source"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Create another account and print its admin token on stdout.
    Create {
        /// Account name.
        #[arg(long)]
        name: String,
    },
    /// Operator access to account settings, bypassing the API (and its IP allowlist).
    Setting {
        #[command(subcommand)]
        command: SettingCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SettingCommand {
    /// Reset a setting to its default, e.g. lift an `api_ip_whitelist` that locks everyone out.
    Delete {
        /// The setting slug (`api_ip_whitelist`, `schema_user_private_fields`).
        slug: String,
        /// The account, by id or aid.
        #[arg(long)]
        account: String,
    },
}

#[cfg(feature = "dev-tools")]
#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Insert N admin tokens into the first account, writing them one per line to a new file
    /// (mode 0600); audited once with the count.
    SeedTokens {
        /// How many tokens.
        #[arg(long)]
        count: usize,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

impl Cli {
    /// Takes `AUTHD_MASTER_KEY` out of the environment (see [`take_env`]); [`run`] does it
    /// itself when it was not done earlier.
    pub fn take_master_key_env(&mut self) {
        if !self.env_taken {
            self.env_taken = true;
            self.env_master_key = take_env("AUTHD_MASTER_KEY").map(EnvSecret);
        }
    }

    /// Layers the settings for this invocation (reporting unknown `AUTHD_*` variables) and
    /// resolves them.
    fn config(&self) -> anyhow::Result<(Config, Layered)> {
        let serve = match &self.command {
            Command::Serve { serve } => Some(serve),
            Command::Config {
                command: ConfigCommand::Show { serve, .. },
            } => Some(serve),
            _ => None,
        };
        let flags = FlagLayer {
            global: &self.global,
            serve,
        };
        let layered = Layered::load(self.global.config.as_deref(), &flags)?;
        layered.warn_unknown();
        let key = self.env_master_key.as_ref().map(|s| s.0.as_str());
        Ok((Config::resolve(&layered, key)?, layered))
    }
}

/// Prints [`Config::describe`]: aligned text, or one JSON object.
fn show_config(config: &Config, layered: &Layered, json: bool) -> anyhow::Result<()> {
    let rows = config.describe(layered);
    let mut out = std::io::stdout().lock();
    if json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .into_iter()
            .map(|(k, v, src)| {
                (
                    k.to_owned(),
                    serde_json::json!({ "value": v, "source": src }),
                )
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Object(map)).context("writing to stdout")?;
    } else {
        for (k, v, src) in rows {
            let src = serde_json::to_value(src)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            writeln!(out, "{k:<24} {:<40} ({src})", v.as_deref().unwrap_or("-"))
                .context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")
}

/// Runs one CLI invocation.
pub async fn run(mut cli: Cli) -> anyhow::Result<()> {
    cli.take_master_key_env();
    let (mut config, layered) = cli.config()?;
    // The key now lives only in `config` (until start-up takes it); drop this copy.
    cli.env_master_key = None;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve { .. } => serve(config, clock).await,
        Command::Config {
            command: ConfigCommand::Show { json, .. },
        } => show_config(&config, &layered, json),
        Command::Keys { command } => {
            let (store, keys) = open_existing(&mut config).await?;
            let budget = config.data_key_seal_budget;
            crate::keys_cli::run(command, store, keys, clock, budget).await
        }
        Command::Token { command } => {
            let (store, keys) = open_existing(&mut config).await?;
            let (tokens, _touches) =
                crate::tokens::TokenService::new(store.clone(), keys.hasher, clock.clone(), 16);
            let postgres = config.database_url.is_postgres();
            crate::token_cli::run(command, store, tokens, clock, postgres).await
        }
        Command::Init { account } => {
            let (store, key) = startup::open(&mut config).await?;
            let n = store.count_accounts().await.map_err(anyhow::Error::from)?;
            if n > 0 {
                anyhow::bail!(
                    "already initialised: {} holds {n} account(s); use `authd account create --name NAME` for another",
                    config.database_url
                );
            }
            let p =
                provision::account(store.as_ref(), &key.hasher, clock.as_ref(), &account).await?;
            eprintln!(
                "authd: created account {} (aid {}); its admin token follows on stdout",
                p.account.id, p.account.aid
            );
            print_token(p.token.expose())
        }
        Command::Account {
            command: AccountCommand::Create { name },
        } => {
            let (store, key) = open_existing(&mut config).await?;
            let p = provision::account(store.as_ref(), &key.hasher, clock.as_ref(), &name).await?;
            eprintln!(
                "authd: created account {} (aid {}); its admin token follows on stdout",
                p.account.id, p.account.aid
            );
            print_token(p.token.expose())
        }
        Command::Account {
            command:
                AccountCommand::Setting {
                    command: SettingCommand::Delete { slug, account },
                },
        } => {
            let (store, _key) = open_existing(&mut config).await?;
            let (acct, removed) =
                crate::settings::operator_delete(store.as_ref(), &account, &slug).await?;
            if removed {
                eprintln!(
                    "authd: reset {slug} of account {} (aid {}) to its default; running servers apply it within {} s",
                    acct.id,
                    acct.aid,
                    crate::allowlist::REFRESH_MS / 1000
                );
            } else {
                eprintln!(
                    "authd: {slug} of account {} (aid {}) was not set; nothing to do",
                    acct.id, acct.aid
                );
            }
            Ok(())
        }
        Command::Worker { command } => {
            let (store, keys) = open_existing(&mut config).await?;
            let hasher = authd_crypto::worker_hasher(&keys.hasher);
            drop(keys);
            crate::worker_cli::run(command, store, hasher, clock).await
        }
        #[cfg(feature = "dev-tools")]
        Command::Dev {
            command: DevCommand::SeedTokens { count, out },
        } => {
            let (store, key) = startup::open(&mut config).await?;
            let n =
                crate::dev::seed_tokens(store.as_ref(), &key.hasher, clock.as_ref(), count, &out)
                    .await?;
            eprintln!("authd: wrote {n} tokens to {}", out.display());
            Ok(())
        }
    }
}

/// Opens the store of an initialised installation, creating nothing: a SQLite file that does
/// not exist, or a store without accounts, is refused with "no authd store at …; run
/// `authd init`" (checked before the master key is loaded, which could otherwise generate one).
pub async fn open_existing(
    config: &mut Config,
) -> anyhow::Result<(Arc<dyn authd_core::store::Store>, startup::Unlocked)> {
    let url = config.database_url.redacted();
    let missing = || anyhow::anyhow!("no authd store at {url}; run `authd init`");
    if !config.database_url.is_postgres()
        && !config
            .database_url
            .sqlite_path()
            .is_some_and(|p| p.is_file())
    {
        return Err(missing());
    }
    let (store, key) = startup::open(config).await?;
    if store.count_accounts().await.map_err(anyhow::Error::from)? == 0 {
        return Err(missing());
    }
    Ok((store, key))
}

/// Writes a token alone on stdout.
pub(crate) fn print_token(token: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{token}").context("writing the token to stdout")?;
    out.flush().context("writing the token to stdout")
}

async fn serve(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let mut app = Application::build(config, clock).await?;
    if let Some(p) = app.take_bootstrap() {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "\n================================================================================\n\
             authd: new store — created account \"{}\" (id {}, aid {}).\n\
             Its admin token is shown ONCE; store it now:\n\n    {}\n\n\
             Use it as `Authorization: <token>`.\n\
             ================================================================================\n",
            p.account.name,
            p.account.id,
            p.account.aid,
            p.token.expose()
        );
        let _ = out.flush();
    }
    tracing::info!(addr = %app.local_addr(), "authd listening");
    app.run_until_stopped(shutdown).await
}

/// Installs the SIGINT/SIGTERM handlers now (before the server announces itself, so a signal
/// sent right after start-up is never lost) and returns a future that completes on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        tracing::info!("shutdown signal received, draining");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_env_returns_the_value_and_removes_it() {
        let name = "AUTHD_TEST_TAKE_ENV_ONLY_HERE";
        std::env::set_var(name, "c2VjcmV0");
        assert_eq!(
            take_env(name).as_deref().map(String::as_str),
            Some("c2VjcmV0")
        );
        assert!(std::env::var_os(name).is_none());
        assert!(take_env(name).is_none());
    }
}
