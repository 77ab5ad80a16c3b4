//! The authd server: configuration, start-up, the token service and the HTTP API.
//!
//! `main.rs` is only the CLI; everything it runs lives here so integration tests can build the
//! same [`startup::Application`] in-process with a fresh store and an injected clock.

pub mod allowlist;
pub mod api;
pub mod audit;
pub mod background;
pub mod cache;
pub mod cli;
pub mod config;
pub mod credential_seal;
#[cfg(feature = "dev-tools")]
pub mod dev;
pub mod keys;
pub mod keys_cli;
pub mod layout;
pub mod listener;
pub mod pages;
pub mod provision;
pub mod quiet;
pub mod records;
pub mod request_id;
pub mod services;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod token_cli;
pub mod tokens;
pub mod worker;
pub mod worker_cli;
