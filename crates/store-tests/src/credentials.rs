//! Conformance cases for credentials, data keys, works, custom providers and the audit
//! trail. Secrets here are opaque byte strings: the store never interprets them.

use std::sync::Arc;

use authd_core::audit::{Audit, AuditAction, AuditEntry, AuditFilter};
use authd_core::credential::{
    CredentialPatch, DataKeyRecord, KeyDestroy, NewCredential, SealGrant, StoredSecret,
};
use authd_core::ids::{AccountId, AuthId, ProviderId, WorkId};
use authd_core::model::{AuthKind, Page};
use authd_core::provider::{AuthMethod, ConfigField, Provider};
use authd_core::store::Store;
use authd_core::work::{Work, WorkStatus};
use authd_core::Error;

use crate::{account, new_token};

fn key(id: &str, created_ms: i64) -> DataKeyRecord {
    DataKeyRecord {
        id: id.into(),
        created_ms,
        wrapped: vec![7; 60],
        current: false,
    }
}

fn secret(field: &str, key_id: &str, byte: u8) -> StoredSecret {
    StoredSecret {
        field: field.into(),
        key_id: key_id.into(),
        nonce: vec![byte; 12],
        ciphertext: vec![byte; 24],
    }
}

pub(crate) fn cred(fields: &[&str], key_id: &str) -> NewCredential {
    NewCredential {
        id: AuthId::generate(),
        provider_id: ProviderId::generate(),
        name: "n".into(),
        label: "l".into(),
        description: "d".into(),
        user_id: None,
        user_name: String::new(),
        parent_id: None,
        incarnation: "inc-1".into(),
        secrets: fields.iter().map(|f| secret(f, key_id, 1)).collect(),
    }
}

async fn with_key(s: &dyn Store) -> &'static str {
    assert!(s
        .add_data_key(key("k_a", 1), true, true, Audit::None)
        .await
        .unwrap());
    "k_a"
}

pub(crate) fn work(
    account: AccountId,
    workflow: &str,
    auths: Vec<AuthId>,
    status: WorkStatus,
) -> Work {
    Work {
        id: WorkId::generate(),
        account_id: account,
        user_id: None,
        name: "w".into(),
        description: String::new(),
        workflow: workflow.into(),
        config: "{}".into(),
        auth_ids: auths,
        status,
        status_reason: String::new(),
        state_version: 0,
        tag: String::new(),
        hidden: false,
        verbose_logging: false,
        runtime: String::new(),
        workflow_id: String::new(),
        created_ms: 1,
        updated_ms: 1,
    }
}

/// Credentials round-trip with their secrets, are tenant-scoped and patch atomically.
pub(crate) async fn credentials_round_trip_and_are_scoped(s: Arc<dyn Store>) {
    let k = with_key(s.as_ref()).await;
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let c = cred(&["config.apikey", "config.domain"], k);
    let auth = s
        .create_credential(a, c.clone(), 5, Audit::None)
        .await
        .unwrap();
    assert_eq!(auth.kind(), AuthKind::Credential);
    assert_eq!(auth.provider_id, c.provider_id);
    assert!(matches!(
        s.create_credential(b, c.clone(), 6, Audit::None).await,
        Err(Error::Conflict(_))
    ));
    let rec = s.get_credential(a, c.id).await.unwrap().unwrap();
    assert_eq!(rec.secrets, c.secrets);
    assert_eq!((rec.incarnation.as_str(), rec.generation), ("inc-1", 1));
    assert!(s.get_credential(b, c.id).await.unwrap().is_none());
    assert_eq!(s.get_auth(a, c.id).await.unwrap().unwrap(), auth);
    // A token is not a credential.
    let t = new_token(None);
    s.create_token(a, t.clone(), 1).await.unwrap();
    assert!(s.get_credential(a, t.id).await.unwrap().is_none());
    assert!(s
        .update_credential(a, t.id, CredentialPatch::default(), 9, Audit::None)
        .await
        .unwrap()
        .is_none());

    let patch = CredentialPatch {
        name: Some("renamed".into()),
        expected_generation: 1,
        incarnation: "inc-1".into(),
        secrets: vec![secret("config.apikey", k, 2), secret("oauthtoken", k, 3)],
        ..CredentialPatch::default()
    };
    assert!(s
        .update_credential(b, c.id, patch.clone(), 9, Audit::None)
        .await
        .unwrap()
        .is_none());
    let up = s
        .update_credential(a, c.id, patch, 9, Audit::None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.name, "renamed");
    assert_eq!(up.label, "l");
    assert_eq!(up.updated_ms, 9);
    let rec = s.get_credential(a, c.id).await.unwrap().unwrap();
    let fields: Vec<_> = rec.secrets.iter().map(|x| x.field.as_str()).collect();
    assert_eq!(fields, ["config.apikey", "oauthtoken"]);
    assert_eq!(rec.secrets[0].nonce, vec![2; 12]);
    assert_eq!(rec.generation, 2);
}

