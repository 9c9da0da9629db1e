//! Staging, applying and deciding deletions (see `crate::holds`).

use std::collections::BTreeMap;

use ctxsync_core::{ConfigId, Coverage, HoldResolution, OrgId, Run, RunCounts};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Backend, Conn, Store, for_update};
use crate::StoreError;
use crate::history::Recorder;
use crate::holds::{Decided, HeldCursor, HeldDeletion, HoldStore, encode_hold, is_pending, resolved};
use crate::page::MEMBERSHIP;
use crate::rows::{RUN_COLUMNS, RunRow, encode_counts};
use crate::values::{DbId, DbTime};

impl Store {
    /// Stages what a completed run deletes: the removals the source named and what its coverage
    /// implies (no entity, for its config's `first_listing`). Returns the staged count of each
    /// kind.
    pub(super) async fn stage_deletions(
        conn: &mut Conn,
        run: &Run,
        coverage: &Coverage,
        first_listing: bool,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let named: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM run_removals WHERE run_id = $1)")
            .bind(DbId(run.id))
            .fetch_one(&mut *conn)
            .await?;
        let mut statements = Vec::new();
        // The removals' statements look through every membership of the config: only when needed.
        let removals = [
            "INSERT INTO held_deletions SELECT $2, $1, e.kind, e.source_id, '', '' \
             FROM run_removals r JOIN entities e ON e.config_id = $1 AND e.kind = r.kind AND e.source_id = r.source_id \
             WHERE r.run_id = $2 AND r.kind <> 'membership' ON CONFLICT DO NOTHING",
            "INSERT INTO held_deletions SELECT $2, $1, 'membership', group_id, member_kind, member_id \
             FROM memberships WHERE config_id = $1 AND ( \
               (member_kind, member_id) IN (SELECT kind, source_id FROM run_removals WHERE run_id = $2 AND kind <> 'membership') \
               OR group_id IN (SELECT source_id FROM run_removals WHERE run_id = $2 AND kind = 'group') \
               OR (group_id, member_kind, member_id) IN \
                  (SELECT source_id, member_kind, member_id FROM run_removals WHERE run_id = $2 AND kind = 'membership')) \
             ON CONFLICT DO NOTHING",
        ];
        if named {
            statements.extend(removals);
        }
        if coverage.is_full() && !first_listing {
            statements.push(
                "INSERT INTO held_deletions SELECT $2, $1, kind, source_id, '', '' FROM entities e \
                 WHERE config_id = $1 AND NOT EXISTS (SELECT 1 FROM run_seen_entities s \
                 WHERE s.run_id = $2 AND s.kind = e.kind AND s.source_id = e.source_id) ON CONFLICT DO NOTHING",
            );
        }
        for sql in statements {
            sqlx::query(sql).bind(DbId(run.config_id.0)).bind(DbId(run.id)).execute(&mut *conn).await?;
        }
        Self::stage_unseen_memberships(conn, run, coverage).await?;
        let staged: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, count(*) FROM held_deletions WHERE run_id = $1 GROUP BY kind")
                .bind(DbId(run.id))
                .fetch_all(&mut *conn)
                .await?;
        Ok(staged.into_iter().map(|(kind, n)| (kind, n as u64)).collect())
    }

    /// How many of each kind the config stores, memberships included.
    pub(super) async fn stored_counts(
        conn: &mut Conn,
        config: ConfigId,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, count(*) FROM entities WHERE config_id = $1 GROUP BY kind \
             UNION ALL SELECT 'membership', count(*) FROM memberships WHERE config_id = $1",
        )
        .bind(DbId(config.0))
        .fetch_all(&mut *conn)
        .await?;
        Ok(counts.into_iter().map(|(kind, n)| (kind, n as u64)).collect())
    }

    /// Deletes what `run` staged and is still stored, counting and recording the deletions, and
    /// clears the stage.
    pub(super) async fn apply_staged(
        conn: &mut Conn,
        run: &Run,
        counts: &mut RunCounts,
        recorder: &mut Recorder,
    ) -> Result<(), StoreError> {
        let memberships: Vec<(String, String, String, DbTime)> = sqlx::query_as(
            "DELETE FROM memberships WHERE config_id = $1 AND (group_id, member_kind, member_id) IN \
             (SELECT source_id, member_kind, member_id FROM held_deletions WHERE run_id = $2 AND kind = $3) \
             RETURNING group_id, member_kind, member_id, first_seen_at",
        )
        .bind(DbId(run.config_id.0))
        .bind(DbId(run.id))
        .bind(MEMBERSHIP)
        .fetch_all(&mut *conn)
        .await?;
        let entities: Vec<(String, String)> = sqlx::query_as(
            "DELETE FROM entities WHERE config_id = $1 AND (kind, source_id) IN \
             (SELECT kind, source_id FROM held_deletions WHERE run_id = $2 AND kind <> $3) RETURNING kind, source_id",
        )
        .bind(DbId(run.config_id.0))
        .bind(DbId(run.id))
        .bind(MEMBERSHIP)
        .fetch_all(&mut *conn)
        .await?;
        Self::clear_stage(conn, run.id).await?;
        for (kind, _) in &entities {
            counts.entry(kind).deleted += 1;
        }
        counts.entry(MEMBERSHIP).deleted += memberships.len() as u64;
        recorder.entities_deleted(entities)?;
        recorder.memberships_removed(memberships)
    }

    async fn clear_stage(conn: &mut Conn, run: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM held_deletions WHERE run_id = $1").bind(DbId(run)).execute(conn).await?;
        Ok(())
    }

    /// What a page's transaction must know first: whether the config has completed its baseline
    /// (so changes become events) and whether it has held deletions (so the page unstages what
    /// it lists). One statement, since it runs for every page.
    pub(super) async fn page_state(conn: &mut Conn, config: ConfigId) -> Result<(bool, bool), StoreError> {
        Ok(sqlx::query_as(
            "SELECT COALESCE((SELECT baselined FROM sync_state WHERE config_id = $1), false), \
             EXISTS (SELECT 1 FROM held_deletions WHERE config_id = $1)",
        )
        .bind(DbId(config.0))
        .fetch_one(conn)
        .await?)
    }

    /// Resolves every hold of the config still waiting as superseded: a full run judges afresh.
    pub(super) async fn supersede_holds(
        conn: &mut Conn,
        config: ConfigId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        for run in Self::pending(conn, config, true).await? {
            Self::resolve(conn, run, HoldResolution::Superseded, now).await?;
        }
        Ok(())
    }

    /// The config's runs whose holds wait, newest first; locked when a decision follows, so a
    /// confirmation and a superseding full run do not both act on one hold.
    async fn pending(conn: &mut Conn, config: ConfigId, lock: bool) -> Result<Vec<Run>, StoreError> {
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs r WHERE r.config_id = $1 AND r.status = 'held' \
             AND {} IS NULL ORDER BY r.started_at DESC, r.id DESC{}",
            Self::json_text("r.hold", &["resolution"]),
            if lock { for_update(None) } else { String::new() }
        ))
        .bind(DbId(config.0))
        .fetch_all(conn)
        .await?;
        rows.into_iter().map(Run::try_from).collect()
    }

    /// Marks a held run's hold resolved and clears its stage.
    async fn resolve(
        conn: &mut Conn,
        mut run: Run,
        resolution: HoldResolution,
        now: OffsetDateTime,
    ) -> Result<Run, StoreError> {
        Self::clear_stage(conn, run.id).await?;
        resolved(&mut run, resolution, now)?;
        sqlx::query("UPDATE sync_runs SET hold = $2, counts = $3 WHERE id = $1")
            .bind(DbId(run.id))
            .bind(run.hold.as_ref().map(encode_hold))
            .bind(encode_counts(&run.counts))
            .execute(conn)
            .await?;
        Ok(run)
    }

    async fn org_run(
        conn: &mut Conn,
        org: OrgId,
        config: ConfigId,
        run: Uuid,
        lock: bool,
    ) -> Result<Option<Run>, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN integration_configs c ON c.id = r.config_id \
             WHERE r.id = $1 AND r.config_id = $2 AND c.org_id = $3{}",
            if lock { for_update(Some("r")) } else { String::new() }
        ))
        .bind(DbId(run))
        .bind(DbId(config.0))
        .bind(DbId(org.0))
        .fetch_optional(conn)
        .await?;
        row.map(Run::try_from).transpose()
    }
}

