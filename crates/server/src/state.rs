//! The shared application state handed to every handler.

use std::sync::Arc;

use authd_core::clock::Clock;
use authd_core::store::Store;

use crate::allowlist::Allowlists;
use crate::config::Config;
use crate::tokens::TokenService;

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The store (SQLite or PostgreSQL).
    pub store: Arc<dyn Store>,
    /// Authentication and token lifecycle.
    pub tokens: Arc<TokenService>,
    /// The injected clock.
    pub clock: Arc<dyn Clock>,
    /// The resolved configuration.
    pub config: Arc<Config>,
    /// Cached per-account IP allowlists (`api_ip_whitelist`).
    pub allowlists: Arc<Allowlists>,
    /// The data-key ring that seals and opens stored credentials.
    pub keys: Arc<crate::keys::KeyManager>,
    /// The queue of refused credentials waiting to be audited.
    pub refusals: crate::audit::Refusals,
}
