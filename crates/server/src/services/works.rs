//! The work service: listing, reading, creating and deleting works (import/export jobs).
//!
//! A work lists auths of its own account (the store checks, atomically with the insert); an
//! identical workflow+config in the same account is refused as `Duplicate work config`; a work
//! is created in a status [`WorkStatus::is_initial`] allows, and its status changes only
//! through the state machine in [`authd_core::work`] (today: the auth-delete pause of the
//! delete cascade, [`crate::services::auths::delete`]).

use authd_core::audit::{Audit, AuditAction, AuditEntry};
use authd_core::ids::{AccountId, AuthId, WorkId};
use authd_core::model::Page;
use authd_core::text::{Description, Name, Runtime, Tag, WorkConfig};
use authd_core::work::{Work, WorkStatus};
use authd_core::{Error, Result};

use crate::audit::{By, RequestId};
use crate::state::AppState;
use crate::tokens::Principal;

/// A page of the account's works.
pub async fn list(state: &AppState, account: AccountId, page: Page<WorkId>) -> Result<Vec<Work>> {
    state.store.list_works(account, page).await
}

/// One work of the account; `NotFound` if it has none by `id`.
pub async fn read(state: &AppState, account: AccountId, id: WorkId) -> Result<Work> {
    state
        .store
        .get_work(account, id)
        .await?
        .ok_or(Error::NotFound)
}

/// A work to create, parsed at the edge.
#[derive(Debug)]
pub struct NewWork {
    /// Name.
    pub name: Name,
    /// Description.
    pub description: Description,
    /// Workflow name.
    pub workflow: String,
    /// Workflow id as given (or empty).
    pub workflow_id: String,
    /// Config (canonical JSON).
    pub config: WorkConfig,
    /// The auths it uses.
    pub auth_ids: Vec<AuthId>,
    /// Requested status (`None`: sleeping).
    pub status: Option<WorkStatus>,
    /// Tag.
    pub tag: Tag,
    /// Hidden.
    pub hidden: bool,
    /// Verbose logging.
    pub verbose_logging: bool,
    /// Runtime.
    pub runtime: Runtime,
}

/// Creates a work for the caller; its `work.create` entry commits with it.
pub async fn create(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    new: NewWork,
) -> Result<Work> {
    let by = &By::caller(state, caller, rid);
    let status = match new.status {
        None => WorkStatus::Sleeping,
        Some(s) if s.is_initial() => s,
        Some(_) => {
            return Err(Error::invalid(
                "statuscode: a work starts sleeping, running or paused",
            ))
        }
    };
    let now = state.clock.now_ms();
    let entry = |w: &Work| -> Vec<AuditEntry> {
        let detail = format!("workflow {}; {} auth(s)", w.workflow, w.auth_ids.len());
        vec![by.entry(AuditAction::WorkCreate, &w.id.to_string(), &detail)]
    };
    state
        .store
        .create_work(
            Work {
                id: WorkId::generate(),
                account_id: caller.account_id,
                user_id: caller.user_id,
                name: new.name.into(),
                description: new.description.into(),
                workflow: new.workflow,
                workflow_id: new.workflow_id,
                config: new.config.into(),
                auth_ids: new.auth_ids,
                status,
                status_reason: String::new(),
                state_version: 0,
                tag: new.tag.into(),
                hidden: new.hidden,
                verbose_logging: new.verbose_logging,
                runtime: new.runtime.into(),
                created_ms: now,
                updated_ms: now,
            },
            Audit::Outcome(&entry),
        )
        .await
        .map_err(|e| match e {
            Error::Conflict(_) => Error::invalid("Duplicate work config"),
            other => other,
        })
}

/// Deletes a work; its `work.delete` entry commits with it. `NotFound` if there is none.
pub async fn delete(
    state: &AppState,
    caller: &Principal,
    rid: &RequestId,
    id: WorkId,
) -> Result<()> {
    let (by, account) = (By::caller(state, caller, rid), caller.account_id);
    let entry = by.entry(AuditAction::WorkDelete, &id.to_string(), "");
    if state
        .store
        .delete_work(account, id, Audit::Entry(entry))
        .await?
    {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}
