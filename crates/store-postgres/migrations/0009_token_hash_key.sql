-- PostgreSQL twin of store-sqlite/migrations/0009_token_hash_key.sql: the API-token hash key,
-- wrapped under the KEK derived from the master key (never plaintext). A store holds at most
-- one. Being able to unwrap it is how authd checks at start that a master key opens this
-- store, and a master-key rotation rewraps it (so every token hash stays valid).
CREATE TABLE token_hash_key (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    wrapped  BYTEA   NOT NULL
);
