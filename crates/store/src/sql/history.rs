//! The reads of [`HistoryStore`]; what a [`crate::history::Recorder`] gathered is written by
//! [`Backend::record`], in batches each backend binds its own way.

use ctxsync_core::{ConfigId, OrgId};
use sqlx::QueryBuilder;
use time::OffsetDateTime;

use super::{Backend, Conn, Db, Store};
use crate::StoreError;
use crate::history::{
    ChangeEvent, EVENT_COLUMNS, EventQuery, EventRow, HistoryStore, IntervalQuery, MembershipInterval,
    RoleInterval, membership_intervals, role_intervals,
};
use crate::values::{DbId, DbTime};

impl Store {
    /// Whether the config has completed its baseline run, so runs record events.
    pub(super) async fn baselined(conn: &mut Conn, config: ConfigId) -> Result<bool, StoreError> {
        let baselined: Option<bool> =
            sqlx::query_scalar("SELECT baselined FROM sync_state WHERE config_id = $1")
                .bind(DbId(config.0))
                .fetch_optional(conn)
                .await?;
        Ok(baselined.unwrap_or(false))
    }
}

#[async_trait::async_trait]
impl HistoryStore for Store {
    async fn list_events(
        &self,
        org: Option<OrgId>,
        query: &EventQuery,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        let mut q = list_events_query(org, query);
        let rows: Vec<EventRow> = q.build_query_as().fetch_all(self.reader()).await?;
        rows.into_iter().map(ChangeEvent::try_from).collect()
    }

    async fn delete_events_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM change_events WHERE observed_at < $1")
            .bind(DbTime(before))
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    async fn membership_intervals(
        &self,
        org: OrgId,
        config: ConfigId,
        query: &IntervalQuery,
    ) -> Result<Vec<MembershipInterval>, StoreError> {
        let mut q = intervals_query(
            MEMBERSHIP_INTERVALS,
            org,
            config,
            query.at,
            [("group_id", &query.group), ("member_id", &query.member)],
            "i.group_id, i.member_kind, i.member_id, i.valid_from",
        );
        membership_intervals(q.build_query_as().fetch_all(self.reader()).await?)
    }

    async fn role_intervals(
        &self,
        org: OrgId,
        config: ConfigId,
        query: &IntervalQuery,
    ) -> Result<Vec<RoleInterval>, StoreError> {
        let mut q = intervals_query(
            ROLE_INTERVALS,
            org,
            config,
            query.at,
            [("user_id", &query.user), ("role", &query.role)],
            "i.user_id, i.role, i.valid_from",
        );
        role_intervals(q.build_query_as().fetch_all(self.reader()).await?)
    }
}

/// The statement of [`HistoryStore::list_events`].
fn list_events_query(org: Option<OrgId>, query: &EventQuery) -> QueryBuilder<'_, Db> {
    let mut q = QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM change_events WHERE true"));
    if let Some(org) = org {
        q.push(" AND org_id = ").push_bind(DbId(org.0));
    }
    if let Some(config) = query.config {
        q.push(" AND config_id = ").push_bind(DbId(config.0));
    }
    if !query.types.is_empty() {
        q.push(" AND type IN (");
        let mut sep = q.separated(", ");
        for t in &query.types {
            sep.push_bind(t.as_str());
        }
        q.push(")");
    }
    if let Some(entity) = &query.entity_id {
        q.push(" AND (entity_id = ").push_bind(entity.as_str());
        q.push(" OR related_id = ").push_bind(entity.as_str()).push(")");
    }
    if let Some(from) = query.from {
        q.push(" AND observed_at >= ").push_bind(DbTime(from));
    }
    if let Some(to) = query.to {
        q.push(" AND observed_at < ").push_bind(DbTime(to));
    }
    if let Some(after) = query.after {
        q.push(" AND id > ").push_bind(after);
    }
    q.push(" ORDER BY id LIMIT ").push_bind(i64::from(query.limit));
    q
}

/// Ended memberships from `membership_history`, current ones from `memberships` (open since
/// `first_seen_at`), as rows of [`crate::history::membership_intervals`].
const MEMBERSHIP_INTERVALS: &str = "SELECT i.group_id, i.member_kind, i.member_id, i.valid_from, i.valid_to FROM ( \
       SELECT config_id, group_id, member_kind, member_id, valid_from, valid_to FROM membership_history \
       UNION ALL \
       SELECT config_id, group_id, member_kind, member_id, first_seen_at, NULL FROM memberships \
     ) i";

/// Admin roles, as rows of [`crate::history::role_intervals`].
const ROLE_INTERVALS: &str = "SELECT i.user_id, i.role, i.valid_from, i.valid_to FROM admin_role_history i";

/// The intervals `select` names `i` of a config of `org`, open at `at` when given, with the column
/// of each of `filters` equal to its value when given, ordered by `order`.
fn intervals_query<'a>(
    select: &str,
    org: OrgId,
    config: ConfigId,
    at: Option<OffsetDateTime>,
    filters: [(&str, &'a Option<String>); 2],
    order: &str,
) -> QueryBuilder<'a, Db> {
    let mut q = QueryBuilder::new(format!(
        "{select} WHERE EXISTS (SELECT 1 FROM integration_configs c WHERE c.id = i.config_id AND c.org_id = "
    ));
    q.push_bind(DbId(org.0)).push(")");
    q.push(" AND i.config_id = ").push_bind(DbId(config.0));
    if let Some(at) = at {
        q.push(" AND i.valid_from <= ").push_bind(DbTime(at));
        q.push(" AND (i.valid_to IS NULL OR i.valid_to > ").push_bind(DbTime(at)).push(")");
    }
    for (column, value) in filters {
        if let Some(value) = value {
            q.push(format!(" AND i.{column} = ")).push_bind(value.as_str());
        }
    }
    q.push(format!(" ORDER BY {order}"));
    q
}