/// A credential write applies only on top of the generation it was sealed for: a write
/// sealed for an older generation is a `Conflict` and changes nothing.
pub(crate) async fn credential_writes_compare_and_swap_the_generation(s: Arc<dyn Store>) {
    let k = with_key(s.as_ref()).await;
    let a = account(s.as_ref(), "a").await;
    let c = cred(&["config.apikey"], k);
    s.create_credential(a, c.clone(), 5, Audit::None)
        .await
        .unwrap();
    let write = |generation: i64, byte: u8| CredentialPatch {
        expected_generation: generation,
        incarnation: "inc-2".into(),
        secrets: vec![secret("config.apikey", k, byte)],
        ..CredentialPatch::default()
    };
    assert!(s
        .update_credential(a, c.id, write(1, 2), 6, Audit::None)
        .await
        .unwrap()
        .is_some());
    assert!(matches!(
        s.update_credential(a, c.id, write(1, 3), 7, Audit::None)
            .await,
        Err(Error::Conflict(_))
    ));
    let rec = s.get_credential(a, c.id).await.unwrap().unwrap();
    assert_eq!((rec.incarnation.as_str(), rec.generation), ("inc-2", 2));
    assert_eq!(rec.secrets, vec![secret("config.apikey", k, 2)]);
    assert_eq!(rec.auth.updated_ms, 6);
}

/// Deleting an auth detaches it from works, stops live ones and destroys its secrets, in
/// one go; a repeat deletes nothing; other tenants are untouched.
pub(crate) async fn delete_cascade_detaches_and_stops_works(s: Arc<dyn Store>) {
    let k = with_key(s.as_ref()).await;
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let c1 = cred(&["config.apikey"], k);
    let c2 = cred(&["config.apikey"], k);
    s.create_credential(a, c1.clone(), 1, Audit::None)
        .await
        .unwrap();
    s.create_credential(a, c2.clone(), 1, Audit::None)
        .await
        .unwrap();
    let live = s
        .create_work(
            work(a, "w1", vec![c1.id, c2.id], WorkStatus::Running),
            Audit::None,
        )
        .await
        .unwrap();
    let done = s
        .create_work(
            work(a, "w2", vec![c1.id], WorkStatus::Completed),
            Audit::None,
        )
        .await
        .unwrap();
    let other = s
        .create_work(
            work(a, "w3", vec![c2.id], WorkStatus::Sleeping),
            Audit::None,
        )
        .await
        .unwrap();
    assert!(s
        .delete_auth_cascade(b, c1.id, "nope", 2, Audit::None)
        .await
        .unwrap()
        .deleted
        .is_empty());
    let out = s
        .delete_auth_cascade(a, c1.id, "gone", 7, Audit::None)
        .await
        .unwrap();
    assert_eq!(out.deleted, vec![c1.id]);
    assert_eq!(out.stopped_works, vec![live.id]);
    let mut detached = out.detached_works.clone();
    detached.sort();
    let mut want = vec![live.id, done.id];
    want.sort();
    assert_eq!(detached, want);
    let w = s.get_work(a, live.id).await.unwrap().unwrap();
    assert_eq!(w.auth_ids, vec![c2.id]);
    assert_eq!(w.status, WorkStatus::Paused);
    assert_eq!(w.status_reason, "gone");
    assert_eq!(w.updated_ms, 7);
    assert_eq!(w.state_version, 1, "a status change is counted");
    let w = s.get_work(a, done.id).await.unwrap().unwrap();
    assert!(w.auth_ids.is_empty());
    assert_eq!(w.status, WorkStatus::Completed);
    assert_eq!(w.state_version, 0, "a detach alone is no status change");
    let w = s.get_work(a, other.id).await.unwrap().unwrap();
    assert_eq!(w.status, WorkStatus::Sleeping);
    assert_eq!(w.state_version, 0);
    assert!(s.get_credential(a, c1.id).await.unwrap().is_none());
    assert_eq!(
        s.secret_counts_by_key().await.unwrap(),
        vec![("k_a".to_owned(), 1)]
    );
    assert!(s
        .delete_auth_cascade(a, c1.id, "again", 8, Audit::None)
        .await
        .unwrap()
        .deleted
        .is_empty());
}

