//! Conformance cases for atomic audit: a mutation's entries (its `Audit` argument) are in the
//! trail exactly when the mutation committed — one per successful change, none for a change
//! that failed, rolled back or found nothing to do.

use std::sync::Arc;

use authd_core::audit::{Audit, AuditAction, AuditEntry, AuditFilter};
use authd_core::credential::{CredentialPatch, DataKeyRecord, DeleteOutcome, KeyDestroy};
use authd_core::ids::{AccountId, AuthId, UserId, WorkId};
use authd_core::master_key::MasterRewrap;
use authd_core::model::UserPatch;
use authd_core::roles::{Role, RoleSet};
use authd_core::store::Store;
use authd_core::work::WorkStatus;
use authd_core::Error;

use crate::credentials::{cred, work};
use crate::{account, user};

fn entry(a: AccountId, action: AuditAction, target: &str) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at_ms: 7,
        account_id: Some(a),
        actor: "token:t".into(),
        action,
        target: target.into(),
        outcome: "ok".into(),
        request_id: "r".into(),
        detail: String::new(),
    }
}

/// The account's trail, oldest first, as `action target`.
async fn trail(s: &dyn Store, a: AccountId) -> Vec<String> {
    let mut all = s
        .list_audit(a, AuditFilter::default(), None, 100)
        .await
        .unwrap();
    all.reverse();
    all.iter()
        .map(|e| format!("{} {}", e.action, e.target))
        .collect()
}

/// Users, settings, works and entities: a success leaves one entry; a refusal, a rollback
/// or a no-op leaves none.
pub(crate) async fn mutations_commit_their_audit_entry_or_none(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let mut admin = user(a, "a@x");
    admin.roles = RoleSet::of(&[Role::Admin]);
    let id = admin.id.to_string();
    let create = |target: &str| Audit::Entry(entry(a, AuditAction::UserCreate, target));
    s.create_user(admin.clone(), create(&id)).await.unwrap();
    let mut dup = user(a, "a@x");
    dup.id = UserId::generate();
    let dup_id = dup.id.to_string();
    assert!(matches!(
        s.create_user(dup, create(&dup_id)).await,
        Err(Error::Conflict(_))
    ));
    // The last admin keeps `admin`: the refused update rolls back with its entry.
    let demote = UserPatch {
        roles: Some(RoleSet::of(&[Role::Observer])),
        ..UserPatch::default()
    };
    let update = Audit::Entry(entry(a, AuditAction::UserUpdate, &id));
    assert!(s.update_user(a, admin.id, demote, 8, update).await.is_err());
    let gone = Audit::Entry(entry(a, AuditAction::UserDelete, "nobody"));
    assert!(s
        .delete_user(a, UserId::generate(), gone)
        .await
        .unwrap()
        .is_none());
    let slug = "api_ip_whitelist";
    let put = Audit::Entry(entry(a, AuditAction::SettingUpdate, slug));
    s.put_setting(a, slug, &serde_json::json!(["::1/128"]), 9, put)
        .await
        .unwrap();
    let unset = "schema_user_private_fields";
    let reset = |slug: &str| Audit::Entry(entry(a, AuditAction::SettingReset, slug));
    assert!(!s.delete_setting(a, unset, reset(unset)).await.unwrap());
    assert!(s.delete_setting(a, slug, reset(slug)).await.unwrap());
    // A work naming an auth the account lacks fails after its row was inserted.
    let w = work(a, "w", vec![AuthId::generate()], WorkStatus::Sleeping);
    let wid = w.id.to_string();
    let wc = Audit::Entry(entry(a, AuditAction::WorkCreate, &wid));
    assert!(matches!(s.create_work(w, wc).await, Err(Error::Invalid(_))));
    let wd = Audit::Entry(entry(a, AuditAction::WorkDelete, "none"));
    assert!(!s.delete_work(a, WorkId::generate(), wd).await.unwrap());
    let up = Audit::Entry(entry(a, AuditAction::EntityUpload, "stream"));
    let items = [("u1".to_owned(), serde_json::json!({"user_id": "u1"}))];
    s.upsert_entities(a, "user", &items, 10, up).await.unwrap();
    assert_eq!(
        trail(s.as_ref(), a).await,
        [
            format!("user.create {id}"),
            format!("setting.update {slug}"),
            format!("setting.reset {slug}"),
            "entity.upload stream".to_owned(),
        ]
    );
}

