//! What PostgreSQL does its own way (see [`sql::Backend`]): one pool for every replica, row
//! locks, and statements over many rows that take them as arrays, one per column, read back with
//! `UNNEST`.

// Compiled once per backend on purpose: see its module doc.
#[allow(clippy::duplicate_mod)]
#[path = "../sql/mod.rs"]
mod sql;

use ctxsync_core::{ConfigId, Coverage, OrgId, Run, RunCounts};
use sqlx::{PgPool, Postgres};
use time::OffsetDateTime;

use super::PostgresStore;
use crate::entities::ENTITY_COLUMNS;
use crate::history::Recorder;
use crate::page::{MEMBERSHIP, membership_key};
use crate::rows::FoundRow;
use crate::{PageWrite, StoreError, StoredEntity};
use sql::Conn;

/// The database the shared SQL in [`sql`] runs on.
type Db = Postgres;
/// The store the shared SQL in [`sql`] implements the traits for.
type Store = PostgresStore;

#[cfg(test)]
impl PostgresStore {
    /// The isolation level the store's write transactions run at.
    pub(super) async fn write_isolation(&self) -> String {
        use sql::Backend as _;
        let mut tx = self.begin_write().await.unwrap();
        sqlx::query_scalar("SHOW transaction_isolation").fetch_one(&mut *tx).await.unwrap()
    }
}

/// The advisory lock event writers hold until they commit, so event ids become visible in order.
const EVENT_LOCK: i64 = 0x6374_7873_796e_6301;

