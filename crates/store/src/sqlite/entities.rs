//! Reading entities and memberships on SQLite; every query is scoped to one org.

use ctxsync_core::{ConfigId, EntityKind, Membership, OrgId};
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::entities::{
    ENTITY_COLUMNS, devices_owned_by_query, list_entities_query, list_memberships_query,
    memberships_from_rows, users_by_ids_query,
};
use crate::{EntityQuery, EntityStore, StoreError, StoredEntity, StoredMembership, rows};

/// Entities answering to an identifier, looked up from the identifier: see
/// [`list_entities_query`].
const IDENTIFIER_MATCH: &str = "e.id IN (SELECT i.entity_id FROM entity_identifiers i WHERE i.identifier = ";

/// Identifiers per lookup statement.
const LOOKUP_CHUNK: usize = 500;

type EntityRow = rows::EntityRow<String, String>;
type FoundRow = rows::FoundRow<String, String>;

#[async_trait::async_trait]
impl EntityStore for SqliteStore {
    async fn list_entities(&self, org: OrgId, query: &EntityQuery) -> Result<Vec<StoredEntity>, StoreError> {
        let mut q = list_entities_query::<Sqlite, _>(org, query, |id| id.to_string(), IDENTIFIER_MATCH);
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
            "SELECT {ENTITY_COLUMNS} FROM entities e WHERE e.org_id = ? AND e.config_id = ? AND e.kind = ? AND e.source_id = ?"
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
                "SELECT i.identifier, {ENTITY_COLUMNS} FROM entity_identifiers i JOIN entities e ON e.id = i.entity_id \
                 WHERE e.org_id = "
            ));
            q.push_bind(org.to_string()).push(" AND i.identifier IN (");
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

    async fn lookup_users_by_ids(
        &self,
        org: OrgId,
        employee_ids: &[String],
        immutable_ids: &[String],
    ) -> Result<Vec<StoredEntity>, StoreError> {
        let Some(mut q) =
            users_by_ids_query::<Sqlite, _>(org.to_string(), employee_ids, immutable_ids, json_text)
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
        let Some(mut q) =
            devices_owned_by_query::<Sqlite, _>(org.to_string(), owners, |id| id.to_string(), json_text)
        else {
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
        let mut q = list_memberships_query::<Sqlite, _>(org.to_string(), config.to_string(), after, limit);
        memberships_from_rows(config, q.build_query_as().fetch_all(&self.pool).await?)
    }
}

/// `json_extract(column, '$.a.b')`.
fn json_text(column: &str, path: &[&str]) -> String {
    format!("json_extract({column}, '$.{}')", path.join("."))
}
