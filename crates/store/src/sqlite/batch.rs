//! SQLite's statements over many rows (see [`super::sql::Backend`]): the rows go in as one JSON
//! parameter read back with `json_each`, or, for lookups, as bound values a chunk at a time.

use ctxsync_core::{ConfigId, Coverage, OrgId, Run};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use super::json_rows;
use crate::entities::ENTITY_COLUMNS;
use crate::history::Recorder;
use crate::page::{MEMBERSHIP, membership_key};
use crate::rows::FoundRow;
use crate::values::{DbId, DbTime, encode_time};
use crate::{PageWrite, StoreError, StoredEntity};

/// Identifiers per lookup statement.
const LOOKUP_CHUNK: usize = 500;

/// Every entity of `org` answering to each identifier, through the identifier index.
pub(super) async fn find_identifiers(
    pool: &SqlitePool,
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
        let rows: Vec<FoundRow> = q.build_query_as().fetch_all(pool).await?;
        for row in rows {
            found.push(row.try_into()?);
        }
    }
    Ok(found)
}

/// Drops what a page lists again from the config's held stages.
pub(super) async fn unstage_seen(
    conn: &mut SqliteConnection,
    config: ConfigId,
    page: &PageWrite<'_>,
) -> Result<(), StoreError> {
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

/// Memberships carry the last run that saw them (`seen_run`), so the unseen ones are found
/// without a table of seen rows.
pub(super) async fn stage_unseen_memberships(
    conn: &mut SqliteConnection,
    run: &Run,
    coverage: &Coverage,
) -> Result<(), StoreError> {
    let (groups, condition) = match coverage {
        Coverage::Changes { groups_with_all_members } => (groups_with_all_members.as_slice(), "IN"),
        Coverage::Everything | Coverage::EverythingBut { .. } => (coverage.groups_without_members(), "NOT IN"),
    };
    sqlx::query(&format!(
        "INSERT OR IGNORE INTO held_deletions SELECT $2, $1, '{MEMBERSHIP}', group_id, member_kind, member_id \
         FROM memberships WHERE config_id = $1 AND seen_run <> $2 \
         AND group_id {condition} (SELECT value FROM json_each($3))"
    ))
    .bind(DbId(run.config_id.0))
    .bind(DbId(run.id))
    .bind(serde_json::to_string(groups).expect("ids serialize"))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes what `recorder` gathered: events, role intervals opened and closed, memberships ended.
pub(super) async fn record(
    conn: &mut SqliteConnection,
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
