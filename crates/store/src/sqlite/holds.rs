//! Staging, applying and deciding deletions on SQLite (see `crate::holds`).

use std::collections::BTreeMap;

use ctxsync_core::{ConfigId, Coverage, HoldResolution, OrgId, Run, RunCounts};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, json_rows};
use crate::history::Recorder;
use crate::holds::{Decided, HeldCursor, HeldDeletion, HoldStore, encode_hold, is_pending, resolved};
use crate::page::{MEMBERSHIP, membership_key};
use crate::rows::{self, RUN_COLUMNS, encode_counts};
use crate::{PageWrite, StoreError};

/// Rows per statement: well under SQLite's bound-variable limit.
const CHUNK: usize = 400;

type RunRow = rows::RunRow<String, String>;

/// A deleted membership and when it began, for its history.
type EndedRow = (String, String, String, String);

impl SqliteStore {
    /// Stages what a completed run deletes: the removals the source named and what its coverage
    /// implies. Returns the staged count of each kind.
    pub(super) async fn stage_deletions(
        conn: &mut SqliteConnection,
        run: &Run,
        coverage: &Coverage,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let (config_id, run_id) = (run.config_id.to_string(), run.id.to_string());
        let named: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM run_removals WHERE run_id = ?)")
            .bind(&run_id)
            .fetch_one(&mut *conn)
            .await?;
        let mut statements = Vec::new();
        // The removals' statements look through every membership of the config: only when needed.
        let removals: [&str; 2] = [
            "INSERT OR IGNORE INTO held_deletions SELECT ?2, ?1, e.kind, e.source_id, '', '' \
             FROM run_removals r JOIN entities e ON e.config_id = ?1 AND e.kind = r.kind AND e.source_id = r.source_id \
             WHERE r.run_id = ?2 AND r.kind <> 'membership'",
            "INSERT OR IGNORE INTO held_deletions SELECT ?2, ?1, 'membership', group_id, member_kind, member_id \
             FROM memberships WHERE config_id = ?1 AND ( \
               (member_kind, member_id) IN (SELECT kind, source_id FROM run_removals WHERE run_id = ?2 AND kind <> 'membership') \
               OR group_id IN (SELECT source_id FROM run_removals WHERE run_id = ?2 AND kind = 'group') \
               OR (group_id, member_kind, member_id) IN \
                  (SELECT source_id, member_kind, member_id FROM run_removals WHERE run_id = ?2 AND kind = 'membership'))",
        ];
        if named {
            statements.extend(removals);
        }
        if coverage.is_full() {
            statements.push(
                "INSERT OR IGNORE INTO held_deletions SELECT ?2, ?1, kind, source_id, '', '' FROM entities \
                 WHERE config_id = ?1 AND NOT EXISTS (SELECT 1 FROM run_seen_entities s \
                 WHERE s.run_id = ?2 AND s.kind = entities.kind AND s.source_id = entities.source_id)",
            );
        }
        for sql in statements {
            sqlx::query(sql).bind(&config_id).bind(&run_id).execute(&mut *conn).await?;
        }
        if coverage.is_full() {
            let unlisted = serde_json::to_string(coverage.groups_without_members()).expect("ids serialize");
            sqlx::query(
                "INSERT OR IGNORE INTO held_deletions SELECT ?2, ?1, 'membership', group_id, member_kind, member_id \
                 FROM memberships WHERE config_id = ?1 AND seen_run <> ?2 \
                 AND group_id NOT IN (SELECT value FROM json_each(?3))",
            )
            .bind(&config_id)
            .bind(&run_id)
            .bind(unlisted)
            .execute(&mut *conn)
            .await?;
        }
        if let Coverage::Changes { groups_with_all_members } = coverage {
            for groups in groups_with_all_members.chunks(CHUNK) {
                let mut q = QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO held_deletions SELECT ");
                q.push_bind(&run_id).push(", ").push_bind(&config_id);
                q.push(
                    ", 'membership', group_id, member_kind, member_id FROM memberships WHERE config_id = ",
                );
                q.push_bind(&config_id)
                    .push(" AND seen_run <> ")
                    .push_bind(&run_id)
                    .push(" AND group_id IN (");
                let mut sep = q.separated(", ");
                for g in groups {
                    sep.push_bind(g);
                }
                q.push(")");
                q.build().execute(&mut *conn).await?;
            }
        }
        let staged: Vec<(String, i64)> =
            sqlx::query_as("SELECT kind, count(*) FROM held_deletions WHERE run_id = ? GROUP BY kind")
                .bind(&run_id)
                .fetch_all(&mut *conn)
                .await?;
        Ok(staged.into_iter().map(|(kind, n)| (kind, n as u64)).collect())
    }

    /// How many of each kind the config stores, memberships included.
    pub(super) async fn stored_counts(
        conn: &mut SqliteConnection,
        config: ConfigId,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, count(*) FROM entities WHERE config_id = ?1 GROUP BY kind \
             UNION ALL SELECT 'membership', count(*) FROM memberships WHERE config_id = ?1",
        )
        .bind(config.to_string())
        .fetch_all(&mut *conn)
        .await?;
        Ok(counts.into_iter().map(|(kind, n)| (kind, n as u64)).collect())
    }

    /// Deletes what `run` staged and is still stored, counting and recording the deletions, and
    /// clears the stage.
    pub(super) async fn apply_staged(
        conn: &mut SqliteConnection,
        run: &Run,
        counts: &mut RunCounts,
        recorder: &mut Recorder,
    ) -> Result<(), StoreError> {
        let (config_id, run_id) = (run.config_id.to_string(), run.id.to_string());
        let memberships: Vec<EndedRow> = sqlx::query_as(
            "DELETE FROM memberships WHERE config_id = ?1 AND (group_id, member_kind, member_id) IN \
             (SELECT source_id, member_kind, member_id FROM held_deletions WHERE run_id = ?2 AND kind = ?3) \
             RETURNING group_id, member_kind, member_id, first_seen_at",
        )
        .bind(&config_id)
        .bind(&run_id)
        .bind(MEMBERSHIP)
        .fetch_all(&mut *conn)
        .await?;
        let entities: Vec<(String, String)> = sqlx::query_as(
            "DELETE FROM entities WHERE config_id = ?1 AND (kind, source_id) IN \
             (SELECT kind, source_id FROM held_deletions WHERE run_id = ?2 AND kind <> ?3) RETURNING kind, source_id",
        )
        .bind(&config_id)
        .bind(&run_id)
        .bind(MEMBERSHIP)
        .fetch_all(&mut *conn)
        .await?;
        Self::clear_stage(conn, &run_id).await?;
        for (kind, _) in &entities {
            counts.entry(kind).deleted += 1;
        }
        counts.entry(MEMBERSHIP).deleted += memberships.len() as u64;
        recorder.entities_deleted(entities)?;
        recorder.memberships_removed(memberships)
    }

    async fn clear_stage(conn: &mut SqliteConnection, run_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM held_deletions WHERE run_id = ?").bind(run_id).execute(conn).await?;
        Ok(())
    }

    /// What a page's transaction must know first: whether the config has completed its baseline
    /// (so changes become events) and whether it has held deletions (so the page unstages what
    /// it lists). One statement, since it runs for every page.
    pub(super) async fn page_state(
        conn: &mut SqliteConnection,
        config: ConfigId,
    ) -> Result<(bool, bool), StoreError> {
        Ok(sqlx::query_as(
            "SELECT COALESCE((SELECT baselined FROM sync_state WHERE config_id = ?1), 0), \
             EXISTS (SELECT 1 FROM held_deletions WHERE config_id = ?1)",
        )
        .bind(config.to_string())
        .fetch_one(conn)
        .await?)
    }

    /// Drops what a page lists again from the config's held stages.
    pub(super) async fn unstage_seen(
        conn: &mut SqliteConnection,
        config: ConfigId,
        page: &PageWrite<'_>,
    ) -> Result<(), StoreError> {
        let config_id = config.to_string();
        let entity_keys = (!page.entities.is_empty()).then(|| {
            json_rows(&page.entities.rows.iter().map(|row| (row.kind, &row.source_id)).collect::<Vec<_>>())
        });
        let membership_keys = (!page.memberships.is_empty())
            .then(|| json_rows(&page.memberships.iter().map(membership_key).collect::<Vec<_>>()));
        let statements = [
            (
                entity_keys,
                "DELETE FROM held_deletions WHERE config_id = ?1 AND (kind, source_id, member_kind, member_id) IN \
                 (SELECT value ->> 0, value ->> 1, '', '' FROM json_each(?2))",
            ),
            (
                membership_keys,
                "DELETE FROM held_deletions WHERE config_id = ?1 AND (kind, source_id, member_kind, member_id) IN \
                 (SELECT 'membership', value ->> 0, value ->> 1, value ->> 2 FROM json_each(?2))",
            ),
        ];
        for (keys, sql) in statements {
            if let Some(keys) = &keys {
                sqlx::query(sql).bind(&config_id).bind(keys).execute(&mut *conn).await?;
            }
        }
        Ok(())
    }

    /// Resolves every hold of the config still waiting as superseded: a full run judges afresh.
    pub(super) async fn supersede_holds(
        conn: &mut SqliteConnection,
        config: ConfigId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        for run in Self::pending(conn, config).await? {
            Self::resolve(conn, run, HoldResolution::Superseded, now).await?;
        }
        Ok(())
    }

    async fn pending(conn: &mut SqliteConnection, config: ConfigId) -> Result<Vec<Run>, StoreError> {
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs r WHERE r.config_id = ? AND r.status = 'held' \
             AND r.hold ->> '$.resolution' IS NULL ORDER BY r.started_at DESC, r.id DESC"
        ))
        .bind(config.to_string())
        .fetch_all(conn)
        .await?;
        rows.into_iter().map(Run::try_from).collect()
    }

    /// Marks a held run's hold resolved and clears its stage.
    async fn resolve(
        conn: &mut SqliteConnection,
        mut run: Run,
        resolution: HoldResolution,
        now: OffsetDateTime,
    ) -> Result<Run, StoreError> {
        let run_id = run.id.to_string();
        Self::clear_stage(conn, &run_id).await?;
        resolved(&mut run, resolution, now)?;
        sqlx::query("UPDATE sync_runs SET hold = ?, counts = ? WHERE id = ?")
            .bind(run.hold.as_ref().map(encode_hold))
            .bind(encode_counts(&run.counts))
            .bind(&run_id)
            .execute(conn)
            .await?;
        Ok(run)
    }

    async fn org_run(
        conn: &mut SqliteConnection,
        org: OrgId,
        config: ConfigId,
        run: Uuid,
    ) -> Result<Option<Run>, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN integration_configs c ON c.id = r.config_id \
             WHERE r.id = ? AND r.config_id = ? AND c.org_id = ?"
        ))
        .bind(run.to_string())
        .bind(config.to_string())
        .bind(org.to_string())
        .fetch_optional(conn)
        .await?;
        row.map(Run::try_from).transpose()
    }
}

