//! Revocation never fails under load on PostgreSQL (issue 10, defect 9): three nodes share a
//! database; a parent token has 2,000 children, all in use on every node, so every node's
//! touch flusher writes batches of ~2,000 last-access times while the parent is deleted. Each
//! round's DELETE must answer 204, every child must then be refused on every node, and no
//! node may lose a last-access batch. Needs `AUTHD_TEST_PG_URL` (see `postgres.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authd_core::ids::AuthId;
use authd_core::model::NewToken;
use authd_core::roles::{Role, RoleSet};
use authd_core::token::ApiToken;
use authd_crypto::MasterKey;
use authd_store_postgres::testing::{fresh_database, server_url};
use serde_json::json;

use crate::helpers::{start, TestApp, T0};
use crate::postgres::{node_config, CLUSTER};

const CHILDREN: usize = 2_000;
const ROUNDS: usize = 3;
/// Concurrent requests per node during a sweep.
const WORKERS: usize = 8;

/// Three nodes on one fresh database; every node's `token` is a new account's admin token.
async fn three_nodes(server: &str) -> (MasterKey, Vec<TestApp>) {
    let url = fresh_database(server).await.unwrap();
    let key = MasterKey::generate();
    let mut nodes = vec![];
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let mut config = node_config(&url, &key, &dir);
        // This test is about lock order, not latency on a busy host: a deadlock surfaces as an
        // error (40P01, after PostgreSQL's 1 s deadlock_timeout and the bounded retries), never
        // as a timeout, so a generous deadline keeps a loaded CI machine from failing it.
        config.db_timeout_ms = 10_000;
        nodes.push(start(config, dir).await);
    }
    let s = &nodes[0].app_state;
    let admin = authd::provision::account(
        s.store.as_ref(),
        &key.token_hasher(),
        s.clock.as_ref(),
        "demo",
    )
    .await
    .unwrap();
    for n in &mut nodes {
        n.token = admin.token.expose().to_owned();
    }
    (key, nodes)
}

/// A fresh parent (minted over HTTP on node 0) and `CHILDREN` tokens it created, written in
/// one batch; returns the parent's id and the children's token texts.
async fn family(key: &MasterKey, a: &TestApp) -> (String, Vec<String>) {
    let (pid, _) = a
        .create_token(&a.token, json!({ "scopes": ["admin"], "name": "parent" }))
        .await;
    let principal = a.app_state.tokens.authenticate(&a.token).await.unwrap();
    let hasher = key.token_hasher();
    let parent = AuthId::parse(&pid).unwrap();
    let (mut texts, mut rows) = (vec![], vec![]);
    for _ in 0..CHILDREN {
        let t = ApiToken::generate(AuthId::generate());
        rows.push(NewToken {
            id: t.id(),
            hash: hasher.hash(t.expose().as_bytes()),
            name: "child".into(),
            label: "child".into(),
            description: String::new(),
            user_id: None,
            user_name: String::new(),
            parent_id: Some(parent),
            scopes: RoleSet::of(&[Role::Admin]),
            expires_ms: None,
            ttl_secs: None,
            audit: None,
        });
        texts.push(t.expose().to_owned());
    }
    let store = &a.app_state.store;
    store
        .create_tokens(principal.account_id, &rows, T0)
        .await
        .unwrap();
    (pid, texts)
}

/// Uses every token on `node` (`WORKERS` at a time); returns how many were refused (401).
/// Any other answer than 200/401 fails the test.
async fn sweep(node: &TestApp, tokens: &Arc<Vec<String>>) -> usize {
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (client, url) = (node.client.clone(), node.url("/api/account"));
        let (tokens, next, refused) = (tokens.clone(), next.clone(), refused.clone());
        set.spawn(async move {
            while let Some(t) = tokens.get(next.fetch_add(1, Ordering::Relaxed)) {
                let r = client
                    .get(&url)
                    .header("Authorization", t)
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => {}
                    401 => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("token check answered {other}"),
                }
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    refused.load(Ordering::Relaxed)
}

/// Uses every token on every node at once; returns each node's refusals.
async fn sweep_all(nodes: &[TestApp], tokens: &Arc<Vec<String>>) -> [usize; 3] {
    let (a, b, c) = tokio::join!(
        sweep(&nodes[0], tokens),
        sweep(&nodes[1], tokens),
        sweep(&nodes[2], tokens)
    );
    [a, b, c]
}

/// Polls until every node refuses every token (the revocation bound is 1 s; this allows 5).
async fn assert_refused_everywhere(nodes: &[TestApp], tokens: &Arc<Vec<String>>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let refused = sweep_all(nodes, tokens).await;
        if refused == [tokens.len(); 3] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "children still accepted: {refused:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_cascade_commits_while_every_node_records_last_access() {
    let Some(server) = server_url("a_large_cascade_commits_while_every_node_records_last_access")
    else {
        return;
    };
    let _shared = CLUSTER.read().await;
    let (key, nodes) = three_nodes(&server).await;
    for round in 0..ROUNDS {
        let (parent, children) = family(&key, &nodes[0]).await;
        let children = Arc::new(children);
        // In use on every node: each loads every child and queues a touch for it, so the
        // next flush on each node writes a batch of ~2,000 last-access times.
        assert_eq!(sweep_all(&nodes, &children).await, [0; 3]);
        // A second wave of uses (new touches: a second later) runs while the parent is
        // deleted, so the cascade meets the flushers' batches of every node.
        for n in &nodes {
            n.clock.advance_ms(1_500);
        }
        let delete = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            nodes[0]
                .delete(&format!("/api/auth/{parent}"), &nodes[0].token)
                .await
        };
        let (_, del) = tokio::join!(sweep_all(&nodes, &children), delete);
        assert_eq!(del.status.as_u16(), 204, "round {round}: {}", del.body);
        assert_refused_everywhere(&nodes, &children).await;
    }
    // Stopping flushes what is left; then no node may have dropped a last-access batch.
    let states: Vec<_> = nodes.iter().map(|n| n.app_state.clone()).collect();
    for n in nodes {
        n.stop().await;
    }
    for (i, s) in states.iter().enumerate() {
        assert_eq!(
            s.tokens.lost_touch_batches(),
            0,
            "node {i} lost last-access batches"
        );
    }
}
