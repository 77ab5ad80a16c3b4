-- Mirrors store-sqlite's 0010_invalidations. PostgreSQL delivers token-cache invalidations with
-- LISTEN/NOTIFY (`notify.rs`), so it needs no table; this migration only keeps the numbering in
-- step.
SELECT 1;
