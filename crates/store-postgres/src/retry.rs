//! Retrying a transaction that lost a lock race.
//!
//! PostgreSQL aborts one transaction of a deadlock (SQLSTATE `40P01`) and, at stricter
//! isolation levels, transactions that cannot be serialized (`40001`). Neither says anything
//! about the request: run again, the transaction succeeds. [`retry_conflicts`] reruns the whole
//! transaction a bounded number of times with a short, jittered back-off, so such a conflict
//! never reaches a client. Lock order is still the first defence (see `auths.rs`: every
//! statement that locks several `auths` rows locks them in ascending id order); this is the
//! second, for orders no single statement controls.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use authd_core::{Error, Result};

/// Runs of one transaction before a conflict is given up on and reported.
pub(crate) const ATTEMPTS: u32 = 6;

/// Runs `transaction` (which must begin and commit its own transaction, so a rerun starts
/// afresh) until it succeeds, fails with anything but a deadlock or serialization failure, or
/// has run [`ATTEMPTS`] times.
pub(crate) async fn retry_conflicts<T, F, Fut>(what: &str, mut transaction: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(e) if attempt < ATTEMPTS && is_conflict(&e) => {
                tracing::debug!(what, attempt, "transaction conflict; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Whether `e` is a deadlock (`40P01`) or serialization failure (`40001`).
pub(crate) fn is_conflict(e: &Error) -> bool {
    let Error::Internal(cause) = e else {
        return false;
    };
    match cause.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(d)) => {
            matches!(d.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// 5, 10, 20, 40, 80 ms, each plus up to as much again at random, so two transactions that
/// collided do not collide again in step.
fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.saturating_sub(1).min(6);
    let jitter = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % (base + 1);
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_deadlocks_and_serialization_failures_are_retried() {
        assert!(!is_conflict(&Error::Conflict("x".into())));
        assert!(!is_conflict(&Error::Internal(anyhow::anyhow!("40P01"))));
        assert!(backoff(1) >= Duration::from_millis(5));
        assert!(backoff(5) <= Duration::from_millis(160));
    }
}
