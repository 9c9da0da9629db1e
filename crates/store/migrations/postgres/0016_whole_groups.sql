-- Groups a run listed whole in one page, and the stored members such a page did not name: a
-- full run notes only these for a group listed whole, instead of a seen row per member. The
-- deletions are the members not named, staged only when the run completes, as the unseen are.
-- Scratch of a run; a run that goes on from a stopped one turns the stopped one's into marks.
CREATE TABLE run_whole_groups (
    run_id   uuid NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    group_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, group_id)
);

CREATE TABLE run_unnamed_members (
    run_id      uuid NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    group_id    text COLLATE "C" NOT NULL,
    member_kind text COLLATE "C" NOT NULL,
    member_id   text COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, group_id, member_kind, member_id)
);
