//! Leases, run records, applying pages and completing runs, on SQLite.
//!
//! Each `apply_page` (one page, or several whole pages the engine wrote together) is one
//! transaction; completing a run (deletions, removals, cursor, run status) is one
//! more. A process killed in between leaves the upserts of the pages it applied and nothing
//! half-deleted: the seen and removal rows of the unfinished run are cleared by the next holder
//! of the lease.

use std::collections::{BTreeMap, HashMap};

use ctxsync_core::{Config, ConfigId, Membership, OrgId, Removal, Run, RunCounts, RunKind};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use time::OffsetDateTime;
use uuid::Uuid;

use super::configs::ConfigRow;
use super::{SqliteStore, decode_time, encode_time};
use crate::history::Recorder;
use crate::page::{Changed, EntityWrite, MEMBERSHIP, membership_key, removal_key};
use crate::rows::{self, RUN_COLUMNS, encode_counts};
use crate::sync::{Ending, INTERRUPTED, new_run};
use crate::{Lease, PageWrite, RunEnd, StoreError, SyncState, SyncStore};

/// Entity rows per statement: well under SQLite's bound-variable limit with eight values a row.
const CHUNK: usize = 400;

/// Keys or memberships per JSON parameter: a few hundred kilobytes of text at most.
const JSON_CHUNK: usize = 5_000;

/// Values grouped under a key, in key order: `{key: [value, …]}` once serialized.
fn grouped<'a, V>(pairs: impl IntoIterator<Item = (&'a str, V)>) -> BTreeMap<&'a str, Vec<V>> {
    let mut tree: BTreeMap<&str, Vec<V>> = BTreeMap::new();
    for (key, value) in pairs {
        tree.entry(key).or_default().push(value);
    }
    tree
}

/// A page's keys and memberships go into SQLite as one JSON parameter per statement, read back
/// by nested `json_each` (`k` the kinds, `s` their source ids): each nested array is parsed as a
/// whole when reached, never once per column of a row. Bound as a value or three a row instead,
/// every value was copied and freed twice on its way into SQLite, which cost more than writing
/// the row.
fn to_json(tree: &impl serde::Serialize) -> String {
    serde_json::to_string(tree).expect("strings always serialize")
}

/// Rows' keys as `{kind: [source_id, …]}`.
fn source_ids_by_kind<'a>(rows: impl IntoIterator<Item = &'a EntityWrite>) -> String {
    to_json(&grouped(rows.into_iter().map(|row| (row.kind, row.source_id.as_str()))))
}

