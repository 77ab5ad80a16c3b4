//! Start-up: open the store (choosing the backend from the URL), load the master key, check
//! that it opens the store and keep only its subkeys ([`unlock`]), build the state and the
//! router, bind the listener, bootstrap an empty store, start the background tasks (through
//! [`crate::background`]), serve until told to stop (through [`crate::listener`], which
//! enforces the per-client limits), then drain and stop the background tasks.
//!
//! Layout rules applied here (SQLite): the data dir is 0700, the database and its -wal/-shm
//! files 0600, and a master key file inside the data dir is warned about at every start.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use authd_core::clock::Clock;
use authd_core::invalidation::{InvalidationFeed, InvalidationSink, Sinks};
use authd_core::store::Store;
use authd_crypto::{KeyWrapper, MasterKey, TokenHasher};
use authd_store_postgres::{PgSettings, PgStore};
use tokio::net::TcpListener;

use crate::allowlist::Allowlists;
use crate::background::Background;
use crate::config::{Config, MasterKeySource};
use crate::provision::{self, Provisioned};
use crate::state::AppState;
use crate::tokens::{run_touch_flusher, TokenService};

/// An opened backend: the store and the feed of other nodes' changes to it.
pub struct Backend {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Other nodes' invalidations (a no-op for single-node SQLite).
    pub feed: Arc<dyn InvalidationFeed>,
}

/// The first words of the error every command gives when the master key is not the store's.
pub const WRONG_MASTER_KEY: &str = "the master key does not open this store";

/// What a process keeps of the master key once [`unlock`] checked it: the key-encryption key
/// and the token-hash key. The master key itself is dropped (zeroized).
#[derive(Clone, Debug)]
pub struct Unlocked {
    /// Wraps and unwraps data keys.
    pub wrapper: KeyWrapper,
    /// Hashes API-token secrets (the store's wrapped token-hash key).
    pub hasher: TokenHasher,
}

fn wrong_master_key() -> anyhow::Error {
    anyhow::anyhow!(
        "{WRONG_MASTER_KEY}: it is not the key this store was created or last rotated with \
         (after `authd keys rotate-master`, start every node with the new key file)"
    )
}

/// Checks `master` against the store and returns its subkeys, dropping it. The check is
/// unwrapping the store's token-hash key. A store that has none yet (new, or written before
/// the key was stored) first has every data key checked, then records the token-hash key
/// derived from this master key, so hashes made before stay valid. A wrong key fails with
/// [`WRONG_MASTER_KEY`] before anything is written.
pub async fn unlock(store: &dyn Store, master: MasterKey) -> anyhow::Result<Unlocked> {
    let sub = master
        .into_subkeys()
        .context("deriving the master key's subkeys")?;
    let wrapped = match store.token_hash_key().await? {
        Some(w) => w,
        None => {
            for k in store.list_data_keys().await? {
                sub.wrapper
                    .check(&crate::keys::to_wrapped(&k))
                    .map_err(|_| wrong_master_key())?;
            }
            store.init_token_hash_key(sub.initial_token_key).await?
        }
    };
    let hasher = sub
        .wrapper
        .open_token_hasher(&wrapped)
        .map_err(|_| wrong_master_key())?;
    Ok(Unlocked {
        wrapper: sub.wrapper,
        hasher,
    })
}

/// Opens the configured store (migrating it) and unlocks it with the master key.
pub async fn open(config: &mut Config) -> anyhow::Result<(Arc<dyn Store>, Unlocked)> {
    let (backend, keys) = open_backend(config).await?;
    Ok((backend.store, keys))
}

