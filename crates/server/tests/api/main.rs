//! The one integration-test binary of the server: every test starts a real authd on a random
//! port with a fresh store and an injected clock, and drives it over HTTP.
#![allow(
    unreachable_pub,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod helpers;

mod accounts;
mod audit_trail;
mod bad_input;
mod cli;
mod config_precedence;
mod credential_integrity;
mod credentials;
mod cross_tenant;
mod durability;
mod entities;
mod hostile;
mod key_lifecycle;
mod lenient_input;
mod master_key;
mod pagination;
mod pg_cascade;
mod postgres;
mod quiet_log;
mod read_cache;
mod request_id;
mod settings;
mod shutdown;
mod slow_clients;
mod token_info;
mod token_tree;
mod tokens;
mod users;
mod wire_contract;
mod wire_values;
mod worker_cli;
mod worker_path;
