-- "Sync now" answers with the id of the run it asked for, before a worker starts it: the id waits
-- here until the next run of the config takes it.
ALTER TABLE sync_state ADD COLUMN requested_run uuid;
