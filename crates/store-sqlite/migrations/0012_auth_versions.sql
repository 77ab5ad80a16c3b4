-- A version per account that moves on every change to the account's auths or providers,
-- committed with the change (triggers, so no write path can forget it). `GET /api/auth`
-- answers a page from memory while the version it was rendered at is still the store's
-- (ARCHITECTURE.md, "List pages"). An account without a row is at version 0. No foreign
-- key: a row outliving its account is harmless, and a trigger must never fail a write.
-- SQLite has neither multi-event triggers nor trigger functions: one trigger per table and
-- event, with the same body.
CREATE TABLE auth_versions (
    account_id TEXT    NOT NULL PRIMARY KEY,
    version    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER auths_version_insert AFTER INSERT ON auths BEGIN
    INSERT INTO auth_versions (account_id, version) VALUES (NEW.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER auths_version_update AFTER UPDATE ON auths BEGIN
    INSERT INTO auth_versions (account_id, version) VALUES (NEW.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER auths_version_delete AFTER DELETE ON auths BEGIN
    INSERT INTO auth_versions (account_id, version) VALUES (OLD.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER providers_version_insert AFTER INSERT ON providers BEGIN
    INSERT INTO auth_versions (account_id, version) VALUES (NEW.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER providers_version_update AFTER UPDATE ON providers BEGIN
    INSERT INTO auth_versions (account_id, version) VALUES (NEW.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER providers_version_delete AFTER DELETE ON providers BEGIN
    INSERT INTO auth_versions (account_id, version) VALUES (OLD.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET version = version + 1;
END;
