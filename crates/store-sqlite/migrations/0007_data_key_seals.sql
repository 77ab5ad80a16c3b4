-- Seals made under each data key (AES-GCM with random 96-bit nonces is safe for 2^32 seals
-- per key, NIST SP 800-38D). The key manager reserves seals here, in their own committed
-- transaction, before it makes them, so the count never falls behind the seals made; a key
-- is replaced before the count reaches the configured budget.
-- Keys created before this migration start from the number of fields they still seal: a
-- lower bound of what they sealed (rotate once after upgrading if that matters).
ALTER TABLE data_keys ADD COLUMN seals INTEGER NOT NULL DEFAULT 0;
UPDATE data_keys SET seals = (SELECT COUNT(*) FROM auth_secrets s WHERE s.key_id = data_keys.id);
