-- The whole schema of the PostgreSQL backend; the SQLite one reached the same tables in steps.
--
-- Native types: ids are `uuid`, timestamps `timestamptz` (microseconds, the precision ctxsync
-- writes, so a value reads back exactly), hashes and ciphertexts `bytea`. JSON is kept as `text`:
-- the store never looks inside it, and text stores it exactly as written without parsing it on
-- every write.
--
-- Text keys use the "C" collation: byte order (the order SQLite uses, so listings and their
-- cursors page the same way on both backends), cheaper to compare than a language's rules, and
-- immune to the index corruption a changed operating-system collation can cause.

-- Facts about the database itself. `master_key_check` is a value sealed with the master key and
-- checked at start-up, so that a wrong key is refused before any secret is read or written with it.
CREATE TABLE store_meta (
    name  text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE orgs (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

-- Only SHA-256 hashes of keys are stored.
CREATE TABLE api_keys (
    hash       bytea PRIMARY KEY,
    org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL
);

CREATE TABLE app_keys (
    hash       bytea PRIMARY KEY,
    org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- A JSON array of scope names, or NULL for every permission of the org.
    scopes     text,
    created_at timestamptz NOT NULL
);

CREATE INDEX api_keys_org_id ON api_keys (org_id);
CREATE INDEX app_keys_org_id ON app_keys (org_id);

CREATE TABLE integration_configs (
    id                 uuid PRIMARY KEY,
    org_id             uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    integration_type   text NOT NULL,
    name               text NOT NULL,
    domain             text NOT NULL,
    enabled            boolean NOT NULL,
    state              text NOT NULL,
    -- A JSON object.
    settings           text NOT NULL,
    created_at         timestamptz NOT NULL,
    modified_at        timestamptz NOT NULL,
    -- AES-256-GCM: a fresh 96-bit nonce per write; the associated data is the org and config id.
    secrets_nonce      bytea NOT NULL,
    secrets_ciphertext bytea NOT NULL
);

CREATE INDEX integration_configs_org_type ON integration_configs (org_id, integration_type);
CREATE INDEX integration_configs_org_created ON integration_configs (org_id, created_at, id);

-- One row per user, group or device of a config. `data` is the normalized entity (JSON), `raw`
-- what the source returned; `digest` (SHA-256 of both) lets a run skip unchanged entities.
CREATE TABLE entities (
    config_id     uuid NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    kind          text COLLATE "C" NOT NULL,
    source_id     text COLLATE "C" NOT NULL,
    org_id        uuid NOT NULL,
    status        text,
    login         text,
    display_name  text,
    data          text NOT NULL,
    raw           text NOT NULL,
    digest        bytea NOT NULL,
    first_seen_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (config_id, kind, source_id)
);

CREATE INDEX entities_org ON entities (org_id, config_id, kind, source_id);

-- Every lowercase identifier an entity answers to (source id, login, emails, device name), for
-- filters by email and for enrichment lookups of many identifiers at once.
CREATE TABLE entity_identifiers (
    org_id     uuid NOT NULL,
    identifier text COLLATE "C" NOT NULL,
    config_id  uuid NOT NULL,
    kind       text COLLATE "C" NOT NULL,
    source_id  text COLLATE "C" NOT NULL,
    PRIMARY KEY (org_id, identifier, config_id, kind, source_id),
    FOREIGN KEY (config_id, kind, source_id) REFERENCES entities (config_id, kind, source_id) ON DELETE CASCADE
);

CREATE INDEX entity_identifiers_entity ON entity_identifiers (config_id, kind, source_id);

CREATE TABLE memberships (
    config_id     uuid NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    group_id      text COLLATE "C" NOT NULL,
    member_kind   text COLLATE "C" NOT NULL,
    member_id     text COLLATE "C" NOT NULL,
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (config_id, group_id, member_kind, member_id)
);

-- Per config: where the next incremental run starts, when the next run is due, and who holds
-- the lease (one worker per config at a time, across replicas).
CREATE TABLE sync_state (
    config_id    uuid PRIMARY KEY REFERENCES integration_configs (id) ON DELETE CASCADE,
    -- The connector's cursor (JSON).
    cursor       text,
    last_full_at timestamptz,
    next_run_at  timestamptz,
    lease_owner  text,
    lease_until  timestamptz
);

CREATE TABLE sync_runs (
    id          uuid PRIMARY KEY,
    config_id   uuid NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    kind        text NOT NULL,
    status      text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    -- Counts per entity type (JSON).
    counts      text NOT NULL,
    error       text
);

CREATE INDEX sync_runs_config ON sync_runs (config_id, started_at);

-- What a run in progress has seen and the removals the source named, applied only when the
-- run completes; a run that never completes leaves them to be cleared by the next one.
CREATE TABLE run_seen_entities (
    run_id    uuid NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    kind      text COLLATE "C" NOT NULL,
    source_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, kind, source_id)
);

CREATE TABLE run_seen_memberships (
    run_id      uuid NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    group_id    text COLLATE "C" NOT NULL,
    member_kind text COLLATE "C" NOT NULL,
    member_id   text COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, group_id, member_kind, member_id)
);

-- A membership removal has kind 'membership', the group as source id and the member in the
-- member columns; an entity removal leaves them empty.
CREATE TABLE run_removals (
    run_id      uuid NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    kind        text COLLATE "C" NOT NULL,
    source_id   text COLLATE "C" NOT NULL,
    member_kind text COLLATE "C" NOT NULL DEFAULT '',
    member_id   text COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, kind, source_id, member_kind, member_id)
);
