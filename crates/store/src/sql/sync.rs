//! Leases, run records and completing runs; a page's writes are the backend's
//! ([`Backend::write_page`]).
//!
//! Several replicas may share a PostgreSQL database, so a lease is taken in one atomic upsert:
//! whichever statement commits first holds it, and the others see it held. Each `apply_page` is
//! one transaction and completing a run is one more; a process killed in between leaves the
//! upserts of the pages it applied and nothing half-deleted. The seen and removal rows of its
//! unfinished run are cleared by the next holder of the lease, unless the run was a full one
//! that left a checkpoint: then they stay for the next run to go on from
//! ([`SyncStore::resume_run`]), and go when any other run starts instead.

use ctxsync_core::{Config, ConfigId, IntegrationType, OrgId, Run, RunCounts, RunKind};
use time::OffsetDateTime;
use uuid::Uuid;

use super::configs::CONFIG_COLUMNS;
use super::{Backend, Store, for_update};
use crate::history::Recorder;
use crate::rows::{ConfigRow, RUN_COLUMNS, RunRow, StateRow, SummaryRow, encode_counts};
use crate::sync::{Ending, INTERRUPTED, new_run};
use crate::values::{DbId, DbTime};
use crate::{Lease, PageWrite, ResumePoint, RunEnd, StoreError, SyncState, SyncStore};

#[async_trait::async_trait]
impl SyncStore for Store {
    /// A config listed here may still be taken by another replica first: `acquire_lease` decides.
    async fn due_configs(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Config>, StoreError> {
        let rows: Vec<ConfigRow> = sqlx::query_as(&format!(
            "SELECT {CONFIG_COLUMNS} FROM integration_configs c LEFT JOIN sync_state s ON s.config_id = c.id \
             WHERE c.enabled AND c.state <> 'invalid' \
               AND (s.next_run_at IS NULL OR s.next_run_at <= $1) \
               AND (s.lease_until IS NULL OR s.lease_until < $1) \
             ORDER BY s.next_run_at NULLS FIRST, c.id LIMIT $2"
        ))
        .bind(DbTime(now))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(Config::try_from).collect()
    }

    /// One upsert takes the lease when it is free, expired or already ours; a replica racing for
    /// it waits on the row and then finds it held.
    async fn acquire_lease(
        &self,
        config: ConfigId,
        owner: &str,
        until: OffsetDateTime,
        replacing: Option<&str>,
    ) -> Result<Option<SyncState>, StoreError> {
        let now = ctxsync_core::now();
        let mut tx = self.begin_write().await?;
        Self::hold_config(&mut tx, config).await?;
        let state: Option<StateRow> = sqlx::query_as(
            "INSERT INTO sync_state (config_id, lease_owner, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (config_id) DO UPDATE SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until \
             WHERE sync_state.lease_owner IS NULL OR sync_state.lease_owner = EXCLUDED.lease_owner \
               OR sync_state.lease_until < $4 OR sync_state.lease_owner = $5 \
             RETURNING cursor, last_full_at, next_run_at",
        )
        .bind(DbId(config.0))
        .bind(owner)
        .bind(DbTime(until))
        .bind(DbTime(now))
        .bind(replacing)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(state) = state else {
            return Ok(None);
        };
        let stale: Vec<(DbId, bool)> = sqlx::query_as(
            "UPDATE sync_runs SET status = 'failed', finished_at = $2, error = $3 \
             WHERE config_id = $1 AND status = 'running' \
             RETURNING id, kind = 'full' AND checkpoint IS NOT NULL",
        )
        .bind(DbId(config.0))
        .bind(DbTime(now))
        .bind(INTERRUPTED)
        .fetch_all(&mut *tx)
        .await?;
        let stale: Vec<Uuid> =
            stale.into_iter().filter(|(_, resumable)| !resumable).map(|(id, _)| id.0).collect();
        Self::clear_run_scratch(&mut tx, &stale).await?;
        tx.commit().await?;
        Ok(Some(state.try_into()?))
    }

    async fn lease(&self, config: ConfigId) -> Result<Option<Lease>, StoreError> {
        let row: Option<(String, DbTime)> = sqlx::query_as(
            "SELECT lease_owner, lease_until FROM sync_state \
             WHERE config_id = $1 AND lease_owner IS NOT NULL AND lease_until IS NOT NULL",
        )
        .bind(DbId(config.0))
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(|(owner, until)| Lease { owner, until: until.0 }))
    }

