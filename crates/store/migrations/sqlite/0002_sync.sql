-- Entities synced from the sources, their memberships, and the bookkeeping of sync runs.

-- One row per user, group or device of a config. `data` is the normalized entity (JSON), `raw`
-- what the source returned; `digest` (SHA-256 of both) lets a run skip unchanged entities.
-- A rowid table keyed by a unique index: a WITHOUT ROWID table keeps only about a quarter of a
-- page of each row in the tree, so a 1-2 KB entity would spill onto an overflow page of its own.
CREATE TABLE entities (
    config_id     TEXT NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    status        TEXT,
    login         TEXT,
    display_name  TEXT,
    data          TEXT NOT NULL,
    raw           TEXT NOT NULL,
    digest        BLOB NOT NULL,
    first_seen_at TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX entities_key ON entities (config_id, kind, source_id);
CREATE INDEX entities_org ON entities (org_id, config_id, kind, source_id);

-- Every lowercase identifier an entity answers to (source id, login, emails, device name), for
-- filters by email and for enrichment lookups of many identifiers at once.
CREATE TABLE entity_identifiers (
    org_id     TEXT NOT NULL,
    identifier TEXT NOT NULL,
    config_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    PRIMARY KEY (org_id, identifier, config_id, kind, source_id),
    FOREIGN KEY (config_id, kind, source_id) REFERENCES entities (config_id, kind, source_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX entity_identifiers_entity ON entity_identifiers (config_id, kind, source_id);

CREATE TABLE memberships (
    config_id     TEXT NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    group_id      TEXT NOT NULL,
    member_kind   TEXT NOT NULL,
    member_id     TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    PRIMARY KEY (config_id, group_id, member_kind, member_id)
) STRICT, WITHOUT ROWID;


-- Per config: where the next incremental run starts, when the next run is due, and who holds
-- the lease (one worker per config at a time, across processes).
CREATE TABLE sync_state (
    config_id    TEXT PRIMARY KEY NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    cursor       TEXT,
    last_full_at TEXT,
    next_run_at  TEXT,
    lease_owner  TEXT,
    lease_until  TEXT
) STRICT;

CREATE TABLE sync_runs (
    id          TEXT PRIMARY KEY NOT NULL,
    config_id   TEXT NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    counts      TEXT NOT NULL,
    error       TEXT
) STRICT;

CREATE INDEX sync_runs_config ON sync_runs (config_id, started_at);

-- What a run in progress has seen and the removals the source named, applied only when the
-- run completes; a run that never completes leaves them to be cleared by the next one.
CREATE TABLE run_seen_entities (
    run_id    TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,
    source_id TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, source_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE run_seen_memberships (
    run_id      TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    group_id    TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    PRIMARY KEY (run_id, group_id, member_kind, member_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE run_removals (
    run_id      TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    member_kind TEXT NOT NULL DEFAULT '',
    member_id   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, kind, source_id, member_kind, member_id)
) STRICT, WITHOUT ROWID;
