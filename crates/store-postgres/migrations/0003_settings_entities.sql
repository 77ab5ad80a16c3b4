-- authd schema v3 (PostgreSQL twin of store-sqlite/migrations/0003_settings_entities.sql):
-- account settings and entity (user profile) data.
CREATE TABLE account_settings (
    account_id  TEXT    COLLATE "C" NOT NULL REFERENCES accounts(id),
    slug        TEXT    COLLATE "C" NOT NULL,
    value       TEXT    NOT NULL,
    updated_ms  BIGINT  NOT NULL,
    PRIMARY KEY (account_id, slug)
);

CREATE TABLE entities (
    account_id  TEXT    COLLATE "C" NOT NULL REFERENCES accounts(id),
    kind        TEXT    COLLATE "C" NOT NULL,
    key         TEXT    COLLATE "C" NOT NULL,
    body        JSONB   NOT NULL,
    created_ms  BIGINT  NOT NULL,
    updated_ms  BIGINT  NOT NULL,
    PRIMARY KEY (account_id, kind, key)
);

-- RFC 7396 JSON merge patch, as SQLite's json_patch(target, patch): a non-object patch
-- replaces the target; otherwise each member of the patch is removed from the target when
-- null and merged into it (recursively) when not. Used by entity upserts so the merge
-- happens inside the INSERT … ON CONFLICT statement, atomically per row.
CREATE FUNCTION authd_json_merge_patch(target JSONB, patch JSONB) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k TEXT;
    v JSONB;
    result JSONB;
BEGIN
    IF patch IS NULL OR jsonb_typeof(patch) <> 'object' THEN
        RETURN patch;
    END IF;
    IF target IS NULL OR jsonb_typeof(target) <> 'object' THEN
        result := '{}'::jsonb;
    ELSE
        result := target;
    END IF;
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(patch) AS e LOOP
        IF jsonb_typeof(v) = 'null' THEN
            result := result - k;
        ELSE
            result := result || jsonb_build_object(k, authd_json_merge_patch(result -> k, v));
        END IF;
    END LOOP;
    RETURN result;
END
$$;
