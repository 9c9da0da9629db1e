-- Keys get an id to be named by (listing, revoking, rotating), an optional expiry (set at
-- creation, or by a rotation's grace period), a revocation time and the time they were last used.
-- Existing keys get random version-4 UUIDs.
ALTER TABLE api_keys ADD COLUMN id TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
ALTER TABLE api_keys ADD COLUMN revoked_at TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
ALTER TABLE app_keys ADD COLUMN id TEXT;
ALTER TABLE app_keys ADD COLUMN expires_at TEXT;
ALTER TABLE app_keys ADD COLUMN revoked_at TEXT;
ALTER TABLE app_keys ADD COLUMN last_used_at TEXT;

UPDATE api_keys SET id = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
    substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));
UPDATE app_keys SET id = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
    substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));

CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE UNIQUE INDEX app_keys_id ON app_keys (id);
