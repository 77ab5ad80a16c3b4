-- `auths` becomes a WITHOUT ROWID table clustered on its id: a point read by id (every token
-- cache miss, every last-access write) walks one B-tree instead of the id's index and then
-- the table. With 1,000,000 tokens that was two leaf pages read from disk per miss instead
-- of one (see BENCHMARKS.md, issue 12). Same columns, same order, same indexes.
--
-- SQLite cannot change a table's kind in place: the table is rebuilt (after
-- https://www.sqlite.org/lang_altertable.html#otheralter), rows copied in id order so the new
-- table's pages are full. The migration runs in one transaction (sqlx's), where foreign keys
-- cannot be switched off, so dropping the old table cascades to `auth_secrets` (the only
-- table referring to `auths`): its rows are kept aside and put back once the new table has
-- the old one's name (the reference, by name, then resolves to it). A failure anywhere
-- leaves everything as it was.
CREATE TABLE auth_secrets_kept AS SELECT account_id, auth_id, field, key_id, nonce, ciphertext
    FROM auth_secrets;
CREATE TABLE auths_clustered (
    id               TEXT    NOT NULL PRIMARY KEY,
    account_id       TEXT    NOT NULL REFERENCES accounts(id),
    kind             TEXT    NOT NULL,
    provider_id      TEXT    NOT NULL,
    name             TEXT    NOT NULL DEFAULT '',
    label            TEXT    NOT NULL DEFAULT '',
    description      TEXT    NOT NULL DEFAULT '',
    user_id          TEXT,
    user_name        TEXT    NOT NULL DEFAULT '',
    parent_id        TEXT,
    scopes           INTEGER NOT NULL DEFAULT 0,
    expires_ms       INTEGER,
    ttl_secs         INTEGER,
    token_hash       BLOB,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    last_accessed_ms INTEGER,
    rotated_to       TEXT,
    cred_incarnation TEXT    NOT NULL DEFAULT '',
    cred_generation  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO auths_clustered (id, account_id, kind, provider_id, name, label, description,
    user_id, user_name, parent_id, scopes, expires_ms, ttl_secs, token_hash, created_ms,
    updated_ms, last_accessed_ms, rotated_to, cred_incarnation, cred_generation)
SELECT id, account_id, kind, provider_id, name, label, description, user_id, user_name,
    parent_id, scopes, expires_ms, ttl_secs, token_hash, created_ms, updated_ms,
    last_accessed_ms, rotated_to, cred_incarnation, cred_generation
FROM auths ORDER BY id;
DROP TABLE auths;
ALTER TABLE auths_clustered RENAME TO auths;
CREATE INDEX auths_by_account ON auths (account_id, id);
CREATE INDEX auths_by_parent ON auths (parent_id);
INSERT INTO auth_secrets (account_id, auth_id, field, key_id, nonce, ciphertext)
    SELECT account_id, auth_id, field, key_id, nonce, ciphertext FROM auth_secrets_kept;
DROP TABLE auth_secrets_kept;