/// Works are scoped, reject foreign auths and duplicate configs, and paginate by id.
pub(crate) async fn works_are_scoped_and_unique(s: Arc<dyn Store>) {
    let k = with_key(s.as_ref()).await;
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let cb = cred(&["config.apikey"], k);
    s.create_credential(b, cb.clone(), 1, Audit::None)
        .await
        .unwrap();
    assert!(matches!(
        s.create_work(work(a, "x", vec![cb.id], WorkStatus::Sleeping), Audit::None)
            .await,
        Err(Error::Invalid(_))
    ));
    assert!(s
        .list_works(
            a,
            Page {
                after: None,
                limit: 10
            }
        )
        .await
        .unwrap()
        .is_empty());
    let w = s
        .create_work(work(a, "x", vec![], WorkStatus::Sleeping), Audit::None)
        .await
        .unwrap();
    assert!(matches!(
        s.create_work(work(a, "x", vec![], WorkStatus::Running), Audit::None)
            .await,
        Err(Error::Conflict(_))
    ));
    s.create_work(work(b, "x", vec![cb.id], WorkStatus::Sleeping), Audit::None)
        .await
        .unwrap();
    assert!(s.get_work(b, w.id).await.unwrap().is_none());
    let mut ids = vec![w.id];
    for i in 0..4 {
        ids.push(
            s.create_work(
                work(a, &format!("y{i}"), vec![], WorkStatus::Paused),
                Audit::None,
            )
            .await
            .unwrap()
            .id,
        );
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.list_works(a, Page { after, limit: 2 }).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|x| x.id);
        seen.extend(page.into_iter().map(|x| x.id));
    }
    assert_eq!(seen, ids);
    assert!(!s.delete_work(b, w.id, Audit::None).await.unwrap());
    assert!(s.delete_work(a, w.id, Audit::None).await.unwrap());
    assert!(s.get_work(a, w.id).await.unwrap().is_none());
}

/// Data keys: bootstrap once, rotate, count, walk old secrets, compare-and-swap rewrites.
pub(crate) async fn data_keys_rotate_count_and_rewrap(s: Arc<dyn Store>) {
    assert!(s.current_data_key_id().await.unwrap().is_none());
    assert!(s
        .add_data_key(key("k_a", 1), true, true, Audit::None)
        .await
        .unwrap());
    assert!(!s
        .add_data_key(key("k_x", 1), true, true, Audit::None)
        .await
        .unwrap());
    assert_eq!(
        s.current_data_key_id().await.unwrap().as_deref(),
        Some("k_a")
    );
    let a = account(s.as_ref(), "a").await;
    let c = cred(&["config.a", "config.b", "config.c"], "k_a");
    s.create_credential(a, c.clone(), 1, Audit::None)
        .await
        .unwrap();
    assert!(s
        .add_data_key(key("k_b", 2), true, false, Audit::None)
        .await
        .unwrap());
    assert_eq!(
        s.current_data_key_id().await.unwrap().as_deref(),
        Some("k_b")
    );
    let keys = s.list_data_keys().await.unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (k.id.as_str(), k.current))
            .collect::<Vec<_>>(),
        [("k_a", false), ("k_b", true)]
    );
    assert_eq!(keys[0].wrapped, vec![7; 60]);
    let first = s.secrets_not_under("k_b", None, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].account_id, a);
    assert_eq!(first[0].auth_id, c.id);
    let last = first.last().unwrap();
    let rest = s
        .secrets_not_under("k_b", Some((last.auth_id, last.secret.field.clone())), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].secret.field, "config.c");
    // Compare-and-swap: succeeds once, then the old value no longer matches.
    let at = &first[0];
    assert!(s
        .replace_secret(at, secret(&at.secret.field, "k_b", 9))
        .await
        .unwrap());
    assert!(!s
        .replace_secret(at, secret(&at.secret.field, "k_b", 8))
        .await
        .unwrap());
    assert_eq!(
        s.secret_counts_by_key().await.unwrap(),
        vec![("k_a".to_owned(), 2), ("k_b".to_owned(), 1)]
    );
}

