-- Entities a push named, for the next run to read from the source one by one (a push is a hint:
-- the run asks the source, and applies only what it says, a deletion included when the source no
-- longer knows the entity). A run takes those added before it started and clears them when it
-- completes; one named again meanwhile stays for the next.
CREATE TABLE refresh_targets (
    config_id uuid NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    kind      text NOT NULL,
    source_id text NOT NULL,
    added_at  timestamptz NOT NULL,
    PRIMARY KEY (config_id, kind, source_id)
);
