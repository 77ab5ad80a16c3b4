//! Logging set-up. Logs go to stderr (stdout is reserved for machine-readable output such as
//! the token printed by `authd init`). Filtered by `RUST_LOG`, default `info`.
//!
//! Nothing that is logged may carry a secret: request spans record the matched route, never
//! the URI (which may hold `?access_token=`), and no header is ever logged.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are no-ops.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