    async fn renew_lease(
        &self,
        config: ConfigId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE sync_state SET lease_until = $3 WHERE config_id = $1 AND lease_owner = $2")
                .bind(DbId(config.0))
                .bind(owner)
                .bind(DbTime(until))
                .execute(self.writer())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, config: ConfigId, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sync_state SET lease_owner = NULL, lease_until = NULL WHERE config_id = $1 AND lease_owner = $2",
        )
        .bind(DbId(config.0))
        .bind(owner)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn leased_domains(
        &self,
        integration_type: IntegrationType,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.domain, s.lease_owner FROM sync_state s JOIN integration_configs c ON c.id = s.config_id \
             WHERE c.integration_type = $1 AND s.lease_owner IS NOT NULL AND s.lease_until >= $2",
        )
        .bind(integration_type.as_str())
        .bind(DbTime(now))
        .fetch_all(self.reader())
        .await?)
    }

    async fn start_run(&self, config: ConfigId, kind: RunKind, owner: &str) -> Result<Run, StoreError> {
        self.begin_run(config, kind, None, owner).await
    }

    async fn resume_point(&self, config: ConfigId) -> Result<Option<ResumePoint>, StoreError> {
        let row: Option<(DbId, DbTime, Option<DbTime>, String, String)> = sqlx::query_as(
            "SELECT id, COALESCE(listed_since, started_at), finished_at, checkpoint, checkpoint_counts FROM sync_runs \
             WHERE config_id = $1 AND kind = 'full' AND status IN ('failed', 'cancelled') \
               AND checkpoint IS NOT NULL AND checkpoint_counts IS NOT NULL \
             ORDER BY started_at DESC LIMIT 1",
        )
        .bind(DbId(config.0))
        .fetch_optional(self.reader())
        .await?;
        let Some((id, listed_since, stopped_at, checkpoint, counts)) = row else { return Ok(None) };
        let corrupt = |what: &str| StoreError::Corrupt(format!("sync run {} has an unreadable {what}", id.0));
        Ok(Some(ResumePoint {
            run: id.0,
            listed_since: listed_since.0,
            stopped_at: stopped_at.map_or(listed_since.0, |t| t.0),
            checkpoint: serde_json::from_str(&checkpoint).map_err(|_| corrupt("checkpoint"))?,
            counts: serde_json::from_str(&counts).map_err(|_| corrupt("counts"))?,
        }))
    }

    async fn resume_run(&self, config: ConfigId, from: &ResumePoint, owner: &str) -> Result<Run, StoreError> {
        self.begin_run(config, RunKind::Full, Some(from), owner).await
    }

    async fn apply_page(&self, run: &Run, org: OrgId, page: PageWrite<'_>) -> Result<RunCounts, StoreError> {
        let mut tx = self.begin_write().await?;
        Self::hold_config(&mut tx, run.config_id).await?;
        // A worker that stalled while another took its config over must not write: its seen rows
        // and checkpoint would belong to a run the other may already have gone on from.
        let claimed = Self::claim_run(&mut tx, run.id).await?;
        let (baselined, held) = Self::page_state(&mut tx, run.config_id).await?;
        let mut recorder = Recorder::new(baselined);
        let counts = Self::write_page(&mut tx, org, run, &page, claimed.first_listing, &mut recorder).await?;
        if held {
            Self::unstage_seen(&mut tx, run.config_id, &page).await?;
        }
        Self::record(&mut tx, run, &recorder, ctxsync_core::now()).await?;
        if let Some(checkpoint) = page.checkpoint {
            let mut so_far = run.counts.clone();
            so_far.add(&counts);
            for (kind, unmarked) in &checkpoint.unmarked.by_type {
                let fetched = &mut so_far.entry(kind).fetched;
                *fetched = fetched.saturating_sub(unmarked.fetched);
            }
            sqlx::query("UPDATE sync_runs SET checkpoint = $2, checkpoint_counts = $3 WHERE id = $1")
                .bind(DbId(run.id))
                .bind(serde_json::Value::Object(checkpoint.marks.clone()).to_string())
                .bind(encode_counts(&so_far))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn save_progress(&self, run: &Run) -> Result<(), StoreError> {
        sqlx::query("UPDATE sync_runs SET counts = $2 WHERE id = $1 AND status = 'running'")
            .bind(DbId(run.id))
            .bind(encode_counts(&run.counts))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn finish_run(&self, run: &Run, end: RunEnd) -> Result<Run, StoreError> {
        let now = ctxsync_core::now();
        let mut ending = Ending::new(run, &end, now);
        let mut tx = self.begin_write().await?;
        Self::hold_config(&mut tx, run.config_id).await?;
        let claimed = Self::claim_run(&mut tx, run.id).await?;
        // A full run that stopped keeps what it listed for the next full run to go on from.
        let resumable = claimed.checkpointed && ending.completed.is_none() && run.kind == RunKind::Full;
        let baselined = Self::baselined(&mut tx, run.config_id).await?;
        if let Some((coverage, _)) = ending.completed.clone() {
            if coverage.is_full() {
                Self::supersede_holds(&mut tx, run.config_id, now).await?;
            }
            let staged = Self::stage_deletions(&mut tx, run, coverage, claimed.first_listing).await?;
            let stored = if staged.is_empty() {
                Default::default()
            } else {
                Self::stored_counts(&mut tx, run.config_id).await?
            };
            if ending.may_delete(&staged, &stored) {
                let mut recorder = Recorder::new(baselined);
                Self::apply_staged(&mut tx, run, &mut ending.run.counts, &mut recorder).await?;
                Self::record(&mut tx, run, &recorder, now).await?;
            }
        }
        let baseline = ending.baseline(baselined);
        let cursor = ending.completed.as_ref().and_then(|(_, cursor)| cursor.as_deref());
        // The cursor changes only when the listing completed; `last_full_at` only after a full
        // one. A "sync now" that came in during the run is due at once, not at the next schedule.
        sqlx::query(
            "INSERT INTO sync_state (config_id, cursor, last_full_at, next_run_at, baselined) \
             VALUES ($1, $2, $3, $4, $6) \
             ON CONFLICT (config_id) DO UPDATE SET \
               cursor = CASE WHEN $5 THEN EXCLUDED.cursor ELSE sync_state.cursor END, \
               last_full_at = COALESCE(EXCLUDED.last_full_at, sync_state.last_full_at), \
               next_run_at = CASE WHEN sync_state.requested_run IS NULL THEN EXCLUDED.next_run_at ELSE $7 END, \
               baselined = sync_state.baselined OR EXCLUDED.baselined",
        )
        .bind(DbId(run.config_id.0))
        .bind(cursor)
        .bind(ending.last_full_at.map(DbTime))
        .bind(DbTime(ending.next_run_at))
        .bind(ending.completed.is_some())
        .bind(baseline)
        .bind(DbTime(now))
        .execute(&mut *tx)
        .await?;
        if !resumable {
            Self::clear_run_scratch(&mut tx, &[run.id]).await?;
        }
        let (hold, completeness) = ending.findings();
        let finished = ending.run;
        sqlx::query(
            "UPDATE sync_runs SET status = $2, finished_at = $3, counts = $4, error = $5, baseline = $6, hold = $7, \
             completeness = $8, checkpoint = CASE WHEN $9 THEN checkpoint ELSE NULL END WHERE id = $1",
        )
        .bind(DbId(run.id))
        .bind(finished.status.as_str())
        .bind(DbTime(now))
        .bind(encode_counts(&finished.counts))
        .bind(&finished.error)
        .bind(finished.baseline)
        .bind(hold)
        .bind(completeness)
        .bind(resumable)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.after_run(run).await?;
        Ok(finished)
    }

    async fn sync_state(&self, config: ConfigId) -> Result<SyncState, StoreError> {
        let row: Option<StateRow> =
            sqlx::query_as("SELECT cursor, last_full_at, next_run_at FROM sync_state WHERE config_id = $1")
                .bind(DbId(config.0))
                .fetch_optional(self.reader())
                .await?;
        row.map(SyncState::try_from).transpose().map(Option::unwrap_or_default)
    }

    async fn config_by_id(&self, config: ConfigId) -> Result<Option<Config>, StoreError> {
        let row: Option<ConfigRow> =
            sqlx::query_as(&format!("SELECT {CONFIG_COLUMNS} FROM integration_configs WHERE id = $1"))
                .bind(DbId(config.0))
                .fetch_optional(self.reader())
                .await?;
        row.map(Config::try_from).transpose()
    }

    async fn request_run(&self, org: OrgId, config: ConfigId) -> Result<Option<Uuid>, StoreError> {
        let requested: Option<DbId> = sqlx::query_scalar(
            "INSERT INTO sync_state (config_id, next_run_at, requested_run) \
             SELECT id, $3, $4 FROM integration_configs WHERE id = $1 AND org_id = $2 \
             ON CONFLICT (config_id) DO UPDATE SET next_run_at = EXCLUDED.next_run_at, \
               requested_run = COALESCE(sync_state.requested_run, EXCLUDED.requested_run) \
             RETURNING requested_run",
        )
        .bind(DbId(config.0))
        .bind(DbId(org.0))
        .bind(DbTime(ctxsync_core::now()))
        .bind(DbId(Uuid::new_v4()))
        .fetch_optional(self.writer())
        .await?;
        Ok(requested.map(|id| id.0))
    }

    async fn list_runs(&self, org: OrgId, config: ConfigId, limit: u32) -> Result<Vec<Run>, StoreError> {
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN integration_configs c ON c.id = r.config_id \
             WHERE r.config_id = $1 AND c.org_id = $2 ORDER BY r.started_at DESC, r.id DESC LIMIT $3"
        ))
        .bind(DbId(config.0))
        .bind(DbId(org.0))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(Run::try_from).collect()
    }

    async fn get_run(&self, org: OrgId, config: ConfigId, run: Uuid) -> Result<Option<Run>, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN integration_configs c ON c.id = r.config_id \
             WHERE r.id = $1 AND r.config_id = $2 AND c.org_id = $3"
        ))
        .bind(DbId(run))
        .bind(DbId(config.0))
        .bind(DbId(org.0))
        .fetch_optional(self.reader())
        .await?;
        row.map(Run::try_from).transpose()
    }

    async fn run_summaries(&self) -> Result<Vec<crate::RunSummary>, StoreError> {
        let unresolved = format!("{} IS NULL", Self::json_text("r.hold", &["resolution"]));
        let rows: Vec<SummaryRow> =
            sqlx::query_as(&crate::sync::run_summaries_query(&unresolved)).fetch_all(self.reader()).await?;
        rows.into_iter().map(crate::RunSummary::try_from).collect()
    }
}

