-- Keys get an id to be named by (listing, revoking, rotating), an optional expiry (set at
-- creation, or by a rotation's grace period), a revocation time and the time they were last used.
ALTER TABLE api_keys ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN revoked_at timestamptz,
    ADD COLUMN last_used_at timestamptz;
ALTER TABLE app_keys ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN revoked_at timestamptz,
    ADD COLUMN last_used_at timestamptz;
CREATE UNIQUE INDEX api_keys_id ON api_keys (id);
CREATE UNIQUE INDEX app_keys_id ON app_keys (id);
