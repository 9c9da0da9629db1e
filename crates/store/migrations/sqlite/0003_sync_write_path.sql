-- Cheaper writes for sync runs, which insert every entity and membership of a tenant.
--
-- `entities` becomes a rowid table keyed by a unique index: a WITHOUT ROWID table keeps at most
-- about a quarter of a page of each row in the tree and moves the rest to an overflow page of its
-- own, so an entity of 1-2 KB (its normalized and raw JSON) took two pages, one mostly empty.
-- A rowid table keeps rows of up to a page whole.
--
-- `memberships_member` goes: no query used it (the removal deletions scan the config's
-- memberships either way), and it took a write in random order per membership.
--
-- The tables are renamed away and copied rather than dropped first: with foreign keys on,
-- dropping `entities` would cascade to every identifier.

DROP INDEX memberships_member;

ALTER TABLE entity_identifiers RENAME TO entity_identifiers_0002;
ALTER TABLE entities RENAME TO entities_0002;

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

INSERT INTO entities (config_id, kind, source_id, org_id, status, login, display_name, data, raw, digest,
                      first_seen_at, updated_at)
SELECT config_id, kind, source_id, org_id, status, login, display_name, data, raw, digest, first_seen_at,
       updated_at
FROM entities_0002 ORDER BY config_id, kind, source_id;

CREATE TABLE entity_identifiers (
    org_id     TEXT NOT NULL,
    identifier TEXT NOT NULL,
    config_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    source_id  TEXT NOT NULL,
    PRIMARY KEY (org_id, identifier, config_id, kind, source_id),
    FOREIGN KEY (config_id, kind, source_id) REFERENCES entities (config_id, kind, source_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

INSERT INTO entity_identifiers SELECT * FROM entity_identifiers_0002;

DROP TABLE entity_identifiers_0002;
DROP TABLE entities_0002;

CREATE INDEX entities_org ON entities (org_id, config_id, kind, source_id);
CREATE INDEX entity_identifiers_entity ON entity_identifiers (config_id, kind, source_id);
