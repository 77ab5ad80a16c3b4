-- The SQLite twin of this migration clusters `auths` on its id (WITHOUT ROWID), so a point
-- read by id walks one B-tree. PostgreSQL has no such table kind: a row is always found
-- through the primary key's index and then the heap, and the index-only alternatives would
-- copy every column into the index. Nothing to change here; the file keeps the two
-- backends' migration lists in step.
SELECT 1;