#[async_trait::async_trait]
impl HoldStore for SqliteStore {
    async fn held_deletions(
        &self,
        org: OrgId,
        config: ConfigId,
        run: Uuid,
        after: Option<&HeldCursor>,
        limit: u32,
    ) -> Result<Option<Vec<HeldDeletion>>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        if Self::org_run(&mut conn, org, config, run).await?.is_none() {
            return Ok(None);
        }
        let after = after.cloned().unwrap_or_default();
        let rows = sqlx::query_as(
            "SELECT h.kind, h.source_id, h.member_kind, h.member_id, e.login, e.display_name FROM held_deletions h \
             LEFT JOIN entities e ON e.config_id = h.config_id AND e.kind = h.kind AND e.source_id = h.source_id \
             WHERE h.run_id = ?1 AND (h.kind, h.source_id, h.member_kind, h.member_id) > (?2, ?3, ?4, ?5) \
             ORDER BY h.kind, h.source_id, h.member_kind, h.member_id LIMIT ?6",
        )
        .bind(run.to_string())
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
        let Some(mut run) = Self::org_run(&mut tx, org, config, run).await? else {
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
        let mut conn = self.pool.acquire().await?;
        let owned: Option<String> =
            sqlx::query_scalar("SELECT id FROM integration_configs WHERE id = ? AND org_id = ?")
                .bind(config.to_string())
                .bind(org.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        match owned {
            Some(_) => Self::pending(&mut conn, config).await,
            None => Ok(Vec::new()),
        }
    }
}