impl Store {
    /// Records a new run for the lease's holder `owner`, going on from `from` when given. It
    /// drops what the config's other stopped runs kept for resuming: there is one listing to go
    /// on from at a time, and a run in between would leave its record of what was seen behind
    /// the store.
    async fn begin_run(
        &self,
        config: ConfigId,
        kind: RunKind,
        from: Option<&ResumePoint>,
        owner: &str,
    ) -> Result<Run, StoreError> {
        let mut run = new_run(config, kind);
        let listed_since = from.map_or(run.started_at, |f| f.listed_since);
        if let Some(from) = from {
            run.resumed_from = Some(from.run);
            run.counts = from.counts.clone();
        }
        let mut tx = self.begin_write().await?;
        Self::hold_config(&mut tx, config).await?;
        // The row lock keeps a concurrent "sync now" from promising the id being taken here, and
        // orders this run with a takeover of the lease: one that came first is seen here, one that
        // comes after marks this run failed.
        let state: Option<(Option<DbId>, Option<String>)> = sqlx::query_as(&format!(
            "SELECT requested_run, lease_owner FROM sync_state WHERE config_id = $1{}",
            for_update(None)
        ))
        .bind(DbId(config.0))
        .fetch_optional(&mut *tx)
        .await?;
        let (requested, holder) = state.unwrap_or_default();
        if holder.as_deref() != Some(owner) {
            return Err(StoreError::LeaseLost { config });
        }
        if let Some(id) = requested {
            run.id = id.0;
            sqlx::query("UPDATE sync_state SET requested_run = NULL WHERE config_id = $1")
                .bind(DbId(config.0))
                .execute(&mut *tx)
                .await?;
        }
        let first_listing = match from {
            Some(from) => sqlx::query_scalar("SELECT first_listing FROM sync_runs WHERE id = $1")
                .bind(DbId(from.run))
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or(false),
            None if kind == RunKind::Full => {
                sqlx::query_scalar(
                    "SELECT NOT EXISTS (SELECT 1 FROM entities WHERE config_id = $1) \
                 AND NOT EXISTS (SELECT 1 FROM memberships WHERE config_id = $1)",
                )
                .bind(DbId(config.0))
                .fetch_one(&mut *tx)
                .await?
            }
            None => false,
        };
        // A resumed run starts where the stopped one was: stopped again before its first mark,
        // it leaves the same point to go on from.
        sqlx::query(
            "INSERT INTO sync_runs (id, config_id, kind, status, started_at, counts, resumed_from, checkpoint, \
             checkpoint_counts, listed_since, first_listing) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $6, $9, $10)",
        )
        .bind(DbId(run.id))
        .bind(DbId(config.0))
        .bind(kind.as_str())
        .bind(run.status.as_str())
        .bind(DbTime(run.started_at))
        .bind(encode_counts(&run.counts))
        .bind(from.map(|f| DbId(f.run)))
        .bind(from.map(|f| serde_json::Value::Object(f.checkpoint.clone()).to_string()))
        .bind(DbTime(listed_since))
        .bind(first_listing)
        .execute(&mut *tx)
        .await?;
        let kept: Vec<DbId> = sqlx::query_scalar(
            "UPDATE sync_runs SET checkpoint = NULL \
             WHERE config_id = $1 AND id <> $2 AND status <> 'running' AND checkpoint IS NOT NULL RETURNING id",
        )
        .bind(DbId(config.0))
        .bind(DbId(run.id))
        .fetch_all(&mut *tx)
        .await?;
        let kept: Vec<Uuid> = kept.into_iter().map(|id| id.0).collect();
        if let Some(from) = from {
            // Under the config's lease nobody else starts its runs, so the run to go on from is
            // still there; were it not, going on would delete what it had listed.
            if !kept.contains(&from.run) {
                return Err(StoreError::RunTakenOver(from.run));
            }
            Self::adopt_run_scratch(&mut tx, config, from.run, run.id).await?;
        }
        let dropped: Vec<Uuid> = kept.into_iter().filter(|id| Some(*id) != from.map(|f| f.run)).collect();
        Self::clear_run_scratch(&mut tx, &dropped).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// Locks a running run's row for the transaction, so a worker taking the lease over waits
    /// for it or has already marked the run failed; [`StoreError::RunTakenOver`] when it is no
    /// longer running.
    async fn claim_run(conn: &mut super::Conn, run: uuid::Uuid) -> Result<Claimed, StoreError> {
        let claimed: Option<(bool, bool)> = sqlx::query_as(
            "UPDATE sync_runs SET status = status WHERE id = $1 AND status = 'running' \
             RETURNING checkpoint IS NOT NULL, first_listing",
        )
        .bind(DbId(run))
        .fetch_optional(&mut *conn)
        .await?;
        let (checkpointed, first_listing) = claimed.ok_or(StoreError::RunTakenOver(run))?;
        Ok(Claimed { checkpointed, first_listing })
    }
}

/// What a write learns of the running run it claims.
struct Claimed {
    /// The run holds a checkpoint.
    checkpointed: bool,
    /// The run is a full one that began while its config stored nothing, or goes on from such a
    /// run: every entity stored when it completes was listed by it (nobody else writes the
    /// config while it holds the lease), so it writes no entity's seen row and deletes no entity
    /// but those the source named. Memberships keep their marks: a resumed run can list a
    /// group whole again and drop a member whose mark was carried over from before the stop.
    first_listing: bool,
}
