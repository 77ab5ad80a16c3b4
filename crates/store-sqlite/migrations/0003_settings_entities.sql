-- authd schema v3: account settings and entity (user profile) data.
CREATE TABLE account_settings (
    account_id  TEXT    NOT NULL REFERENCES accounts(id),
    slug        TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (account_id, slug)
);

CREATE TABLE entities (
    account_id  TEXT    NOT NULL REFERENCES accounts(id),
    kind        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (account_id, kind, key)
);
