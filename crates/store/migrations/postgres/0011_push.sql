-- Push endpoints: the secret a source sends with its deliveries (Okta Event Hooks), kept only as
-- its SHA-256 digest, and what the endpoint has seen. Deliveries are at-least-once: the event ids
-- taken are kept a while, so a delivery repeated counts once.
CREATE TABLE push_endpoints (
    config_id        uuid PRIMARY KEY REFERENCES integration_configs (id) ON DELETE CASCADE,
    secret_digest    text NOT NULL,
    created_at       timestamptz NOT NULL,
    last_delivery_at timestamptz,
    deliveries       bigint NOT NULL DEFAULT 0,
    duplicates       bigint NOT NULL DEFAULT 0,
    rejected         bigint NOT NULL DEFAULT 0
);

CREATE TABLE push_events_seen (
    config_id uuid NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    event_id  text NOT NULL,
    seen_at   timestamptz NOT NULL,
    PRIMARY KEY (config_id, event_id)
);
