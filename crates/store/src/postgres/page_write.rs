//! A page's writes on PostgreSQL, tuned for it (measured by `crates/sync/benches/full_sync.rs`):
//! entities, memberships and the removals a source named, inside the transaction of `apply_page`.
//! Many rows go into one statement as arrays (`UNNEST($1::text[], …)`), so the statement text
//! does not depend on the page's size and no page comes near the bind-parameter limit.

use std::collections::{HashMap, HashSet};

use ctxsync_core::{ConfigId, Membership, OrgId, Removal, Run, RunCounts};
use sqlx::PgConnection;

use super::PostgresStore;
use crate::history::Recorder;
use crate::page::{Changed, EntityWrite, MEMBERSHIP, Stored, StoredRow, membership_key, removal_key};
use crate::{PageWrite, PreparedEntities, StoreError};

/// Memberships as the three arrays `UNNEST` reads back: groups, member kinds, members.
fn columns<'a>(memberships: impl Iterator<Item = &'a Membership>) -> [Vec<&'a str>; 3] {
    let mut columns: [Vec<&str>; 3] = Default::default();
    for (group, kind, member) in memberships.map(membership_key) {
        for (column, value) in columns.iter_mut().zip([group, kind, member]) {
            column.push(value);
        }
    }
    columns
}

