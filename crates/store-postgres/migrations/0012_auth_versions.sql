-- A version per account that moves on every change to the account's auths or providers,
-- committed with the change (triggers, so no write path can forget it). `GET /api/auth`
-- answers a page from memory while the version it was rendered at is still the store's
-- (ARCHITECTURE.md, "List pages"); every node reads it, so a change on one node is seen by
-- the next list on any node. An account without a row is at version 0. No foreign key: a
-- row outliving its account is harmless, and a trigger must never fail a write.
--
-- The triggers run once per statement, not per row: a batch of tokens (one INSERT) or a
-- last-access flush (one UPDATE) bumps each account it touched once, and in ascending
-- account order, the same lock order in every statement, so two writers can never lock
-- two versions in opposite orders (the other lock orders: store-sql's `auths.rs`).
-- PostgreSQL allows a transition table only on a single-event trigger, hence three per table.
CREATE TABLE auth_versions (
    account_id TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    version    BIGINT NOT NULL
);
CREATE FUNCTION authd_bump_auth_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO auth_versions AS v (account_id, version)
        SELECT DISTINCT account_id, 1 FROM changed ORDER BY account_id
        ON CONFLICT (account_id) DO UPDATE SET version = v.version + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER auths_version_insert AFTER INSERT ON auths REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION authd_bump_auth_versions();
CREATE TRIGGER auths_version_update AFTER UPDATE ON auths REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION authd_bump_auth_versions();
CREATE TRIGGER auths_version_delete AFTER DELETE ON auths REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION authd_bump_auth_versions();
CREATE TRIGGER providers_version_insert AFTER INSERT ON providers
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION authd_bump_auth_versions();
CREATE TRIGGER providers_version_update AFTER UPDATE ON providers
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION authd_bump_auth_versions();
CREATE TRIGGER providers_version_delete AFTER DELETE ON providers
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION authd_bump_auth_versions();
