//! Reading the synced entities: filtered listing with cursor pagination, single lookups, and
//! batch lookups by identifier for enrichment.

use ctxsync_core::{ConfigId, Entity, EntityKind, OrgId};
use time::OffsetDateTime;

use crate::StoreError;

/// An entity as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntity {
    pub config_id: ConfigId,
    pub entity: Entity,
    pub raw: serde_json::Value,
    pub first_seen_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Where a listing resumes: the last entity of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityCursor {
    pub config_id: ConfigId,
    pub kind: EntityKind,
    pub source_id: String,
}

/// Filters of an entity listing; every one is optional.
#[derive(Debug, Clone, Default)]
pub struct EntityQuery {
    pub kind: Option<EntityKind>,
    pub config: Option<ConfigId>,
    /// `active`, `suspended`, … (users) or the device's status.
    pub status: Option<String>,
    /// Any identifier the entity answers to: email, login, source id (case-insensitive).
    pub identifier: Option<String>,
    /// Members (direct) of the group with this source id.
    pub member_of: Option<String>,
    /// Groups (direct) that the entity with this source id is a member of.
    pub groups_of: Option<String>,
    pub after: Option<EntityCursor>,
    pub limit: u32,
}

/// A direct membership as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMembership {
    pub config_id: ConfigId,
    pub membership: ctxsync_core::Membership,
}

#[async_trait::async_trait]
pub trait EntityStore: Send + Sync {
    /// Ordered by config, kind and source id; at most `query.limit` entities.
    async fn list_entities(&self, org: OrgId, query: &EntityQuery) -> Result<Vec<StoredEntity>, StoreError>;

    async fn get_entity(
        &self,
        org: OrgId,
        config: ConfigId,
        kind: EntityKind,
        source_id: &str,
    ) -> Result<Option<StoredEntity>, StoreError>;

    /// Every entity answering to each identifier (case-insensitive), as `(identifier, entity)`.
    async fn lookup_entities(
        &self,
        org: OrgId,
        identifiers: &[String],
    ) -> Result<Vec<(String, StoredEntity)>, StoreError>;

    /// Every membership of a config, ordered, `limit` at a time after `after`.
    async fn list_memberships(
        &self,
        org: OrgId,
        config: ConfigId,
        after: Option<&ctxsync_core::Membership>,
        limit: u32,
    ) -> Result<Vec<StoredMembership>, StoreError>;
}
