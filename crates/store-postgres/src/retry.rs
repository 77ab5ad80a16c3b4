//! Retrying a transaction that lost a lock race.
//!
//! PostgreSQL aborts one transaction of a deadlock (SQLSTATE `40P01`) and, at stricter
//! isolation levels, transactions that cannot be serialized (`40001`). Neither says anything
//! about the request: run again, the transaction succeeds. [`crate::PgDb`]'s retry policy
//! (`Db::retry_after`, applied by store-sql's `transaction!`) reruns the whole transaction a
//! bounded number of times with a short, jittered back-off, so such a conflict never reaches
//! a client. Lock order is still the first defence (see `auths.rs`: every
//! statement that locks several `auths` rows locks them in ascending id order); this is the
//! second, for orders no single statement controls.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use authd_core::Error;

/// Runs of one transaction before a conflict is given up on and reported.
pub(crate) const ATTEMPTS: u32 = 6;

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
pub(crate) fn backoff(attempt: u32) -> Duration {
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
