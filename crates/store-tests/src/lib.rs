//! The backend-agnostic conformance suite: every store implementation must pass every case.
//! A backend runs it with [`conformance_tests!`], which expands to one `#[tokio::test]` per
//! case, each on a fresh, empty store from the backend's constructor, so cases are
//! independent and one failure never hides the others. Backends call it from their own tests
//! (SQLite always; PostgreSQL when a server is configured).
//!
//! The suite checks behaviour through the `Store` traits only: tenant scoping, uniqueness,
//! pagination order, the revocation cascade, and that no method crosses accounts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authd_core::audit::Audit;
use std::sync::Arc;

use authd_core::ids::{AccountId, AuthId, UserId};
use authd_core::model::{AuthFilter, AuthKind, NewAccount, NewToken, Page, User, UserPatch};
use authd_core::roles::{Role, RoleSet};
use authd_core::store::Store;
use authd_core::Error;

mod audit;
mod credentials;
mod entities;
mod master_key;
mod store_rules;
mod token_tree;
mod wire;
mod worker_credentials;
use audit::{
    key_ring_changes_commit_their_entry_or_none, mutations_commit_their_audit_entry_or_none,
    the_delete_cascade_audits_what_it_did, worker_credential_changes_commit_their_entry_or_none,
};
use credentials::{
    audit_is_scoped_filtered_and_paged,
    auths_version_moves_with_every_change_to_the_accounts_auths,
    credential_writes_compare_and_swap_the_generation, credentials_round_trip_and_are_scoped,
    data_key_seals_are_reserved_within_the_budget,
    data_keys_are_destroyed_only_when_retired_and_unused, data_keys_rotate_count_and_rewrap,
    delete_cascade_detaches_and_stops_works, providers_are_scoped_and_unique,
    works_are_scoped_and_unique,
};
use entities::entity_merges_follow_rfc7396_at_depth;
use master_key::master_rewrap_is_all_or_nothing;
use store_rules::{
    a_refused_change_leaves_nothing_behind, concurrent_accounts_get_distinct_aids,
    concurrent_demotions_keep_an_admin, revocation_and_last_access_never_fail_each_other,
    the_verifier_is_the_one_its_record_carries,
};
use token_tree::{
    last_admin_user_is_kept, rotation_keeps_the_revocation_tree, user_changes_reach_tokens,
};
use wire::{role_grants_are_recorded_with_their_grantor, work_wire_fields_round_trip};
use worker_credentials::worker_credentials_hash_lookup_names_and_revocation;

/// Expands to one `#[tokio::test]` per conformance case, named after the case. `$fresh` is
/// an async function `fn(case: &'static str) -> Option<(Arc<dyn Store>, G)>` returning a
/// fresh, empty, migrated store plus whatever must outlive the case (a temp dir), or `None`
/// to skip (it prints why). Invoke it inside a module, e.g.
/// `mod conformance { authd_store_tests::conformance_tests!(super::fresh); }`.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::__each_case!(@tests $fresh);
    };
}

