//! Conformance cases for the token tree and its users: an account keeps a user holding
//! `admin`, a token's record carries its user's current roles, a user's change reports the
//! user's tokens and a user's deletion revokes them with their descendants, and rotation keeps
//! the revocation tree (children move to the new token, the old one hangs under it and names
//! it as successor while its grace window is open).

use authd_core::audit::Audit;
use std::sync::Arc;

use authd_core::model::UserPatch;
use authd_core::roles::{Role, RoleSet};
use authd_core::store::Store;
use authd_core::Error;

use crate::{account, new_token, user};

fn roles(r: &[Role]) -> UserPatch {
    UserPatch {
        roles: Some(RoleSet::of(r)),
        ..UserPatch::default()
    }
}

pub(crate) async fn last_admin_user_is_kept(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let mut first = user(a, "first@x");
    first.roles = RoleSet::of(&[Role::Admin]);
    let first = s.create_user(first, Audit::None).await.unwrap();
    let plain = s
        .create_user(user(a, "plain@x"), Audit::None)
        .await
        .unwrap();
    let demote = roles(&[Role::Observer]);
    assert!(matches!(
        s.update_user(a, first.id, demote.clone(), 2, Audit::None)
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        s.delete_user(a, first.id, Audit::None).await,
        Err(Error::Conflict(_))
    ));
    // Refused means unchanged.
    let kept = s.get_user(a, first.id).await.unwrap().unwrap();
    assert_eq!(kept.roles, RoleSet::of(&[Role::Admin]));
    // Non-admins come and go; a second admin makes the first one removable.
    s.update_user(a, plain.id, roles(&[Role::Data]), 3, Audit::None)
        .await
        .unwrap()
        .unwrap();
    s.update_user(
        a,
        plain.id,
        roles(&[Role::Admin, Role::Data]),
        4,
        Audit::None,
    )
    .await
    .unwrap()
    .unwrap();
    s.update_user(a, first.id, demote, 5, Audit::None)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        s.delete_user(a, plain.id, Audit::None).await,
        Err(Error::Conflict(_))
    ));
    assert!(s
        .delete_user(a, first.id, Audit::None)
        .await
        .unwrap()
        .is_some());
}

pub(crate) async fn user_changes_reach_tokens(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let u = s.create_user(user(a, "u@x"), Audit::None).await.unwrap();
    let mut mine = new_token(None);
    mine.user_id = Some(u.id);
    s.create_token(a, mine.clone(), 1).await.unwrap();
    let mut child = new_token(Some(mine.id));
    child.user_id = Some(u.id);
    s.create_token(a, child.clone(), 1).await.unwrap();
    let loose = new_token(None);
    s.create_token(a, loose.clone(), 1).await.unwrap();
    let cred = s.token_verifier(mine.id).await.unwrap().unwrap();
    assert_eq!(cred.user_roles, Some(RoleSet::of(&[Role::Observer])));
    assert_eq!(cred.effective_scopes(), RoleSet::of(&[Role::Observer]));
    let (_, rec) = s.token_record(mine.id).await.unwrap().unwrap();
    assert_eq!(
        crate::grant(&rec).scopes,
        mine.scopes,
        "the public record keeps its scopes"
    );
    let no_user = s.token_verifier(loose.id).await.unwrap().unwrap();
    assert_eq!(no_user.user_roles, None);
    assert_eq!(no_user.effective_scopes(), loose.scopes);
    // A role change reports the user's tokens; a change of anything else reports none.
    let (_, changed) = s
        .update_user(a, u.id, roles(&[Role::Data]), 2, Audit::None)
        .await
        .unwrap()
        .unwrap();
    let mut changed = changed;
    changed.sort();
    let mut want = vec![mine.id, child.id];
    want.sort();
    assert_eq!(changed, want);
    let (t_cred, _) = s.token_record(child.id).await.unwrap().unwrap();
    assert_eq!(t_cred.effective_scopes(), RoleSet::of(&[Role::Data]));
    let rename = UserPatch {
        name: Some("V".into()),
        ..UserPatch::default()
    };
    let (_, none) = s
        .update_user(a, u.id, rename, 3, Audit::None)
        .await
        .unwrap()
        .unwrap();
    assert!(none.is_empty());
    // Deleting the user revokes the user's tokens and what they created, nothing else.
    let mut revoked = s.delete_user(a, u.id, Audit::None).await.unwrap().unwrap();
    revoked.sort();
    assert_eq!(revoked, want);
    assert!(s.token_verifier(mine.id).await.unwrap().is_none());
    assert!(s.token_verifier(child.id).await.unwrap().is_none());
    assert!(s.token_verifier(loose.id).await.unwrap().is_some());
}

pub(crate) async fn rotation_keeps_the_revocation_tree(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let root = new_token(None);
    s.create_token(a, root.clone(), 1).await.unwrap();
    let old = new_token(Some(root.id));
    s.create_token(a, old.clone(), 1).await.unwrap();
    let child = new_token(Some(old.id));
    s.create_token(a, child.clone(), 1).await.unwrap();
    let new = new_token(Some(root.id));
    s.rotate_token(a, old.id, new.clone(), 500, 2)
        .await
        .unwrap()
        .unwrap();
    let parent_of = |id| {
        let s = s.clone();
        async move { s.get_auth(a, id).await.unwrap().unwrap().parent_id }
    };
    assert_eq!(parent_of(child.id).await, Some(new.id));
    assert_eq!(parent_of(old.id).await, Some(new.id));
    assert_eq!(parent_of(new.id).await, Some(root.id));
    // The successor link holds while the grace window is open, and in this account only.
    assert_eq!(
        s.rotated_successor(a, old.id, 499).await.unwrap(),
        Some(new.id)
    );
    assert_eq!(s.rotated_successor(a, old.id, 500).await.unwrap(), None);
    assert_eq!(s.rotated_successor(b, old.id, 499).await.unwrap(), None);
    assert_eq!(s.rotated_successor(a, new.id, 499).await.unwrap(), None);
    // Deleting the new token revokes the old one and everything the old one created.
    let mut gone = s.delete_auth(a, new.id).await.unwrap();
    gone.sort();
    let mut want = vec![new.id, old.id, child.id];
    want.sort();
    assert_eq!(gone, want);
    assert!(s.get_auth(a, root.id).await.unwrap().is_some());
}
