-- Users now carry the identifiers their connector vouches for (`verified_emails`, `immutable_id`)
-- in `data`, and identity resolution reads only those. Users stored before lack them until a
-- run rewrites them, and an incremental run rewrites only what changed at the source: the next
-- run of every config is made a full one, so the whole store gains them at once.
UPDATE sync_state SET cursor = NULL, last_full_at = NULL;
