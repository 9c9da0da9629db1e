-- Subscriptions a source keeps for a config's push (Microsoft Graph change notifications, one per
-- resource): the source's id for each and when it expires, so they are renewed in time. The
-- clientState they carry is the config's push secret, kept only as its digest in push_endpoints.
-- `claimed_until` is a replica's claim while it renews one, so two replicas do not both recreate it.
CREATE TABLE graph_subscriptions (
    config_id       uuid NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    resource        text NOT NULL,
    subscription_id text NOT NULL,
    expires_at      timestamptz NOT NULL,
    claimed_until   timestamptz,
    PRIMARY KEY (config_id, resource)
);

CREATE INDEX graph_subscriptions_expiry ON graph_subscriptions (expires_at);
