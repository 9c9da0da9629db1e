//! The reads of [`HistoryStore`]; what a [`crate::history::Recorder`] gathered is written by
//! [`Backend::record`], in batches each backend binds its own way.

use ctxsync_core::{ConfigId, OrgId};
use time::OffsetDateTime;

use super::{Backend, Conn, Db, Store};
use crate::StoreError;
use crate::history::{
    ChangeEvent, EventQuery, EventRow, HistoryStore, IntervalQuery, MembershipInterval, RoleInterval,
    list_events_query, membership_intervals, membership_intervals_query, role_intervals,
    role_intervals_query,
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
        let mut q = list_events_query::<Db, _, _>(org, query, DbId, DbTime);
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
        let mut q = membership_intervals_query::<Db, _, _>(DbId(org.0), DbId(config.0), query, DbTime);
        membership_intervals(q.build_query_as().fetch_all(self.reader()).await?)
    }

    async fn role_intervals(
        &self,
        org: OrgId,
        config: ConfigId,
        query: &IntervalQuery,
    ) -> Result<Vec<RoleInterval>, StoreError> {
        let mut q = role_intervals_query::<Db, _, _>(DbId(org.0), DbId(config.0), query, DbTime);
        role_intervals(q.build_query_as().fetch_all(self.reader()).await?)
    }
}
