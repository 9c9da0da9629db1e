-- Identifiers name their entity by a small integer instead of by org, config, kind and source id.
--
-- Identifiers arrive in random order (addresses, logins), so every large transaction of a sync
-- dirties nearly every page of their index, and each commit writes those pages to the log. At
-- about 130 bytes a row, that index outgrew the writer's page cache and was rewritten whole at
-- every commit; at about 35 bytes it is a quarter of the size. `entities` gets an explicit
-- integer key for it (a plain rowid may change on VACUUM), and loses `entities_org`: entities are
-- scoped to an org through its configs, with `entities_key`, and one index less is written.
--
-- The tables a sync writes many rows into at once check their foreign keys at commit
-- (DEFERRABLE INITIALLY DEFERRED): a multi-row insert that may fail halfway makes SQLite copy
-- every page it touches into a statement journal first, so it can undo just that statement, and
-- an immediate foreign key is such a possible failure. A page's rows are all-or-nothing anyway.

DROP INDEX entities_key;
DROP INDEX entities_org;
DROP INDEX entity_identifiers_entity;
ALTER TABLE entity_identifiers RENAME TO entity_identifiers_old;
ALTER TABLE entities RENAME TO entities_old;

CREATE TABLE entities (
    id            INTEGER PRIMARY KEY,
    config_id     TEXT NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE
                  DEFERRABLE INITIALLY DEFERRED,
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

INSERT INTO entities (config_id, kind, source_id, org_id, status, login, display_name, data, raw, digest,
                      first_seen_at, updated_at)
SELECT config_id, kind, source_id, org_id, status, login, display_name, data, raw, digest, first_seen_at, updated_at
FROM entities_old ORDER BY rowid;

CREATE UNIQUE INDEX entities_key ON entities (config_id, kind, source_id);

-- Every lowercase identifier an entity answers to (source id, login, addresses, device name).
CREATE TABLE entity_identifiers (
    identifier TEXT NOT NULL,
    entity_id  INTEGER NOT NULL REFERENCES entities (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (identifier, entity_id)
) STRICT, WITHOUT ROWID;

INSERT OR IGNORE INTO entity_identifiers (identifier, entity_id)
SELECT o.identifier, e.id FROM entity_identifiers_old o
JOIN entities e ON e.config_id = o.config_id AND e.kind = o.kind AND e.source_id = o.source_id;

CREATE INDEX entity_identifiers_entity ON entity_identifiers (entity_id);

DROP TABLE entity_identifiers_old;
DROP TABLE entities_old;

ALTER TABLE memberships RENAME TO memberships_old;
CREATE TABLE memberships (
    config_id     TEXT NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE
                  DEFERRABLE INITIALLY DEFERRED,
    group_id      TEXT NOT NULL,
    member_kind   TEXT NOT NULL,
    member_id     TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    seen_run      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (config_id, group_id, member_kind, member_id)
) STRICT, WITHOUT ROWID;
INSERT INTO memberships SELECT config_id, group_id, member_kind, member_id, first_seen_at, seen_run FROM memberships_old;
DROP TABLE memberships_old;

-- What a run in progress has seen; a run interrupted by the upgrade is marked failed by the next
-- holder of its config's lease, which never reads its seen rows.
DROP TABLE run_seen_entities;
CREATE TABLE run_seen_entities (
    run_id    TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    kind      TEXT NOT NULL,
    source_id TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, source_id)
) STRICT, WITHOUT ROWID;
