-- Named worker credentials (PostgreSQL twin of store-sqlite/migrations/0008_worker_credentials.sql)
-- for the worker plaintext listener (operator-level, not tenant data). Only an HMAC of the
-- secret is kept, under its own key derived from the master key (HKDF label
-- `authd/worker-credential/v1`, not the API-token key). `accounts` is a JSON array of account
-- ids the credential may read, NULL for every account. Revoked rows stay for the record; a
-- name is unique among the credentials not revoked.
CREATE TABLE worker_credentials (
    id          TEXT    COLLATE "C" PRIMARY KEY,
    name        TEXT    COLLATE "C" NOT NULL,
    hash        BYTEA   NOT NULL UNIQUE,
    accounts    TEXT,
    created_ms  BIGINT  NOT NULL,
    revoked_ms  BIGINT
);
CREATE UNIQUE INDEX worker_credentials_live_name ON worker_credentials (name)
    WHERE revoked_ms IS NULL;
