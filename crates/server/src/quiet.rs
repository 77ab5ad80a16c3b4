//! Quiet under attack: warnings that a client can make repeat (one per refused credential, per
//! slow connection, per overflowing audit queue…) are aggregated here instead of logged one by
//! one, so a flood costs bounded log volume and cannot bury every other line.
//!
//! **Rule:** a per-request warning goes through [`Quiet::note`], never straight to `tracing`.
//! Each [`Kind`] logs at most one line per [`WINDOW`], carrying the count of occurrences since
//! its previous line (`count=…`). The first occurrence is logged at once; later ones wait for
//! the window to pass, and a background ticker ([`run`]) reports a burst's tail once the window
//! is over even if nothing else happens. [`Quiet::flush`] reports what is left at shutdown.
//!
//! Errors that carry an incident reference (5xx answers) are not aggregated: each one's
//! reference must be findable in the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Weak;
use std::time::{Duration, Instant};

/// The longest a kind stays silent while occurrences are pending.
pub const WINDOW: Duration = Duration::from_secs(10);

/// A repeatable warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A refused credential could not be queued for the audit trail.
    AuditOverflow,
    /// A credential was refused (401/403, ambiguous credentials, outside the IP allowlist);
    /// the audit trail has each one.
    CredentialRefused,
    /// A client did not send its request head or body in time.
    SlowClient,
    /// A connection was refused because the connection cap was reached.
    OverCapacity,
    /// Accepting a connection failed (e.g. out of file descriptors).
    AcceptFailed,
    /// A readiness probe found the store unavailable.
    NotReady,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::AuditOverflow,
        Kind::CredentialRefused,
        Kind::SlowClient,
        Kind::OverCapacity,
        Kind::AcceptFailed,
        Kind::NotReady,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The stable name logged as `kind=…`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::AuditOverflow => "audit_overflow",
            Kind::CredentialRefused => "credential_refused",
            Kind::SlowClient => "slow_client",
            Kind::OverCapacity => "over_capacity",
            Kind::AcceptFailed => "accept_failed",
            Kind::NotReady => "not_ready",
        }
    }
}

fn emit(kind: Kind, count: u64) {
    let k = kind.name();
    let w = WINDOW.as_secs();
    match kind {
        Kind::AuditOverflow => tracing::warn!(
            kind = k,
            count,
            window_s = w,
            "refused credentials not audited: queue full"
        ),
        Kind::CredentialRefused => {
            tracing::info!(kind = k, count, window_s = w, "credentials refused")
        }
        Kind::SlowClient => tracing::warn!(
            kind = k,
            count,
            window_s = w,
            "slow clients cut off: request head or body not received in time"
        ),
        Kind::OverCapacity => tracing::warn!(
            kind = k,
            count,
            window_s = w,
            "connections refused: connection cap reached"
        ),
        Kind::AcceptFailed => tracing::warn!(
            kind = k,
            count,
            window_s = w,
            "accepting connections failed (out of file descriptors?)"
        ),
        Kind::NotReady => tracing::warn!(
            kind = k,
            count,
            window_s = w,
            "readiness checks failed: store unavailable"
        ),
    }
}

#[derive(Default)]
struct Slot {
    pending: AtomicU64,
    /// When the last line was logged, in ms since `start` plus one; 0 = never.
    last: AtomicU64,
}

/// The aggregator; one per server (tests run many in one process).
pub struct Quiet {
    start: Instant,
    slots: [Slot; Kind::ALL.len()],
}

impl std::fmt::Debug for Quiet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Quiet")
    }
}

impl Default for Quiet {
    fn default() -> Self {
        Self::new()
    }
}

impl Quiet {
    /// A fresh aggregator with nothing pending.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            slots: Default::default(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Counts one occurrence of `kind`, logging if its window allows.
    pub fn note(&self, kind: Kind) {
        let slot = &self.slots[kind.index()];
        slot.pending.fetch_add(1, Ordering::Relaxed);
        self.report(kind, false);
    }

    /// Logs `kind`'s pending count if there is one and (unless `force`) its window has passed.
    fn report(&self, kind: Kind, force: bool) {
        let slot = &self.slots[kind.index()];
        let window = u64::try_from(WINDOW.as_millis()).unwrap_or(u64::MAX);
        let now = self.now();
        let last = slot.last.load(Ordering::Acquire);
        if !force && last != 0 && now < last.saturating_add(window) {
            return;
        }
        if slot.pending.load(Ordering::Relaxed) == 0 {
            return;
        }
        // One caller wins the window; the others' occurrences stay counted for the next line.
        if slot
            .last
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let count = slot.pending.swap(0, Ordering::Relaxed);
        if count > 0 {
            emit(kind, count);
        }
    }

    /// Logs every kind whose window has passed and that has occurrences pending.
    pub fn tick(&self) {
        for k in Kind::ALL {
            self.report(k, false);
        }
    }

    /// Logs everything still pending, window or not (at shutdown).
    pub fn flush(&self) {
        for k in Kind::ALL {
            self.report(k, true);
        }
    }
}

/// Reports bursts' tails once their window is over; ends when the aggregator is dropped.
pub async fn run(quiet: Weak<Quiet>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Some(q) = quiet.upgrade() else { break };
        q.tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_one_line_then_counted() {
        let q = Quiet::new();
        for _ in 0..1000 {
            q.note(Kind::AuditOverflow);
        }
        let s = &q.slots[Kind::AuditOverflow.index()];
        // The first occurrence was logged at once; the other 999 wait for the window.
        assert_eq!(s.pending.load(Ordering::Relaxed), 999);
        q.tick();
        assert_eq!(s.pending.load(Ordering::Relaxed), 999);
        q.flush();
        assert_eq!(s.pending.load(Ordering::Relaxed), 0);
    }
}
