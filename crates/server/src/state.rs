//! The shared application state handed to every handler.
//!
//! Axum clones the state for every extractor of every request, so [`AppState`] is a single
//! `Arc` around [`Shared`]: one reference-count update per clone instead of one per field.

use std::ops::Deref;
use std::sync::Arc;

use authd_core::clock::Clock;
use authd_core::store::Store;

use crate::allowlist::Allowlists;
use crate::config::Config;
use crate::tokens::TokenService;

/// Everything a handler may need; cloning is one atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of the state.
pub struct Shared {
    /// The store (SQLite or PostgreSQL).
    pub store: Arc<dyn Store>,
    /// Authentication and token lifecycle.
    pub tokens: Arc<TokenService>,
    /// The injected clock.
    pub clock: Arc<dyn Clock>,
    /// The resolved configuration.
    pub config: Arc<Config>,
    /// Cached account and user records.
    pub records: Arc<crate::records::Records>,
    /// Rendered pages of `GET /api/auth`, kept while the store's version is theirs.
    pub pages: Arc<crate::services::auths::AuthPages>,
    /// Cached per-account IP allowlists (`api_ip_whitelist`).
    pub allowlists: Arc<Allowlists>,
    /// The data-key ring that seals and opens stored credentials.
    pub keys: Arc<crate::keys::KeyManager>,
    /// The queue of refused credentials waiting to be audited.
    pub refusals: crate::audit::Refusals,
    /// Aggregates warnings a client can make repeat (see [`crate::quiet`]).
    pub quiet: Arc<crate::quiet::Quiet>,
}
