-- authd schema v4: what Lytics answers carry and v3 did not store (docs/lytics-compat.md).

-- A user's membership of its account: who granted the current roles and when. Rows from
-- before v4 have no known grantor; their roles date from their last update.
ALTER TABLE users ADD COLUMN granted_by TEXT;
ALTER TABLE users ADD COLUMN roles_updated_ms INTEGER NOT NULL DEFAULT 0;
UPDATE users SET roles_updated_ms = updated_ms;

-- Works: the workflow id given at creation ('' = by name only), the client-set fields, and
-- the count of status changes.
ALTER TABLE works ADD COLUMN workflow_id TEXT NOT NULL DEFAULT '';
ALTER TABLE works ADD COLUMN tag TEXT NOT NULL DEFAULT '';
ALTER TABLE works ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
ALTER TABLE works ADD COLUMN verbose_logging INTEGER NOT NULL DEFAULT 0;
ALTER TABLE works ADD COLUMN runtime TEXT NOT NULL DEFAULT '';
ALTER TABLE works ADD COLUMN work_state_version INTEGER NOT NULL DEFAULT 0;

-- Custom providers: how to authenticate, for people.
ALTER TABLE providers ADD COLUMN auth_description TEXT NOT NULL DEFAULT '';