/// Seal reservations: granted only under the current key, never past the budget, counted;
/// a spent key is rotated once by compare-and-swap.
pub(crate) async fn data_key_seals_are_reserved_within_the_budget(s: Arc<dyn Store>) {
    assert!(s
        .add_data_key(key("k_a", 1), true, true, Audit::None)
        .await
        .unwrap());
    let grant = |granted, seals| Some(SealGrant { granted, seals });
    assert_eq!(s.reserve_seals("k_a", 2, 5).await.unwrap(), grant(2, 2));
    assert_eq!(s.reserve_seals("k_a", 4, 5).await.unwrap(), grant(3, 5));
    assert_eq!(s.reserve_seals("k_a", 1, 5).await.unwrap(), grant(0, 5));
    assert_eq!(s.reserve_seals("k_missing", 1, 5).await.unwrap(), None);
    assert!(s
        .rotate_data_key_from("k_a", key("k_b", 2), Audit::None)
        .await
        .unwrap());
    // A second process that found k_a spent does not rotate again.
    assert!(!s
        .rotate_data_key_from("k_a", key("k_c", 3), Audit::None)
        .await
        .unwrap());
    assert_eq!(
        s.current_data_key_id().await.unwrap().as_deref(),
        Some("k_b")
    );
    assert_eq!(s.list_data_keys().await.unwrap().len(), 2);
    // A retired key grants nothing: new seals only ever go under the current key.
    assert_eq!(s.reserve_seals("k_a", 1, 50).await.unwrap(), None);
    assert_eq!(s.reserve_seals("k_b", 1, 5).await.unwrap(), grant(1, 1));
    assert_eq!(
        s.seal_counts_by_key().await.unwrap(),
        vec![("k_a".to_owned(), 5), ("k_b".to_owned(), 1)]
    );
}

/// Destroying a data key: refused while current or referenced (with the count), then done.
pub(crate) async fn data_keys_are_destroyed_only_when_retired_and_unused(s: Arc<dyn Store>) {
    assert!(s
        .add_data_key(key("k_a", 1), true, true, Audit::None)
        .await
        .unwrap());
    let a = account(s.as_ref(), "a").await;
    let c = cred(&["config.a", "config.b"], "k_a");
    s.create_credential(a, c.clone(), 1, Audit::None)
        .await
        .unwrap();
    assert_eq!(
        s.destroy_data_key("k_a", Audit::None).await.unwrap(),
        KeyDestroy::Current
    );
    assert!(s
        .add_data_key(key("k_b", 2), true, false, Audit::None)
        .await
        .unwrap());
    assert_eq!(
        s.destroy_data_key("k_a", Audit::None).await.unwrap(),
        KeyDestroy::Referenced(2)
    );
    assert_eq!(
        s.destroy_data_key("k_nope", Audit::None).await.unwrap(),
        KeyDestroy::NotFound
    );
    for at in s.secrets_not_under("k_b", None, 10).await.unwrap() {
        let new = secret(&at.secret.field, "k_b", 9);
        assert!(s.replace_secret(&at, new).await.unwrap());
    }
    assert_eq!(
        s.destroy_data_key("k_a", Audit::None).await.unwrap(),
        KeyDestroy::Destroyed
    );
    assert_eq!(
        s.list_data_keys()
            .await
            .unwrap()
            .iter()
            .map(|k| k.id.as_str())
            .collect::<Vec<_>>(),
        ["k_b"]
    );
    assert_eq!(
        s.destroy_data_key("k_a", Audit::None).await.unwrap(),
        KeyDestroy::NotFound
    );
    assert_eq!(
        s.get_credential(a, c.id)
            .await
            .unwrap()
            .unwrap()
            .secrets
            .len(),
        2
    );
}

/// Custom providers are per account with unique slugs.
pub(crate) async fn providers_are_scoped_and_unique(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let p = Provider {
        id: ProviderId::generate(),
        slug: "our_provider".into(),
        name: "Ours".into(),
        namespace: "ours".into(),
        description: "d".into(),
        categories: vec!["x".into()],
        auth_method: AuthMethod::OAuth2,
        auth_description: "Sign in with Ours".into(),
        hidden: false,
        no_auth: false,
        config: vec![ConfigField {
            name: "apikey".into(),
            label: "Key".into(),
            kind: "password".into(),
            optional: true,
        }],
    };
    assert_eq!(
        s.create_provider(a, p.clone(), 1, Audit::None)
            .await
            .unwrap(),
        p
    );
    let mut dup = p.clone();
    dup.id = ProviderId::generate();
    assert!(matches!(
        s.create_provider(a, dup.clone(), 1, Audit::None).await,
        Err(Error::Conflict(_))
    ));
    s.create_provider(b, dup, 1, Audit::None).await.unwrap();
    assert_eq!(s.get_provider(a, "our_provider").await.unwrap().unwrap(), p);
    assert_eq!(
        s.get_provider(a, &p.id.to_string()).await.unwrap().unwrap(),
        p
    );
    assert!(s
        .get_provider(b, &p.id.to_string())
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.list_providers(a).await.unwrap(), vec![p]);
}

