//! Reading entities and memberships on PostgreSQL; every query is scoped to one org.

use ctxsync_core::{ConfigId, EntityKind, Membership, OrgId};
use sqlx::Postgres;
use time::OffsetDateTime;
use uuid::Uuid;

use super::PostgresStore;
use crate::entities::{
    ENTITY_COLUMNS, devices_owned_by_query, list_entities_query, list_memberships_query,
    memberships_from_rows, users_by_ids_query,
};
use crate::{EntityQuery, EntityStore, StoreError, StoredEntity, StoredMembership, rows};

/// Entities answering to an identifier: see [`list_entities_query`].
const IDENTIFIER_MATCH: &str = "EXISTS (SELECT 1 FROM entity_identifiers i WHERE i.org_id = e.org_id \
     AND i.config_id = e.config_id AND i.kind = e.kind AND i.source_id = e.source_id AND i.identifier = ";

type EntityRow = rows::EntityRow<Uuid, OffsetDateTime>;
type FoundRow = rows::FoundRow<Uuid, OffsetDateTime>;

#[async_trait::async_trait]
impl EntityStore for PostgresStore {
    async fn list_entities(&self, org: OrgId, query: &EntityQuery) -> Result<Vec<StoredEntity>, StoreError> {
        let mut q = list_entities_query::<Postgres, _>(org, query, |id| id, IDENTIFIER_MATCH);
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
            "SELECT {ENTITY_COLUMNS} FROM entities e \
             WHERE e.config_id = $1 AND e.kind = $2 AND e.source_id = $3 AND e.org_id = $4"
        ))
        .bind(config.0)
        .bind(kind.as_str())
        .bind(source_id)
        .bind(org.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(StoredEntity::try_from).transpose()
    }

    /// Every identifier in one array parameter, whatever their number.
    async fn lookup_entities(
        &self,
        org: OrgId,
        identifiers: &[String],
    ) -> Result<Vec<(String, StoredEntity)>, StoreError> {
        let wanted: Vec<String> = identifiers.iter().map(|i| i.trim().to_lowercase()).collect();
        let rows: Vec<FoundRow> = sqlx::query_as(&format!(
            "SELECT i.identifier, {ENTITY_COLUMNS} FROM entity_identifiers i JOIN entities e \
             ON e.config_id = i.config_id AND e.kind = i.kind AND e.source_id = i.source_id \
             WHERE i.org_id = $1 AND i.identifier = ANY($2::text[]) \
             ORDER BY i.identifier, e.config_id, e.kind, e.source_id"
        ))
        .bind(org.0)
        .bind(&wanted)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn lookup_users_by_ids(
        &self,
        org: OrgId,
        employee_ids: &[String],
        immutable_ids: &[String],
    ) -> Result<Vec<StoredEntity>, StoreError> {
        let Some(mut q) = users_by_ids_query::<Postgres, _>(org.0, employee_ids, immutable_ids, json_text)
        else {
            return Ok(Vec::new());
        };
        let rows: Vec<EntityRow> = q.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    async fn devices_owned_by(
        &self,
        org: OrgId,
        owners: &[(ConfigId, String)],
    ) -> Result<Vec<StoredEntity>, StoreError> {
        let Some(mut q) = devices_owned_by_query::<Postgres, _>(org.0, owners, |id| id, json_text) else {
            return Ok(Vec::new());
        };
        let rows: Vec<EntityRow> = q.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    async fn list_memberships(
        &self,
        org: OrgId,
        config: ConfigId,
        after: Option<&Membership>,
        limit: u32,
    ) -> Result<Vec<StoredMembership>, StoreError> {
        let mut q = list_memberships_query::<Postgres, _>(org.0, config.0, after, limit);
        memberships_from_rows(config, q.build_query_as().fetch_all(&self.pool).await?)
    }
}

/// `(column::jsonb #>> '{a,b}')`: the columns hold JSON as text.
fn json_text(column: &str, path: &[&str]) -> String {
    format!("({column}::jsonb #>> '{{{}}}')", path.join(","))
}
