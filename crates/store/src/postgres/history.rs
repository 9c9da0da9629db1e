//! Change events and history on PostgreSQL: the rows a [`Recorder`] gathered, and the reads of
//! [`HistoryStore`].

use ctxsync_core::{ConfigId, OrgId, Run};
use sqlx::{PgConnection, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::PostgresStore;
use crate::StoreError;
use crate::history::{
    ChangeEvent, EventQuery, EventRow, HistoryStore, IntervalQuery, MembershipInterval, Recorder,
    RoleInterval, list_events_query, membership_intervals, membership_intervals_query, role_intervals,
    role_intervals_query,
};
use crate::page::EntityWrite;

/// The advisory lock event writers hold until they commit, so event ids become visible in order.
const EVENT_LOCK: i64 = 0x6374_7873_796e_6301;

impl PostgresStore {
    /// Whether the config has completed its baseline run, so runs record events.
    pub(super) async fn baselined(conn: &mut PgConnection, config: ConfigId) -> Result<bool, StoreError> {
        let baselined: Option<bool> =
            sqlx::query_scalar("SELECT baselined FROM sync_state WHERE config_id = $1")
                .bind(config.0)
                .fetch_optional(conn)
                .await?;
        Ok(baselined.unwrap_or(false))
    }

    /// What is stored for `rows` before they are rewritten: `(kind, source_id, data)`.
    pub(super) async fn stored_data(
        conn: &mut PgConnection,
        config: ConfigId,
        rows: &[&EntityWrite],
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "SELECT e.kind, e.source_id, e.data FROM UNNEST($2::text[], $3::text[]) AS k (kind, source_id) \
             JOIN entities e ON e.config_id = $1 AND e.kind = k.kind AND e.source_id = k.source_id",
        )
        .bind(config.0)
        .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.source_id.as_str()).collect::<Vec<_>>())
        .fetch_all(conn)
        .await?)
    }

    /// Writes what `recorder` gathered: events, role intervals opened and closed, memberships
    /// ended.
    pub(super) async fn record(
        conn: &mut PgConnection,
        run: &Run,
        recorder: &Recorder,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let config = run.config_id.0;
        let events = recorder.event_rows();
        if !events.is_empty() {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(EVENT_LOCK).execute(&mut *conn).await?;
            sqlx::query(
                "INSERT INTO change_events (org_id, config_id, run_id, observed_at, type, entity_kind, entity_id, \
                   related_id, field, old_value, new_value, source_time) \
                 SELECT (SELECT org_id FROM integration_configs WHERE id = $1), $1, $2, $3, \
                   e.type, e.entity_kind, e.entity_id, e.related_id, e.field, e.old_value, e.new_value, e.source_time \
                 FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
                   $11::timestamptz[]) WITH ORDINALITY \
                   AS e (type, entity_kind, entity_id, related_id, field, old_value, new_value, source_time, n) \
                 ORDER BY e.n",
            )
            .bind(config)
            .bind(run.id)
            .bind(now)
            .bind(events.iter().map(|e| e.change_type).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.entity_kind).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.entity_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.related_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.field).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.old.as_deref()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.new.as_deref()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.source_time).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        if !recorder.revoked.is_empty() || !recorder.deleted_users.is_empty() {
            let (users, roles): (Vec<&str>, Vec<Option<&str>>) = recorder
                .revoked
                .iter()
                .map(|(user, role)| (user.as_str(), Some(role.as_str())))
                .chain(recorder.deleted_users.iter().map(|user| (user.as_str(), None)))
                .unzip();
            sqlx::query(
                "UPDATE admin_role_history h SET valid_to = $2 FROM UNNEST($3::text[], $4::text[]) AS k (user_id, role) \
                 WHERE h.config_id = $1 AND h.valid_to IS NULL AND h.user_id = k.user_id \
                   AND (k.role IS NULL OR h.role = k.role)",
            )
            .bind(config)
            .bind(now)
            .bind(users)
            .bind(roles)
            .execute(&mut *conn)
            .await?;
        }
        if !recorder.granted.is_empty() {
            let (users, roles): (Vec<&str>, Vec<&str>) =
                recorder.granted.iter().map(|(user, role)| (user.as_str(), role.as_str())).unzip();
            sqlx::query(
                "INSERT INTO admin_role_history (config_id, valid_from, user_id, role) \
                 SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[]) ON CONFLICT DO NOTHING",
            )
            .bind(config)
            .bind(now)
            .bind(users)
            .bind(roles)
            .execute(&mut *conn)
            .await?;
        }
        if !recorder.ended.is_empty() {
            let ended = &recorder.ended;
            sqlx::query(
                "INSERT INTO membership_history (config_id, valid_to, group_id, member_kind, member_id, valid_from) \
                 SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[], $5::text[], $6::timestamptz[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(config)
            .bind(now)
            .bind(ended.iter().map(|e| e.group_id.as_str()).collect::<Vec<_>>())
            .bind(ended.iter().map(|e| e.member_kind.as_str()).collect::<Vec<_>>())
            .bind(ended.iter().map(|e| e.member_id.as_str()).collect::<Vec<_>>())
            .bind(ended.iter().map(|e| e.valid_from).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl HistoryStore for PostgresStore {
    async fn list_events(
        &self,
        org: Option<OrgId>,
        query: &EventQuery,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        let mut q = list_events_query::<Postgres, _, _>(org, query, |id| id, |t| t);
        let rows: Vec<EventRow<Uuid, OffsetDateTime>> = q.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(ChangeEvent::try_from).collect()
    }

    async fn delete_events_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM change_events WHERE observed_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn membership_intervals(
        &self,
        org: OrgId,
        config: ConfigId,
        query: &IntervalQuery,
    ) -> Result<Vec<MembershipInterval>, StoreError> {
        let mut q = membership_intervals_query::<Postgres, _, _>(org.0, config.0, query, |t| t);
        membership_intervals::<OffsetDateTime>(q.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn role_intervals(
        &self,
        org: OrgId,
        config: ConfigId,
        query: &IntervalQuery,
    ) -> Result<Vec<RoleInterval>, StoreError> {
        let mut q = role_intervals_query::<Postgres, _, _>(org.0, config.0, query, |t| t);
        role_intervals::<OffsetDateTime>(q.build_query_as().fetch_all(&self.pool).await?)
    }
}
