//! authd's domain: identifiers, roles and the permission matrix, the API-token format, Go
//! durations, the records the service keeps and the storage traits every backend implements.
//!
//! This crate performs no I/O and never reads the clock: time arrives through [`clock::Clock`]
//! and storage through the traits in [`store`]. It depends on neither axum nor sqlx.

pub mod audit;
pub mod clock;
pub mod credential;
pub mod duration;
pub mod error;
pub mod ids;
pub mod invalidation;
pub mod master_key;
pub mod model;
pub mod provider;
pub mod roles;
pub mod settings;
pub mod store;
pub mod text;
pub mod token;
pub mod work;
pub mod worker_credential;

pub use error::{Error, Result};
