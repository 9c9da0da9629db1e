//! Leases, run records, applying pages and completing runs, on PostgreSQL.
//!
//! Several replicas share the database, so a lease is taken in one atomic upsert: whichever
//! replica's statement commits first holds it, and the others see it held. As on SQLite, each
//! `apply_page` is one transaction and completing a run is one more; a replica killed in between
//! leaves the upserts of the pages it applied and nothing half-deleted, and the seen and removal
//! rows of its unfinished run are cleared by the next holder of the lease.

use std::collections::HashMap;

use ctxsync_core::{Config, ConfigId, Membership, OrgId, Removal, Run, RunCounts, RunKind};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::PostgresStore;
use super::configs::{CONFIG_COLUMNS, ConfigRow};
use crate::history::Recorder;
use crate::page::{Changed, EntityWrite, MEMBERSHIP, membership_key, removal_key};
use crate::rows::{self, RUN_COLUMNS, encode_counts};
use crate::sync::{Ending, INTERRUPTED, new_run};
use crate::{Lease, PageWrite, PreparedEntities, RunEnd, StoreError, SyncState, SyncStore};

type RunRow = rows::RunRow<Uuid, OffsetDateTime>;
type StateRow = rows::StateRow<OffsetDateTime>;

impl PostgresStore {
    /// Writes new and changed entities of a page, counting them, and notes every entity of the
    /// page as seen.
    async fn upsert_entities(
        conn: &mut PgConnection,
        run: &Run,
        org: OrgId,
        entities: &PreparedEntities,
        counts: &mut RunCounts,
        recorder: &mut Recorder,
    ) -> Result<(), StoreError> {
        if entities.is_empty() {
            return Ok(());
        }
        let rows = &entities.rows;
        counts.add(&entities.fetched);
        let kinds: Vec<&str> = rows.iter().map(|row| row.kind).collect();
        let source_ids: Vec<&str> = rows.iter().map(|row| row.source_id.as_str()).collect();
        // The stored digests by position in the page; noting the page as seen rides along.
        let stored: HashMap<i64, Vec<u8>> = sqlx::query_as(
            "WITH seen AS (INSERT INTO run_seen_entities (run_id, kind, source_id) \
               SELECT $2, * FROM UNNEST($3::text[], $4::text[]) ON CONFLICT DO NOTHING) \
             SELECT k.n - 1, e.digest FROM UNNEST($3::text[], $4::text[]) WITH ORDINALITY AS k (kind, source_id, n) \
             JOIN entities e ON e.config_id = $1 AND e.kind = k.kind AND e.source_id = k.source_id",
        )
        .bind(run.config_id.0)
        .bind(run.id)
        .bind(&kinds)
        .bind(&source_ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        let changed = Changed::new(rows, &stored, counts);
        let stored = Self::stored_data(conn, run.config_id, &changed.updated).await?;
        recorder.entities(&changed.created, &changed.updated, stored)?;
        if !changed.updated.is_empty() {
            Self::forget_identifiers(conn, run.config_id, &changed.updated).await?;
        }
        let changed = changed.all();
        if !changed.is_empty() {
            Self::write_entities(conn, run.config_id, org, &changed).await?;
        }
        Ok(())
    }

    /// Deletes the identifiers that entities about to be rewritten no longer have (the others
    /// stay, rather than become dead rows and new ones); a new entity has none, so a first sync
    /// never runs this.
    async fn forget_identifiers(
        conn: &mut PgConnection,
        config: ConfigId,
        rows: &[&EntityWrite],
    ) -> Result<(), StoreError> {
        let (mut kept, mut kinds, mut sources) = (Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            for identifier in &row.identifiers {
                kept.push(identifier.as_str());
                kinds.push(row.kind);
                sources.push(row.source_id.as_str());
            }
        }
        sqlx::query(
            "DELETE FROM entity_identifiers i USING UNNEST($2::text[], $3::text[]) AS k (kind, source_id) \
             WHERE i.config_id = $1 AND i.kind = k.kind AND i.source_id = k.source_id \
             AND (i.identifier, i.kind, i.source_id) NOT IN \
               (SELECT * FROM UNNEST($4::text[], $5::text[], $6::text[]))",
        )
        .bind(config.0)
        .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.source_id.as_str()).collect::<Vec<_>>())
        .bind(&kept)
        .bind(&kinds)
        .bind(&sources)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Upserts `rows` and adds their identifiers.
    async fn write_entities(
        conn: &mut PgConnection,
        config: ConfigId,
        org: OrgId,
        rows: &[&EntityWrite],
    ) -> Result<(), StoreError> {
        let text = |f: fn(&EntityWrite) -> &str| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
        let nullable = |f: fn(&EntityWrite) -> Option<&str>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
        let (kinds, source_ids) = (text(|r| r.kind), text(|r| &r.source_id));
        sqlx::query(
            "INSERT INTO entities (config_id, org_id, first_seen_at, updated_at, kind, source_id, status, login, \
               display_name, data, raw, digest) \
             SELECT $1, $2, $3, $3, * FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
               $9::text[], $10::text[], $11::bytea[]) \
             ON CONFLICT (config_id, kind, source_id) DO UPDATE SET status = EXCLUDED.status, \
               login = EXCLUDED.login, display_name = EXCLUDED.display_name, data = EXCLUDED.data, \
               raw = EXCLUDED.raw, digest = EXCLUDED.digest, updated_at = EXCLUDED.updated_at",
        )
        .bind(config.0)
        .bind(org.0)
        .bind(ctxsync_core::now())
        .bind(&kinds)
        .bind(&source_ids)
        .bind(nullable(|r| r.status.as_deref()))
        .bind(nullable(|r| r.login.as_deref()))
        .bind(nullable(|r| r.display_name.as_deref()))
        .bind(text(|r| &r.data))
        .bind(text(|r| &r.raw))
        .bind(rows.iter().map(|r| r.digest.as_slice()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;

        let (mut identifiers, mut id_kinds, mut id_sources) = (Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            for identifier in &row.identifiers {
                identifiers.push(identifier.as_str());
                id_kinds.push(row.kind);
                id_sources.push(row.source_id.as_str());
            }
        }
        sqlx::query(
            "INSERT INTO entity_identifiers (org_id, config_id, identifier, kind, source_id) \
             SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[], $5::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(org.0)
        .bind(config.0)
        .bind(&identifiers)
        .bind(&id_kinds)
        .bind(&id_sources)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Adds a page's memberships, counting the new ones, and notes them as seen.
    async fn add_memberships(
        conn: &mut PgConnection,
        run: &Run,
        memberships: &[Membership],
        counts: &mut RunCounts,
        recorder: &mut Recorder,
    ) -> Result<(), StoreError> {
        if memberships.is_empty() {
            return Ok(());
        }
        counts.entry(MEMBERSHIP).fetched += memberships.len() as u64;
        let (mut groups, mut kinds, mut members) = (Vec::new(), Vec::new(), Vec::new());
        for (group, kind, member) in memberships.iter().map(membership_key) {
            groups.push(group);
            kinds.push(kind);
            members.push(member);
        }
        // Only inserted rows are counted, so this is the number of new memberships. They are read
        // back only when they become events: never on a config's first sync.
        macro_rules! insert {
            () => {
                "WITH seen AS (INSERT INTO run_seen_memberships (run_id, group_id, member_kind, member_id) \
                   SELECT $2, * FROM UNNEST($4::text[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING) \
                 INSERT INTO memberships (config_id, first_seen_at, group_id, member_kind, member_id) \
                 SELECT $1, $3, * FROM UNNEST($4::text[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING"
            };
        }
        let sql = if recorder.events_on() {
            concat!(insert!(), " RETURNING group_id, member_kind, member_id")
        } else {
            insert!()
        };
        let query = sqlx::query(sql)
            .bind(run.config_id.0)
            .bind(run.id)
            .bind(ctxsync_core::now())
            .bind(&groups)
            .bind(&kinds)
            .bind(&members);
        let created = if recorder.events_on() {
            recorder.memberships_added(&query.fetch_all(&mut *conn).await?)?
        } else {
            query.execute(&mut *conn).await?.rows_affected()
        };
        counts.entry(MEMBERSHIP).created += created;
        Ok(())
    }

    async fn note_removals(
        conn: &mut PgConnection,
        run: &Run,
        removals: &[Removal],
    ) -> Result<(), StoreError> {
        let mut columns: [Vec<&str>; 4] = Default::default();
        for (kind, source_id, member_kind, member_id) in removals.iter().map(removal_key) {
            for (column, value) in columns.iter_mut().zip([kind, source_id, member_kind, member_id]) {
                column.push(value);
            }
        }
        let [kinds, source_ids, member_kinds, member_ids] = columns;
        sqlx::query(
            "INSERT INTO run_removals (run_id, kind, source_id, member_kind, member_id) \
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(run.id)
        .bind(kinds)
        .bind(source_ids)
        .bind(member_kinds)
        .bind(member_ids)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn clear_run_scratch(conn: &mut PgConnection, runs: &[Uuid]) -> Result<(), StoreError> {
        sqlx::query(
            "WITH seen_entities AS (DELETE FROM run_seen_entities WHERE run_id = ANY($1)), \
               seen_memberships AS (DELETE FROM run_seen_memberships WHERE run_id = ANY($1)) \
             DELETE FROM run_removals WHERE run_id = ANY($1)",
        )
        .bind(runs)
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl SyncStore for PostgresStore {
    /// A config listed here may still be taken by another replica first: `acquire_lease` decides.
    async fn due_configs(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Config>, StoreError> {
        let rows: Vec<ConfigRow> = sqlx::query_as(&format!(
            "SELECT {CONFIG_COLUMNS} FROM integration_configs c LEFT JOIN sync_state s ON s.config_id = c.id \
             WHERE c.enabled AND c.state <> 'invalid' \
               AND (s.next_run_at IS NULL OR s.next_run_at <= $1) \
               AND (s.lease_until IS NULL OR s.lease_until < $1) \
             ORDER BY s.next_run_at NULLS FIRST, c.id LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let state: Option<StateRow> = sqlx::query_as(
            "INSERT INTO sync_state (config_id, lease_owner, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (config_id) DO UPDATE SET lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until \
             WHERE sync_state.lease_owner IS NULL OR sync_state.lease_owner = EXCLUDED.lease_owner \
               OR sync_state.lease_until < $4 OR sync_state.lease_owner = $5 \
             RETURNING cursor, last_full_at, next_run_at",
        )
        .bind(config.0)
        .bind(owner)
        .bind(until)
        .bind(now)
        .bind(replacing)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(state) = state else {
            return Ok(None);
        };
        let stale: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE sync_runs SET status = 'failed', finished_at = $2, error = $3 \
             WHERE config_id = $1 AND status = 'running' RETURNING id",
        )
        .bind(config.0)
        .bind(now)
        .bind(INTERRUPTED)
        .fetch_all(&mut *tx)
        .await?;
        if !stale.is_empty() {
            Self::clear_run_scratch(&mut tx, &stale).await?;
        }
        tx.commit().await?;
        Ok(Some(state.try_into()?))
    }

    async fn lease(&self, config: ConfigId) -> Result<Option<Lease>, StoreError> {
        let row: Option<(String, OffsetDateTime)> = sqlx::query_as(
            "SELECT lease_owner, lease_until FROM sync_state \
             WHERE config_id = $1 AND lease_owner IS NOT NULL AND lease_until IS NOT NULL",
        )
        .bind(config.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(owner, until)| Lease { owner, until }))
    }

    async fn renew_lease(
        &self,
        config: ConfigId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE sync_state SET lease_until = $3 WHERE config_id = $1 AND lease_owner = $2")
                .bind(config.0)
                .bind(owner)
                .bind(until)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, config: ConfigId, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sync_state SET lease_owner = NULL, lease_until = NULL WHERE config_id = $1 AND lease_owner = $2",
        )
        .bind(config.0)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn start_run(&self, config: ConfigId, kind: RunKind) -> Result<Run, StoreError> {
        let mut run = new_run(config, kind);
        let mut tx = self.pool.begin().await?;
        // The row lock keeps a concurrent "sync now" from promising the id being taken here.
        let requested: Option<Option<Uuid>> =
            sqlx::query_scalar("SELECT requested_run FROM sync_state WHERE config_id = $1 FOR UPDATE")
                .bind(config.0)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = requested.flatten() {
            run.id = id;
            sqlx::query("UPDATE sync_state SET requested_run = NULL WHERE config_id = $1")
                .bind(config.0)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO sync_runs (id, config_id, kind, status, started_at, counts) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(run.id)
        .bind(config.0)
        .bind(kind.as_str())
        .bind(run.status.as_str())
        .bind(run.started_at)
        .bind(encode_counts(&run.counts))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(run)
    }

    async fn apply_page(&self, run: &Run, org: OrgId, page: PageWrite<'_>) -> Result<RunCounts, StoreError> {
        let mut counts = RunCounts { pages: 1, ..RunCounts::default() };
        let mut tx = self.pool.begin().await?;
        let (baselined, held) = Self::page_state(&mut tx, run.config_id).await?;
        let mut recorder = Recorder::new(baselined);
        Self::upsert_entities(&mut tx, run, org, page.entities, &mut counts, &mut recorder).await?;
        Self::add_memberships(&mut tx, run, page.memberships, &mut counts, &mut recorder).await?;
        Self::note_removals(&mut tx, run, page.removals).await?;
        if held {
            Self::unstage_seen(&mut tx, run.config_id, &page).await?;
        }
        Self::record(&mut tx, run, &recorder, ctxsync_core::now()).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn save_progress(&self, run: &Run) -> Result<(), StoreError> {
        sqlx::query("UPDATE sync_runs SET counts = $2 WHERE id = $1 AND status = 'running'")
            .bind(run.id)
            .bind(encode_counts(&run.counts))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_run(&self, run: &Run, end: RunEnd) -> Result<Run, StoreError> {
        let now = ctxsync_core::now();
        let mut ending = Ending::new(run, &end, now);
        let mut tx = self.pool.begin().await?;
        // Locks the run's row: a worker taking the lease over waits for this transaction, or
        // has already marked the run failed, and then nothing is applied.
        let claimed =
            sqlx::query("UPDATE sync_runs SET status = status WHERE id = $1 AND status = 'running'")
                .bind(run.id)
                .execute(&mut *tx)
                .await?;
        if claimed.rows_affected() == 0 {
            return Err(StoreError::RunTakenOver(run.id));
        }
        let baselined = Self::baselined(&mut tx, run.config_id).await?;
        if let Some((coverage, _)) = ending.completed.clone() {
            if coverage.is_full() {
                Self::supersede_holds(&mut tx, run.config_id, now).await?;
            }
            let staged = Self::stage_deletions(&mut tx, run, coverage).await?;
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
        // The cursor changes only when the listing completed; `last_full_at` only after a full one.
        sqlx::query(
            "INSERT INTO sync_state (config_id, cursor, last_full_at, next_run_at, baselined) \
             VALUES ($1, $2, $3, $4, $6) \
             ON CONFLICT (config_id) DO UPDATE SET \
               cursor = CASE WHEN $5 THEN EXCLUDED.cursor ELSE sync_state.cursor END, \
               last_full_at = COALESCE(EXCLUDED.last_full_at, sync_state.last_full_at), \
               next_run_at = CASE WHEN sync_state.requested_run IS NULL THEN EXCLUDED.next_run_at ELSE $7 END, \
               baselined = sync_state.baselined OR EXCLUDED.baselined",
        )
        .bind(run.config_id.0)
        .bind(cursor)
        .bind(ending.last_full_at)
        .bind(ending.next_run_at)
        .bind(ending.completed.is_some())
        .bind(baseline)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Self::clear_run_scratch(&mut tx, &[run.id]).await?;
        let (hold, completeness) = ending.findings();
        let finished = ending.run;
        sqlx::query(
            "UPDATE sync_runs SET status = $2, finished_at = $3, counts = $4, error = $5, baseline = $6, hold = $7, \
             completeness = $8 WHERE id = $1",
        )
        .bind(run.id)
        .bind(finished.status.as_str())
        .bind(now)
        .bind(encode_counts(&finished.counts))
        .bind(&finished.error)
        .bind(finished.baseline)
        .bind(hold)
        .bind(completeness)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(finished)
    }

    async fn sync_state(&self, config: ConfigId) -> Result<SyncState, StoreError> {
        let row: Option<StateRow> =
            sqlx::query_as("SELECT cursor, last_full_at, next_run_at FROM sync_state WHERE config_id = $1")
                .bind(config.0)
                .fetch_optional(&self.pool)
                .await?;
        row.map(SyncState::try_from).transpose().map(Option::unwrap_or_default)
    }

    async fn config_by_id(&self, config: ConfigId) -> Result<Option<Config>, StoreError> {
        let row: Option<ConfigRow> =
            sqlx::query_as(&format!("SELECT {CONFIG_COLUMNS} FROM integration_configs WHERE id = $1"))
                .bind(config.0)
                .fetch_optional(&self.pool)
                .await?;
        row.map(Config::try_from).transpose()
    }

    async fn request_run(&self, org: OrgId, config: ConfigId) -> Result<Option<Uuid>, StoreError> {
        let requested = sqlx::query_scalar(
            "INSERT INTO sync_state (config_id, next_run_at, requested_run) \
             SELECT id, $3, $4 FROM integration_configs WHERE id = $1 AND org_id = $2 \
             ON CONFLICT (config_id) DO UPDATE SET next_run_at = EXCLUDED.next_run_at, \
               requested_run = COALESCE(sync_state.requested_run, EXCLUDED.requested_run) \
             RETURNING requested_run",
        )
        .bind(config.0)
        .bind(org.0)
        .bind(ctxsync_core::now())
        .bind(Uuid::new_v4())
        .fetch_optional(&self.pool)
        .await?;
        Ok(requested)
    }

    async fn list_runs(&self, org: OrgId, config: ConfigId, limit: u32) -> Result<Vec<Run>, StoreError> {
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN integration_configs c ON c.id = r.config_id \
             WHERE r.config_id = $1 AND c.org_id = $2 ORDER BY r.started_at DESC, r.id DESC LIMIT $3"
        ))
        .bind(config.0)
        .bind(org.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Run::try_from).collect()
    }

    async fn get_run(&self, org: OrgId, config: ConfigId, run: Uuid) -> Result<Option<Run>, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN integration_configs c ON c.id = r.config_id \
             WHERE r.id = $1 AND r.config_id = $2 AND c.org_id = $3"
        ))
        .bind(run)
        .bind(config.0)
        .bind(org.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Run::try_from).transpose()
    }

    async fn run_summaries(&self) -> Result<Vec<crate::RunSummary>, StoreError> {
        let rows: Vec<rows::SummaryRow<Uuid, OffsetDateTime>> =
            sqlx::query_as(&crate::sync::run_summaries_query("(r.hold::jsonb ->> 'resolution') IS NULL"))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(crate::RunSummary::try_from).collect()
    }
}
