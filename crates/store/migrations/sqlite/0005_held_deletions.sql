-- The mass-deletion guard and the completeness check (see ARCHITECTURE.md, "Held deletions").

-- `hold`: why a run's deletions wait and what became of them (JSON, NULL when never held);
-- `completeness`: the source's totals beside what the run received (JSON, full runs only).
ALTER TABLE sync_runs ADD COLUMN hold TEXT;
ALTER TABLE sync_runs ADD COLUMN completeness TEXT;

-- A completed run's deletions, staged before they are applied or held. An entity's row has
-- empty member columns; a membership's kind is 'membership' with the group as `source_id`.
CREATE TABLE held_deletions (
    run_id      TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    config_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, source_id, member_kind, member_id)
) STRICT, WITHOUT ROWID;

-- Later pages drop what they list again from every held stage of their config.
CREATE INDEX held_deletions_config ON held_deletions (config_id, kind, source_id, member_kind, member_id);
