-- authd schema v1: accounts, users, auths (API tokens; credentials share the table).
CREATE TABLE accounts (
    aid         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    domain      TEXT    NOT NULL DEFAULT '',
    email       TEXT    NOT NULL DEFAULT '',
    timezone    TEXT    NOT NULL DEFAULT 'UTC',
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);

CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    account_id    TEXT    NOT NULL REFERENCES accounts(id),
    email         TEXT    NOT NULL,
    name          TEXT    NOT NULL DEFAULT '',
    roles         INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    last_logon_ms INTEGER,
    UNIQUE (account_id, email)
);

CREATE TABLE auths (
    id               TEXT    PRIMARY KEY,
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
    last_accessed_ms INTEGER
);
CREATE INDEX auths_by_account ON auths (account_id, id);
CREATE INDEX auths_by_parent ON auths (parent_id);
