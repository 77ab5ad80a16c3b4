//! Works (import/export jobs) and their statuscode state machine.
//!
//! ```text
//!            ┌──────────── pause ───────────┐
//!            v                              │
//!  (create) sleeping ⇄ running ──────────> completed (terminal)
//!            │  ^        │
//!            │  └ resume ┤ pause / auth deleted
//!            v           v
//!          paused <──────┘          any non-terminal ── kill ──> killed (terminal)
//! ```
//!
//! A work starts `sleeping` (scheduled) unless created `running` or `paused`. `running` and
//! `sleeping` alternate as the scheduler runs it; `paused` is a stop that can be resumed (to
//! `sleeping`); `completed` and `killed` are terminal. Deleting an auth that a work lists
//! moves a `running`/`sleeping` work to `paused` with a reason; a work already `paused`,
//! `completed` or `killed` keeps its status and only loses the auth id.

use async_trait::async_trait;

use crate::ids::{AccountId, AuthId, UserId, WorkId};
use crate::model::Page;
use crate::Result;

/// A work's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkStatus {
    /// Executing now.
    Running,
    /// Scheduled, waiting for its next run.
    Sleeping,
    /// Finished successfully (terminal).
    Completed,
    /// Stopped; may be resumed.
    Paused,
    /// Cancelled (terminal).
    Killed,
}

impl WorkStatus {
    /// Every status.
    pub const ALL: [WorkStatus; 5] = [
        WorkStatus::Running,
        WorkStatus::Sleeping,
        WorkStatus::Completed,
        WorkStatus::Paused,
        WorkStatus::Killed,
    ];

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkStatus::Running => "running",
            WorkStatus::Sleeping => "sleeping",
            WorkStatus::Completed => "completed",
            WorkStatus::Paused => "paused",
            WorkStatus::Killed => "killed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// Whether no transition leaves this status.
    pub const fn is_terminal(self) -> bool {
        matches!(self, WorkStatus::Completed | WorkStatus::Killed)
    }

    /// Statuses a work may be created in.
    pub const fn is_initial(self) -> bool {
        matches!(
            self,
            WorkStatus::Sleeping | WorkStatus::Running | WorkStatus::Paused
        )
    }

    /// Whether the state machine allows `self → to`.
    pub const fn can_become(self, to: WorkStatus) -> bool {
        use WorkStatus as W;
        matches!(
            (self, to),
            (
                W::Running,
                W::Sleeping | W::Completed | W::Paused | W::Killed
            ) | (W::Sleeping, W::Running | W::Paused | W::Killed)
                | (W::Paused, W::Sleeping | W::Killed)
        )
    }

    /// What deleting a listed auth does: running/sleeping works are paused.
    pub const fn stopped_by_auth_delete(self) -> bool {
        matches!(self, WorkStatus::Running | WorkStatus::Sleeping)
    }
}

/// A work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Work {
    /// Public id.
    pub id: WorkId,
    /// Owning account.
    pub account_id: AccountId,
    /// Creating user.
    pub user_id: Option<UserId>,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Workflow name (`mailgun_export`).
    pub workflow: String,
    /// The config as canonical JSON text (keys sorted).
    pub config: String,
    /// Auths it uses, in the order given.
    pub auth_ids: Vec<AuthId>,
    /// Status.
    pub status: WorkStatus,
    /// Why the status last changed, if the system changed it.
    pub status_reason: String,
    /// Creation time (Unix ms).
    pub created_ms: i64,
    /// Last update (Unix ms).
    pub updated_ms: i64,
}

/// Works of an account.
#[async_trait]
pub trait WorkStore: Send + Sync {
    /// Persists a work. Every auth id must be an auth of `account` (else `Invalid` naming
    /// it); a work with the same workflow and config is `Conflict`. The check and insert are
    /// one transaction, so a concurrent auth delete cannot leave a dangling id.
    async fn create_work(&self, work: Work) -> Result<Work>;
    /// One work, read in one snapshot with its auth ids.
    async fn get_work(&self, account: AccountId, id: WorkId) -> Result<Option<Work>>;
    /// Works in id order after the cursor.
    async fn list_works(&self, account: AccountId, page: Page<WorkId>) -> Result<Vec<Work>>;
    /// Deletes a work; `false` if there was none.
    async fn delete_work(&self, account: AccountId, id: WorkId) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_have_no_exit() {
        for from in WorkStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in WorkStatus::ALL {
                assert!(!from.can_become(to), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn auth_delete_only_stops_live_works_and_that_is_a_legal_transition() {
        for s in WorkStatus::ALL {
            if s.stopped_by_auth_delete() {
                assert!(s.can_become(WorkStatus::Paused));
            }
        }
        assert!(!WorkStatus::Paused.stopped_by_auth_delete());
        assert!(WorkStatus::Paused.can_become(WorkStatus::Sleeping));
        assert_eq!(WorkStatus::parse("killed"), Some(WorkStatus::Killed));
        assert_eq!(WorkStatus::parse("nope"), None);
    }
}