/// Rows' identifiers as `{kind: {source_id: [identifier, …]}}`, for [`ROWS_BY_KEY`].
fn identifier_tree(rows: &[&EntityWrite]) -> String {
    let by_kind = grouped(rows.iter().map(|row| (row.kind, (row.source_id.as_str(), &row.identifiers))));
    to_json(
        &by_kind
            .into_iter()
            .map(|(kind, rows)| (kind, rows.into_iter().collect::<BTreeMap<_, _>>()))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// The stored rows `e` of the identifier tree bound as `?2`, for config `?1`: its kinds `k` and
/// their source ids `s`, each found through the key index (`entities_key`). Joined with
/// `json_each(s.value) i`, each row's identifiers, so writing them needs no keys read back from
/// the entities' insert.
const ROWS_BY_KEY: &str = "json_each(?2) k CROSS JOIN json_each(k.value) s \
     CROSS JOIN entities e ON e.config_id = ?1 AND e.kind = k.key AND e.source_id = s.key";

/// Memberships as `{group: {member kind: [member, …]}}`: a page's members share their group.
fn membership_tree(memberships: &[Membership]) -> String {
    let by_group = grouped(memberships.iter().map(|m| {
        let (group, kind, member) = membership_key(m);
        (group, (kind, member))
    }));
    to_json(
        &by_group.into_iter().map(|(group, members)| (group, grouped(members))).collect::<BTreeMap<_, _>>(),
    )
}

/// The rows `(group_id, member_kind, member_id)` of the membership tree bound as `?4`.
const MEMBERSHIP_ROWS: &str = "SELECT g.key AS group_id, k.key AS member_kind, m.value AS member_id \
     FROM json_each(?4) g, json_each(g.value) k, json_each(k.value) m";

type RunRow = rows::RunRow<String, String>;

type StateRow = rows::StateRow<String>;

impl SqliteStore {
    /// Writes new and changed entities of a page, counting them, and notes them as seen.
    async fn upsert_entities(
        conn: &mut SqliteConnection,
        run: &Run,
        org: OrgId,
        page: &PageWrite<'_>,
        counts: &mut RunCounts,
        recorder: &mut Recorder,
    ) -> Result<(), StoreError> {
        let rows = &page.entities.rows;
        counts.add(&page.entities.fetched);
        let config_id = run.config_id.to_string();
        let mut existing: HashMap<i64, Vec<u8>> = HashMap::with_capacity(rows.len());
        for (n, chunk) in rows.chunks(JSON_CHUNK).enumerate() {
            // Each kind's rows in the order of its array in `source_ids_by_kind`.
            let positions = grouped(chunk.iter().enumerate().map(|(i, row)| (row.kind, n * JSON_CHUNK + i)));
            // `CROSS JOIN` keeps the page's keys as the outer loop, one key-index lookup each.
            let found: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(
                "SELECT k.key, s.key, e.digest FROM json_each(?2) k CROSS JOIN json_each(k.value) s \
                 CROSS JOIN entities e ON e.config_id = ?1 AND e.kind = k.key AND e.source_id = s.value",
            )
            .bind(&config_id)
            .bind(source_ids_by_kind(chunk))
            .fetch_all(&mut *conn)
            .await?;
            for (kind, position, digest) in found {
                let row =
                    positions.get(kind.as_str()).and_then(|rows| rows.get(usize::try_from(position).ok()?));
                let Some(&row) = row else {
                    return Err(StoreError::Corrupt(format!("a lookup returned {kind} key {position}")));
                };
                existing.insert(row as i64, digest);
            }
        }
        let changed = Changed::new(rows, &existing, counts);
        let stored = Self::stored_data(conn, run.config_id, &changed.updated).await?;
        recorder.entities(&changed.created, &changed.updated, stored)?;
        if !changed.created.is_empty() || !changed.updated.is_empty() {
            let now = encode_time(ctxsync_core::now());
            let org_id = org.to_string();
            // New rows go in with `OR IGNORE`, which (with foreign keys checked at commit, see
            // migration 0006) cannot fail halfway, so SQLite keeps no statement journal for them;
            // changed rows need the upsert.
            let statements = [
                (&changed.created, "INSERT OR IGNORE INTO", ""),
                (
                    &changed.updated,
                    "INSERT INTO",
                    " ON CONFLICT (config_id, kind, source_id) DO UPDATE SET status = excluded.status, \
                     login = excluded.login, display_name = excluded.display_name, data = excluded.data, \
                     raw = excluded.raw, digest = excluded.digest, updated_at = excluded.updated_at",
                ),
            ];
            for (rows, insert, conflict) in statements {
                for chunk in rows.chunks(CHUNK) {
                    // What every row shares is bound once, beside the rows' own values.
                    let mut q = QueryBuilder::<Sqlite>::new(format!(
                        "{insert} entities (config_id, org_id, first_seen_at, updated_at, kind, source_id, status, \
                         login, display_name, data, raw, digest) SELECT "
                    ));
                    q.push_bind(&config_id)
                        .push(", ")
                        .push_bind(&org_id)
                        .push(", ")
                        .push_bind(&now)
                        .push(", ");
                    q.push_bind(&now).push(", * FROM (");
                    q.push_values(chunk, |mut b, row| {
                        b.push_bind(row.kind)
                            .push_bind(&row.source_id)
                            .push_bind(&row.status)
                            .push_bind(&row.login)
                            .push_bind(&row.display_name)
                            .push_bind(&row.data)
                            .push_bind(&row.raw)
                            .push_bind(&row.digest);
                    });
                    // `WHERE true` tells SQLite the upsert's `ON` belongs to the insert.
                    q.push(") WHERE true").push(conflict);
                    q.build().execute(&mut *conn).await?;
                }
            }
            // Only identifiers an update dropped are deleted: rewriting the unchanged ones would
            // dirty an index page per identifier for nothing (a new entity has none to drop).
            let dropped = format!(
                "DELETE FROM entity_identifiers WHERE entity_id IN (SELECT e.id FROM {ROWS_BY_KEY}) \
                 AND (identifier, entity_id) NOT IN (SELECT i.value, e.id FROM {ROWS_BY_KEY} CROSS JOIN json_each(s.value) i)"
            );
            for chunk in changed.updated.chunks(JSON_CHUNK) {
                sqlx::query(&dropped)
                    .bind(&config_id)
                    .bind(identifier_tree(chunk))
                    .execute(&mut *conn)
                    .await?;
            }
            let added = format!(
                "INSERT OR IGNORE INTO entity_identifiers (identifier, entity_id) \
                 SELECT i.value, e.id FROM {ROWS_BY_KEY} CROSS JOIN json_each(s.value) i"
            );
            for rows in [&changed.created, &changed.updated] {
                for chunk in rows.chunks(JSON_CHUNK) {
                    sqlx::query(&added)
                        .bind(&config_id)
                        .bind(identifier_tree(chunk))
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        let run_id = run.id.to_string();
        for chunk in rows.chunks(JSON_CHUNK) {
            sqlx::query(
                "INSERT OR IGNORE INTO run_seen_entities (run_id, kind, source_id) \
                 SELECT ?1, k.key, s.value FROM json_each(?2) k, json_each(k.value) s",
            )
            .bind(&run_id)
            .bind(source_ids_by_kind(chunk))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Adds a page's memberships, counting the new ones, and marks them seen by this run.
    async fn add_memberships(
        conn: &mut SqliteConnection,
        run: &Run,
        page: &PageWrite<'_>,
        counts: &mut RunCounts,
        recorder: &mut Recorder,
    ) -> Result<(), StoreError> {
        counts.entry(MEMBERSHIP).fetched += page.memberships.len() as u64;
        let (config_id, run_id) = (run.config_id.to_string(), run.id.to_string());
        let now = encode_time(ctxsync_core::now());
        let mut created = 0;
        let mut added = Vec::new();
        let insert = format!(
            "INSERT OR IGNORE INTO memberships (config_id, group_id, member_kind, member_id, first_seen_at, seen_run) \
             SELECT ?1, group_id, member_kind, member_id, ?2, ?3 FROM ({MEMBERSHIP_ROWS})"
        );
        let returning = format!("{insert} RETURNING group_id, member_kind, member_id");
        for chunk in page.memberships.chunks(JSON_CHUNK) {
            // Only inserted rows count as changes, so this is the number of new memberships.
            // They are read back only when they become events: never on a config's first sync.
            let sql = if recorder.events_on() { &returning } else { &insert };
            let q = sqlx::query(sql).bind(&config_id).bind(&now).bind(&run_id).bind(membership_tree(chunk));
            if recorder.events_on() {
                added.extend(q.fetch_all(&mut *conn).await?);
            } else {
                created += q.execute(&mut *conn).await?.rows_affected();
            }
        }
        if recorder.events_on() {
            created = recorder.memberships_added(&added)?;
        }
        counts.entry(MEMBERSHIP).created += created;
        // Rows just inserted carry this run already; on a first sync that is all of them.
        if created < page.memberships.len() as u64 {
            let update = format!(
                "UPDATE OR IGNORE memberships SET seen_run = ?3 WHERE config_id = ?1 AND seen_run <> ?3 \
                 AND (group_id, member_kind, member_id) IN ({MEMBERSHIP_ROWS})"
            );
            for chunk in page.memberships.chunks(JSON_CHUNK) {
                // The same parameters as the insert, `?2` unused, so the tree is `?4` in both.
                sqlx::query(&update)
                    .bind(&config_id)
                    .bind(&now)
                    .bind(&run_id)
                    .bind(membership_tree(chunk))
                    .execute(&mut *conn)
                    .await?;
            }
        }
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
                let (kind, source_id, member_kind, member_id) = removal_key(removal);
                b.push_bind(run.id.to_string())
                    .push_bind(kind)
                    .push_bind(source_id)
                    .push_bind(member_kind)
                    .push_bind(member_id);
            });
            q.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn clear_run_scratch(conn: &mut SqliteConnection, run_ids: &[String]) -> Result<(), StoreError> {
        for id in run_ids {
            for table in ["run_seen_entities", "run_removals"] {
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
        replacing: Option<&str>,
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
             WHERE config_id = ?3 \
               AND (lease_owner IS NULL OR lease_owner = ?1 OR lease_until < ?4 OR lease_owner = ?5) \
             RETURNING cursor, last_full_at, next_run_at",
        )
        .bind(owner)
        .bind(encode_time(until))
        .bind(&config_id)
        .bind(&now)
        .bind(replacing)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(state) = state else {
            return Ok(None);
        };
        let stale: Vec<String> = sqlx::query_scalar(
            "UPDATE sync_runs SET status = 'failed', finished_at = ?1, error = ?3 \
             WHERE config_id = ?2 AND status = 'running' RETURNING id",
        )
        .bind(&now)
        .bind(&config_id)
        .bind(INTERRUPTED)
        .fetch_all(&mut *tx)
        .await?;
        Self::clear_run_scratch(&mut tx, &stale).await?;
        tx.commit().await?;
        Ok(Some(state.try_into()?))
    }

    async fn lease(&self, config: ConfigId) -> Result<Option<Lease>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT lease_owner, lease_until FROM sync_state \
             WHERE config_id = ? AND lease_owner IS NOT NULL AND lease_until IS NOT NULL",
        )
        .bind(config.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(owner, until)| Ok(Lease { owner, until: decode_time(&until)? })).transpose()
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
        let mut run = new_run(config, kind);
        let mut tx = self.begin_write().await?;
        let requested: Option<Option<String>> =
            sqlx::query_scalar("SELECT requested_run FROM sync_state WHERE config_id = ?")
                .bind(config.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = requested.flatten() {
            run.id = id.parse().map_err(|_| StoreError::Corrupt(format!("requested run id {id}")))?;
            sqlx::query("UPDATE sync_state SET requested_run = NULL WHERE config_id = ?")
                .bind(config.to_string())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO sync_runs (id, config_id, kind, status, started_at, counts) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(run.id.to_string())
        .bind(config.to_string())
        .bind(kind.as_str())
        .bind(run.status.as_str())
        .bind(encode_time(run.started_at))
        .bind(encode_counts(&run.counts))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(run)
    }

    async fn apply_page(&self, run: &Run, org: OrgId, page: PageWrite<'_>) -> Result<RunCounts, StoreError> {
        let mut counts = RunCounts { pages: 1, ..RunCounts::default() };
        let mut tx = self.begin_write().await?;
        let (baselined, held) = Self::page_state(&mut tx, run.config_id).await?;
        let mut recorder = Recorder::new(baselined);
        if !page.entities.is_empty() {
            Self::upsert_entities(&mut tx, run, org, &page, &mut counts, &mut recorder).await?;
        }
        if !page.memberships.is_empty() {
            Self::add_memberships(&mut tx, run, &page, &mut counts, &mut recorder).await?;
        }
        if held {
            Self::unstage_seen(&mut tx, run.config_id, &page).await?;
        }
        if !page.removals.is_empty() {
            Self::note_removals(&mut tx, run, page.removals).await?;
        }
        Self::record(&mut tx, run, &recorder, ctxsync_core::now()).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn save_progress(&self, run: &Run) -> Result<(), StoreError> {
        sqlx::query("UPDATE sync_runs SET counts = ? WHERE id = ? AND status = 'running'")
            .bind(encode_counts(&run.counts))
            .bind(run.id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn finish_run(&self, run: &Run, end: RunEnd) -> Result<Run, StoreError> {
        let now = ctxsync_core::now();
        let mut ending = Ending::new(run, &end, now);
        let config_id = run.config_id.to_string();
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query("UPDATE sync_runs SET status = status WHERE id = ? AND status = 'running'")
            .bind(run.id.to_string())
            .execute(&mut *tx)
            .await?;
        if claimed.rows_affected() == 0 {
            return Err(StoreError::RunTakenOver(run.id));
        }
        sqlx::query("INSERT INTO sync_state (config_id) VALUES (?) ON CONFLICT DO NOTHING")
            .bind(&config_id)
            .execute(&mut *tx)
            .await?;
        let baselined = Self::baselined(&mut tx, run.config_id).await?;
        let baseline = ending.baseline(baselined);
        let mut recorder = Recorder::new(baselined);
        if let Some((coverage, cursor)) = ending.completed.clone() {
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
                Self::apply_staged(&mut tx, run, &mut ending.run.counts, &mut recorder).await?;
                Self::record(&mut tx, run, &recorder, now).await?;
            }
            sqlx::query("UPDATE sync_state SET cursor = ? WHERE config_id = ?")
                .bind(cursor)
                .bind(&config_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(last_full_at) = ending.last_full_at {
            sqlx::query("UPDATE sync_state SET last_full_at = ? WHERE config_id = ?")
                .bind(encode_time(last_full_at))
                .bind(&config_id)
                .execute(&mut *tx)
                .await?;
        }
        Self::clear_run_scratch(&mut tx, &[run.id.to_string()]).await?;
        // A "sync now" that came in during the run is due at once, not at the next schedule.
        sqlx::query(
            "UPDATE sync_state SET baselined = baselined OR ?2, \
               next_run_at = CASE WHEN requested_run IS NULL THEN ?1 ELSE ?3 END \
             WHERE config_id = ?4",
        )
        .bind(encode_time(ending.next_run_at))
        .bind(baseline)
        .bind(encode_time(now))
        .bind(&config_id)
        .execute(&mut *tx)
        .await?;
        let (hold, completeness) = ending.findings();
        let finished = ending.run;
        sqlx::query(
            "UPDATE sync_runs SET status = ?, finished_at = ?, counts = ?, error = ?, baseline = ?, hold = ?, \
             completeness = ? WHERE id = ?",
        )
        .bind(finished.status.as_str())
        .bind(encode_time(now))
        .bind(encode_counts(&finished.counts))
        .bind(&finished.error)
        .bind(finished.baseline)
        .bind(hold)
        .bind(completeness)
        .bind(run.id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if run.kind == RunKind::Full {
            // A full run leaves up to a checkpoint's worth of log behind; copying it back now
            // charges that to the run that wrote it, not to the next small run that crosses the
            // threshold. Passive: readers are never blocked, and a busy log is left for later.
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.writer).await?;
        }
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

    async fn request_run(&self, org: OrgId, config: ConfigId) -> Result<Option<Uuid>, StoreError> {
        let requested: Option<String> = sqlx::query_scalar(
            "INSERT INTO sync_state (config_id, next_run_at, requested_run) \
             SELECT id, ?1, ?2 FROM integration_configs WHERE id = ?3 AND org_id = ?4 \
             ON CONFLICT (config_id) DO UPDATE SET next_run_at = excluded.next_run_at, \
               requested_run = COALESCE(sync_state.requested_run, excluded.requested_run) \
             RETURNING requested_run",
        )
        .bind(encode_time(ctxsync_core::now()))
        .bind(Uuid::new_v4().to_string())
        .bind(config.to_string())
        .bind(org.to_string())
        .fetch_optional(&self.writer)
        .await?;
        requested
            .map(|id| id.parse().map_err(|_| StoreError::Corrupt(format!("requested run id {id}"))))
            .transpose()
    }

    async fn list_runs(&self, org: OrgId, config: ConfigId, limit: u32) -> Result<Vec<Run>, StoreError> {
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN integration_configs c ON c.id = r.config_id \
             WHERE r.config_id = ? AND c.org_id = ? ORDER BY r.started_at DESC, r.id DESC LIMIT ?"
        ))
        .bind(config.to_string())
        .bind(org.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Run::try_from).collect()
    }

    async fn get_run(&self, org: OrgId, config: ConfigId, run: Uuid) -> Result<Option<Run>, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs r JOIN integration_configs c ON c.id = r.config_id \
             WHERE r.id = ? AND r.config_id = ? AND c.org_id = ?"
        ))
        .bind(run.to_string())
        .bind(config.to_string())
        .bind(org.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(Run::try_from).transpose()
    }

    async fn run_summaries(&self) -> Result<Vec<crate::RunSummary>, StoreError> {
        let rows: Vec<rows::SummaryRow<String, String>> =
            sqlx::query_as(&crate::sync::run_summaries_query("r.hold ->> '$.resolution' IS NULL"))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(crate::RunSummary::try_from).collect()
    }
}
