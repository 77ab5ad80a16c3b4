//! Conformance cases for the finer points of entity upserts and lookups, where the backends'
//! JSON engines differ (SQLite `json_patch` and text, PostgreSQL jsonb and a merge function):
//! RFC 7396 merges at depth, nulls in new entities, non-object bodies, and how non-string
//! scalars compare as text.

use authd_core::audit::Audit;
use std::sync::Arc;

use authd_core::store::Store;
use serde_json::json;

use crate::account;

pub(crate) async fn entity_merges_follow_rfc7396_at_depth(s: Arc<dyn Store>) {
    let a = account(s.as_ref(), "a").await;
    let up = |key: &'static str, body: serde_json::Value, at: i64| {
        let s = s.clone();
        async move {
            s.upsert_entities(a, "user", &[(key.to_owned(), body)], at, Audit::None)
                .await
                .unwrap()
        }
    };
    let find = |field: &'static str, value: &'static str| {
        let s = s.clone();
        async move { s.find_entity(a, "user", field, value).await.unwrap() }
    };
    // A new entity drops its null members, at any depth (a patch applied to `{}`).
    up(
        "u1",
        json!({"id": "u1", "gone": null, "addr": {"city": "Oslo", "zip": null}, "tags": [1, null]}),
        1,
    )
    .await;
    assert_eq!(
        find("id", "u1").await.unwrap(),
        json!({"id": "u1", "addr": {"city": "Oslo"}, "tags": [1, null]})
    );
    // Nested objects merge; nested nulls remove; arrays and scalars replace; a scalar
    // replaced by an object becomes that object (nulls inside it dropped).
    up(
        "u1",
        json!({"addr": {"zip": "0150", "city": null}, "tags": ["x"], "id": "u1",
               "n": {"a": {"b": 1, "c": null}}}),
        2,
    )
    .await;
    up(
        "u1",
        json!({"n": {"a": {"d": 2.5}}, "flag": true, "off": false}),
        3,
    )
    .await;
    assert_eq!(
        find("id", "u1").await.unwrap(),
        json!({"id": "u1", "addr": {"zip": "0150"}, "tags": ["x"],
               "n": {"a": {"b": 1, "d": 2.5}}, "flag": true, "off": false})
    );
    // Scalars compare as SQLite's text cast: numbers as written, booleans as 1/0; objects,
    // arrays and nulls never match.
    assert!(find("flag", "1").await.is_some());
    assert!(find("off", "0").await.is_some());
    assert!(find("flag", "true").await.is_none());
    assert!(find("tags", "x").await.is_none());
    assert!(find("addr", "{}").await.is_none());
    up(
        "u2",
        json!({"id": "u2", "score": 7.25, "big": 12345678901_i64}),
        4,
    )
    .await;
    assert_eq!(find("score", "7.25").await.unwrap()["id"], "u2");
    assert_eq!(find("big", "12345678901").await.unwrap()["id"], "u2");
    // Field names are single top-level keys (a dot is not a path).
    up("u3", json!({"id": "u3", "a.b": "dotted"}), 5).await;
    assert_eq!(find("a.b", "dotted").await.unwrap()["id"], "u3");
    // Lookups return the first match in key order.
    up("u0", json!({"id": "u0", "score": 7.25}), 6).await;
    assert_eq!(find("score", "7.25").await.unwrap()["id"], "u0");
}
