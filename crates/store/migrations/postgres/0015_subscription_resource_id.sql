-- What else names a subscription to its source: Google's `resourceId`, which stopping a
-- `users.watch` channel takes beside the channel's id. NULL for Graph's subscriptions.
ALTER TABLE graph_subscriptions ADD COLUMN resource_id text;