/// Opens the backend chosen by the URL scheme (`postgres://`/`postgresql://` → PostgreSQL,
/// anything else → SQLite), migrating it, and unlocks it with the master key, which is
/// taken out of `config` and dropped. With PostgreSQL the key must be given (every node must
/// share it), never generated.
pub async fn open_backend(config: &mut Config) -> anyhow::Result<(Backend, Unlocked)> {
    let source = config.master_key.take();
    if config.database_url.is_postgres() {
        if let MasterKeySource::GenerateAt(_) = source {
            anyhow::bail!(
                "with PostgreSQL the master key must be given: set AUTHD_MASTER_KEY \
                 (base64 of 32 bytes) or --master-key-file, the same on every node"
            );
        }
        let (key, _) = source.load()?;
        let settings = PgSettings {
            max_connections: config.db_max_connections,
            timeout: Duration::from_millis(config.db_timeout_ms.max(1)),
        };
        let store = PgStore::open_with(config.database_url.expose(), settings)
            .await
            .with_context(|| format!("opening database {}", config.database_url))?;
        let feed = Arc::new(store.feed());
        let keys = unlock(&store, key).await?;
        return Ok((
            Backend {
                store: Arc::new(store),
                feed,
            },
            keys,
        ));
    }
    crate::layout::private_dir(&config.data_dir)?;
    let (key, generated) = source.load()?;
    if generated {
        eprintln!(
            "authd: generated a new master key in {:?} (mode 0600); back it up, separately from \
             the data — without it stored tokens and credentials cannot be verified or decrypted",
            source
        );
    }
    crate::layout::warn_key_inside(&source, &config.data_dir);
    let db = config.database_url.sqlite_path();
    if let Some(db) = &db {
        crate::layout::precreate_private(db)?;
    }
    let store = authd_store_sqlite::SqliteStore::open(config.database_url.expose())
        .await
        .with_context(|| format!("opening database {}", config.database_url))?;
    if let Some(db) = &db {
        crate::layout::restrict_db_files(db)?;
    }
    let keys = unlock(&store, key).await?;
    // Other processes on the same file (`authd token revoke`) reach this server's caches
    // through the file's invalidations table.
    let feed = Arc::new(store.feed().await?);
    Ok((
        Backend {
            store: Arc::new(store),
            feed,
        },
        keys,
    ))
}

/// A built, bound, not yet serving authd.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    bootstrap: Option<Provisioned>,
    worker: Option<(TcpListener, axum::Router)>,
    background: Background,
}

/// Binds the worker listener (its address already checked) and logs where it listens; warns
/// when it is public or no credential can use it.
async fn bind_worker(
    w: crate::worker::WorkerConfig,
    state: &AppState,
    hasher: &authd_crypto::TokenHasher,
) -> anyhow::Result<(TcpListener, axum::Router)> {
    let l = TcpListener::bind(w.listen)
        .await
        .with_context(|| format!("binding the worker listener {}", w.listen))?;
    let addr = l.local_addr().unwrap_or(w.listen);
    tracing::info!(worker_addr = %addr, public = w.public, "worker listener on");
    if w.public && !addr.ip().is_loopback() {
        tracing::warn!(worker_addr = %addr, "the worker listener is reachable from other hosts and answers plaintext credentials over plain HTTP; put TLS in front of it");
    }
    let named = state.store.list_worker_credentials().await?;
    if w.token.is_none() && named.iter().all(|c| c.revoked_ms.is_some()) {
        tracing::warn!("no worker credential exists yet; create one with `authd worker credential create NAME`");
    }
    let router = crate::worker::router(state.clone(), authd_crypto::worker_hasher(hasher), w.token);
    Ok((l, router))
}

/// Accounts and users cached per node (each; they are small and change rarely).
const RECORD_CACHE_CAPACITY: usize = 65_536;

