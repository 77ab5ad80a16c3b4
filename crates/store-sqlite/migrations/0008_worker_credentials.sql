-- Named worker credentials for the worker plaintext listener (operator-level, not tenant data).
-- Only an HMAC of the secret is kept, under its own key derived from the master key (HKDF label
-- `authd/worker-credential/v1`, not the API-token key). `accounts` is a JSON array of account
-- ids the credential may read, NULL for every account. Revoked rows stay for the record; a
-- name is unique among the credentials not revoked.
CREATE TABLE worker_credentials (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    hash        BLOB    NOT NULL UNIQUE,
    accounts    TEXT,
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);
CREATE UNIQUE INDEX worker_credentials_live_name ON worker_credentials (name)
    WHERE revoked_ms IS NULL;
