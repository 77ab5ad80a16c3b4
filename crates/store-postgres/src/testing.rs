//! Test support for anything that needs a real PostgreSQL server: where to find it
//! (`AUTHD_TEST_PG_URL`), what to do when it is absent (skip with a printed reason on a laptop,
//! fail under `CI=true`), and a fresh, uniquely named database per test.

use std::str::FromStr;

use anyhow::Context;
use authd_core::ids::AuthId;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// The variable naming the PostgreSQL server tests use (any database on it; the role must be
/// allowed to create databases).
pub const URL_VAR: &str = "AUTHD_TEST_PG_URL";

/// The server URL for tests, or `None` after printing why `test` is skipped. Under `CI=true`
/// a missing server is a failure, never a silent skip.
#[allow(clippy::panic)] // test support: a misconfigured CI must fail loudly
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: CI=true but {URL_VAR} is not set; .ci/run must provide PostgreSQL")
        }
        _ => {
            eprintln!("SKIPPED {test}: {URL_VAR} is not set (no PostgreSQL server configured)");
            None
        }
    }
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (head, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let after_scheme = head.find("://").map_or(0, |i| i + 3);
    let base = match head[after_scheme..].find('/') {
        Some(slash) => &head[..after_scheme + slash],
        None => head,
    };
    format!("{base}/{db}{query}")
}

/// Creates an empty database with a random name on the server at `server_url` and returns a
/// URL pointing at it.
pub async fn fresh_database(server_url: &str) -> anyhow::Result<String> {
    let name = format!("authd_test_{}", AuthId::generate());
    let mut conn = PgConnectOptions::from_str(server_url)
        .context("parsing the test server URL")?
        .connect()
        .await
        .context("connecting to the test server")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .context("creating a test database")?;
    let _ = conn.close().await;
    Ok(with_database(server_url, &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(
            with_database(
                "postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable",
                "x"
            ),
            "postgres://u:p@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
        assert_eq!(with_database("postgres://h/", "x"), "postgres://h/x");
    }
}
