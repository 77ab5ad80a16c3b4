//! Runs the backend-agnostic conformance suite against PostgreSQL (one test per case, each on
//! a fresh database), and proves that concurrent start-ups migrate safely and that deletions
//! (plain and credential cascades) and rotations are announced on the invalidation channel. Needs
//! `AUTHD_TEST_PG_URL`; skips with a reason without it (fails under `CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use authd_core::audit::Audit;
use std::sync::Arc;
use std::time::Duration;

use authd_core::invalidation::{Invalidation, InvalidationFeed, InvalidationSink};
use authd_core::store::{AccountStore, AuthStore, Store};
use authd_store_postgres::testing::{fresh_database, server_url};
use authd_store_postgres::PgStore;
use tokio::sync::mpsc;

/// A fresh, migrated PostgreSQL store on its own new database for one case; `None` (the case
/// skips with a printed reason) without `AUTHD_TEST_PG_URL`, a failure under `CI=true`.
async fn fresh(case: &'static str) -> Option<(Arc<dyn Store>, ())> {
    let server = server_url(case)?;
    let url = fresh_database(&server).await.unwrap();
    let s = PgStore::open(&url).await.unwrap();
    Some((Arc::new(s) as Arc<dyn Store>, ()))
}

/// The conformance suite: one test per case, named after it.
mod conformance {
    authd_store_tests::conformance_tests!(super::fresh);
}

#[tokio::test]
async fn concurrent_start_ups_migrate_once_and_all_succeed() {
    let Some(server) = server_url("concurrent_start_ups_migrate_once_and_all_succeed") else {
        return;
    };
    let url = fresh_database(&server).await.unwrap();
    let opens = (0..8).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { PgStore::open(&url).await })
    });
    let mut stores = vec![];
    for h in opens {
        stores.push(h.await.unwrap().unwrap());
    }
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(stores[0].pool())
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert_eq!(applied, i64::try_from(files).unwrap());
    for s in &stores {
        assert_eq!(s.count_accounts().await.unwrap(), 0);
    }
}

struct ChannelSink(mpsc::UnboundedSender<Invalidation>);

impl InvalidationSink for ChannelSink {
    fn invalidate(&self, msg: Invalidation) {
        let _ = self.0.send(msg);
    }
}

#[tokio::test]
async fn deletions_are_announced_to_every_listener_after_commit() {
    let Some(server) = server_url("deletions_are_announced_to_every_listener_after_commit") else {
        return;
    };
    let url = fresh_database(&server).await.unwrap();
    let writer = PgStore::open(&url).await.unwrap();
    let reader = PgStore::open(&url).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let feed = reader.feed();
    assert!(!feed.trusted_at_start());
    let follow = tokio::spawn(async move { feed.follow(Arc::new(ChannelSink(tx))).await });
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(first.unwrap(), Some(Invalidation::Resumed));

    let a = authd_store_tests::account(&writer, "a").await;
    let root = authd_store_tests::new_token(None);
    let child = authd_store_tests::new_token(Some(root.id));
    writer.create_token(a, root.clone(), 1).await.unwrap();
    writer.create_token(a, child.clone(), 1).await.unwrap();
    let mut gone = writer.delete_auth(a, root.id).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    let Some(Invalidation::Auths(mut ids)) = got.unwrap() else {
        panic!("expected auth ids");
    };
    ids.sort();
    gone.sort();
    assert_eq!(ids, gone);
    assert_eq!(ids.len(), 2);
    // Deleting nothing announces nothing.
    assert!(writer.delete_auth(a, root.id).await.unwrap().is_empty());
    let quiet = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    assert!(quiet.is_err(), "unexpected message {quiet:?}");
    follow.abort();
}

#[tokio::test]
async fn the_credential_cascade_and_rotation_are_announced_after_commit() {
    use authd_core::credential::NewCredential;
    use authd_core::store::CredentialStore;
    use authd_core::store::RotationStore;
    let Some(server) = server_url("the_credential_cascade_and_rotation_are_announced_after_commit")
    else {
        return;
    };
    let url = fresh_database(&server).await.unwrap();
    let writer = PgStore::open(&url).await.unwrap();
    let reader = PgStore::open(&url).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let feed = reader.feed();
    let follow = tokio::spawn(async move { feed.follow(Arc::new(ChannelSink(tx))).await });
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(first.unwrap(), Some(Invalidation::Resumed));
    let next = |rx: &mut mpsc::UnboundedReceiver<Invalidation>| {
        let got = rx.try_recv();
        got.ok()
    };

    let a = authd_store_tests::account(&writer, "a").await;
    let root = authd_store_tests::new_token(None);
    writer.create_token(a, root.clone(), 1).await.unwrap();
    let cred = authd_core::ids::AuthId::generate();
    writer
        .create_credential(
            a,
            NewCredential {
                id: cred,
                provider_id: authd_core::provider::builtin("mailgun").unwrap().id,
                name: "m".into(),
                label: String::new(),
                description: String::new(),
                user_id: None,
                user_name: String::new(),
                parent_id: Some(root.id),
                incarnation: "i".into(),
                secrets: vec![],
            },
            2,
            Audit::None,
        )
        .await
        .unwrap();
    // Rotation: the old id, once the transaction commits.
    let new = authd_store_tests::new_token(None);
    writer
        .rotate_token(a, root.id, new.clone(), 50, 3)
        .await
        .unwrap()
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(got.unwrap(), Some(Invalidation::Auths(vec![root.id])));
    // A rotation of nothing (wrong account) announces nothing.
    let b = authd_store_tests::account(&writer, "b").await;
    assert!(writer
        .rotate_token(b, root.id, authd_store_tests::new_token(None), 1, 4)
        .await
        .unwrap()
        .is_none());
    // The cascade: every deleted id. Since issue 10 rotation hands what the old token created
    // (here the credential) to the new token, and the old token hangs under it: deleting the
    // new one takes all three.
    let out = writer
        .delete_auth_cascade(a, new.id, "deleted", 5, Audit::None)
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    let Some(Invalidation::Auths(mut ids)) = got.unwrap() else {
        panic!("expected auth ids");
    };
    ids.sort();
    let mut want = out.deleted.clone();
    want.sort();
    assert_eq!(ids, want);
    assert!(ids.contains(&cred));
    // Deleting nothing announces nothing.
    assert!(writer
        .delete_auth_cascade(a, root.id, "deleted", 6, Audit::None)
        .await
        .unwrap()
        .deleted
        .is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(next(&mut rx), None);
    follow.abort();
}
