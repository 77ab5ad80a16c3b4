//! Pagination is exact at the largest page (issue 10, defect 2): every list endpoint walked at
//! `limit=1000` over more than 1,000 items yields each item exactly once, and `_next` is
//! present exactly when more remain — including when the last page is exactly full.

use std::collections::HashSet;

use authd_core::audit::{Audit, AuditAction, AuditEntry};
use authd_core::ids::{AccountId, AuthId, UserId, WorkId};
use authd_core::model::{NewToken, User, MAX_PAGE};
use authd_core::roles::{Role, RoleSet};
use authd_core::work::{Work, WorkStatus};

use crate::helpers::*;

/// Walks `path` (a list endpoint) at `limit=1000`; returns every item's `key` in order and
/// asserts the `_next` rule page by page.
async fn walk(app: &TestApp, path: &str, key: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let cursor = next
            .as_deref()
            .map(|n| format!("&_next={n}"))
            .unwrap_or_default();
        let r = app
            .get(&format!("{path}?limit={MAX_PAGE}{cursor}"), &app.token)
            .await;
        let page = r.ok(200).as_array().unwrap().clone();
        assert!(
            page.len() <= MAX_PAGE as usize,
            "{path}: page over the limit"
        );
        seen.extend(page.iter().map(|i| match &i[key] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }));
        next = r
            .body
            .get("_next")
            .and_then(|n| n.as_str())
            .map(str::to_owned);
        if next.is_none() {
            return seen;
        }
        // `_next` only after a full page, and never an empty page after it.
        assert_eq!(
            page.len(),
            MAX_PAGE as usize,
            "{path}: _next after a short page"
        );
        assert!(seen.len() < 100_000, "{path}: the walk never ends");
    }
}

/// Asserts the walk of `path` saw every one of `seeded` exactly once, nothing twice, and
/// `total` items in all.
async fn assert_walk(app: &TestApp, path: &str, key: &str, seeded: &[String], total: usize) {
    let seen = walk(app, path, key).await;
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "{path}: an item was listed twice"
    );
    assert_eq!(seen.len(), total, "{path}: items missed");
    assert!(
        seeded.iter().all(|s| distinct.contains(s)),
        "{path}: a seeded item missed"
    );
}

/// A distinct (meaningless) token hash per seeded token.
fn seed_hash(i: usize) -> [u8; 32] {
    let mut h = [7u8; 32];
    h[..8].copy_from_slice(&(i as u64).to_le_bytes());
    h
}

async fn account_of(app: &TestApp) -> AccountId {
    app.app_state
        .tokens
        .authenticate(&app.token)
        .await
        .unwrap()
        .account_id
}

#[tokio::test]
async fn auths_walk_exactly_at_the_largest_page() {
    let app = spawn_app().await;
    let before = walk(&app, "/api/auth", "id").await.len();
    // Exactly two full pages: the second must come without `_next`.
    let n = 2 * MAX_PAGE as usize - before;
    let tokens: Vec<NewToken> = (0..n)
        .map(|i| NewToken {
            id: AuthId::generate(),
            hash: seed_hash(i),
            name: format!("seed {i}"),
            label: String::new(),
            description: String::new(),
            user_id: None,
            user_name: String::new(),
            parent_id: None,
            scopes: RoleSet::of(&[Role::Data]),
            expires_ms: None,
            ttl_secs: None,
            audit: None,
        })
        .collect();
    let seeded: Vec<String> = tokens.iter().map(|t| t.id.to_string()).collect();
    let s = app.app_state.store.clone();
    s.create_tokens(account_of(&app).await, &tokens, T0)
        .await
        .unwrap();
    assert_walk(&app, "/api/auth", "id", &seeded, 2 * MAX_PAGE as usize).await;
}

#[tokio::test]
async fn users_walk_exactly_at_the_largest_page() {
    let app = spawn_app().await;
    let before = walk(&app, "/api/user", "id").await.len();
    let account_id = account_of(&app).await;
    let mut seeded = vec![];
    for i in 0..=MAX_PAGE {
        let u = User {
            id: UserId::generate(),
            account_id,
            email: format!("u{i}@example.com"),
            name: format!("user {i}"),
            roles: RoleSet::of(&[Role::Observer]),
            created_ms: T0,
            updated_ms: T0,
            last_logon_ms: None,
            granted_by: None,
            roles_updated_ms: T0,
        };
        seeded.push(u.id.to_string());
        app.app_state
            .store
            .create_user(u, Audit::None)
            .await
            .unwrap();
    }
    assert_walk(&app, "/api/user", "id", &seeded, before + seeded.len()).await;
}

#[tokio::test]
async fn works_walk_exactly_at_the_largest_page() {
    let app = spawn_app().await;
    let account_id = account_of(&app).await;
    let mut seeded = vec![];
    for i in 0..=MAX_PAGE {
        let w = Work {
            id: WorkId::generate(),
            account_id,
            user_id: None,
            name: format!("work {i}"),
            description: String::new(),
            workflow: "mailgun_export".into(),
            workflow_id: String::new(),
            config: format!("{{\"n\":{i}}}"),
            auth_ids: vec![],
            status: WorkStatus::Sleeping,
            status_reason: String::new(),
            state_version: 0,
            tag: String::new(),
            hidden: false,
            verbose_logging: false,
            runtime: String::new(),
            created_ms: T0,
            updated_ms: T0,
        };
        seeded.push(w.id.to_string());
        app.app_state
            .store
            .create_work(w, Audit::None)
            .await
            .unwrap();
    }
    assert_walk(&app, "/api/work", "id", &seeded, seeded.len()).await;
}

#[tokio::test]
async fn audit_trail_walks_exactly_at_the_largest_page() {
    let app = spawn_app().await;
    let before = walk(&app, "/api/audit", "seq").await.len();
    let account_id = account_of(&app).await;
    let mut seeded = vec![];
    for i in 0..=MAX_PAGE {
        let seq = app
            .app_state
            .store
            .append_audit(AuditEntry {
                seq: 0,
                at_ms: T0,
                account_id: Some(account_id),
                actor: "cli".into(),
                action: AuditAction::DevSeedTokens,
                target: i.to_string(),
                outcome: "ok".into(),
                request_id: String::new(),
                detail: String::new(),
            })
            .await
            .unwrap();
        seeded.push(seq.to_string());
    }
    assert_walk(&app, "/api/audit", "seq", &seeded, before + seeded.len()).await;
}
