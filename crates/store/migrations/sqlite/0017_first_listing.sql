-- Set on a full run that began while its config stored nothing (and on a run going on from such
-- a run): everything stored when it completes was listed by it, so it writes no seen rows, and
-- deletes only what the source named and the members a group it listed whole again no longer
-- has. On a first sync of 100k users that saves a seen row per entity, and the scans that look
-- for unseen rows at the end.
ALTER TABLE sync_runs ADD COLUMN first_listing INTEGER NOT NULL DEFAULT 0 CHECK (first_listing IN (0, 1));
