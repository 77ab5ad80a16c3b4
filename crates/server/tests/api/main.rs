//! The one integration-test binary of the server: every test starts a real authd on a random
#![allow(
    unreachable_pub,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
//! port with a fresh store and an injected clock, and drives it over HTTP.

mod helpers;

mod accounts;
mod bad_input;
mod postgres;
mod tokens;
mod users;