/// The one list of cases (a new case is an `async fn(Arc<dyn Store>)` named here), expanded
/// by the `mode` given (`@tests` for a backend's test functions, `@wrappers` for the public
/// entry points they call).
#[doc(hidden)]
#[macro_export]
macro_rules! __each_case {
    (@go [@tests $fresh:path] $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some((store, _keep)) = $fresh(stringify!($case)).await else {
                    return;
                };
                $crate::cases::$case(store).await;
            }
        )*
    };
    (@go [@wrappers] $($case:ident),* $(,)?) => {
        /// Each case's entry point (what [`conformance_tests!`] calls).
        #[doc(hidden)]
        pub mod cases {
            use std::sync::Arc;

            use authd_core::store::Store;
            $(
                pub async fn $case(s: Arc<dyn Store>) {
                    super::$case(s).await;
                }
            )*
        }
    };
    ($($mode:tt)*) => {
        $crate::__each_case!(@go [$($mode)*]
            accounts_get_sequential_aids,
            users_are_scoped_and_emails_unique_per_account,
            tokens_round_trip_and_are_scoped,
            delete_cascades_to_created_tokens_only,
            list_paginates_in_id_order_with_filters,
            a_full_page_comes_with_its_lookahead_row,
            touches_keep_the_latest_time,
            bulk_token_insert,
            token_and_its_audit_entry_commit_together,
            mutations_commit_their_audit_entry_or_none,
            the_delete_cascade_audits_what_it_did,
            worker_credential_changes_commit_their_entry_or_none,
            key_ring_changes_commit_their_entry_or_none,
            concurrent_token_creations_fail_alone,
            settings_are_scoped_and_replaceable,
            entities_merge_and_are_scoped,
            entity_merges_follow_rfc7396_at_depth,
            rotation_caps_the_old_expiry_and_is_scoped,
            credentials_round_trip_and_are_scoped,
            credential_writes_compare_and_swap_the_generation,
            delete_cascade_detaches_and_stops_works,
            works_are_scoped_and_unique,
            data_keys_rotate_count_and_rewrap,
            data_key_seals_are_reserved_within_the_budget,
            data_keys_are_destroyed_only_when_retired_and_unused,
            master_rewrap_is_all_or_nothing,
            providers_are_scoped_and_unique,
            audit_is_scoped_filtered_and_paged,
            last_admin_user_is_kept,
            user_changes_reach_tokens,
            rotation_keeps_the_revocation_tree,
            role_grants_are_recorded_with_their_grantor,
            work_wire_fields_round_trip,
            concurrent_demotions_keep_an_admin,
            a_refused_change_leaves_nothing_behind,
            revocation_and_last_access_never_fail_each_other,
            concurrent_accounts_get_distinct_aids,
            the_verifier_is_the_one_its_record_carries,
            worker_credentials_hash_lookup_names_and_revocation,
            auths_version_moves_with_every_change_to_the_accounts_auths,
        );
    };
}

__each_case!(@wrappers);

/// Creates an account named `name`.
pub async fn account(s: &dyn Store, name: &str) -> AccountId {
    s.create_account(
        NewAccount {
            id: AccountId::generate(),
            name: name.into(),
            domain: String::new(),
            email: String::new(),
            timezone: "UTC".into(),
        },
        1_000,
    )
    .await
    .unwrap()
    .id
}

/// An API token's grant (the case fails if `a` is not a token).
pub(crate) fn grant(a: &authd_core::model::Auth) -> authd_core::model::TokenGrant {
    *a.token().expect("an API token")
}

/// A token record with the given parent.
pub fn new_token(parent: Option<AuthId>) -> NewToken {
    NewToken {
        id: AuthId::generate(),
        hash: rand_hash(),
        name: "n".into(),
        label: "l".into(),
        description: "d".into(),
        user_id: None,
        user_name: String::new(),
        parent_id: parent,
        scopes: RoleSet::of(&[Role::Data, Role::Observer]),
        expires_ms: Some(99_000),
        ttl_secs: Some(98),
        audit: None,
    }
}

fn rand_hash() -> [u8; 32] {
    let a = AuthId::generate();
    let b = AuthId::generate();
    let mut h = [0u8; 32];
    h[..16].copy_from_slice(a.as_bytes());
    h[16..].copy_from_slice(b.as_bytes());
    h
}

pub(crate) fn user(account: AccountId, email: &str) -> User {
    User {
        id: UserId::generate(),
        account_id: account,
        email: email.into(),
        name: "U".into(),
        roles: RoleSet::of(&[Role::Observer]),
        created_ms: 5,
        updated_ms: 5,
        last_logon_ms: None,
        granted_by: None,
        roles_updated_ms: 5,
    }
}

async fn accounts_get_sequential_aids(s: Arc<dyn Store>) {
    assert_eq!(s.count_accounts().await.unwrap(), 0);
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let ga = s.get_account(a).await.unwrap().unwrap();
    let gb = s.get_account(b).await.unwrap().unwrap();
    assert_eq!(gb.aid, ga.aid + 1);
    assert_eq!(s.get_account_by_aid(ga.aid).await.unwrap().unwrap().id, a);
    assert!(s
        .get_account(AccountId::generate())
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.count_accounts().await.unwrap(), 2);
    s.ping().await.unwrap();
}

