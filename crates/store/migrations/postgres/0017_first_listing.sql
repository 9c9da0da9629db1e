-- Set on a full run that began while its config stored nothing (and on a run going on from such
-- a run): everything stored when it completes was listed by it, so it writes no seen rows, and
-- deletes only what the source named and the members a group it listed whole again no longer
-- has.
ALTER TABLE sync_runs ADD COLUMN first_listing boolean NOT NULL DEFAULT false;
