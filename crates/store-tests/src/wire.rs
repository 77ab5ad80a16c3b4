//! Conformance cases for the fields stored for the Lytics wire (migration 0004): who granted
//! a user's roles and when, and a work's workflow id, tag, flags and runtime.

use authd_core::audit::Audit;
use std::sync::Arc;

use authd_core::ids::UserId;
use authd_core::model::UserPatch;
use authd_core::roles::{Role, RoleSet};
use authd_core::store::Store;
use authd_core::work::WorkStatus;

use crate::credentials::work;
use crate::{account, user};

/// A roles change records who made it and when; other changes keep both.
pub(crate) async fn role_grants_are_recorded_with_their_grantor(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let admin = UserId::generate();
    let mut u = user(a, "g@y.z");
    u.granted_by = Some(admin);
    let u = s.create_user(u, Audit::None).await.unwrap();
    assert_eq!(s.get_user(a, u.id).await.unwrap().unwrap(), u);
    let renamed = UserPatch {
        name: Some("V".into()),
        granted_by: Some(UserId::generate()),
        ..UserPatch::default()
    };
    let (up, _) = s
        .update_user(a, u.id, renamed, 8, Audit::None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        up.granted_by,
        Some(admin),
        "no roles change, no new grantor"
    );
    assert_eq!((up.roles_updated_ms, up.updated_ms), (5, 8));
    let other = UserId::generate();
    let regrant = UserPatch {
        roles: Some(RoleSet::of(&[Role::Data])),
        granted_by: Some(other),
        ..UserPatch::default()
    };
    let (up, _) = s
        .update_user(a, u.id, regrant, 9, Audit::None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.granted_by, Some(other));
    assert_eq!(up.roles_updated_ms, 9);
    let by_token = UserPatch {
        roles: Some(RoleSet::of(&[Role::Observer])),
        ..UserPatch::default()
    };
    let (up, _) = s
        .update_user(a, u.id, by_token, 10, Audit::None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.granted_by, None);
    assert_eq!(s.get_user(a, u.id).await.unwrap().unwrap(), up);
}

/// A work's workflow id, tag, flags, runtime and state version are stored as given.
pub(crate) async fn work_wire_fields_round_trip(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let mut w = work(a, "facebook_audience_populate", vec![], WorkStatus::Paused);
    w.workflow_id = "9151ddcc8961d4bf7ec1cba02899c123".into();
    w.tag = "nightly".into();
    w.hidden = true;
    w.verbose_logging = true;
    w.runtime = "large".into();
    let created = s.create_work(w.clone(), Audit::None).await.unwrap();
    assert_eq!(created, w);
    assert_eq!(s.get_work(a, w.id).await.unwrap().unwrap(), w);
    let plain = work(a, "x", vec![], WorkStatus::Sleeping);
    s.create_work(plain.clone(), Audit::None).await.unwrap();
    let got = s.get_work(a, plain.id).await.unwrap().unwrap();
    assert_eq!(got, plain);
    assert!(got.workflow_id.is_empty() && !got.hidden && !got.verbose_logging);
}
