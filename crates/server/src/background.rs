//! The one way a server runs long-lived background work: every task is spawned through
//! [`Background`] (a tokio-util [`TaskTracker`] and one [`CancellationToken`]) and stops the
//! same way: [`Background::shutdown`] cancels the token and waits, bounded by a timeout, for
//! every task to return.
//!
//! A task that holds work gets the token and finishes that work before returning (the touch
//! flusher writes the last-access times it holds, the refusal writer appends what is queued);
//! a task that holds nothing (the invalidation follower, the warning ticker) is spawned with
//! [`Background::spawn_until_cancelled`] and simply dropped at cancellation.
//!
//! Shutdown order (in [`crate::startup::Application::run_until_stopped`]): the listeners stop
//! accepting and drain in-flight requests first (the API listener in the foreground, the
//! worker listener as the task of a second `Background` that the signal cancels; the client
//! limits bound their drain), then the background tasks are cancelled, so nothing a request
//! queued is lost. An application dropped without being served cancels its tasks too.
//!
//! Not here: the IP allowlist refresh is not a task (entries are re-read lazily after
//! [`crate::allowlist::REFRESH_MS`]); per-connection tasks belong to the listener, which waits
//! for them itself.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long [`Background::shutdown`] waits for the tasks, in all.
pub const SHUTDOWN_WITHIN: Duration = Duration::from_secs(10);

/// The server's background tasks.
#[derive(Debug, Default)]
pub struct Background {
    tracker: TaskTracker,
    stop: CancellationToken,
    /// Names of the tasks still running (a name may run more than once), for the log line
    /// of a shutdown that timed out.
    running: Arc<Mutex<BTreeMap<&'static str, usize>>>,
}

impl Background {
    /// No tasks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `task(token)`: it must return soon after `token` is cancelled, once it has
    /// finished what it holds.
    pub fn spawn<F, Fut>(&self, name: &'static str, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let fut = task(self.stop.child_token());
        self.note(name, true);
        let running = self.running.clone();
        self.tracker.spawn(async move {
            fut.await;
            Self::note_in(&running, name, false);
            tracing::debug!(task = name, "background task stopped");
        });
    }

    /// Spawns `fut`, which holds nothing worth finishing: it is dropped at cancellation.
    pub fn spawn_until_cancelled<Fut>(&self, name: &'static str, fut: Fut)
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, |stop| async move {
            tokio::select! {
                () = fut => {},
                () = stop.cancelled() => {},
            }
        });
    }

    /// A handle that cancels every task (without waiting), e.g. from a shutdown signal.
    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Cancels every task and waits up to `within` for them to return. Returns whether they
    /// all did; the names of those that did not are logged.
    pub async fn shutdown(&self, within: Duration) -> bool {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_ok()
        {
            return true;
        }
        let left: Vec<&str> = match self.running.lock() {
            Ok(r) => r.keys().copied().collect(),
            Err(_) => Vec::new(),
        };
        tracing::warn!(
            tasks = ?left,
            within_ms = within.as_millis() as u64,
            "background tasks did not stop in time; their pending work may be lost"
        );
        false
    }

    /// The number of tasks still running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    /// Whether no task is running.
    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    fn note(&self, name: &'static str, started: bool) {
        Self::note_in(&self.running, name, started);
    }

    fn note_in(running: &Mutex<BTreeMap<&'static str, usize>>, name: &'static str, started: bool) {
        let Ok(mut r) = running.lock() else { return };
        let n = r.entry(name).or_insert(0);
        if started {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
            if *n == 0 {
                r.remove(name);
            }
        }
    }
}

impl Drop for Background {
    /// An application dropped unserved (a test, a failed start) stops its tasks.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_cancels_and_waits_for_each_task() {
        let bg = Background::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        bg.spawn("flushes", |stop| async move {
            stop.cancelled().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send("flushed");
        });
        bg.spawn_until_cancelled("forever", std::future::pending());
        assert_eq!(bg.len(), 2);
        assert!(bg.shutdown(Duration::from_secs(5)).await);
        assert!(bg.is_empty());
        assert_eq!(rx.await.unwrap(), "flushed");
    }

    #[tokio::test]
    async fn shutdown_is_bounded() {
        let bg = Background::new();
        bg.spawn("stubborn", |_stop| std::future::pending());
        assert!(!bg.shutdown(Duration::from_millis(20)).await);
    }
}
