//! Conformance cases for the rules the shared store logic (`authd-store-sql`) must keep on
//! every backend under concurrency: role changes are serialised per account (two concurrent
//! demotions never leave an account without an admin), a refused change leaves nothing
//! behind, a revocation and the nodes' last-access batches never fail each other, concurrent
//! accounts get distinct public ids, and a token's verifier is the one its record carries.

use std::sync::Arc;

use authd_core::audit::Audit;
use authd_core::ids::AuthId;
use authd_core::model::UserPatch;
use authd_core::roles::{Role, RoleSet};
use authd_core::store::Store;
use authd_core::Error;

use crate::{account, new_token, user};

pub(crate) async fn concurrent_demotions_keep_an_admin(s: Arc<dyn Store>) {
    for round in 0..5 {
        let a = account(s.as_ref(), &format!("a{round}")).await;
        let mut admins = Vec::new();
        for n in 0..2 {
            let mut u = user(a, &format!("admin{n}@x"));
            u.roles = RoleSet::of(&[Role::Admin]);
            admins.push(s.create_user(u, Audit::None).await.unwrap());
        }
        let demote = || UserPatch {
            roles: Some(RoleSet::of(&[Role::Observer])),
            ..UserPatch::default()
        };
        let (x, y) = tokio::join!(
            s.update_user(a, admins[0].id, demote(), 2, Audit::None),
            s.update_user(a, admins[1].id, demote(), 2, Audit::None)
        );
        let refused = [&x, &y]
            .iter()
            .filter(|r| matches!(r, Err(Error::Conflict(_))))
            .count();
        assert_eq!(refused, 1, "exactly one demotion is refused: {x:?} {y:?}");
        let mut still = 0;
        for u in &admins {
            let got = s.get_user(a, u.id).await.unwrap().unwrap();
            still += usize::from(got.roles.contains(Role::Admin));
        }
        assert_eq!(still, 1, "the account keeps exactly one admin");
    }
}

pub(crate) async fn a_refused_change_leaves_nothing_behind(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let first = s.create_user(user(a, "one@x"), Audit::None).await.unwrap();
    let second = s.create_user(user(a, "two@x"), Audit::None).await.unwrap();
    let clash = UserPatch {
        email: Some("one@x".into()),
        name: Some("Renamed".into()),
        roles: Some(RoleSet::of(&[Role::Data])),
        ..UserPatch::default()
    };
    match s.update_user(a, second.id, clash, 9, Audit::None).await {
        Err(Error::Conflict(m)) => assert_eq!(m, "A user with this email already exists"),
        other => panic!("expected the email conflict, got {other:?}"),
    }
    let kept = s.get_user(a, second.id).await.unwrap().unwrap();
    assert_eq!(kept, second, "a refused update changes nothing");
    // The same rule on creation, and the first user is untouched.
    let again = s.create_user(user(a, "one@x"), Audit::None).await;
    assert!(
        matches!(again, Err(Error::Conflict(m)) if m == "A user with this email already exists")
    );
    assert_eq!(s.get_user(a, first.id).await.unwrap().unwrap(), first);
}

pub(crate) async fn revocation_and_last_access_never_fail_each_other(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    for _ in 0..3 {
        let root = new_token(None);
        s.create_token(a, root.clone(), 1).await.unwrap();
        let mut ids = vec![root.id];
        for i in 0..30 {
            let t = new_token(Some(ids[i / 3]));
            s.create_token(a, t.clone(), 1).await.unwrap();
            ids.push(t.id);
        }
        let touches: Vec<(AuthId, i64)> = ids.iter().map(|id| (*id, 50)).collect();
        let reversed: Vec<(AuthId, i64)> = touches.iter().rev().copied().collect();
        let (deleted, t1, t2) = tokio::join!(
            s.delete_auth(a, root.id),
            s.touch_tokens(&touches),
            s.touch_tokens(&reversed)
        );
        assert_eq!(
            deleted.unwrap().len(),
            ids.len(),
            "the whole tree is revoked"
        );
        t1.unwrap();
        t2.unwrap();
        for id in &ids {
            assert!(s.token_record(*id).await.unwrap().is_none());
        }
        // Touching what is gone is not an error.
        s.touch_tokens(&touches).await.unwrap();
    }
}

pub(crate) async fn concurrent_accounts_get_distinct_aids(s: Arc<dyn Store>) {
    let made = futures_join_all(&s, 16).await;
    let mut aids = Vec::new();
    for a in made {
        aids.push(s.get_account(a).await.unwrap().unwrap().aid);
    }
    aids.sort_unstable();
    aids.dedup();
    assert_eq!(aids.len(), 16);
    assert_eq!(s.count_accounts().await.unwrap(), 16);
}

async fn futures_join_all(s: &Arc<dyn Store>, n: usize) -> Vec<authd_core::ids::AccountId> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let s = s.clone();
        tasks.spawn(async move { account(s.as_ref(), &format!("c{i}")).await });
    }
    let mut out = Vec::new();
    while let Some(a) = tasks.join_next().await {
        out.push(a.unwrap());
    }
    out
}

pub(crate) async fn the_verifier_is_the_one_its_record_carries(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let u = s.create_user(user(a, "u@x"), Audit::None).await.unwrap();
    let mut with_user = new_token(None);
    with_user.user_id = Some(u.id);
    let loose = new_token(None);
    for t in [&with_user, &loose] {
        s.create_token(a, t.clone(), 7).await.unwrap();
        let (v, rec) = s.token_record(t.id).await.unwrap().unwrap();
        assert_eq!(s.token_verifier(t.id).await.unwrap(), Some(v.clone()));
        assert_eq!((v.id, v.account_id, v.hash), (t.id, a, t.hash));
        let g = crate::grant(&rec);
        assert_eq!((g.scopes, g.expires_ms), (t.scopes, t.expires_ms));
        assert_eq!(v.user_id, t.user_id);
    }
    // A user deleted under its token: the token goes with it.
    s.delete_user(a, u.id, Audit::None).await.unwrap();
    assert_eq!(s.token_verifier(with_user.id).await.unwrap(), None);
    assert!(s.token_record(AuthId::generate()).await.unwrap().is_none());
}
