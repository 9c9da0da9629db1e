-- A full run's checkpoint (JSON: each listing's last applied mark), written with the pages it
-- covers. A full run that stops before it completes keeps it, and keeps what it saw, so the next
-- full run can go on from there (`resumed_from`) instead of listing everything again.
ALTER TABLE sync_runs ADD COLUMN checkpoint text;
ALTER TABLE sync_runs ADD COLUMN resumed_from uuid;