impl PostgresStore {
    /// What is stored for `rows` before they are rewritten, with the identifiers each answers to.
    async fn stored(
        conn: &mut PgConnection,
        config: ConfigId,
        rows: &[&EntityWrite],
    ) -> Result<Stored, StoreError> {
        if rows.is_empty() {
            return Stored::decode(Vec::new());
        }
        let found: Vec<StoredRow> = sqlx::query_as(
            "SELECT e.kind, e.source_id, e.data, ARRAY(SELECT i.identifier FROM entity_identifiers i \
               WHERE i.config_id = e.config_id AND i.kind = e.kind AND i.source_id = e.source_id) \
             FROM UNNEST($2::text[], $3::text[]) AS k (kind, source_id) \
             JOIN entities e ON e.config_id = $1 AND e.kind = k.kind AND e.source_id = k.source_id",
        )
        .bind(config.0)
        .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.source_id.as_str()).collect::<Vec<_>>())
        .fetch_all(conn)
        .await?;
        Stored::decode(found)
    }

    /// Writes new and changed entities of a page, counting them, and notes every entity of the
    /// page as seen unless the run is its config's `first_listing` (which needs no entity's seen
    /// row).
    pub(super) async fn upsert_entities(
        conn: &mut PgConnection,
        run: &Run,
        org: OrgId,
        entities: &PreparedEntities,
        first_listing: bool,
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
        // The stored digests by position in the page; noting the page as seen rides along (not
        // for a first listing).
        let stored: HashMap<i64, Vec<u8>> = sqlx::query_as(
            "WITH seen AS (INSERT INTO run_seen_entities (run_id, kind, source_id) \
               SELECT $2, * FROM UNNEST($3::text[], $4::text[]) WHERE $5 ON CONFLICT DO NOTHING) \
             SELECT k.n - 1, e.digest FROM UNNEST($3::text[], $4::text[]) WITH ORDINALITY AS k (kind, source_id, n) \
             JOIN entities e ON e.config_id = $1 AND e.kind = k.kind AND e.source_id = k.source_id",
        )
        .bind(run.config_id.0)
        .bind(run.id)
        .bind(&kinds)
        .bind(&source_ids)
        .bind(!first_listing)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        let changed = Changed::new(rows, &stored, counts);
        let stored = Self::stored(conn, run.config_id, &changed.updated).await?;
        recorder.entities(&changed.created, &changed.updated, &stored)?;
        let reidentified = stored.reidentified(&changed.updated);
        if !reidentified.is_empty() {
            Self::forget_identifiers(conn, run.config_id, &reidentified).await?;
        }
        let identified: Vec<&EntityWrite> = changed.created.iter().chain(&reidentified).copied().collect();
        let changed = changed.all();
        if !changed.is_empty() {
            Self::write_entities(conn, run.config_id, org, &changed, &identified).await?;
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

    /// Upserts `rows`, and adds the identifiers of those `identified` (the others' are stored).
    async fn write_entities(
        conn: &mut PgConnection,
        config: ConfigId,
        org: OrgId,
        rows: &[&EntityWrite],
        identified: &[&EntityWrite],
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

        if identified.is_empty() {
            return Ok(());
        }
        let (mut identifiers, mut id_kinds, mut id_sources) = (Vec::new(), Vec::new(), Vec::new());
        for row in identified {
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

    /// Adds a page's memberships, counting the new ones. Those of groups listed in part are
    /// noted as seen; the page's whole groups are compared with what is stored.
    pub(super) async fn add_memberships(
        conn: &mut PgConnection,
        run: &Run,
        page: &PageWrite<'_>,
        counts: &mut RunCounts,
        recorder: &mut Recorder,
    ) -> Result<(), StoreError> {
        let memberships = page.memberships;
        if memberships.is_empty() {
            return Ok(());
        }
        counts.entry(MEMBERSHIP).fetched += memberships.len() as u64;
        let whole: HashSet<&str> = page.whole_groups.iter().map(String::as_str).collect();
        let [groups, kinds, members] = columns(memberships.iter());
        let seen: Vec<bool> = groups.iter().map(|group| !whole.contains(group)).collect();
        if !whole.is_empty() {
            Self::note_unnamed_members(conn, run, memberships, &whole).await?;
        }
        // Only inserted rows are counted, so this is the number of new memberships. They are read
        // back only when they become events: never on a config's first sync.
        macro_rules! insert {
            () => {
                "WITH seen AS (INSERT INTO run_seen_memberships (run_id, group_id, member_kind, member_id) \
                   SELECT $2, group_id, member_kind, member_id \
                   FROM UNNEST($4::text[], $5::text[], $6::text[], $7::bool[]) AS s (group_id, member_kind, member_id, seen) \
                   WHERE seen ON CONFLICT DO NOTHING) \
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
            .bind(&members)
            .bind(&seen);
        let created = if recorder.events_on() {
            recorder.memberships_added(&query.fetch_all(&mut *conn).await?)?
        } else {
            query.execute(&mut *conn).await?.rows_affected()
        };
        counts.entry(MEMBERSHIP).created += created;
        Ok(())
    }

    /// Notes the groups in `whole` as listed whole by this run, and their stored members that
    /// `memberships` does not name, for deletion when the run completes; before the insert, so a
    /// group's first listing finds nothing stored to compare. What an earlier listing of the same
    /// group in this run noted is replaced: a resumed run lists again the groups after its
    /// checkpoint.
    async fn note_unnamed_members(
        conn: &mut PgConnection,
        run: &Run,
        memberships: &[Membership],
        whole: &HashSet<&str>,
    ) -> Result<(), StoreError> {
        let [groups, kinds, members] =
            columns(memberships.iter().filter(|m| whole.contains(m.group_id.as_str())));
        let whole: Vec<&str> = whole.iter().copied().collect();
        // Two statements: an insert meeting a row its own statement deletes would be skipped.
        sqlx::query("DELETE FROM run_unnamed_members WHERE run_id = $1 AND group_id = ANY($2::text[])")
            .bind(run.id)
            .bind(&whole)
            .execute(&mut *conn)
            .await?;
        // `NOT EXISTS` plans as an anti-join; `NOT IN` over a large array is not hashed.
        sqlx::query(
            "WITH listed AS (INSERT INTO run_whole_groups SELECT $2, * FROM UNNEST($3::text[]) \
               ON CONFLICT DO NOTHING) \
             INSERT INTO run_unnamed_members SELECT $2, m.group_id, m.member_kind, m.member_id \
             FROM memberships m WHERE m.config_id = $1 AND m.group_id = ANY($3::text[]) \
             AND NOT EXISTS (SELECT 1 FROM UNNEST($4::text[], $5::text[], $6::text[]) AS n (group_id, member_kind, member_id) \
               WHERE n.group_id = m.group_id AND n.member_kind = m.member_kind AND n.member_id = m.member_id) \
             ON CONFLICT DO NOTHING",
        )
        .bind(run.config_id.0)
        .bind(run.id)
        .bind(&whole)
        .bind(&groups)
        .bind(&kinds)
        .bind(&members)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub(super) async fn note_removals(
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
}
