//! Reading entities and memberships on SQLite; every query is scoped to one org.

use ctxsync_core::{ConfigId, Entity, EntityKind, Membership, OrgId};
use sqlx::{QueryBuilder, Sqlite};

use super::{SqliteStore, decode_id, decode_time};
use crate::{EntityQuery, EntityStore, StoreError, StoredEntity, StoredMembership};

const COLUMNS: &str = "e.config_id, e.kind, e.source_id, e.data, e.raw, e.first_seen_at, e.updated_at";

/// Identifiers per lookup statement.
const LOOKUP_CHUNK: usize = 500;

#[derive(sqlx::FromRow)]
struct EntityRow {
    config_id: String,
    kind: String,
    source_id: String,
    data: String,
    raw: String,
    first_seen_at: String,
    updated_at: String,
}

impl TryFrom<EntityRow> for StoredEntity {
    type Error = StoreError;

    fn try_from(row: EntityRow) -> Result<StoredEntity, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!("the {what} of {} {} is not readable", row.kind, row.source_id))
        };
        let entity: Entity = serde_json::from_str(&row.data).map_err(|_| corrupt("entity"))?;
        Ok(StoredEntity {
            config_id: decode_id(&row.config_id)?,
            raw: serde_json::from_str(&row.raw).map_err(|_| corrupt("raw JSON"))?,
            entity,
            first_seen_at: decode_time(&row.first_seen_at)?,
            updated_at: decode_time(&row.updated_at)?,
        })
    }
}

fn decode_kind(s: &str) -> Result<EntityKind, StoreError> {
    EntityKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown entity kind {s:?}")))
}

#[async_trait::async_trait]
impl EntityStore for SqliteStore {
    async fn list_entities(&self, org: OrgId, query: &EntityQuery) -> Result<Vec<StoredEntity>, StoreError> {
        let mut q =
            QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM entities e WHERE e.org_id = "));
        q.push_bind(org.to_string());
        if let Some(kind) = query.kind {
            q.push(" AND e.kind = ").push_bind(kind.as_str());
        }
        if let Some(config) = query.config {
            q.push(" AND e.config_id = ").push_bind(config.to_string());
        }
        if let Some(status) = &query.status {
            q.push(" AND e.status = ").push_bind(status.to_lowercase());
        }
        if let Some(identifier) = &query.identifier {
            q.push(
                " AND EXISTS (SELECT 1 FROM entity_identifiers i WHERE i.org_id = e.org_id AND i.config_id = e.config_id \
                 AND i.kind = e.kind AND i.source_id = e.source_id AND i.identifier = ",
            )
            .push_bind(identifier.trim().to_lowercase())
            .push(")");
        }
        if let Some(group) = &query.member_of {
            q.push(
                " AND EXISTS (SELECT 1 FROM memberships m WHERE m.config_id = e.config_id AND m.member_kind = e.kind \
                 AND m.member_id = e.source_id AND m.group_id = ",
            )
            .push_bind(group.clone())
            .push(")");
        }
        if let Some(member) = &query.groups_of {
            q.push(
                " AND e.kind = 'group' AND EXISTS (SELECT 1 FROM memberships m WHERE m.config_id = e.config_id \
                 AND m.group_id = e.source_id AND m.member_id = ",
            )
            .push_bind(member.clone())
            .push(")");
        }
        if let Some(after) = &query.after {
            q.push(" AND (e.config_id, e.kind, e.source_id) > (")
                .push_bind(after.config_id.to_string())
                .push(", ")
                .push_bind(after.kind.as_str())
                .push(", ")
                .push_bind(after.source_id.clone())
                .push(")");
        }
        q.push(" ORDER BY e.config_id, e.kind, e.source_id LIMIT ").push_bind(i64::from(query.limit));
        let rows: Vec<EntityRow> = q.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    async fn get_entity(
        &self,
        org: OrgId,
        config: ConfigId,
        kind: EntityKind,
        source_id: &str,
    ) -> Result<Option<StoredEntity>, StoreError> {
        let row: Option<EntityRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM entities e WHERE e.org_id = ? AND e.config_id = ? AND e.kind = ? AND e.source_id = ?"
        ))
        .bind(org.to_string())
        .bind(config.to_string())
        .bind(kind.as_str())
        .bind(source_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(StoredEntity::try_from).transpose()
    }

    async fn lookup_entities(
        &self,
        org: OrgId,
        identifiers: &[String],
    ) -> Result<Vec<(String, StoredEntity)>, StoreError> {
        let mut found = Vec::new();
        let wanted: Vec<String> = identifiers.iter().map(|i| i.trim().to_lowercase()).collect();
        for chunk in wanted.chunks(LOOKUP_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
                "SELECT i.identifier, {COLUMNS} FROM entity_identifiers i JOIN entities e \
                 ON e.config_id = i.config_id AND e.kind = i.kind AND e.source_id = i.source_id \
                 WHERE i.org_id = "
            ));
            q.push_bind(org.to_string()).push(" AND i.identifier IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id);
            }
            q.push(") ORDER BY i.identifier, e.config_id, e.kind, e.source_id");
            let rows: Vec<(String, EntityRow)> = q
                .build()
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|row| {
                    use sqlx::Row;
                    let entity = EntityRow {
                        config_id: row.get("config_id"),
                        kind: row.get("kind"),
                        source_id: row.get("source_id"),
                        data: row.get("data"),
                        raw: row.get("raw"),
                        first_seen_at: row.get("first_seen_at"),
                        updated_at: row.get("updated_at"),
                    };
                    (row.get::<String, _>("identifier"), entity)
                })
                .collect();
            for (identifier, row) in rows {
                found.push((identifier, StoredEntity::try_from(row)?));
            }
        }
        Ok(found)
    }

    async fn list_memberships(
        &self,
        org: OrgId,
        config: ConfigId,
        after: Option<&Membership>,
        limit: u32,
    ) -> Result<Vec<StoredMembership>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT m.group_id, m.member_kind, m.member_id FROM memberships m \
             JOIN integration_configs c ON c.id = m.config_id WHERE c.org_id = ",
        );
        q.push_bind(org.to_string()).push(" AND m.config_id = ").push_bind(config.to_string());
        if let Some(after) = after {
            q.push(" AND (m.group_id, m.member_kind, m.member_id) > (")
                .push_bind(after.group_id.clone())
                .push(", ")
                .push_bind(after.member_kind.as_str())
                .push(", ")
                .push_bind(after.member_id.clone())
                .push(")");
        }
        q.push(" ORDER BY m.group_id, m.member_kind, m.member_id LIMIT ").push_bind(i64::from(limit));
        let rows: Vec<(String, String, String)> = q.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|(group_id, kind, member_id)| {
                Ok(StoredMembership {
                    config_id: config,
                    membership: Membership { group_id, member_kind: decode_kind(&kind)?, member_id },
                })
            })
            .collect()
    }
}
