//! Push endpoints and the event ids their deliveries carried (see `crate::push`).

use ctxsync_core::{ConfigId, EntityKind, OrgId};
use time::OffsetDateTime;

use super::{Backend, Store};
use crate::StoreError;
use crate::push::{Delivery, PushEndpoint, PushStore, REFRESH_AT_MOST, SEEN_FOR, SourceSubscription};
use crate::values::{DbId, DbTime};

#[derive(sqlx::FromRow)]
struct EndpointRow {
    secret_digest: String,
    created_at: DbTime,
    last_delivery_at: Option<DbTime>,
    deliveries: i64,
    duplicates: i64,
    rejected: i64,
}

impl From<EndpointRow> for PushEndpoint {
    fn from(row: EndpointRow) -> PushEndpoint {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        PushEndpoint {
            secret_digest: row.secret_digest,
            created_at: row.created_at.0,
            last_delivery_at: row.last_delivery_at.map(|t| t.0),
            deliveries: count(row.deliveries),
            duplicates: count(row.duplicates),
            rejected: count(row.rejected),
        }
    }
}

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    config_id: DbId,
    resource: String,
    subscription_id: String,
    resource_id: Option<String>,
    expires_at: DbTime,
    renew_at: DbTime,
}

impl From<SubscriptionRow> for SourceSubscription {
    fn from(row: SubscriptionRow) -> SourceSubscription {
        SourceSubscription {
            config_id: ConfigId(row.config_id.0),
            resource: row.resource,
            id: row.subscription_id,
            resource_id: row.resource_id,
            expires_at: row.expires_at.0,
            renew_at: row.renew_at.0,
        }
    }
}

#[async_trait::async_trait]
impl PushStore for Store {
    async fn set_push_secret(
        &self,
        org: OrgId,
        config: ConfigId,
        digest: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // A new secret starts the counts afresh: they describe the endpoint as configured now.
        let set = sqlx::query(
            "INSERT INTO push_endpoints (config_id, secret_digest, created_at) \
             SELECT id, $3, $4 FROM integration_configs WHERE id = $1 AND org_id = $2 \
             ON CONFLICT (config_id) DO UPDATE SET secret_digest = EXCLUDED.secret_digest, \
               created_at = EXCLUDED.created_at, last_delivery_at = NULL, deliveries = 0, duplicates = 0, \
               rejected = 0",
        )
        .bind(DbId(config.0))
        .bind(DbId(org.0))
        .bind(digest)
        .bind(DbTime(now))
        .execute(self.writer())
        .await?;
        Ok(set.rows_affected() > 0)
    }

    async fn replace_push_secret(&self, config: ConfigId, digest: &str) -> Result<bool, StoreError> {
        let replaced = sqlx::query("UPDATE push_endpoints SET secret_digest = $2 WHERE config_id = $1")
            .bind(DbId(config.0))
            .bind(digest)
            .execute(self.writer())
            .await?;
        Ok(replaced.rows_affected() > 0)
    }