async fn users_are_scoped_and_emails_unique_per_account(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let u = s.create_user(user(a, "x@y.z"), Audit::None).await.unwrap();
    assert!(matches!(
        s.create_user(user(a, "x@y.z"), Audit::None).await,
        Err(Error::Conflict(_))
    ));
    s.create_user(user(b, "x@y.z"), Audit::None).await.unwrap();
    assert!(s.get_user(b, u.id).await.unwrap().is_none());
    assert_eq!(s.get_user(a, u.id).await.unwrap().unwrap(), u);
    let patch = UserPatch {
        roles: Some(RoleSet::of(&[Role::Admin])),
        ..UserPatch::default()
    };
    assert!(s
        .update_user(b, u.id, patch.clone(), 9, Audit::None)
        .await
        .unwrap()
        .is_none());
    let (up, _) = s
        .update_user(a, u.id, patch, 9, Audit::None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.roles, RoleSet::of(&[Role::Admin]));
    assert_eq!(up.email, "x@y.z");
    assert_eq!(up.updated_ms, 9);
    // Another admin, so that deleting this one does not leave the account without one.
    let mut other = user(a, "o@y.z");
    other.roles = RoleSet::of(&[Role::Admin]);
    s.create_user(other, Audit::None).await.unwrap();
    assert!(s.delete_user(b, u.id, Audit::None).await.unwrap().is_none());
    assert!(s.delete_user(a, u.id, Audit::None).await.unwrap().is_some());
    assert!(s.get_user(a, u.id).await.unwrap().is_none());
}

async fn tokens_round_trip_and_are_scoped(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let t = new_token(None);
    let auth = s.create_token(a, t.clone(), 7).await.unwrap();
    assert_eq!(auth.id, t.id);
    assert_eq!(auth.kind(), AuthKind::ApiToken);
    assert_eq!(grant(&auth).scopes, t.scopes);
    assert_eq!(grant(&auth).expires_ms, Some(99_000));
    assert_eq!(grant(&auth).ttl_secs, Some(98));
    assert_eq!(auth.created_ms, 7);
    assert_eq!(auth.provider_id, authd_core::provider::LYTICS_PROVIDER_ID);
    assert_eq!(s.get_auth(a, t.id).await.unwrap().unwrap(), auth);
    assert!(s.get_auth(b, t.id).await.unwrap().is_none());
    let cred = s.token_verifier(t.id).await.unwrap().unwrap();
    assert_eq!(cred.hash, t.hash);
    assert_eq!(cred.account_id, a);
    assert_eq!(
        cred.account_aid,
        s.get_account(a).await.unwrap().unwrap().aid
    );
    assert!(s
        .token_verifier(AuthId::generate())
        .await
        .unwrap()
        .is_none());
    let (rc, ra) = s.token_record(t.id).await.unwrap().unwrap();
    assert_eq!(rc, cred);
    assert_eq!(ra, auth);
    assert!(s.token_record(AuthId::generate()).await.unwrap().is_none());
    assert!(matches!(
        s.create_token(a, t.clone(), 8).await,
        Err(Error::Conflict(_))
    ));
    assert!(s.delete_auth(b, t.id).await.unwrap().is_empty());
    assert!(s.get_auth(a, t.id).await.unwrap().is_some());
}

async fn delete_cascades_to_created_tokens_only(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let root = new_token(None);
    let child = new_token(Some(root.id));
    let grandchild = new_token(Some(child.id));
    let other = new_token(None);
    for t in [&root, &child, &grandchild, &other] {
        s.create_token(a, t.clone(), 1).await.unwrap();
    }
    let mut gone = s.delete_auth(a, root.id).await.unwrap();
    gone.sort();
    let mut want = vec![root.id, child.id, grandchild.id];
    want.sort();
    assert_eq!(gone, want);
    assert!(s.token_verifier(grandchild.id).await.unwrap().is_none());
    assert!(s.token_verifier(other.id).await.unwrap().is_some());
    assert!(s.delete_auth(a, root.id).await.unwrap().is_empty());
}