#[async_trait::async_trait]
impl HoldStore for Store {
    async fn held_deletions(
        &self,
        org: OrgId,
        config: ConfigId,
        run: Uuid,
        after: Option<&HeldCursor>,
        limit: u32,
    ) -> Result<Option<Vec<HeldDeletion>>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        if Self::org_run(&mut conn, org, config, run, false).await?.is_none() {
            return Ok(None);
        }
        let after = after.cloned().unwrap_or_default();
        let rows = sqlx::query_as(
            "SELECT h.kind, h.source_id, h.member_kind, h.member_id, e.login, e.display_name FROM held_deletions h \
             LEFT JOIN entities e ON e.config_id = h.config_id AND e.kind = h.kind AND e.source_id = h.source_id \
             WHERE h.run_id = $1 AND (h.kind, h.source_id, h.member_kind, h.member_id) > ($2, $3, $4, $5) \
             ORDER BY h.kind, h.source_id, h.member_kind, h.member_id LIMIT $6",
        )
        .bind(DbId(run))
        .bind(&after.kind)
        .bind(&after.source_id)
        .bind(&after.member_kind)
        .bind(&after.member_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        Ok(Some(rows))
    }

    async fn decide_hold(
        &self,
        org: OrgId,
        config: ConfigId,
        run: Uuid,
        decision: HoldResolution,
    ) -> Result<Decided, StoreError> {
        let now = ctxsync_core::now();
        let mut tx = self.begin_write().await?;
        Self::hold_config(&mut tx, config).await?;
        let Some(mut run) = Self::org_run(&mut tx, org, config, run, true).await? else {
            return Ok(Decided::NotFound);
        };
        if !is_pending(&run) {
            return Ok(Decided::NotHeld(run));
        }
        if decision == HoldResolution::Confirmed {
            let mut recorder = Recorder::new(Self::baselined(&mut tx, config).await?);
            let mut counts = run.counts.clone();
            Self::apply_staged(&mut tx, &run, &mut counts, &mut recorder).await?;
            run.counts = counts;
            Self::record(&mut tx, &run, &recorder, now).await?;
        }
        let run = Self::resolve(&mut tx, run, decision, now).await?;
        tx.commit().await?;
        Ok(Decided::Resolved(run))
    }

    async fn pending_holds(&self, org: OrgId, config: ConfigId) -> Result<Vec<Run>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        let owned: Option<DbId> =
            sqlx::query_scalar("SELECT id FROM integration_configs WHERE id = $1 AND org_id = $2")
                .bind(DbId(config.0))
                .bind(DbId(org.0))
                .fetch_optional(&mut *conn)
                .await?;
        match owned {
            Some(_) => Self::pending(&mut conn, config, false).await,
            None => Ok(Vec::new()),
        }
    }
}
