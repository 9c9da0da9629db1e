-- Set on a full run that began while its config stored nothing (and on a run going on from such
-- a run): every entity stored when it completes was listed by it, so it writes no entity's seen
-- row and deletes no entity but those the source named. Memberships keep their marks.
ALTER TABLE sync_runs ADD COLUMN first_listing boolean NOT NULL DEFAULT false;