/// The audit trail is append-only, scoped, newest first, filtered and paged.
pub(crate) async fn audit_is_scoped_filtered_and_paged(s: Arc<dyn Store>) {
    const X: AuditAction = AuditAction::WorkCreate;
    const Y: AuditAction = AuditAction::WorkDelete;
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let entry = |acct: Option<AccountId>, action: AuditAction, target: &str| AuditEntry {
        seq: 0,
        at_ms: 3,
        account_id: acct,
        actor: "token:x".into(),
        action,
        target: target.into(),
        outcome: "ok".into(),
        request_id: "r".into(),
        detail: "d".into(),
    };
    let mut seqs = Vec::new();
    for i in 0..5 {
        seqs.push(
            s.append_audit(entry(
                Some(a),
                if i % 2 == 0 { X } else { Y },
                &i.to_string(),
            ))
            .await
            .unwrap(),
        );
    }
    s.append_audit(entry(Some(b), X, "0")).await.unwrap();
    s.append_audit(entry(None, X, "0")).await.unwrap();
    let all = s
        .list_audit(a, AuditFilter::default(), None, 100)
        .await
        .unwrap();
    let got: Vec<i64> = all.iter().map(|e| e.seq).collect();
    seqs.reverse();
    assert_eq!(got, seqs);
    assert_eq!(all[0].detail, "d");
    assert_eq!(all[0].account_id, Some(a));
    let page = s
        .list_audit(a, AuditFilter::default(), Some(seqs[1]), 2)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), &seqs[2..4]);
    let xs = s
        .list_audit(
            a,
            AuditFilter {
                action: Some(X.as_str().into()),
                ..AuditFilter::default()
            },
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(xs.len(), 3);
    let one = s
        .list_audit(
            a,
            AuditFilter {
                action: Some(X.as_str().into()),
                target: Some("2".into()),
                actor: Some("token:x".into()),
            },
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
}

/// The version of an account's auths moves with every change to them or to the account's
/// providers (what a page of `GET /api/auth` shows), never with a read, and never with
/// another account's change.
pub(crate) async fn auths_version_moves_with_every_change_to_the_accounts_auths(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let b = account(s.as_ref(), "b").await;
    let mut seen = s.auths_version(a).await.unwrap();
    let mut moved = |now: u64, what: &str| {
        assert!(now > seen, "{what}: the version stayed at {seen}");
        seen = now;
    };
    let t = new_token(None);
    s.create_token(a, t.clone(), 1).await.unwrap();
    moved(s.auths_version(a).await.unwrap(), "a token created");
    s.create_tokens(a, &[new_token(None), new_token(None)], 2)
        .await
        .unwrap();
    moved(s.auths_version(a).await.unwrap(), "tokens created in bulk");
    s.touch_tokens(&[(t.id, 50)]).await.unwrap();
    moved(s.auths_version(a).await.unwrap(), "a last access written");
    let p = Provider {
        id: ProviderId::generate(),
        slug: "versioned".into(),
        name: "Versioned".into(),
        namespace: "v".into(),
        description: "d".into(),
        categories: vec![],
        auth_method: AuthMethod::Config,
        auth_description: String::new(),
        hidden: false,
        no_auth: false,
        config: vec![],
    };
    s.create_provider(a, p, 3, Audit::None).await.unwrap();
    moved(s.auths_version(a).await.unwrap(), "a provider created");
    // Reads and another account's changes leave it.
    let before = s.auths_version(a).await.unwrap();
    s.get_auth(a, t.id).await.unwrap();
    s.token_record(t.id).await.unwrap();
    s.list_auths(a, Default::default(), Page::lookahead(None, 10))
        .await
        .unwrap();
    s.create_token(b, new_token(None), 4).await.unwrap();
    assert_eq!(s.auths_version(a).await.unwrap(), before);
    assert!(s.auths_version(b).await.unwrap() > 0);
    assert_eq!(s.delete_auth(a, t.id).await.unwrap(), vec![t.id]);
    moved(s.auths_version(a).await.unwrap(), "a token deleted");
}
