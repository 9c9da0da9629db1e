-- A run marks each membership it lists with its own id (`seen_run`) instead of adding a row to
-- `run_seen_memberships`. A full run then deletes the config's memberships whose mark is not its
-- own, and an incremental run those of the groups it listed again in full, by reading the
-- memberships alone: no half-million-row seen-set to insert, join against and delete again. The
-- mark of a run that never completes is simply overwritten by the next one.
ALTER TABLE memberships ADD COLUMN seen_run TEXT NOT NULL DEFAULT '';

DROP TABLE run_seen_memberships;
