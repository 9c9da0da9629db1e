-- A full run's checkpoint (JSON: each listing's last applied mark) and its counts as of it
-- (JSON), written with the pages they cover. A full run that stops before it completes keeps
-- them, and keeps what it saw, so the next run can go on from there (`resumed_from`) instead of
-- listing everything again; `listed_since` is when the first run of such a chain began.
ALTER TABLE sync_runs ADD COLUMN checkpoint TEXT;
ALTER TABLE sync_runs ADD COLUMN resumed_from TEXT;
ALTER TABLE sync_runs ADD COLUMN checkpoint_counts TEXT;
ALTER TABLE sync_runs ADD COLUMN listed_since TEXT;
