//! Change events and history on SQLite: the rows a [`Recorder`] gathered, and the reads of
//! [`HistoryStore`].

use ctxsync_core::{ConfigId, OrgId, Run};
use sqlx::{Sqlite, SqliteConnection};
use time::OffsetDateTime;

use super::{SqliteStore, encode_time, json_rows};
use crate::StoreError;
use crate::history::{
    ChangeEvent, EventQuery, EventRow, HistoryStore, IntervalQuery, MembershipInterval, Recorder,
    RoleInterval, list_events_query, membership_intervals, membership_intervals_query, role_intervals,
    role_intervals_query,
};
use crate::page::EntityWrite;

impl SqliteStore {
    /// Whether the config has completed its baseline run, so runs record events.
    pub(super) async fn baselined(conn: &mut SqliteConnection, config: ConfigId) -> Result<bool, StoreError> {
        let baselined: Option<bool> =
            sqlx::query_scalar("SELECT baselined FROM sync_state WHERE config_id = ?")
                .bind(config.to_string())
                .fetch_optional(conn)
                .await?;
        Ok(baselined.unwrap_or(false))
    }

    /// What is stored for `rows` before they are rewritten: `(kind, source_id, data)`.
    pub(super) async fn stored_data(
        conn: &mut SqliteConnection,
        config: ConfigId,
        rows: &[&EntityWrite],
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let keys = json_rows(&rows.iter().map(|row| (row.kind, &row.source_id)).collect::<Vec<_>>());
        Ok(sqlx::query_as(
            "SELECT e.kind, e.source_id, e.data FROM json_each(?2) j CROSS JOIN entities e \
             ON e.config_id = ?1 AND e.kind = j.value ->> 0 AND e.source_id = j.value ->> 1",
        )
        .bind(config.to_string())
        .bind(keys)
        .fetch_all(conn)
        .await?)
    }

    /// Writes what `recorder` gathered: events, role intervals opened and closed, memberships
    /// ended.
    pub(super) async fn record(
        conn: &mut SqliteConnection,
        run: &Run,
        recorder: &Recorder,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if recorder.is_empty() {
            return Ok(());
        }
        let (config_id, now) = (run.config_id.to_string(), encode_time(now));
        let events: Vec<_> = recorder
            .event_rows()
            .into_iter()
            .map(|e| {
                (
                    e.change_type,
                    e.entity_kind,
                    e.entity_id,
                    e.related_id,
                    e.field,
                    e.old,
                    e.new,
                    e.source_time.map(encode_time),
                )
            })
            .collect();
        if !events.is_empty() {
            sqlx::query(
                "INSERT INTO change_events (org_id, config_id, run_id, observed_at, type, entity_kind, entity_id, \
                   related_id, field, old_value, new_value, source_time) \
                 SELECT (SELECT org_id FROM integration_configs WHERE id = ?1), ?1, ?2, ?3, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                   value ->> 5, value ->> 6, value ->> 7 FROM json_each(?4) ORDER BY key",
            )
            .bind(&config_id)
            .bind(run.id.to_string())
            .bind(&now)
            .bind(json_rows(&events))
            .execute(&mut *conn)
            .await?;
        }
        if !recorder.revoked.is_empty() || !recorder.deleted_users.is_empty() {
            let users: Vec<(&str, Option<&str>)> = recorder
                .revoked
                .iter()
                .map(|(user, role)| (user.as_str(), Some(role.as_str())))
                .chain(recorder.deleted_users.iter().map(|user| (user.as_str(), None)))
                .collect();
            sqlx::query(
                "UPDATE admin_role_history SET valid_to = ?2 WHERE config_id = ?1 AND valid_to IS NULL \
                 AND EXISTS (SELECT 1 FROM json_each(?3) j WHERE j.value ->> 0 = user_id \
                   AND (j.value ->> 1 IS NULL OR j.value ->> 1 = role))",
            )
            .bind(&config_id)
            .bind(&now)
            .bind(json_rows(&users))
            .execute(&mut *conn)
            .await?;
        }
        if !recorder.granted.is_empty() {
            sqlx::query(
                "INSERT OR IGNORE INTO admin_role_history (config_id, user_id, role, valid_from) \
                 SELECT ?1, value ->> 0, value ->> 1, ?2 FROM json_each(?3)",
            )
            .bind(&config_id)
            .bind(&now)
            .bind(json_rows(&recorder.granted))
            .execute(&mut *conn)
            .await?;
        }
        if !recorder.ended.is_empty() {
            let ended: Vec<_> = recorder
                .ended
                .iter()
                .map(|e| (&e.group_id, &e.member_kind, &e.member_id, encode_time(e.valid_from)))
                .collect();
            sqlx::query(
                "INSERT OR IGNORE INTO membership_history (config_id, group_id, member_kind, member_id, valid_from, valid_to) \
                 SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, ?2 FROM json_each(?3)",
            )
            .bind(&config_id)
            .bind(&now)
            .bind(json_rows(&ended))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl HistoryStore for SqliteStore {
    async fn list_events(
        &self,
        org: Option<OrgId>,
        query: &EventQuery,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        let mut q = list_events_query::<Sqlite, _, _>(org, query, |id| id.to_string(), encode_time);
        let rows: Vec<EventRow<String, String>> = q.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(ChangeEvent::try_from).collect()
    }

    async fn delete_events_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM change_events WHERE observed_at < ?")
            .bind(encode_time(before))
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn membership_intervals(
        &self,
        org: OrgId,
        config: ConfigId,
        query: &IntervalQuery,
    ) -> Result<Vec<MembershipInterval>, StoreError> {
        let mut q = membership_intervals_query::<Sqlite, _, _>(
            org.to_string(),
            config.to_string(),
            query,
            encode_time,
        );
        membership_intervals::<String>(q.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn role_intervals(
        &self,
        org: OrgId,
        config: ConfigId,
        query: &IntervalQuery,
    ) -> Result<Vec<RoleInterval>, StoreError> {
        let mut q =
            role_intervals_query::<Sqlite, _, _>(org.to_string(), config.to_string(), query, encode_time);
        role_intervals::<String>(q.build_query_as().fetch_all(&self.pool).await?)
    }
}
