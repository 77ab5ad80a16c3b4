//! Start-up: open the store (choosing the backend from the URL), load the master key, build
//! the state and the router, bind the listener, bootstrap an empty store, serve until told
//! to stop, then drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use authd_core::clock::Clock;
use authd_core::store::Store;
use authd_crypto::MasterKey;
use tokio::net::TcpListener;

use crate::allowlist::Allowlists;
use crate::config::Config;
use crate::provision::{self, Provisioned};
use crate::state::AppState;
use crate::tokens::{run_touch_flusher, TokenService};

/// Opens the configured store (migrating it) and loads the master key.
pub async fn open(config: &Config) -> anyhow::Result<(Arc<dyn Store>, MasterKey)> {
    if config.database_url.is_postgres() {
        anyhow::bail!(
            "PostgreSQL ({}) is not supported by this build yet",
            config.database_url
        );
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let (key, generated) = config.master_key.load()?;
    if generated {
        eprintln!(
            "authd: generated a new master key in {:?} (mode 0600); back it up — without it \
             stored tokens and credentials cannot be verified or decrypted",
            config.master_key
        );
    }
    let store = authd_store_sqlite::SqliteStore::open(config.database_url.expose())
        .await
        .with_context(|| format!("opening database {}", config.database_url))?;
    Ok((Arc::new(store), key))
}

/// A built, bound, not yet serving authd.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    bootstrap: Option<Provisioned>,
    flusher: tokio::task::JoinHandle<()>,
    stop_flusher: tokio::sync::oneshot::Sender<()>,
    worker: Option<(TcpListener, axum::Router)>,
}

impl Application {
    /// Opens the store, bootstraps it if empty, builds the state and binds the listener.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let (store, key) = open(&config).await?;
        let hasher = key.token_hasher();
        let bootstrap = if store.count_accounts().await? == 0 {
            Some(provision::account(store.as_ref(), &hasher, clock.as_ref(), "default").await?)
        } else {
            None
        };
        let keys =
            crate::keys::KeyManager::load(store.clone(), key.key_wrapper(), clock.as_ref()).await?;
        let (tokens, touches) = TokenService::new(
            store.clone(),
            hasher.clone(),
            clock.clone(),
            config.token_cache_capacity,
        );
        let (stop_flusher, stop) = tokio::sync::oneshot::channel();
        let flusher = tokio::spawn(run_touch_flusher(store.clone(), touches, stop));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let worker_cfg = config.worker.clone();
        let state = AppState {
            allowlists: Arc::new(Allowlists::new(store.clone(), clock.clone())),
            store,
            tokens: Arc::new(tokens),
            clock,
            config: Arc::new(config),
            keys: Arc::new(keys),
        };
        let worker = match worker_cfg {
            None => None,
            Some(w) => {
                let l = TcpListener::bind(w.listen)
                    .await
                    .with_context(|| format!("binding the worker listener {}", w.listen))?;
                Some((l, crate::worker::router(state.clone(), hasher, &w.token)))
            }
        };
        Ok(Self {
            listener,
            state,
            bootstrap,
            flusher,
            stop_flusher,
            worker,
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

    /// Serves until `shutdown` completes, then drains in-flight requests and flushes
    /// coalesced token touches.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            flusher,
            stop_flusher,
            worker,
            ..
        } = self;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let worker_task = worker.map(|(l, r)| {
            let stop = wait(stop_rx.clone());
            tokio::spawn(async move {
                axum::serve(l, r.into_make_service())
                    .with_graceful_shutdown(stop)
                    .await
            })
        });
        let router = crate::api::router(state);
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(wait(stop_rx))
        .await
        .context("serving HTTP")?;
        if let Some(t) = worker_task {
            t.await
                .context("worker listener task")?
                .context("serving the worker listener")?;
        }
        // In-flight requests are done: let the flusher write what it still holds.
        let _ = stop_flusher.send(());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), flusher).await;
        Ok(())
    }
}
