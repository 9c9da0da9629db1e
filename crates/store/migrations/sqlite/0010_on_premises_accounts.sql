-- Entra ID users now carry the on-premises account they are synced from (SAM account name,
-- domain, SID), which links hosts to the people logged on to them. Users stored before lack it
-- until a run rewrites them, and an Entra delta link keeps the properties it was started with:
-- the next run of every Entra ID config is made a full one.
UPDATE sync_state SET cursor = NULL, last_full_at = NULL
WHERE config_id IN (SELECT id FROM integration_configs WHERE integration_type = 'ENTRA_ID');
