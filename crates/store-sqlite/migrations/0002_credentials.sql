-- authd schema v2: encrypted credential secrets, the wrapped data keys of the key ring,
-- custom providers, works and the audit trail.

-- Wrapped data keys (never plaintext; wrapped under a KEK derived from the master key,
-- which is not in the database). Exactly one row is current once the ring is initialised.
CREATE TABLE data_keys (
    id          TEXT    PRIMARY KEY,
    created_ms  INTEGER NOT NULL,
    wrapped     BLOB    NOT NULL,
    current     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX data_keys_one_current ON data_keys (current) WHERE current = 1;

-- One row per encrypted field of a credential auth. The AAD of each ciphertext binds
-- (account_id, auth_id, field), so a row copied elsewhere fails to decrypt.
CREATE TABLE auth_secrets (
    account_id  TEXT    NOT NULL,
    auth_id     TEXT    NOT NULL REFERENCES auths(id) ON DELETE CASCADE,
    field       TEXT    NOT NULL,
    key_id      TEXT    NOT NULL REFERENCES data_keys(id),
    nonce       BLOB    NOT NULL,
    ciphertext  BLOB    NOT NULL,
    PRIMARY KEY (auth_id, field)
);
CREATE INDEX auth_secrets_by_key ON auth_secrets (key_id);

-- Custom providers, per account (the built-in catalog lives in code).
CREATE TABLE providers (
    id           TEXT    PRIMARY KEY,
    account_id   TEXT    NOT NULL REFERENCES accounts(id),
    slug         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    namespace    TEXT    NOT NULL DEFAULT '',
    description  TEXT    NOT NULL DEFAULT '',
    categories   TEXT    NOT NULL DEFAULT '[]',
    auth_method  TEXT    NOT NULL,
    hidden       INTEGER NOT NULL DEFAULT 0,
    no_auth      INTEGER NOT NULL DEFAULT 0,
    config       TEXT    NOT NULL DEFAULT '[]',
    created_ms   INTEGER NOT NULL,
    UNIQUE (account_id, slug)
);

CREATE TABLE works (
    id             TEXT    PRIMARY KEY,
    account_id     TEXT    NOT NULL REFERENCES accounts(id),
    user_id        TEXT,
    name           TEXT    NOT NULL DEFAULT '',
    description    TEXT    NOT NULL DEFAULT '',
    workflow       TEXT    NOT NULL,
    config         TEXT    NOT NULL,
    statuscode     TEXT    NOT NULL,
    status_reason  TEXT    NOT NULL DEFAULT '',
    created_ms     INTEGER NOT NULL,
    updated_ms     INTEGER NOT NULL,
    UNIQUE (account_id, workflow, config)
);
CREATE INDEX works_by_account ON works (account_id, id);

-- Which auths a work uses, in order.
CREATE TABLE work_auths (
    account_id  TEXT    NOT NULL,
    work_id     TEXT    NOT NULL REFERENCES works(id) ON DELETE CASCADE,
    pos         INTEGER NOT NULL,
    auth_id     TEXT    NOT NULL,
    PRIMARY KEY (work_id, pos)
);
CREATE INDEX work_auths_by_auth ON work_auths (account_id, auth_id);

-- Append-only audit trail. Never holds a secret.
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    account_id  TEXT,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL DEFAULT '',
    outcome     TEXT    NOT NULL,
    request_id  TEXT    NOT NULL DEFAULT '',
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_account ON audit (account_id, seq);
