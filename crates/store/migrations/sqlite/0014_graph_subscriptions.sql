-- Subscriptions a source keeps for a config's push (Microsoft Graph change notifications, one per
-- resource): the source's id for each, when it expires and when to renew it (the source says how
-- early: it knows how long its subscriptions live). The clientState they carry is the config's
-- push secret, kept only as its digest in push_endpoints. `claimed_until` is a replica's claim
-- while it renews one, so two replicas do not both make it again.
CREATE TABLE graph_subscriptions (
    config_id       TEXT NOT NULL REFERENCES integration_configs (id) ON DELETE CASCADE,
    resource        TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    renew_at        TEXT NOT NULL,
    claimed_until   TEXT,
    PRIMARY KEY (config_id, resource)
) STRICT;

CREATE INDEX graph_subscriptions_renewal ON graph_subscriptions (renew_at);
