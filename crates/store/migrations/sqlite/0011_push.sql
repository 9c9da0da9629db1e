-- Push endpoints: the secret a source sends with its deliveries (Okta Event Hooks), kept only as
-- its SHA-256 digest, and what the endpoint has seen. Deliveries are at-least-once: the event ids
-- taken are kept a while, so a delivery repeated counts once.
CREATE TABLE push_endpoints (
    config_id        TEXT PRIMARY KEY NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    secret_digest    TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    last_delivery_at TEXT,
    deliveries       INTEGER NOT NULL DEFAULT 0,
    duplicates       INTEGER NOT NULL DEFAULT 0,
    rejected         INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE push_events_seen (
    config_id TEXT NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    event_id  TEXT NOT NULL,
    seen_at   TEXT NOT NULL,
    PRIMARY KEY (config_id, event_id)
) STRICT;