async fn list_paginates_in_id_order_with_filters(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let mut ids = vec![];
    for _ in 0..7 {
        let t = new_token(None);
        ids.push(t.id);
        s.create_token(a, t, 1).await.unwrap();
    }
    s.create_token(b, new_token(None), 1).await.unwrap();
    ids.sort();
    let mut seen = vec![];
    let mut after = None;
    loop {
        let page = s
            .list_auths(a, AuthFilter::default(), Page { after, limit: 3 })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|x| x.id);
        seen.extend(page.into_iter().map(|x| x.id));
    }
    assert_eq!(seen, ids);
    let creds = s
        .list_auths(
            a,
            AuthFilter {
                kind: Some(AuthKind::Credential),
                provider_id: None,
            },
            Page {
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert!(creds.is_empty());
    let lytics = s
        .list_auths(
            a,
            AuthFilter {
                kind: Some(AuthKind::ApiToken),
                provider_id: Some(authd_core::provider::LYTICS_PROVIDER_ID),
            },
            Page {
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(lytics.len(), 7);
}

/// The largest page plus its look-ahead row comes back whole (a store capping at the page
/// size instead would hide the next page), and no more than that.
async fn a_full_page_comes_with_its_lookahead_row(s: Arc<dyn Store>) {
    use authd_core::model::MAX_PAGE;
    let a = account(s.as_ref(), "a").await;
    let n = MAX_PAGE as usize + 5;
    let tokens: Vec<NewToken> = (0..n).map(|_| new_token(None)).collect();
    s.create_tokens(a, &tokens, 1).await.unwrap();
    let all = AuthFilter::default();
    let page = s
        .list_auths(a, all, Page::lookahead(None, MAX_PAGE))
        .await
        .unwrap();
    assert_eq!(page.len(), MAX_PAGE as usize + 1);
    let more = Page {
        after: None,
        limit: u32::MAX,
    };
    assert_eq!(
        s.list_auths(a, all, more).await.unwrap().len(),
        MAX_PAGE as usize + 1
    );
}

async fn touches_keep_the_latest_time(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let t = new_token(None);
    s.create_token(a, t.clone(), 1).await.unwrap();
    s.touch_tokens(&[(t.id, 50), (AuthId::generate(), 60)])
        .await
        .unwrap();
    s.touch_tokens(&[(t.id, 40)]).await.unwrap();
    let got = s.get_auth(a, t.id).await.unwrap().unwrap();
    assert_eq!(grant(&got).last_accessed_ms, Some(50));
}

async fn bulk_token_insert(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let batch: Vec<NewToken> = (0..250).map(|_| new_token(None)).collect();
    s.create_tokens(a, &batch, 3).await.unwrap();
    for t in batch.iter().step_by(50) {
        assert_eq!(s.token_verifier(t.id).await.unwrap().unwrap().hash, t.hash);
    }
}

async fn settings_are_scoped_and_replaceable(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    assert!(s.list_settings(a).await.unwrap().is_empty());
    let v = serde_json::json!(["email", "phone"]);
    s.put_setting(a, "schema_user_private_fields", &v, 10, Audit::None)
        .await
        .unwrap();
    let got = s
        .get_setting(a, "schema_user_private_fields")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.value, v);
    assert_eq!(got.updated_ms, 10);
    assert!(s
        .get_setting(b, "schema_user_private_fields")
        .await
        .unwrap()
        .is_none());
    let v2 = serde_json::json!(["10.0.0.0/8"]);
    s.put_setting(a, "api_ip_whitelist", &v2, 11, Audit::None)
        .await
        .unwrap();
    s.put_setting(
        a,
        "api_ip_whitelist",
        &serde_json::json!(["::1/128"]),
        12,
        Audit::None,
    )
    .await
    .unwrap();
    let all = s.list_settings(a).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].slug, "api_ip_whitelist");
    assert_eq!(all[0].value, serde_json::json!(["::1/128"]));
    assert_eq!(all[0].updated_ms, 12);
    assert!(!s
        .delete_setting(b, "api_ip_whitelist", Audit::None)
        .await
        .unwrap());
    assert!(s
        .delete_setting(a, "api_ip_whitelist", Audit::None)
        .await
        .unwrap());
    assert!(!s
        .delete_setting(a, "api_ip_whitelist", Audit::None)
        .await
        .unwrap());
    assert_eq!(s.list_settings(a).await.unwrap().len(), 1);
}

