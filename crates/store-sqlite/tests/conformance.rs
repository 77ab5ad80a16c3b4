//! Runs the backend-agnostic conformance suite against SQLite (a fresh file per case).

use std::sync::Arc;

use authd_core::store::Store;
use authd_store_sqlite::SqliteStore;

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let dir = Arc::new(dir);
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let factory = move || {
        let dir = dir.clone();
        let n = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            let path = dir.path().join(format!("case{n}.db"));
            let s = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
            Arc::new(s) as Arc<dyn Store>
        }) as _
    };
    authd_store_tests::run_all(&factory).await;
}
