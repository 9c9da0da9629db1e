//! What SQLite does its own way (see [`sql::Backend`]): one writer connection taking the write
//! lock at once, and statements over many rows that take them as one JSON parameter read back
//! with `json_each` (or, for lookups, as bound values a chunk at a time).

// Compiled once per backend on purpose: see its module doc.
#[allow(clippy::duplicate_mod)]
#[path = "../sql/mod.rs"]
mod sql;

use ctxsync_core::{ConfigId, Coverage, OrgId, Run, RunCounts, RunKind};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use time::OffsetDateTime;

use super::SqliteStore;
use crate::entities::ENTITY_COLUMNS;
use crate::history::Recorder;
use crate::page::{MEMBERSHIP, membership_key};
use crate::rows::FoundRow;
use crate::values::{DbId, DbTime, encode_time};
use crate::{PageWrite, StoreError, StoredEntity};
use sql::Conn;

/// The database the shared SQL in [`sql`] runs on.
type Db = Sqlite;
/// The store the shared SQL in [`sql`] implements the traits for.
type Store = SqliteStore;

/// Identifiers per lookup statement.
const LOOKUP_CHUNK: usize = 500;

/// Keys as one JSON array of arrays, bound as a single parameter and read back with
/// `json_each` and `->>`, for statements off the hot path: their text stays the same whatever
/// the number of rows. `->>` parses a row's array again for each column, so a page's own keys go
/// in as JSON nested by what they share instead (see `page_write.rs`).
pub(super) fn json_rows<T: serde::Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("keys always serialize")
}

impl sql::Backend for SqliteStore {
    fn reader(&self) -> &SqlitePool {
        &self.pool
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// A transaction that takes the write lock at once. A deferred one that reads first and
    /// writes later fails with "database is locked" when another connection wrote in between,
    /// without waiting; an immediate one waits its turn (up to the busy timeout).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    const ROW_LOCKS: bool = false;

    /// Memberships are marked seen in their own `seen_run` column, or compared a whole group at
    /// a time (`run_whole_groups`, `run_unnamed_members`).
    const SCRATCH_TABLES: &'static [&'static str] =
        &["run_seen_entities", "run_removals", "run_whole_groups", "run_unnamed_members"];

    const MEMBERSHIPS_MARKED_SEEN: bool = true;

    const MARK_WHOLE_GROUPS: &'static str = "UPDATE memberships SET seen_run = $3 WHERE config_id = $1 \
         AND group_id IN (SELECT group_id FROM run_whole_groups WHERE run_id = $2) \
         AND (group_id, member_kind, member_id) NOT IN \
         (SELECT group_id, member_kind, member_id FROM run_unnamed_members WHERE run_id = $2)";

    const UNMARK_UNNAMED: &'static str = "UPDATE memberships SET seen_run = '' WHERE config_id = $1 AND seen_run = $2 \
         AND (group_id, member_kind, member_id) IN \
         (SELECT group_id, member_kind, member_id FROM run_unnamed_members WHERE run_id = $2)";

    /// Looked up from the identifier, through the identifier index.
    const IDENTIFIER_MATCH: &'static str =
        "e.id IN (SELECT i.entity_id FROM entity_identifiers i WHERE i.identifier = ";

    /// `json_extract(column, '$.a.b')`.
    fn json_text(column: &str, path: &[&str]) -> String {
        format!("json_extract({column}, '$.{}')", path.join("."))
    }

    fn any_id(column: &str, param: &str) -> String {
        format!("{column} IN (SELECT value FROM json_each({param}))")
    }