async fn entities_merge_and_are_scoped(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    s.upsert_entities(
        a,
        "user",
        &[
            (
                "u1".into(),
                serde_json::json!({"user_id": "u1", "email": "x@y.z", "age": 41}),
            ),
            (
                "u2".into(),
                serde_json::json!({"user_id": "u2", "email": "w@y.z"}),
            ),
            (
                "u1".into(),
                serde_json::json!({"user_id": "u1", "age": 42, "city": "Oslo"}),
            ),
        ],
        5,
        Audit::None,
    )
    .await
    .unwrap();
    let u1 = s
        .find_entity(a, "user", "user_id", "u1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        u1,
        serde_json::json!({"user_id": "u1", "email": "x@y.z", "age": 42, "city": "Oslo"})
    );
    // Any top-level field can be the lookup; numbers compare as text.
    assert_eq!(
        s.find_entity(a, "user", "age", "42")
            .await
            .unwrap()
            .unwrap()["user_id"],
        "u1"
    );
    assert_eq!(
        s.find_entity(a, "user", "email", "w@y.z")
            .await
            .unwrap()
            .unwrap()["user_id"],
        "u2"
    );
    assert!(s
        .find_entity(a, "user", "email", "nope")
        .await
        .unwrap()
        .is_none());
    assert!(s
        .find_entity(a, "user", "missing", "u1")
        .await
        .unwrap()
        .is_none());
    assert!(s
        .find_entity(b, "user", "user_id", "u1")
        .await
        .unwrap()
        .is_none());
    // A null removes a field (merge patch).
    s.upsert_entities(
        a,
        "user",
        &[("u1".into(), serde_json::json!({"city": null}))],
        6,
        Audit::None,
    )
    .await
    .unwrap();
    let u1 = s
        .find_entity(a, "user", "user_id", "u1")
        .await
        .unwrap()
        .unwrap();
    assert!(u1.get("city").is_none());
}

async fn rotation_caps_the_old_expiry_and_is_scoped(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let mut never = new_token(None);
    never.expires_ms = None;
    s.create_token(a, never.clone(), 1).await.unwrap();
    let next = new_token(None);
    assert!(s
        .rotate_token(b, never.id, next.clone(), 50, 2)
        .await
        .unwrap()
        .is_none());
    assert!(s.get_auth(b, next.id).await.unwrap().is_none());
    assert!(s.get_auth(a, next.id).await.unwrap().is_none());
    let created = s
        .rotate_token(a, never.id, next.clone(), 50, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created.id, next.id);
    assert_eq!(created.created_ms, 2);
    assert_eq!(
        grant(&s.get_auth(a, never.id).await.unwrap().unwrap()).expires_ms,
        Some(50)
    );
    // Rotation never extends an expiry.
    let later = new_token(None);
    s.rotate_token(a, never.id, later, 70, 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.token_verifier(never.id)
            .await
            .unwrap()
            .unwrap()
            .expires_ms,
        Some(50)
    );
}

async fn token_and_its_audit_entry_commit_together(s: Arc<dyn Store>) {
    use authd_core::audit::{AuditAction, AuditEntry, AuditFilter};
    let a = account(s.as_ref(), "a").await;
    let mut t = new_token(None);
    t.audit = Some(AuditEntry {
        seq: 0,
        at_ms: 5,
        account_id: Some(a),
        actor: "token:x".into(),
        action: AuditAction::TokenCreate,
        target: t.id.to_string(),
        outcome: "ok".into(),
        request_id: "r".into(),
        detail: "scopes data".into(),
    });
    s.create_token(a, t.clone(), 5).await.unwrap();
    let trail = s
        .list_audit(a, AuditFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].target, t.id.to_string());
    // A failed creation (duplicate id) leaves no audit entry behind.
    assert!(s.create_token(a, t.clone(), 6).await.is_err());
    assert_eq!(
        s.list_audit(a, AuditFilter::default(), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn concurrent_token_creations_fail_alone(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let dup = new_token(None);
    s.create_token(a, dup.clone(), 1).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        let t = if i == 17 {
            dup.clone()
        } else {
            new_token(None)
        };
        tasks.push(tokio::spawn(async move {
            (t.id, s.create_token(a, t, 2).await)
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let (id, r) = task.await.unwrap();
        match r {
            Ok(auth) => {
                assert_eq!(auth.id, id);
                assert!(s.token_verifier(id).await.unwrap().is_some());
                ok += 1;
            }
            Err(Error::Conflict(_)) => assert_eq!(id, dup.id),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, 39);
}