/// Credentials and the delete cascade: entries built from the outcome are written with it
/// (the delete and one `work.stop` per stopped work), and nothing for a delete that found
/// nothing, in this account or at all.
pub(crate) async fn the_delete_cascade_audits_what_it_did(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let c = cred(&[], "k_none");
    let cid = c.id.to_string();
    let created = || Audit::Entry(entry(a, AuditAction::AuthCreate, &cid));
    s.create_credential(a, c.clone(), 1, created())
        .await
        .unwrap();
    assert!(s
        .create_credential(a, c.clone(), 2, created())
        .await
        .is_err());
    let w = work(a, "w", vec![c.id], WorkStatus::Running);
    let wid = w.id.to_string();
    s.create_work(w, Audit::None).await.unwrap();
    let entries = |out: &DeleteOutcome| {
        let mut v = vec![entry(a, AuditAction::AuthDelete, &cid)];
        v.extend(
            (out.stopped_works.iter()).map(|w| entry(a, AuditAction::WorkStop, &w.to_string())),
        );
        v
    };
    let out = s
        .delete_auth_cascade(b, c.id, "gone", 3, Audit::Outcome(&entries))
        .await
        .unwrap();
    assert!(out.deleted.is_empty());
    let out = s
        .delete_auth_cascade(a, c.id, "gone", 4, Audit::Outcome(&entries))
        .await
        .unwrap();
    assert_eq!(out.stopped_works.len(), 1);
    assert!(s
        .delete_auth_cascade(a, c.id, "gone", 5, Audit::Outcome(&entries))
        .await
        .unwrap()
        .deleted
        .is_empty());
    let patch = CredentialPatch::default();
    let upd = Audit::Entry(entry(a, AuditAction::AuthUpdate, &cid));
    assert!(s
        .update_credential(a, c.id, patch, 6, upd)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        trail(s.as_ref(), a).await,
        [
            format!("auth.create {cid}"),
            format!("auth.delete {cid}"),
            format!("work.stop {wid}"),
        ]
    );
    assert!(trail(s.as_ref(), b).await.is_empty());
}

/// Worker credentials (operator rows): created and revoked with their entry, and none for a
/// refused duplicate or a second revocation.
pub(crate) async fn worker_credential_changes_commit_their_entry_or_none(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let new = crate::worker_credentials::cred("ingest", None, 1);
    let id = new.credential.id;
    let target = id.to_string();
    let created = || Audit::Entry(entry(a, AuditAction::WorkerCredentialCreate, &target));
    s.create_worker_credential(new, created()).await.unwrap();
    let dup = crate::worker_credentials::cred("ingest", None, 2);
    assert!(s.create_worker_credential(dup, created()).await.is_err());
    let revoked = || Audit::Entry(entry(a, AuditAction::WorkerCredentialRevoke, &target));
    assert!(s.revoke_worker_credential(id, 5, revoked()).await.unwrap());
    assert!(!s.revoke_worker_credential(id, 6, revoked()).await.unwrap());
    assert_eq!(
        trail(s.as_ref(), a).await,
        [
            format!("worker.credential.create {target}"),
            format!("worker.credential.revoke {target}"),
        ]
    );
}

/// The key ring: adding, rotating, destroying and rewrapping commit their entry; a refused
/// or lost change (stale compare-and-swap, the current key, a changed blob) writes none.
pub(crate) async fn key_ring_changes_commit_their_entry_or_none(s: Arc<dyn Store>) {
    // Key-ring entries carry no account in the server; here one makes them listable.
    let a = account(s.as_ref(), "a").await;
    let e = |action, target: &str| Audit::Entry(entry(a, action, target));
    let key = |id: &str, byte: u8| DataKeyRecord {
        id: id.into(),
        created_ms: 1,
        wrapped: vec![byte; 60],
        current: false,
    };
    assert!(s
        .add_data_key(key("k_a", 1), true, true, e(AuditAction::KeysRotate, "k_a"))
        .await
        .unwrap());
    assert!(!s
        .add_data_key(key("k_x", 1), true, true, e(AuditAction::KeysRotate, "k_x"))
        .await
        .unwrap());
    let rotate = |to: &str| e(AuditAction::KeysRotate, to);
    assert!(s
        .rotate_data_key_from("k_a", key("k_b", 2), rotate("k_b"))
        .await
        .unwrap());
    assert!(!s
        .rotate_data_key_from("k_a", key("k_c", 3), rotate("k_c"))
        .await
        .unwrap());
    let destroy = |id: &str| e(AuditAction::KeysDestroy, id);
    let current = s.destroy_data_key("k_b", destroy("k_b")).await.unwrap();
    assert_eq!(current, KeyDestroy::Current);
    let done = s.destroy_data_key("k_a", destroy("k_a")).await.unwrap();
    assert_eq!(done, KeyDestroy::Destroyed);
    s.init_token_hash_key(vec![1; 60]).await.unwrap();
    let rewrap = |old: u8| MasterRewrap {
        data_keys: vec![("k_b".into(), vec![old; 60], vec![20; 60])],
        token_key: (vec![1; 60], vec![10; 60]),
    };
    let master = || e(AuditAction::KeysRotateMaster, "master");
    assert!(s.rewrap_master(rewrap(9), master()).await.is_err());
    s.rewrap_master(rewrap(2), master()).await.unwrap();
    assert_eq!(
        trail(s.as_ref(), a).await,
        [
            "keys.rotate k_a",
            "keys.rotate k_b",
            "keys.destroy k_a",
            "keys.rotate_master master"
        ]
    );
}