impl sql::Backend for PostgresStore {
    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Read committed whatever the database's or role's default: the store's transactions are
    /// ordered by row locks and read what committed before each statement (a lease takeover
    /// marks failed the run that a start it waited for inserted). Set per transaction rather
    /// than per session, so it holds through a pooler too.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
        Ok(self.pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await?)
    }

    const ROW_LOCKS: bool = true;

    const SCRATCH_TABLES: &'static [&'static str] = &[
        "run_seen_entities",
        "run_seen_memberships",
        "run_removals",
        "run_whole_groups",
        "run_unnamed_members",
    ];

    const MEMBERSHIPS_MARKED_SEEN: bool = false;

    const MARK_WHOLE_GROUPS: &'static str = "INSERT INTO run_seen_memberships SELECT $3, group_id, member_kind, member_id FROM memberships m \
         WHERE config_id = $1 AND group_id IN (SELECT group_id FROM run_whole_groups WHERE run_id = $2) \
         AND NOT EXISTS (SELECT 1 FROM run_unnamed_members u WHERE u.run_id = $2 AND u.group_id = m.group_id \
         AND u.member_kind = m.member_kind AND u.member_id = m.member_id) \
         ON CONFLICT DO NOTHING";

    const UNMARK_UNNAMED: &'static str = "DELETE FROM run_seen_memberships s USING run_unnamed_members u, sync_runs r \
         WHERE r.id = $2 AND r.config_id = $1 AND s.run_id = r.id AND u.run_id = r.id AND s.group_id = u.group_id \
         AND s.member_kind = u.member_kind AND s.member_id = u.member_id";

    /// Identifiers are keyed by the entity's key, with its org.
    const IDENTIFIER_MATCH: &'static str = "EXISTS (SELECT 1 FROM entity_identifiers i WHERE i.org_id = e.org_id \
         AND i.config_id = e.config_id AND i.kind = e.kind AND i.source_id = e.source_id AND i.identifier = ";

    /// `(column::jsonb #>> '{a,b}')`: the columns hold JSON as text.
    fn json_text(column: &str, path: &[&str]) -> String {
        format!("({column}::jsonb #>> '{{{}}}')", path.join(","))
    }

    fn any_id(column: &str, param: &str) -> String {
        format!("{column} = ANY({param})")
    }

    async fn find_identifiers(
        &self,
        org: OrgId,
        identifiers: &[String],
    ) -> Result<Vec<(String, StoredEntity)>, StoreError> {
        let rows: Vec<FoundRow> = sqlx::query_as(&format!(
            "SELECT i.identifier, {ENTITY_COLUMNS} FROM entity_identifiers i JOIN entities e \
             ON e.config_id = i.config_id AND e.kind = i.kind AND e.source_id = i.source_id \
             WHERE i.org_id = $1 AND i.identifier = ANY($2::text[]) \
             ORDER BY i.identifier, e.config_id, e.kind, e.source_id"
        ))
        .bind(org.0)
        .bind(identifiers)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
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
        PostgresStore::upsert_entities(conn, run, org, page.entities, first_listing, &mut counts, recorder)
            .await?;
        PostgresStore::add_memberships(conn, run, page, &mut counts, recorder).await?;
        PostgresStore::note_removals(conn, run, page.removals).await?;
        Ok(counts)
    }

    async fn unstage_seen(conn: &mut Conn, config: ConfigId, page: &PageWrite<'_>) -> Result<(), StoreError> {
        let mut columns: [Vec<&str>; 4] = Default::default();
        let entities = page.entities.rows.iter().map(|r| (r.kind, r.source_id.as_str(), "", ""));
        let memberships = page
            .memberships
            .iter()
            .map(membership_key)
            .map(|(group, kind, member)| (MEMBERSHIP, group, kind, member));
        for (kind, source_id, member_kind, member_id) in entities.chain(memberships) {
            for (column, value) in columns.iter_mut().zip([kind, source_id, member_kind, member_id]) {
                column.push(value);
            }
        }
        let [kinds, source_ids, member_kinds, member_ids] = columns;
        sqlx::query(
            "DELETE FROM held_deletions h USING UNNEST($2::text[], $3::text[], $4::text[], $5::text[]) \
               AS k (kind, source_id, member_kind, member_id) \
             WHERE h.config_id = $1 AND h.kind = k.kind AND h.source_id = k.source_id \
               AND h.member_kind = k.member_kind AND h.member_id = k.member_id",
        )
        .bind(config.0)
        .bind(kinds)
        .bind(source_ids)
        .bind(member_kinds)
        .bind(member_ids)
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn stage_unseen_memberships(
        conn: &mut Conn,
        run: &Run,
        coverage: &Coverage,
    ) -> Result<(), StoreError> {
        let (groups, condition) = match coverage {
            Coverage::Changes { groups_with_all_members } => {
                (groups_with_all_members.as_slice(), "group_id = ANY($3::text[])")
            }
            Coverage::Everything | Coverage::EverythingBut { .. } => {
                (coverage.groups_without_members(), "NOT (group_id = ANY($3::text[]))")
            }
        };
        // A group listed whole has its unnamed members noted; any other, its members not seen.
        sqlx::query(&format!(
            "INSERT INTO held_deletions SELECT $2, $1, '{MEMBERSHIP}', group_id, member_kind, member_id \
             FROM memberships m WHERE config_id = $1 AND {condition} \
             AND NOT EXISTS (SELECT 1 FROM run_seen_memberships s WHERE s.run_id = $2 \
             AND s.group_id = m.group_id AND s.member_kind = m.member_kind AND s.member_id = m.member_id) \
             AND NOT EXISTS (SELECT 1 FROM run_whole_groups w WHERE w.run_id = $2 AND w.group_id = m.group_id) \
             UNION ALL SELECT $2, $1, '{MEMBERSHIP}', group_id, member_kind, member_id \
             FROM run_unnamed_members u WHERE run_id = $2 AND {condition} \
             AND EXISTS (SELECT 1 FROM memberships m WHERE m.config_id = $1 AND m.group_id = u.group_id \
             AND m.member_kind = u.member_kind AND m.member_id = u.member_id) \
             ON CONFLICT DO NOTHING"
        ))
        .bind(run.config_id.0)
        .bind(run.id)
        .bind(groups)
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
        let config = run.config_id.0;
        let events = recorder.event_rows();
        if !events.is_empty() {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(EVENT_LOCK).execute(&mut *conn).await?;
            sqlx::query(
                "INSERT INTO change_events (org_id, config_id, run_id, observed_at, type, entity_kind, entity_id, \
                   related_id, field, old_value, new_value, source_time) \
                 SELECT (SELECT org_id FROM integration_configs WHERE id = $1), $1, $2, $3, \
                   e.type, e.entity_kind, e.entity_id, e.related_id, e.field, e.old_value, e.new_value, e.source_time \
                 FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
                   $11::timestamptz[]) WITH ORDINALITY \
                   AS e (type, entity_kind, entity_id, related_id, field, old_value, new_value, source_time, n) \
                 ORDER BY e.n",
            )
            .bind(config)
            .bind(run.id)
            .bind(now)
            .bind(events.iter().map(|e| e.change_type).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.entity_kind).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.entity_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.related_id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.field).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.old.as_deref()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.new.as_deref()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.source_time).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        if !recorder.revoked.is_empty() || !recorder.deleted_users.is_empty() {
            let (users, roles): (Vec<&str>, Vec<Option<&str>>) = recorder
                .revoked
                .iter()
                .map(|(user, role)| (user.as_str(), Some(role.as_str())))
                .chain(recorder.deleted_users.iter().map(|user| (user.as_str(), None)))
                .unzip();
            sqlx::query(
                "UPDATE admin_role_history h SET valid_to = $2 FROM UNNEST($3::text[], $4::text[]) AS k (user_id, role) \
                 WHERE h.config_id = $1 AND h.valid_to IS NULL AND h.user_id = k.user_id \
                   AND (k.role IS NULL OR h.role = k.role)",
            )
            .bind(config)
            .bind(now)
            .bind(users)
            .bind(roles)
            .execute(&mut *conn)
            .await?;
        }
        if !recorder.granted.is_empty() {
            let (users, roles): (Vec<&str>, Vec<&str>) =
                recorder.granted.iter().map(|(user, role)| (user.as_str(), role.as_str())).unzip();
            sqlx::query(
                "INSERT INTO admin_role_history (config_id, valid_from, user_id, role) \
                 SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[]) ON CONFLICT DO NOTHING",
            )
            .bind(config)
            .bind(now)
            .bind(users)
            .bind(roles)
            .execute(&mut *conn)
            .await?;
        }
        if !recorder.ended.is_empty() {
            let ended = &recorder.ended;
            sqlx::query(
                "INSERT INTO membership_history (config_id, valid_to, group_id, member_kind, member_id, valid_from) \
                 SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[], $5::text[], $6::timestamptz[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(config)
            .bind(now)
            .bind(ended.iter().map(|e| e.group_id.as_str()).collect::<Vec<_>>())
            .bind(ended.iter().map(|e| e.member_kind.as_str()).collect::<Vec<_>>())
            .bind(ended.iter().map(|e| e.member_id.as_str()).collect::<Vec<_>>())
            .bind(ended.iter().map(|e| e.valid_from).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn after_run(&self, _run: &Run) -> Result<(), StoreError> {
        Ok(())
    }
}
