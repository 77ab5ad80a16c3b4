-- Credential integrity beyond the row: every credential's secret rows are sealed together
-- under one binding (account, auth, provider, incarnation, generation, the set of field
-- names; see docs/credentials.md). The incarnation is random per create, so a credential
-- re-created at the same id never repeats a binding; the generation is incremented by every
-- write. Rows of credentials written before this migration keep generation 0 and their
-- per-field binding until their next write (or `authd keys rewrap`) reseals them.
ALTER TABLE auths ADD COLUMN cred_incarnation TEXT NOT NULL DEFAULT '';
ALTER TABLE auths ADD COLUMN cred_generation INTEGER NOT NULL DEFAULT 0;
