//! The two backends' migrations are kept in step: the same numbered files exist in
//! `store-sqlite/migrations` and `store-postgres/migrations`. (Runs without a server.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

fn names(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect()
}

#[test]
fn postgres_migrations_mirror_the_sqlite_ones() {
    let pg = names(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"));
    let sqlite = names(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store-sqlite/migrations"
    ));
    assert!(!pg.is_empty());
    assert_eq!(
        pg, sqlite,
        "every SQLite migration needs its PostgreSQL twin with the same file name (and back)"
    );
}
