-- Groups a run listed whole in one page, and the stored members such a page did not name. A
-- full run over an unchanged org then reads these groups' memberships instead of rewriting the
-- `seen_run` of each: a rewrite dirties every page of the table. The deletions are the members
-- not named, staged only when the run completes, as those of `seen_run` are. Scratch of a run; a
-- run that goes on from a stopped one turns the stopped one's into marks.
CREATE TABLE run_whole_groups (
    run_id   TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    group_id TEXT NOT NULL,
    PRIMARY KEY (run_id, group_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE run_unnamed_members (
    run_id      TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    group_id    TEXT NOT NULL,
    member_kind TEXT NOT NULL,
    member_id   TEXT NOT NULL,
    PRIMARY KEY (run_id, group_id, member_kind, member_id)
) STRICT, WITHOUT ROWID;
