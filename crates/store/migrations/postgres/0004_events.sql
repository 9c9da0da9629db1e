-- Change events and effective-dated history (see ARCHITECTURE.md, "Events and history"). Numbered
-- like the SQLite migration that makes the same tables.

-- The first completed full run of a config is its baseline: it records no change events, so a
-- new config does not raise one `user.created` per user. `sync_state.baselined` says whether a
-- config has one, so each page learns with one key lookup whether to record events.
ALTER TABLE sync_runs ADD COLUMN baseline boolean NOT NULL DEFAULT false;
ALTER TABLE sync_state ADD COLUMN baselined boolean NOT NULL DEFAULT false;

-- One row per change a run found. Writers take a transaction-level advisory lock before adding
-- events, so ids are committed in the order they were handed out and a reader tailing by id
-- never skips one committed late. `old_value` and `new_value` are JSON taken from the normalized
-- entity, which holds no secret.
CREATE TABLE change_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       uuid NOT NULL,
    config_id    uuid NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    run_id       uuid NOT NULL,
    type         text COLLATE "C" NOT NULL,
    entity_kind  text COLLATE "C" NOT NULL,
    entity_id    text COLLATE "C" NOT NULL,
    related_id   text COLLATE "C",
    field        text,
    old_value    text,
    new_value    text,
    observed_at  timestamptz NOT NULL,
    source_time  timestamptz
);

CREATE INDEX change_events_org ON change_events (org_id, id);
CREATE INDEX change_events_config ON change_events (config_id, id);
CREATE INDEX change_events_observed ON change_events (observed_at);

-- Memberships that ended: a current membership is an interval still open (it runs from the
-- row's `first_seen_at` in `memberships`), so only removals write here.
CREATE TABLE membership_history (
    config_id   uuid NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    group_id    text COLLATE "C" NOT NULL,
    member_kind text COLLATE "C" NOT NULL,
    member_id   text COLLATE "C" NOT NULL,
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz NOT NULL,
    PRIMARY KEY (config_id, group_id, member_kind, member_id, valid_from)
);

CREATE INDEX membership_history_member ON membership_history (config_id, member_id);

-- Admin roles held by users, from the users' `admin_roles`: open (`valid_to` NULL) while held.
CREATE TABLE admin_role_history (
    config_id  uuid NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    user_id    text COLLATE "C" NOT NULL,
    role       text COLLATE "C" NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz,
    PRIMARY KEY (config_id, user_id, role, valid_from)
);
