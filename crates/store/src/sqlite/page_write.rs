//! A page's writes on SQLite, tuned for it (measured by `crates/sync/benches/full_sync.rs`):
//! entities, memberships and the removals a source named, inside the transaction of `apply_page`.

use std::collections::{BTreeMap, HashMap, HashSet};

use ctxsync_core::{ConfigId, Membership, OrgId, Removal, Run, RunCounts};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::SqliteStore;
use super::backend::json_rows;
use crate::history::Recorder;
use crate::page::{Changed, EntityWrite, MEMBERSHIP, Stored, membership_key, removal_key};
use crate::values::encode_time;
use crate::{PageWrite, StoreError};

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

/// The stored rows `e` of the identifier tree bound as `$2`, for config `$1`: its kinds `k` and
/// their source ids `s`, each found through the key index (`entities_key`). Joined with
/// `json_each(s.value) i`, each row's identifiers, so writing them needs no keys read back from
/// the entities' insert.
const ROWS_BY_KEY: &str = "json_each($2) k CROSS JOIN json_each(k.value) s \
     CROSS JOIN entities e ON e.config_id = $1 AND e.kind = k.key AND e.source_id = s.key";

/// Memberships as `{group: {member kind: [member, …]}}`: a page's members share their group.
fn membership_tree<'a>(memberships: impl IntoIterator<Item = &'a Membership>) -> String {
    let by_group = grouped(memberships.into_iter().map(|m| {
        let (group, kind, member) = membership_key(m);
        (group, (kind, member))
    }));
    to_json(
        &by_group.into_iter().map(|(group, members)| (group, grouped(members))).collect::<BTreeMap<_, _>>(),
    )
}

/// The rows `(group_id, member_kind, member_id)` of the membership tree bound as `$4`.
const MEMBERSHIP_ROWS: &str = "SELECT g.key AS group_id, k.key AS member_kind, m.value AS member_id \
     FROM json_each($4) g, json_each(g.value) k, json_each(k.value) m";

