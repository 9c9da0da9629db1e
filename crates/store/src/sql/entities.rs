//! Reading entities and memberships; every query is scoped to one org.

use ctxsync_core::{ConfigId, EntityKind, Membership, OrgId};

use super::{Backend, Db, Store};
use crate::entities::{
    ENTITY_COLUMNS, devices_owned_by_query, list_entities_query, list_memberships_query,
    memberships_from_rows, users_by_ids_query,
};
use crate::rows::EntityRow;
use crate::values::DbId;
use crate::{EntityQuery, EntityStore, StoreError, StoredEntity, StoredMembership};

#[async_trait::async_trait]
impl EntityStore for Store {
    async fn list_entities(&self, org: OrgId, query: &EntityQuery) -> Result<Vec<StoredEntity>, StoreError> {
        let mut q = list_entities_query::<Db, _>(org, query, DbId, Self::IDENTIFIER_MATCH);
        let rows: Vec<EntityRow> = q.build_query_as().fetch_all(self.reader()).await?;
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
        .bind(DbId(config.0))
        .bind(kind.as_str())
        .bind(source_id)
        .bind(DbId(org.0))
        .fetch_optional(self.reader())
        .await?;
        row.map(StoredEntity::try_from).transpose()
    }

    async fn lookup_entities(
        &self,
        org: OrgId,
        identifiers: &[String],
    ) -> Result<Vec<(String, StoredEntity)>, StoreError> {
        let wanted: Vec<String> = identifiers.iter().map(|i| i.trim().to_lowercase()).collect();
        self.find_identifiers(org, &wanted).await
    }

    async fn lookup_users_by_ids(
        &self,
        org: OrgId,
        employee_ids: &[String],
        immutable_ids: &[String],
    ) -> Result<Vec<StoredEntity>, StoreError> {
        let Some(mut q) =
            users_by_ids_query::<Db, _>(DbId(org.0), employee_ids, immutable_ids, Self::json_text)
        else {
            return Ok(Vec::new());
        };
        let rows: Vec<EntityRow> = q.build_query_as().fetch_all(self.reader()).await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    async fn devices_owned_by(
        &self,
        org: OrgId,
        owners: &[(ConfigId, String)],
    ) -> Result<Vec<StoredEntity>, StoreError> {
        let Some(mut q) = devices_owned_by_query::<Db, _>(DbId(org.0), owners, DbId, Self::json_text) else {
            return Ok(Vec::new());
        };
        let rows: Vec<EntityRow> = q.build_query_as().fetch_all(self.reader()).await?;
        rows.into_iter().map(StoredEntity::try_from).collect()
    }

    async fn list_memberships(
        &self,
        org: OrgId,
        config: ConfigId,
        after: Option<&Membership>,
        limit: u32,
    ) -> Result<Vec<StoredMembership>, StoreError> {
        let mut q = list_memberships_query::<Db, _>(DbId(org.0), DbId(config.0), after, limit);
        memberships_from_rows(config, q.build_query_as().fetch_all(self.reader()).await?)
    }
}
