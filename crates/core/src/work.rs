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
//!
//! A status changes only through a [`StatusChange`], which exists only for a transition
//! [`WorkStatus::can_become`] allows; the stores apply it in one statement that also counts it
//! in `work_state_version`.
//!
//! Workflows: authd keeps no workflow catalog. A work names its workflow by name
//! (`workflow`) and/or id (`workflow_id`, see [`WorkflowRef`]); a work created by name only
//! answers a workflow id derived from the name ([`derived_workflow_id`]).

use crate::ids::{AccountId, AuthId, UserId, WorkId};

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
        if self.is_terminal() {
            return false;
        }
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

    /// The change deleting a listed auth makes to a work in this status, if any.
    pub fn on_auth_delete(self) -> Option<StatusChange> {
        if self.stopped_by_auth_delete() {
            StatusChange::new(self, WorkStatus::Paused)
        } else {
            None
        }
    }
}

/// A status transition the state machine allows. The only way a store changes a work's
/// status, so every applied change has been checked and is counted in `work_state_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusChange {
    from: WorkStatus,
    to: WorkStatus,
}

impl StatusChange {
    /// `from → to`, if [`WorkStatus::can_become`] allows it.
    pub fn new(from: WorkStatus, to: WorkStatus) -> Option<Self> {
        from.can_become(to).then_some(Self { from, to })
    }

    /// The status the work must still have for the change to apply.
    pub const fn from(self) -> WorkStatus {
        self.from
    }

    /// The new status.
    pub const fn to(self) -> WorkStatus {
        self.to
    }
}

/// What a client's `workflow_id` names: Lytics sends a workflow's 32-hex id there, and some
/// clients send the workflow's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkflowRef {
    /// A workflow id (32 hex digits, kept lowercase).
    Id(String),
    /// Anything else: the workflow's name.
    Name(String),
}

impl WorkflowRef {
    /// Classifies a `workflow_id` value.
    pub fn parse(s: &str) -> Self {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            WorkflowRef::Id(s.to_ascii_lowercase())
        } else {
            WorkflowRef::Name(s.to_owned())
        }
    }
}

/// The workflow id authd answers for a workflow known only by name: the first 16 bytes of
/// SHA-256 over `authd/workflow/` and the name, in hex. Stable, so every work of the same
/// workflow (in any account) answers the same id.
pub fn derived_workflow_id(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"authd/workflow/")
        .chain_update(name.as_bytes())
        .finalize();
    hex::encode(&digest[..16])
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
    /// The workflow's id as given at creation (32 lowercase hex), or empty when the work was
    /// created by workflow name only (see [`Work::workflow_id`]).
    pub workflow_id: String,
    /// The config as canonical JSON text (keys sorted).
    pub config: String,
    /// Auths it uses, in the order given.
    pub auth_ids: Vec<AuthId>,
    /// Status.
    pub status: WorkStatus,
    /// Why the status last changed, if the system changed it.
    pub status_reason: String,
    /// How many status changes the work has had (0 at creation).
    pub state_version: i64,
    /// Free-form tag.
    pub tag: String,
    /// Hidden from listings in the Lytics UI.
    pub hidden: bool,
    /// Verbose logging requested for its runs.
    pub verbose_logging: bool,
    /// Runtime override (free-form, empty for the default).
    pub runtime: String,
    /// Creation time (Unix ms).
    pub created_ms: i64,
    /// Last update (Unix ms).
    pub updated_ms: i64,
}

impl Work {
    /// The workflow id to answer: the one given at creation, else derived from the name.
    pub fn workflow_id(&self) -> String {
        if self.workflow_id.is_empty() {
            derived_workflow_id(&self.workflow)
        } else {
            self.workflow_id.clone()
        }
    }
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

    #[test]
    fn status_changes_exist_only_for_allowed_transitions() {
        for from in WorkStatus::ALL {
            for to in WorkStatus::ALL {
                assert_eq!(StatusChange::new(from, to).is_some(), from.can_become(to));
            }
            let change = from.on_auth_delete();
            assert_eq!(change.is_some(), from.stopped_by_auth_delete());
            assert!(change.is_none_or(|c| c.from() == from && c.to() == WorkStatus::Paused));
        }
    }

    #[test]
    fn workflow_ids_and_names_are_told_apart() {
        let id = "9151DDCC8961d4bf7ec1cba02899c123";
        assert_eq!(
            WorkflowRef::parse(id),
            WorkflowRef::Id(id.to_ascii_lowercase())
        );
        assert_eq!(
            WorkflowRef::parse("facebook_audience_populate"),
            WorkflowRef::Name("facebook_audience_populate".into())
        );
        let derived = derived_workflow_id("mailgun_export");
        assert_eq!(derived.len(), 32);
        assert_eq!(derived, derived_workflow_id("mailgun_export"));
        assert_ne!(derived, derived_workflow_id("mailgun_import"));
        assert_eq!(
            WorkflowRef::parse(&derived),
            WorkflowRef::Id(derived.clone())
        );
    }
}