impl SqliteStore {
    /// What is stored for `rows` before they are rewritten, with the identifiers each answers to.
    async fn stored(
        conn: &mut SqliteConnection,
        config: ConfigId,
        rows: &[&EntityWrite],
    ) -> Result<Stored, StoreError> {
        if rows.is_empty() {
            return Stored::decode(Vec::new());
        }
        let keys = json_rows(&rows.iter().map(|row| (row.kind, &row.source_id)).collect::<Vec<_>>());
        let found: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT e.kind, e.source_id, e.data, \
               (SELECT json_group_array(i.identifier) FROM entity_identifiers i WHERE i.entity_id = e.id) \
             FROM json_each($2) j CROSS JOIN entities e \
             ON e.config_id = $1 AND e.kind = j.value ->> 0 AND e.source_id = j.value ->> 1",
        )
        .bind(config.to_string())
        .bind(keys)
        .fetch_all(conn)
        .await?;
        let rows = found
            .into_iter()
            .map(|(kind, source_id, data, identifiers)| match serde_json::from_str(&identifiers) {
                Ok(identifiers) => Ok((kind, source_id, data, identifiers)),
                Err(_) => Err(StoreError::Corrupt(format!(
                    "the identifiers of {kind} {source_id} do not read back"
                ))),
            })
            .collect::<Result<_, _>>()?;
        Stored::decode(rows)
    }

    /// Writes new and changed entities of a page, counting them, and notes them as seen unless
    /// the run is its config's `first_listing` (which needs no entity's seen row).
    pub(super) async fn upsert_entities(
        conn: &mut SqliteConnection,
        run: &Run,
        org: OrgId,
        page: &PageWrite<'_>,
        first_listing: bool,
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
                "SELECT k.key, s.key, e.digest FROM json_each($2) k CROSS JOIN json_each(k.value) s \
                 CROSS JOIN entities e ON e.config_id = $1 AND e.kind = k.key AND e.source_id = s.value",
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
        let stored = Self::stored(conn, run.config_id, &changed.updated).await?;
        recorder.entities(&changed.created, &changed.updated, &stored)?;
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
            let reidentified = stored.reidentified(&changed.updated);
            for chunk in reidentified.chunks(JSON_CHUNK) {
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
            for rows in [&changed.created, &reidentified] {
                for chunk in rows.chunks(JSON_CHUNK) {
                    sqlx::query(&added)
                        .bind(&config_id)
                        .bind(identifier_tree(chunk))
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        if first_listing {
            return Ok(());
        }
        let run_id = run.id.to_string();
        for chunk in rows.chunks(JSON_CHUNK) {
            sqlx::query(
                "INSERT OR IGNORE INTO run_seen_entities (run_id, kind, source_id) \
                 SELECT $1, k.key, s.value FROM json_each($2) k, json_each(k.value) s",
            )
            .bind(&run_id)
            .bind(source_ids_by_kind(chunk))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Adds a page's memberships, counting the new ones. Those of groups listed in part are
    /// marked seen by this run; the page's whole groups are compared with what is stored.
    pub(super) async fn add_memberships(
        conn: &mut SqliteConnection,
        run: &Run,
        page: &PageWrite<'_>,
        counts: &mut RunCounts,
        recorder: &mut Recorder,
    ) -> Result<(), StoreError> {
        counts.entry(MEMBERSHIP).fetched += page.memberships.len() as u64;
        let whole: HashSet<&str> = page.whole_groups.iter().map(String::as_str).collect();
        if !whole.is_empty() {
            // Before the insert, so a group's first listing finds nothing stored to compare.
            Self::note_unnamed_members(conn, run, page.memberships, &whole).await?;
        }
        let (config_id, run_id) = (run.config_id.to_string(), run.id.to_string());
        let now = encode_time(ctxsync_core::now());
        let mut created = 0;
        let mut added = Vec::new();
        let insert = format!(
            "INSERT OR IGNORE INTO memberships (config_id, group_id, member_kind, member_id, first_seen_at, seen_run) \
             SELECT $1, group_id, member_kind, member_id, $2, $3 FROM ({MEMBERSHIP_ROWS})"
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
        let marked: Vec<&Membership> =
            page.memberships.iter().filter(|m| !whole.contains(m.group_id.as_str())).collect();
        if created < page.memberships.len() as u64 && !marked.is_empty() {
            let update = format!(
                "UPDATE OR IGNORE memberships SET seen_run = $3 WHERE config_id = $1 AND seen_run <> $3 \
                 AND (group_id, member_kind, member_id) IN ({MEMBERSHIP_ROWS})"
            );
            for chunk in marked.chunks(JSON_CHUNK) {
                // The same parameters as the insert, `$2` unused, so the tree is `$4` in both.
                sqlx::query(&update)
                    .bind(&config_id)
                    .bind(&now)
                    .bind(&run_id)
                    .bind(membership_tree(chunk.iter().copied()))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// Notes the groups in `whole` as listed whole by this run, and their stored members that
    /// `memberships` does not name, for deletion when the run completes. What an earlier listing
    /// of the same group in this run noted is replaced: a resumed run lists again the groups
    /// after its checkpoint.
    async fn note_unnamed_members(
        conn: &mut SqliteConnection,
        run: &Run,
        memberships: &[Membership],
        whole: &HashSet<&str>,
    ) -> Result<(), StoreError> {
        let mut named: BTreeMap<&str, Vec<&Membership>> =
            whole.iter().map(|&group| (group, Vec::new())).collect();
        for m in memberships {
            if let Some(members) = named.get_mut(m.group_id.as_str()) {
                members.push(m);
            }
        }
        let (config_id, run_id) = (run.config_id.to_string(), run.id.to_string());
        // Whole groups at a time, up to about `JSON_CHUNK` members.
        let mut named = named.into_iter().peekable();
        while named.peek().is_some() {
            let (mut groups, mut members) = (Vec::new(), Vec::new());
            while let Some((group, group_members)) = named.next_if(|_| members.len() < JSON_CHUNK) {
                groups.push(group);
                members.extend(group_members);
            }
            let groups = to_json(&groups);
            let statements = [
                "DELETE FROM run_unnamed_members WHERE run_id = $2 AND group_id IN (SELECT value FROM json_each($3))"
                    .to_string(),
                "INSERT OR IGNORE INTO run_whole_groups (run_id, group_id) SELECT $2, value FROM json_each($3)"
                    .to_string(),
                format!(
                    "INSERT OR IGNORE INTO run_unnamed_members (run_id, group_id, member_kind, member_id) \
                     SELECT $2, m.group_id, m.member_kind, m.member_id FROM json_each($3) g \
                     CROSS JOIN memberships m ON m.config_id = $1 AND m.group_id = g.value \
                     WHERE (m.group_id, m.member_kind, m.member_id) NOT IN ({MEMBERSHIP_ROWS})"
                ),
            ];
            let tree = membership_tree(members);
            for sql in &statements {
                sqlx::query(sql)
                    .bind(&config_id)
                    .bind(&run_id)
                    .bind(&groups)
                    .bind(&tree)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn note_removals(
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
}
