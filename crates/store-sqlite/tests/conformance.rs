//! Runs the backend-agnostic conformance suite against SQLite: one test per case (named after
//! it, under `conformance::`), each on a fresh database file in its own temp dir.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use authd_core::store::Store;
use authd_store_sqlite::SqliteStore;

/// A fresh, migrated SQLite store for one case, and the temp dir holding its file (kept until
/// the case ends).
async fn fresh(_case: &'static str) -> Option<(Arc<dyn Store>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let s = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    Some((Arc::new(s) as Arc<dyn Store>, dir))
}

mod conformance {
    authd_store_tests::conformance_tests!(super::fresh);
}
