//! Leases, run records, applying pages and completing runs, on SQLite.
//!
//! Each `apply_page` (one page, or several whole pages the engine wrote together) is one
//! transaction; completing a run (deletions, removals, cursor, run status) is one
//! more. A process killed in between leaves the upserts of the pages it applied and nothing
//! half-deleted: the seen and removal rows of the unfinished run are cleared by the next holder
//! of the lease.

use std::collections::HashMap;

use ctxsync_core::{Config, ConfigId, Coverage, Entity, OrgId, Removal, Run, RunCounts, RunKind, RunStatus};
use sha2::{Digest, Sha256};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use super::configs::ConfigRow;
use super::{SqliteStore, decode_id, decode_time, encode_time};
use crate::{PageWrite, RunEnd, StoreError, SyncState, SyncStore};

/// Rows per statement: well under SQLite's bound-variable limit with a dozen columns a row.
const CHUNK: usize = 400;

/// The `run_removals.kind` of a membership removal.
const MEMBERSHIP: &str = "membership";

#[derive(sqlx::FromRow)]
struct RunRow {
    id: String,
    config_id: String,
    kind: String,
    status: String,
    started_at: String,
    finished_at: Option<String>,
    counts: String,
    error: Option<String>,
}

impl TryFrom<RunRow> for Run {
    type Error = StoreError;

    fn try_from(row: RunRow) -> Result<Run, StoreError> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("sync run {} has an unreadable {what}", row.id));
        Ok(Run {
            id: decode_id(&row.id)?,
            config_id: decode_id(&row.config_id)?,
            kind: RunKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
            status: RunStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            started_at: decode_time(&row.started_at)?,
            finished_at: row.finished_at.as_deref().map(decode_time).transpose()?,
            counts: serde_json::from_str(&row.counts).map_err(|_| corrupt("counts"))?,
            error: row.error,
        })
    }
}

#[derive(sqlx::FromRow)]
struct StateRow {
    cursor: Option<String>,
    last_full_at: Option<String>,
    next_run_at: Option<String>,
}

impl TryFrom<StateRow> for SyncState {
    type Error = StoreError;

    fn try_from(row: StateRow) -> Result<SyncState, StoreError> {
        Ok(SyncState {
            cursor: row
                .cursor
                .map(|c| serde_json::from_str(&c))
                .transpose()
                .map_err(|_| StoreError::Corrupt("a sync cursor is not JSON".into()))?,
            last_full_at: row.last_full_at.as_deref().map(decode_time).transpose()?,
            next_run_at: row.next_run_at.as_deref().map(decode_time).transpose()?,
        })
    }
}

/// The columns an entity is filtered by, its identifiers and its stored JSON.
struct EntityRow {
    kind: &'static str,
    source_id: String,
    status: Option<String>,
    login: Option<String>,
    display_name: Option<String>,
    data: String,
    raw: String,
    digest: Vec<u8>,
    identifiers: Vec<String>,
}

impl EntityRow {
    fn new(entity: &Entity, raw: &serde_json::Value) -> EntityRow {
        let data = serde_json::to_string(entity).expect("an entity always serializes");
        let raw = serde_json::to_string(raw).expect("a JSON value always serializes");
        let mut hasher = Sha256::new();
        hasher.update(data.as_bytes());
        hasher.update([0]);
        hasher.update(raw.as_bytes());
        let (status, login, display_name, mut identifiers) = match entity {
            Entity::User(u) => {
                let mut ids = vec![u.login.clone()];
                ids.extend(u.emails.iter().cloned());
                (Some(u.status.as_str().to_owned()), Some(u.login.clone()), u.display_name.clone(), ids)
            }
            Entity::Group(g) => {
                (None, g.email.clone(), Some(g.name.clone()), g.email.iter().cloned().collect())
            }
            Entity::Device(d) => (d.status.clone(), None, d.name.clone(), d.name.iter().cloned().collect()),
        };
        identifiers.push(entity.source_id().to_owned());
        identifiers.iter_mut().for_each(|i| *i = i.trim().to_lowercase());
        identifiers.retain(|i| !i.is_empty());
        identifiers.sort();
        identifiers.dedup();
        EntityRow {
            kind: entity.kind().as_str(),
            source_id: entity.source_id().to_owned(),
            status,
            login,
            display_name,
            data,
            raw,
            digest: hasher.finalize().to_vec(),
            identifiers,
        }
    }
}

