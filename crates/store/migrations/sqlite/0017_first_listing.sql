-- Set on a full run that began while its config stored nothing (and on a run going on from such
-- a run): every entity stored when it completes was listed by it, so it writes no entity's seen
-- row and deletes no entity but those the source named. Memberships keep their marks.
-- On a first sync of 100k users that saves 105k seen rows, and the look-up of each at the end.
ALTER TABLE sync_runs ADD COLUMN first_listing INTEGER NOT NULL DEFAULT 0 CHECK (first_listing IN (0, 1));