    async fn find_identifiers(
        &self,
        org: OrgId,
        identifiers: &[String],
    ) -> Result<Vec<(String, StoredEntity)>, StoreError> {
        let mut found = Vec::new();
        for chunk in identifiers.chunks(LOOKUP_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "SELECT i.identifier, {ENTITY_COLUMNS} FROM entity_identifiers i JOIN entities e ON e.id = i.entity_id \
                 WHERE e.org_id = "
            ));
            q.push_bind(DbId(org.0)).push(" AND i.identifier IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id);
            }
            q.push(") ORDER BY i.identifier, e.config_id, e.kind, e.source_id");
            let rows: Vec<FoundRow> = q.build_query_as().fetch_all(&self.pool).await?;
            for row in rows {
                found.push(row.try_into()?);
            }
        }
        Ok(found)
    }

    async fn write_page(
        conn: &mut Conn,
        org: OrgId,
        run: &Run,
        page: &PageWrite<'_>,
        first_listing: bool,
        recorder: &mut Recorder,
    ) -> Result<RunCounts, StoreError> {
        let mut counts = RunCounts { pages: 1, ..RunCounts::default() };
        if !page.entities.is_empty() {
            SqliteStore::upsert_entities(conn, run, org, page, first_listing, &mut counts, recorder).await?;
        }
        if !page.memberships.is_empty() {
            SqliteStore::add_memberships(conn, run, page, &mut counts, recorder).await?;
        }
        if !page.removals.is_empty() {
            SqliteStore::note_removals(conn, run, page.removals).await?;
        }
        Ok(counts)
    }

    async fn unstage_seen(conn: &mut Conn, config: ConfigId, page: &PageWrite<'_>) -> Result<(), StoreError> {
        let entity_keys = (!page.entities.is_empty()).then(|| {
            json_rows(&page.entities.rows.iter().map(|row| (row.kind, &row.source_id)).collect::<Vec<_>>())
        });
        let membership_keys = (!page.memberships.is_empty())
            .then(|| json_rows(&page.memberships.iter().map(membership_key).collect::<Vec<_>>()));
        let statements = [
            (
                entity_keys,
                "DELETE FROM held_deletions WHERE config_id = $1 AND (kind, source_id, member_kind, member_id) IN \
                 (SELECT value ->> 0, value ->> 1, '', '' FROM json_each($2))",
            ),
            (
                membership_keys,
                "DELETE FROM held_deletions WHERE config_id = $1 AND (kind, source_id, member_kind, member_id) IN \
                 (SELECT 'membership', value ->> 0, value ->> 1, value ->> 2 FROM json_each($2))",
            ),
        ];
        for (keys, sql) in statements {
            if let Some(keys) = &keys {
                sqlx::query(sql).bind(DbId(config.0)).bind(keys).execute(&mut *conn).await?;
            }
        }
        Ok(())
    }

    async fn stage_unseen_memberships(
        conn: &mut Conn,
        run: &Run,
        coverage: &Coverage,
    ) -> Result<(), StoreError> {
        let (groups, condition) = match coverage {
            Coverage::Changes { groups_with_all_members } => (groups_with_all_members.as_slice(), "IN"),
            Coverage::Everything | Coverage::EverythingBut { .. } => {
                (coverage.groups_without_members(), "NOT IN")
            }
        };
        // A group listed whole has its unnamed members noted; any other, its members not marked.
        sqlx::query(&format!(
            "INSERT OR IGNORE INTO held_deletions SELECT $2, $1, '{MEMBERSHIP}', group_id, member_kind, member_id \
             FROM memberships WHERE config_id = $1 AND seen_run <> $2 \
             AND group_id {condition} (SELECT value FROM json_each($3)) \
             AND group_id NOT IN (SELECT group_id FROM run_whole_groups WHERE run_id = $2) \
             UNION ALL SELECT $2, $1, '{MEMBERSHIP}', u.group_id, u.member_kind, u.member_id \
             FROM run_unnamed_members u JOIN memberships m ON m.config_id = $1 AND m.group_id = u.group_id \
               AND m.member_kind = u.member_kind AND m.member_id = u.member_id \
             WHERE u.run_id = $2 AND u.group_id {condition} (SELECT value FROM json_each($3))"
        ))
        .bind(DbId(run.config_id.0))
        .bind(DbId(run.id))
        .bind(serde_json::to_string(groups).expect("ids serialize"))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn record(
        conn: &mut Conn,
        run: &Run,
        recorder: &Recorder,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if recorder.is_empty() {
            return Ok(());
        }
        let (config_id, now) = (DbId(run.config_id.0), DbTime(now));
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
                 SELECT (SELECT org_id FROM integration_configs WHERE id = $1), $1, $2, $3, value ->> 0, value ->> 1, \
                   value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7 FROM json_each($4) ORDER BY key",
            )
            .bind(config_id)
            .bind(DbId(run.id))
            .bind(now)
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
                "UPDATE admin_role_history SET valid_to = $2 WHERE config_id = $1 AND valid_to IS NULL \
                 AND EXISTS (SELECT 1 FROM json_each($3) j WHERE j.value ->> 0 = user_id \
                   AND (j.value ->> 1 IS NULL OR j.value ->> 1 = role))",
            )
            .bind(config_id)
            .bind(now)
            .bind(json_rows(&users))
            .execute(&mut *conn)
            .await?;
        }
        if !recorder.granted.is_empty() {
            sqlx::query(
                "INSERT OR IGNORE INTO admin_role_history (config_id, user_id, role, valid_from) \
                 SELECT $1, value ->> 0, value ->> 1, $2 FROM json_each($3)",
            )
            .bind(config_id)
            .bind(now)
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
                 SELECT $1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, $2 FROM json_each($3)",
            )
            .bind(config_id)
            .bind(now)
            .bind(json_rows(&ended))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// A full run leaves up to a checkpoint's worth of log behind; copying it back now charges
    /// that to the run that wrote it, not to the next small run that crosses the threshold.
    /// Passive: readers are never blocked, and a busy log is left for later.
    async fn after_run(&self, run: &Run) -> Result<(), StoreError> {
        if run.kind == RunKind::Full {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.writer).await?;
        }
        Ok(())
    }
}
