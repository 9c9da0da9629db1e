-- Change events and effective-dated history (see ARCHITECTURE.md, "Events and history").

-- The first completed full run of a config is its baseline: it records no change events, so a
-- new config does not raise one `user.created` per user. `sync_state.baselined` says whether a
-- config has one, so each page learns with one key lookup whether to record events.
ALTER TABLE sync_runs ADD COLUMN baseline INTEGER NOT NULL DEFAULT 0 CHECK (baseline IN (0, 1));
ALTER TABLE sync_state ADD COLUMN baselined INTEGER NOT NULL DEFAULT 0 CHECK (baselined IN (0, 1));

-- One row per change a run found. `id` only grows (AUTOINCREMENT never reuses one, even after
-- retention deleted the newest), so readers page and tail by it. `old_value` and `new_value` are
-- JSON taken from the normalized entity, which holds no secret.
CREATE TABLE change_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id       TEXT NOT NULL,
    config_id    TEXT NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    run_id       TEXT NOT NULL,
    type         TEXT NOT NULL,
    entity_kind  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    related_id   TEXT,
    field        TEXT,
    old_value    TEXT,
    new_value    TEXT,
    observed_at  TEXT NOT NULL,
    source_time  TEXT
) STRICT;

CREATE INDEX change_events_org ON change_events (org_id, id);
CREATE INDEX change_events_config ON change_events (config_id, id);
CREATE INDEX change_events_observed ON change_events (observed_at);

-- Memberships that ended: a current membership is an interval still open (it runs from the
-- row's `first_seen_at` in `memberships`), so only removals write here.
CREATE TABLE membership_history (
    config_id   TEXT NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    group_id    TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    valid_from  TEXT NOT NULL,
    valid_to    TEXT NOT NULL,
    PRIMARY KEY (config_id, group_id, member_kind, member_id, valid_from)
) STRICT, WITHOUT ROWID;

CREATE INDEX membership_history_member ON membership_history (config_id, member_id);

-- Admin roles held by users, from the users' `admin_roles`: open (`valid_to` NULL) while held.
CREATE TABLE admin_role_history (
    config_id  TEXT NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to   TEXT,
    PRIMARY KEY (config_id, user_id, role, valid_from)
) STRICT, WITHOUT ROWID;
