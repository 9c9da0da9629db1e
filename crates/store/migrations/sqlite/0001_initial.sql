-- Ids are lowercase hyphenated UUIDs; timestamps are UTC text of fixed width with microseconds
-- (2026-01-31T09:15:00.123456Z), so text order is time order and a value reads back exactly.

-- Facts about the database itself. `master_key_check` is a value sealed with the master key and
-- checked at start-up, so that a wrong key is refused before any secret is read or written with it.
CREATE TABLE store_meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE orgs (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
) STRICT;

-- Only SHA-256 hashes of keys are stored.
CREATE TABLE api_keys (
    hash       BLOB PRIMARY KEY NOT NULL,
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE app_keys (
    hash       BLOB PRIMARY KEY NOT NULL,
    org_id     TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- A JSON array of scope names, or NULL for every permission of the org.
    scopes     TEXT,
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX api_keys_org_id ON api_keys (org_id);
CREATE INDEX app_keys_org_id ON app_keys (org_id);

CREATE TABLE integration_configs (
    id                 TEXT PRIMARY KEY NOT NULL,
    org_id             TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    integration_type   TEXT NOT NULL,
    name               TEXT NOT NULL,
    domain             TEXT NOT NULL,
    enabled            INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    state              TEXT NOT NULL,
    settings           TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    modified_at        TEXT NOT NULL,
    -- AES-256-GCM: a fresh 96-bit nonce per write; the associated data is the org and config id.
    secrets_nonce      BLOB NOT NULL,
    secrets_ciphertext BLOB NOT NULL
) STRICT;

CREATE INDEX integration_configs_org_type ON integration_configs (org_id, integration_type);
CREATE INDEX integration_configs_org_created ON integration_configs (org_id, created_at, id);
