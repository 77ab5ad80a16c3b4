-- A version per account that moves on every change to the account's auths or providers,
-- committed with the change (triggers, so no write path can forget it). `GET /api/auth`
-- answers a page from memory while the version it was rendered at is still the store's
-- (ARCHITECTURE.md, "List pages"); every node reads it, so a change on one node is seen by
-- the next list on any node. An account without a row is at version 0. No foreign key: a
-- row outliving its account is harmless, and a trigger must never fail a write.
CREATE TABLE auth_versions (
    account_id TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    version    BIGINT NOT NULL
);
CREATE FUNCTION authd_bump_auth_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO auth_versions AS v (account_id, version)
        VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.account_id ELSE NEW.account_id END, 1)
        ON CONFLICT (account_id) DO UPDATE SET version = v.version + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER auths_version AFTER INSERT OR UPDATE OR DELETE ON auths
    FOR EACH ROW EXECUTE FUNCTION authd_bump_auth_version();
CREATE TRIGGER providers_version AFTER INSERT OR UPDATE OR DELETE ON providers
    FOR EACH ROW EXECUTE FUNCTION authd_bump_auth_version();