    async fn delete_push_secret(&self, org: OrgId, config: ConfigId) -> Result<bool, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM push_endpoints WHERE config_id = $1 \
             AND config_id IN (SELECT id FROM integration_configs WHERE org_id = $2)",
        )
        .bind(DbId(config.0))
        .bind(DbId(org.0))
        .execute(self.writer())
        .await?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn push_endpoint(&self, config: ConfigId) -> Result<Option<PushEndpoint>, StoreError> {
        let row: Option<EndpointRow> = sqlx::query_as(
            "SELECT secret_digest, created_at, last_delivery_at, deliveries, duplicates, rejected \
             FROM push_endpoints WHERE config_id = $1",
        )
        .bind(DbId(config.0))
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(PushEndpoint::from))
    }

    async fn record_delivery(
        &self,
        config: ConfigId,
        delivery: Delivery<'_>,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin_write().await?;
        let event_ids = match delivery {
            Delivery::Rejected => {
                sqlx::query("UPDATE push_endpoints SET rejected = rejected + 1 WHERE config_id = $1")
                    .bind(DbId(config.0))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(Vec::new());
            }
            Delivery::Accepted(ids) => ids,
        };
        sqlx::query("DELETE FROM push_events_seen WHERE config_id = $1 AND seen_at < $2")
            .bind(DbId(config.0))
            .bind(DbTime(now - SEEN_FOR))
            .execute(&mut *tx)
            .await?;
        let mut fresh = Vec::new();
        for id in event_ids {
            let taken = sqlx::query(
                "INSERT INTO push_events_seen (config_id, event_id, seen_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (config_id, event_id) DO NOTHING",
            )
            .bind(DbId(config.0))
            .bind(id)
            .bind(DbTime(now))
            .execute(&mut *tx)
            .await?;
            if taken.rows_affected() > 0 {
                fresh.push(id.clone());
            }
        }
        sqlx::query(
            "UPDATE push_endpoints SET deliveries = deliveries + 1, duplicates = duplicates + $2, \
             last_delivery_at = $3 WHERE config_id = $1",
        )
        .bind(DbId(config.0))
        .bind((event_ids.len() - fresh.len()) as i64)
        .bind(DbTime(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(fresh)
    }

    async fn add_refresh_targets(
        &self,
        config: ConfigId,
        kind: EntityKind,
        ids: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for id in ids {
            sqlx::query(
                "INSERT INTO refresh_targets (config_id, kind, source_id, added_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (config_id, kind, source_id) DO UPDATE SET added_at = EXCLUDED.added_at",
            )
            .bind(DbId(config.0))
            .bind(kind.as_str())
            .bind(id)
            .bind(DbTime(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn refresh_targets(
        &self,
        config: ConfigId,
        kind: EntityKind,
        until: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT source_id FROM refresh_targets WHERE config_id = $1 AND kind = $2 AND added_at <= $3 \
             ORDER BY added_at, source_id LIMIT $4",
        )
        .bind(DbId(config.0))
        .bind(kind.as_str())
        .bind(DbTime(until))
        .bind(i64::from(REFRESH_AT_MOST))
        .fetch_all(self.reader())
        .await?)
    }

    async fn clear_refresh_targets(
        &self,
        config: ConfigId,
        kind: EntityKind,
        read: &[String],
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for id in read {
            sqlx::query(
                "DELETE FROM refresh_targets WHERE config_id = $1 AND kind = $2 AND source_id = $3 AND added_at <= $4",
            )
            .bind(DbId(config.0))
            .bind(kind.as_str())
            .bind(id)
            .bind(DbTime(until))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_subscriptions(
        &self,
        config: ConfigId,
        subscriptions: &[SourceSubscription],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM graph_subscriptions WHERE config_id = $1")
            .bind(DbId(config.0))
            .execute(&mut *tx)
            .await?;
        for s in subscriptions {
            sqlx::query(
                "INSERT INTO graph_subscriptions \
                 (config_id, resource, subscription_id, resource_id, expires_at, renew_at) \
                 SELECT id, $2, $3, $4, $5, $6 FROM integration_configs WHERE id = $1",
            )
            .bind(DbId(config.0))
            .bind(&s.resource)
            .bind(&s.id)
            .bind(&s.resource_id)
            .bind(DbTime(s.expires_at))
            .bind(DbTime(s.renew_at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn subscriptions(&self, config: ConfigId) -> Result<Vec<SourceSubscription>, StoreError> {
        let rows: Vec<SubscriptionRow> = sqlx::query_as(
            "SELECT config_id, resource, subscription_id, resource_id, expires_at, renew_at FROM graph_subscriptions \
             WHERE config_id = $1 ORDER BY resource",
        )
        .bind(DbId(config.0))
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(SourceSubscription::from).collect())
    }

    async fn claim_due_subscriptions(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<SourceSubscription>, StoreError> {
        // Most looks find nothing due: a read first keeps them off the write lock.
        let any: Option<String> = sqlx::query_scalar(
            "SELECT subscription_id FROM graph_subscriptions WHERE renew_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until <= $1) LIMIT 1",
        )
        .bind(DbTime(now))
        .fetch_optional(self.reader())
        .await?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        // One statement: a row another replica claimed meanwhile no longer matches.
        let rows: Vec<SubscriptionRow> = sqlx::query_as(
            "UPDATE graph_subscriptions SET claimed_until = $2 WHERE renew_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until <= $1) \
             RETURNING config_id, resource, subscription_id, resource_id, expires_at, renew_at",
        )
        .bind(DbTime(now))
        .bind(DbTime(until))
        .fetch_all(self.writer())
        .await?;
        Ok(rows.into_iter().map(SourceSubscription::from).collect())
    }

    async fn renew_subscription(&self, renewed: &SourceSubscription) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE graph_subscriptions SET expires_at = $3, renew_at = $4 \
             WHERE config_id = $1 AND subscription_id = $2",
        )
        .bind(DbId(renewed.config_id.0))
        .bind(&renewed.id)
        .bind(DbTime(renewed.expires_at))
        .bind(DbTime(renewed.renew_at))
        .execute(self.writer())
        .await?;
        Ok(())
    }
}