impl Application {
    /// Opens the store, bootstraps it if empty (SQLite only: with PostgreSQL several nodes may
    /// start at once, so the first account comes from `authd init`), builds the state, starts
    /// following other nodes' invalidations, and binds the listener.
    pub async fn build(mut config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        // Refused before anything is opened or written. Taken out of the config so the file
        // credential is dropped (zeroized) once hashed instead of living in the state.
        let worker_cfg = config.worker.take();
        if let Some(w) = &worker_cfg {
            w.check_listen()?;
        }
        let (Backend { store, feed }, key) = open_backend(&mut config).await?;
        let hasher = key.hasher.clone();
        let empty = store.count_accounts().await? == 0;
        let bootstrap = if empty && !config.database_url.is_postgres() {
            Some(provision::account(store.as_ref(), &hasher, clock.as_ref(), "default").await?)
        } else {
            if empty {
                tracing::warn!("the database holds no account yet; run `authd init` once");
            }
            None
        };
        let keys = crate::keys::KeyManager::load(store.clone(), key.wrapper, clock.as_ref())
            .await?
            .with_seal_budget(config.data_key_seal_budget, clock.clone());
        let (tokens, touches) = TokenService::new(
            store.clone(),
            hasher.clone(),
            clock.clone(),
            config.token_cache_capacity,
        );
        let (trusted, max_age) = (feed.trusted_at_start(), config.effective_token_max_age_ms());
        let tokens = Arc::new(tokens.with_invalidation(trusted, max_age));
        let records = Arc::new(crate::records::Records::new(
            store.clone(),
            clock.clone(),
            RECORD_CACHE_CAPACITY,
            trusted,
            max_age,
        ));
        let sink: Arc<dyn InvalidationSink> =
            Arc::new(Sinks(vec![tokens.clone(), records.clone()]));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let background = Background::new();
        background.spawn_until_cancelled("invalidation feed", async move {
            feed.follow(sink).await;
        });
        let flusher_store = store.clone();
        background.spawn("touch flusher", |stop| {
            run_touch_flusher(flusher_store, touches, stop)
        });
        let quiet = Arc::new(crate::quiet::Quiet::new());
        background
            .spawn_until_cancelled("warning ticker", crate::quiet::run(Arc::downgrade(&quiet)));
        let (refusals, refusal_rx) = crate::audit::Refusals::new(config.audit_queue);
        let writer_store = store.clone();
        background.spawn("refusal writer", |stop| {
            crate::audit::run_refusal_writer(writer_store, refusal_rx, stop)
        });
        let state = AppState::new(crate::state::Shared {
            refusals,
            quiet,
            allowlists: Arc::new(Allowlists::new(store.clone(), clock.clone())),
            pages: Arc::new(crate::services::auths::AuthPages::new(clock.clone())),
            records,
            store,
            tokens,
            clock,
            config: Arc::new(config),
            keys: Arc::new(keys),
        });
        let worker = match worker_cfg {
            None => None,
            Some(w) => Some(bind_worker(w, &state, &hasher).await?),
        };
        Ok(Self {
            listener,
            state,
            bootstrap,
            worker,
            background,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The bound address of the worker listener, when enabled.
    pub fn worker_addr(&self) -> Option<SocketAddr> {
        self.worker.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The account and admin token created for an empty store, once.
    pub fn take_bootstrap(&mut self) -> Option<Provisioned> {
        self.bootstrap.take()
    }

    /// The state, for tests and tooling.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and stops the
    /// background tasks ([`Background::shutdown`]: coalesced token touches and queued refusals
    /// are written first), bounded by [`crate::background::SHUTDOWN_WITHIN`].
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            worker,
            background,
            ..
        } = self;
        let limits = state.config.http;
        let quiet = state.quiet.clone();
        // The worker listener runs beside the API listener and stops with it, through the
        // same mechanism as the background tasks (but before them: see crate::background).
        let listeners = Background::new();
        if let Some((l, r)) = worker {
            let quiet = quiet.clone();
            listeners.spawn("worker listener", move |stop| {
                crate::listener::serve(l, r, limits, quiet, stop.cancelled_owned())
            });
        }
        let stop_listeners = listeners.stopper();
        let stop = async move {
            shutdown.await;
            stop_listeners.cancel();
        };
        let router = crate::api::router(state);
        crate::listener::serve(listener, router, limits, quiet.clone(), stop).await;
        // A drain is bounded by the client limits (a head, then a body) and the handler.
        let drain = limits.head_timeout + limits.body_timeout + crate::background::SHUTDOWN_WITHIN;
        listeners.shutdown(drain).await;
        // In-flight requests are done: the background tasks write what they still hold.
        background
            .shutdown(crate::background::SHUTDOWN_WITHIN)
            .await;
        quiet.flush();
        Ok(())
    }
}
