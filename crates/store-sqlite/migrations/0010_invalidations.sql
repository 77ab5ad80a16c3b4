-- Token-cache invalidations for other processes on the same SQLite file (the SQLite analogue of
-- PostgreSQL's NOTIFY): every transaction that revokes or changes API tokens appends one row
-- listing the affected auth ids; running servers poll for rows past the last one they saw
-- (`store-sqlite/src/feed.rs`). Only recent rows are kept.
CREATE TABLE invalidations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ids TEXT NOT NULL
);