fn membership_key(m: &ctxsync_core::Membership) -> (&str, &'static str, &str) {
    (&m.group_id, m.member_kind.as_str(), &m.member_id)
}

/// A page's keys as one JSON array of arrays, bound as a single parameter and read back with
/// `json_each`: the statement text stays the same whatever the page's size, so it is prepared
/// once per connection, and a row costs no bind of its own.
fn json_rows<T: serde::Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("keys always serialize")
}

impl SqliteStore {
    /// Writes new and changed entities of a page, returning per-kind counts.
    async fn upsert_entities(
        conn: &mut SqliteConnection,
        run: &Run,
        org: OrgId,
        page: &PageWrite<'_>,
        counts: &mut RunCounts,
    ) -> Result<(), StoreError> {
        // The last occurrence of an entity in a page wins.
        let mut rows: Vec<EntityRow> = Vec::with_capacity(page.records.len());
        let mut index: HashMap<(&'static str, String), usize> = HashMap::new();
        for record in page.records {
            let row = EntityRow::new(&record.entity, &record.raw);
            counts.entry(row.kind).fetched += 1;
            match index.get(&(row.kind, row.source_id.clone())) {
                Some(&i) => rows[i] = row,
                None => {
                    index.insert((row.kind, row.source_id.clone()), rows.len());
                    rows.push(row);
                }
            }
        }
        let config_id = run.config_id.to_string();
        let keys = json_rows(&rows.iter().map(|row| (row.kind, &row.source_id)).collect::<Vec<_>>());
        // `CROSS JOIN` keeps the page's keys as the outer loop, one primary-key lookup each.
        let existing: HashMap<i64, Vec<u8>> = sqlx::query_as(
            "SELECT j.key, e.digest FROM json_each(?2) j CROSS JOIN entities e \
             ON e.config_id = ?1 AND e.kind = j.value ->> 0 AND e.source_id = j.value ->> 1",
        )
        .bind(&config_id)
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        let mut changed = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            match existing.get(&(i as i64)) {
                None => {
                    counts.entry(row.kind).created += 1;
                    changed.push(row);
                }
                Some(digest) if *digest != row.digest => {
                    counts.entry(row.kind).updated += 1;
                    changed.push(row);
                }
                Some(_) => {}
            }
        }
        if !changed.is_empty() {
            let now = encode_time(ctxsync_core::now());
            let org_id = org.to_string();
            for chunk in changed.chunks(CHUNK) {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO entities (config_id, kind, source_id, org_id, status, login, display_name, data, raw, \
                     digest, first_seen_at, updated_at) ",
                );
                q.push_values(chunk, |mut b, row| {
                    b.push_bind(&config_id)
                        .push_bind(row.kind)
                        .push_bind(&row.source_id)
                        .push_bind(&org_id)
                        .push_bind(&row.status)
                        .push_bind(&row.login)
                        .push_bind(&row.display_name)
                        .push_bind(&row.data)
                        .push_bind(&row.raw)
                        .push_bind(&row.digest)
                        .push_bind(&now)
                        .push_bind(&now);
                });
                q.push(
                    " ON CONFLICT (config_id, kind, source_id) DO UPDATE SET status = excluded.status, \
                     login = excluded.login, display_name = excluded.display_name, data = excluded.data, \
                     raw = excluded.raw, digest = excluded.digest, updated_at = excluded.updated_at",
                );
                q.build().execute(&mut *conn).await?;
            }

            let changed_keys =
                json_rows(&changed.iter().map(|row| (row.kind, &row.source_id)).collect::<Vec<_>>());
            sqlx::query(
                "DELETE FROM entity_identifiers WHERE config_id = ?1 AND (kind, source_id) IN \
                 (SELECT value ->> 0, value ->> 1 FROM json_each(?2))",
            )
            .bind(&config_id)
            .bind(&changed_keys)
            .execute(&mut *conn)
            .await?;
            let identifiers: Vec<(&str, &str, &str)> = changed
                .iter()
                .flat_map(|row| {
                    row.identifiers.iter().map(|i| (i.as_str(), row.kind, row.source_id.as_str()))
                })
                .collect();
            sqlx::query(
                "INSERT OR IGNORE INTO entity_identifiers (org_id, identifier, config_id, kind, source_id) \
                 SELECT ?1, value ->> 0, ?2, value ->> 1, value ->> 2 FROM json_each(?3)",
            )
            .bind(&org_id)
            .bind(&config_id)
            .bind(json_rows(&identifiers))
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query(
            "INSERT OR IGNORE INTO run_seen_entities (run_id, kind, source_id) \
             SELECT ?1, value ->> 0, value ->> 1 FROM json_each(?2)",
        )
        .bind(run.id.to_string())
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn add_memberships(
        conn: &mut SqliteConnection,
        run: &Run,
        page: &PageWrite<'_>,
        counts: &mut RunCounts,
    ) -> Result<(), StoreError> {
        counts.entry(MEMBERSHIP).fetched += page.memberships.len() as u64;
        let keys = json_rows(&page.memberships.iter().map(membership_key).collect::<Vec<_>>());
        // Only inserted rows count as changes, so this is the number of new memberships.
        let created = sqlx::query(
            "INSERT INTO memberships (config_id, group_id, member_kind, member_id, first_seen_at) \
             SELECT ?1, value ->> 0, value ->> 1, value ->> 2, ?2 FROM json_each(?3) WHERE true \
             ON CONFLICT DO NOTHING",
        )
        .bind(run.config_id.to_string())
        .bind(encode_time(ctxsync_core::now()))
        .bind(&keys)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        counts.entry(MEMBERSHIP).created += created;
        sqlx::query(
            "INSERT OR IGNORE INTO run_seen_memberships (run_id, group_id, member_kind, member_id) \
             SELECT ?1, value ->> 0, value ->> 1, value ->> 2 FROM json_each(?2)",
        )
        .bind(run.id.to_string())
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn note_removals(
        conn: &mut SqliteConnection,
        run: &Run,
        removals: &[Removal],
    ) -> Result<(), StoreError> {
        for chunk in removals.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO run_removals (run_id, kind, source_id, member_kind, member_id) ",
            );
            q.push_values(chunk, |mut b, removal| {
                b.push_bind(run.id.to_string());
                match removal {
                    Removal::Entity { kind, source_id } => {
                        b.push_bind(kind.as_str()).push_bind(source_id).push_bind("").push_bind("");
                    }
                    Removal::Membership(m) => {
                        let (g, k, id) = membership_key(m);
                        b.push_bind(MEMBERSHIP).push_bind(g).push_bind(k).push_bind(id);
                    }
                }
            });
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Applies a completed run's removals and what its coverage implies, counting deletions.
    async fn apply_deletions(
        conn: &mut SqliteConnection,
        run: &Run,
        coverage: &Coverage,
        counts: &mut RunCounts,
    ) -> Result<(), StoreError> {
        let config_id = run.config_id.to_string();
        let run_id = run.id.to_string();
        let mut deleted_memberships = sqlx::query(
            "DELETE FROM memberships WHERE config_id = ?1 AND ( \
               (member_kind, member_id) IN (SELECT kind, source_id FROM run_removals WHERE run_id = ?2 AND kind != ?3) \
               OR group_id IN (SELECT source_id FROM run_removals WHERE run_id = ?2 AND kind = 'group') \
               OR (group_id, member_kind, member_id) IN \
                  (SELECT source_id, member_kind, member_id FROM run_removals WHERE run_id = ?2 AND kind = ?3)) \
             RETURNING 1",
        )
        .bind(&config_id)
        .bind(&run_id)
        .bind(MEMBERSHIP)
        .fetch_all(&mut *conn)
        .await?
        .len() as u64;
        let mut deleted_kinds: Vec<String> = sqlx::query_scalar(
            "DELETE FROM entities WHERE config_id = ?1 AND (kind, source_id) IN \
               (SELECT kind, source_id FROM run_removals WHERE run_id = ?2 AND kind != ?3) RETURNING kind",
        )
        .bind(&config_id)
        .bind(&run_id)
        .bind(MEMBERSHIP)
        .fetch_all(&mut *conn)
        .await?;
        match coverage {
            Coverage::Everything => {
                deleted_kinds.extend(
                    sqlx::query_scalar::<_, String>(
                        "DELETE FROM entities WHERE config_id = ?1 AND NOT EXISTS (SELECT 1 FROM run_seen_entities s \
                         WHERE s.run_id = ?2 AND s.kind = entities.kind AND s.source_id = entities.source_id) \
                         RETURNING kind",
                    )
                    .bind(&config_id)
                    .bind(&run_id)
                    .fetch_all(&mut *conn)
                    .await?,
                );
                deleted_memberships += sqlx::query(
                    "DELETE FROM memberships WHERE config_id = ?1 AND NOT EXISTS (SELECT 1 FROM run_seen_memberships s \
                     WHERE s.run_id = ?2 AND s.group_id = memberships.group_id \
                     AND s.member_kind = memberships.member_kind AND s.member_id = memberships.member_id) RETURNING 1",
                )
                .bind(&config_id)
                .bind(&run_id)
                .fetch_all(&mut *conn)
                .await?
                .len() as u64;
            }
            Coverage::Changes { groups_with_all_members } => {
                for groups in groups_with_all_members.chunks(CHUNK) {
                    let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM memberships WHERE config_id = ");
                    q.push_bind(&config_id).push(" AND group_id IN (");
                    let mut sep = q.separated(", ");
                    for g in groups {
                        sep.push_bind(g);
                    }
                    q.push(") AND NOT EXISTS (SELECT 1 FROM run_seen_memberships s WHERE s.run_id = ");
                    q.push_bind(&run_id).push(
                        " AND s.group_id = memberships.group_id AND s.member_kind = memberships.member_kind \
                         AND s.member_id = memberships.member_id) RETURNING 1",
                    );
                    deleted_memberships += q.build().fetch_all(&mut *conn).await?.len() as u64;
                }
            }
        }
        for kind in deleted_kinds {
            counts.entry(&kind).deleted += 1;
        }
        counts.entry(MEMBERSHIP).deleted += deleted_memberships;
        Ok(())
    }

    async fn clear_run_scratch(conn: &mut SqliteConnection, run_ids: &[String]) -> Result<(), StoreError> {
        for id in run_ids {
            for table in ["run_seen_entities", "run_seen_memberships", "run_removals"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE run_id = ?"))
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl SyncStore for SqliteStore {
    async fn due_configs(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Config>, StoreError> {
        let now = encode_time(now);
        let rows: Vec<ConfigRow> = sqlx::query_as(
            "SELECT c.id, c.org_id, c.integration_type, c.name, c.domain, c.enabled, c.state, c.settings, \
                    c.created_at, c.modified_at \
             FROM integration_configs c LEFT JOIN sync_state s ON s.config_id = c.id \
             WHERE c.enabled = 1 AND c.state != 'invalid' \
               AND (s.next_run_at IS NULL OR s.next_run_at <= ?1) \
               AND (s.lease_until IS NULL OR s.lease_until < ?1) \
             ORDER BY COALESCE(s.next_run_at, ''), c.id LIMIT ?2",
        )
        .bind(&now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Config::try_from).collect()
    }

    async fn acquire_lease(
        &self,
        config: ConfigId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<Option<SyncState>, StoreError> {
        let config_id = config.to_string();
        let now = encode_time(ctxsync_core::now());
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO sync_state (config_id) VALUES (?) ON CONFLICT DO NOTHING")
            .bind(&config_id)
            .execute(&mut *tx)
            .await?;
        let state: Option<StateRow> = sqlx::query_as(
            "UPDATE sync_state SET lease_owner = ?1, lease_until = ?2 \
             WHERE config_id = ?3 AND (lease_owner IS NULL OR lease_owner = ?1 OR lease_until < ?4) \
             RETURNING cursor, last_full_at, next_run_at",
        )
        .bind(owner)
        .bind(encode_time(until))
        .bind(&config_id)
        .bind(&now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(state) = state else {
            return Ok(None);
        };
        let stale: Vec<String> = sqlx::query_scalar(
            "UPDATE sync_runs SET status = 'failed', finished_at = ?1, \
               error = 'interrupted: the worker running it stopped before it completed; nothing was deleted' \
             WHERE config_id = ?2 AND status = 'running' RETURNING id",
        )
        .bind(&now)
        .bind(&config_id)
        .fetch_all(&mut *tx)
        .await?;
        Self::clear_run_scratch(&mut tx, &stale).await?;
        tx.commit().await?;
        Ok(Some(state.try_into()?))
    }

    async fn renew_lease(
        &self,
        config: ConfigId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE sync_state SET lease_until = ? WHERE config_id = ? AND lease_owner = ?")
                .bind(encode_time(until))
                .bind(config.to_string())
                .bind(owner)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, config: ConfigId, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sync_state SET lease_owner = NULL, lease_until = NULL WHERE config_id = ? AND lease_owner = ?",
        )
        .bind(config.to_string())
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn start_run(&self, config: ConfigId, kind: RunKind) -> Result<Run, StoreError> {
        let run = Run {
            id: Uuid::new_v4(),
            config_id: config,
            kind,
            status: RunStatus::Running,
            started_at: ctxsync_core::now(),
            finished_at: None,
            counts: RunCounts::default(),
            error: None,
        };
        sqlx::query(
            "INSERT INTO sync_runs (id, config_id, kind, status, started_at, counts) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(run.id.to_string())
        .bind(config.to_string())
        .bind(kind.as_str())
        .bind(run.status.as_str())
        .bind(encode_time(run.started_at))
        .bind(serde_json::to_string(&run.counts).expect("counts serialize"))
        .execute(&self.writer)
        .await?;
        Ok(run)
    }

    async fn apply_page(&self, run: &Run, org: OrgId, page: PageWrite<'_>) -> Result<RunCounts, StoreError> {
        let mut counts = RunCounts { pages: 1, ..RunCounts::default() };
        let mut tx = self.begin_write().await?;
        if !page.records.is_empty() {
            Self::upsert_entities(&mut tx, run, org, &page, &mut counts).await?;
        }
        if !page.memberships.is_empty() {
            Self::add_memberships(&mut tx, run, &page, &mut counts).await?;
        }
        if !page.removals.is_empty() {
            Self::note_removals(&mut tx, run, page.removals).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn save_progress(&self, run: &Run) -> Result<(), StoreError> {
        sqlx::query("UPDATE sync_runs SET counts = ? WHERE id = ? AND status = 'running'")
            .bind(serde_json::to_string(&run.counts).expect("counts serialize"))
            .bind(run.id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn finish_run(&self, run: &Run, end: RunEnd) -> Result<Run, StoreError> {
        let mut finished = run.clone();
        let now = ctxsync_core::now();
        finished.finished_at = Some(now);
        let config_id = run.config_id.to_string();
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO sync_state (config_id) VALUES (?) ON CONFLICT DO NOTHING")
            .bind(&config_id)
            .execute(&mut *tx)
            .await?;
        let next_run_at = match &end {
            RunEnd::Succeeded { coverage, cursor, next_run_at } => {
                Self::apply_deletions(&mut tx, run, coverage, &mut finished.counts).await?;
                finished.status = RunStatus::Succeeded;
                let cursor = cursor.as_ref().map(|c| serde_json::to_string(c).expect("JSON serializes"));
                sqlx::query("UPDATE sync_state SET cursor = ? WHERE config_id = ?")
                    .bind(cursor)
                    .bind(&config_id)
                    .execute(&mut *tx)
                    .await?;
                if run.kind == RunKind::Full {
                    sqlx::query("UPDATE sync_state SET last_full_at = ? WHERE config_id = ?")
                        .bind(encode_time(now))
                        .bind(&config_id)
                        .execute(&mut *tx)
                        .await?;
                }
                *next_run_at
            }
            RunEnd::Failed { error, next_run_at } => {
                finished.status = RunStatus::Failed;
                finished.error = Some(error.clone());
                *next_run_at
            }
            RunEnd::Cancelled { reason } => {
                finished.status = RunStatus::Cancelled;
                finished.error = Some(reason.clone());
                now
            }
        };
        Self::clear_run_scratch(&mut tx, &[run.id.to_string()]).await?;
        sqlx::query("UPDATE sync_state SET next_run_at = ? WHERE config_id = ?")
            .bind(encode_time(next_run_at))
            .bind(&config_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE sync_runs SET status = ?, finished_at = ?, counts = ?, error = ? WHERE id = ?")
            .bind(finished.status.as_str())
            .bind(encode_time(now))
            .bind(serde_json::to_string(&finished.counts).expect("counts serialize"))
            .bind(&finished.error)
            .bind(run.id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(finished)
    }

    async fn sync_state(&self, config: ConfigId) -> Result<SyncState, StoreError> {
        let row: Option<StateRow> =
            sqlx::query_as("SELECT cursor, last_full_at, next_run_at FROM sync_state WHERE config_id = ?")
                .bind(config.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(SyncState::try_from).transpose().map(Option::unwrap_or_default)
    }

    async fn config_by_id(&self, config: ConfigId) -> Result<Option<Config>, StoreError> {
        let row: Option<ConfigRow> = sqlx::query_as(
            "SELECT id, org_id, integration_type, name, domain, enabled, state, settings, created_at, modified_at \
             FROM integration_configs WHERE id = ?",
        )
        .bind(config.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Config::try_from).transpose()
    }

    async fn request_run(&self, org: OrgId, config: ConfigId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO sync_state (config_id, next_run_at) \
             SELECT id, ?1 FROM integration_configs WHERE id = ?2 AND org_id = ?3 \
             ON CONFLICT (config_id) DO UPDATE SET next_run_at = excluded.next_run_at",
        )
        .bind(encode_time(ctxsync_core::now()))
        .bind(config.to_string())
        .bind(org.to_string())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_runs(&self, org: OrgId, config: ConfigId, limit: u32) -> Result<Vec<Run>, StoreError> {
        let rows: Vec<RunRow> = sqlx::query_as(
            "SELECT r.id, r.config_id, r.kind, r.status, r.started_at, r.finished_at, r.counts, r.error \
             FROM sync_runs r JOIN integration_configs c ON c.id = r.config_id \
             WHERE r.config_id = ? AND c.org_id = ? ORDER BY r.started_at DESC, r.id DESC LIMIT ?",
        )
        .bind(config.to_string())
        .bind(org.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Run::try_from).collect()
    }

    async fn get_run(&self, org: OrgId, config: ConfigId, run: Uuid) -> Result<Option<Run>, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(
            "SELECT r.id, r.config_id, r.kind, r.status, r.started_at, r.finished_at, r.counts, r.error \
             FROM sync_runs r JOIN integration_configs c ON c.id = r.config_id \
             WHERE r.id = ? AND r.config_id = ? AND c.org_id = ?",
        )
        .bind(run.to_string())
        .bind(config.to_string())
        .bind(org.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Run::try_from).transpose()
    }
}
