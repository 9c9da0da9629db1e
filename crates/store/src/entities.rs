//! Reading the synced entities: filtered listing with cursor pagination, single lookups, and
//! batch lookups by identifier for enrichment.

use ctxsync_core::{ConfigId, Entity, EntityKind, Membership, OrgId};
use sqlx::{Database, Encode, QueryBuilder, Type};
use time::OffsetDateTime;
use uuid::Uuid;

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
    pub membership: Membership,
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

    /// Users whose employee id (compared trimmed and case-insensitively) or immutable id (as the
    /// connector normalized it, compared exactly) is one of these: the keys identity
    /// resolution follows beyond the indexed identifiers. Ordered by config and source id.
    async fn lookup_users_by_ids(
        &self,
        org: OrgId,
        employee_ids: &[String],
        immutable_ids: &[String],
    ) -> Result<Vec<StoredEntity>, StoreError>;

    /// Devices whose owner is one of these users, given as `(config, user source id)`. Ordered
    /// by config and source id.
    async fn devices_owned_by(
        &self,
        org: OrgId,
        owners: &[(ConfigId, String)],
    ) -> Result<Vec<StoredEntity>, StoreError>;

    /// Every membership of a config, ordered, `limit` at a time after `after`.
    async fn list_memberships(
        &self,
        org: OrgId,
        config: ConfigId,
        after: Option<&Membership>,
        limit: u32,
    ) -> Result<Vec<StoredMembership>, StoreError>;
}

/// The columns of [`crate::rows::EntityRow`], from `entities e`.
pub(crate) const ENTITY_COLUMNS: &str =
    "e.config_id, e.kind, e.source_id, e.data, e.raw, e.first_seen_at, e.updated_at";

/// Entities of an org, through its configs: `entities_key` serves it in key order, so no index
/// of entities by org has to be written. Completed by the bound org id and `)`.
const IN_ORG: &str = "e.config_id IN (SELECT c.id FROM integration_configs c WHERE c.org_id = ";

/// The statement of [`EntityStore::list_entities`]. Its SQL suits every backend, which only say how
/// they bind an id and how an entity is matched to an identifier (`identifier_match`, completed by
/// the bound identifier and `)`), since each keys its identifiers its own way.
pub(crate) fn list_entities_query<'a, DB, I>(
    org: OrgId,
    query: &'a EntityQuery,
    id: impl Fn(Uuid) -> I,
    identifier_match: &str,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    DB::Arguments<'a>: Default,
    I: 'a + Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(format!("SELECT {ENTITY_COLUMNS} FROM entities e WHERE {IN_ORG}"));
    q.push_bind(id(org.0)).push(")");
    if let Some(kind) = query.kind {
        q.push(" AND e.kind = ").push_bind(kind.as_str());
    }
    if let Some(config) = query.config {
        q.push(" AND e.config_id = ").push_bind(id(config.0));
    }
    if let Some(status) = &query.status {
        q.push(" AND e.status = ").push_bind(status.to_lowercase());
    }
    if let Some(identifier) = &query.identifier {
        q.push(" AND ").push(identifier_match).push_bind(identifier.trim().to_lowercase()).push(")");
    }
    if let Some(group) = &query.member_of {
        q.push(
            " AND EXISTS (SELECT 1 FROM memberships m WHERE m.config_id = e.config_id AND m.member_kind = e.kind \
             AND m.member_id = e.source_id AND m.group_id = ",
        )
        .push_bind(group.as_str())
        .push(")");
    }
    if let Some(member) = &query.groups_of {
        q.push(
            " AND e.kind = 'group' AND EXISTS (SELECT 1 FROM memberships m WHERE m.config_id = e.config_id \
             AND m.group_id = e.source_id AND m.member_id = ",
        )
        .push_bind(member.as_str())
        .push(")");
    }
    if let Some(after) = &query.after {
        q.push(" AND (e.config_id, e.kind, e.source_id) > (")
            .push_bind(id(after.config_id.0))
            .push(", ")
            .push_bind(after.kind.as_str())
            .push(", ")
            .push_bind(after.source_id.as_str())
            .push(")");
    }
    q.push(" ORDER BY e.config_id, e.kind, e.source_id LIMIT ").push_bind(i64::from(query.limit));
    q
}

/// The statement of [`EntityStore::list_memberships`], for every backend; `org` and `config` are
/// bound as the backend stores ids.
pub(crate) fn list_memberships_query<'a, DB, I>(
    org: I,
    config: I,
    after: Option<&'a Membership>,
    limit: u32,
) -> QueryBuilder<'a, DB>
where
    DB: Database,
    DB::Arguments<'a>: Default,
    I: 'a + Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(
        "SELECT m.group_id, m.member_kind, m.member_id FROM memberships m \
         JOIN integration_configs c ON c.id = m.config_id WHERE c.org_id = ",
    );
    q.push_bind(org).push(" AND m.config_id = ").push_bind(config);
    if let Some(after) = after {
        q.push(" AND (m.group_id, m.member_kind, m.member_id) > (")
            .push_bind(after.group_id.as_str())
            .push(", ")
            .push_bind(after.member_kind.as_str())
            .push(", ")
            .push_bind(after.member_id.as_str())
            .push(")");
    }
    q.push(" ORDER BY m.group_id, m.member_kind, m.member_id LIMIT ").push_bind(i64::from(limit));
    q
}

/// The rows [`list_memberships_query`] returns, as stored memberships of `config`.
pub(crate) fn memberships_from_rows(
    config: ConfigId,
    rows: Vec<(String, String, String)>,
) -> Result<Vec<StoredMembership>, StoreError> {
    rows.into_iter()
        .map(|(group_id, kind, member_id)| {
            Ok(StoredMembership {
                config_id: config,
                membership: Membership { group_id, member_kind: crate::rows::decode_kind(&kind)?, member_id },
            })
        })
        .collect()
}

/// How a backend reads a text value out of a JSON column: `(column, path)` to an SQL expression.
pub(crate) type JsonText = fn(&str, &[&str]) -> String;

/// The statement of [`EntityStore::lookup_users_by_ids`] for every backend; `None` when there is
/// nothing to look for.
pub(crate) fn users_by_ids_query<'a, DB, I>(
    org: I,
    employee_ids: &'a [String],
    immutable_ids: &'a [String],
    json: JsonText,
) -> Option<QueryBuilder<'a, DB>>
where
    DB: Database,
    DB::Arguments<'a>: Default,
    I: 'a + Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    if employee_ids.is_empty() && immutable_ids.is_empty() {
        return None;
    }
    let mut q = QueryBuilder::new(format!(
        "SELECT {ENTITY_COLUMNS} FROM entities e WHERE e.kind = 'user' AND {IN_ORG}"
    ));
    q.push_bind(org).push(") AND (1 = 0");
    let any_of = |q: &mut QueryBuilder<'a, DB>, expression: String, values: Vec<String>| {
        if !values.is_empty() {
            q.push(format!(" OR {expression} IN ("));
            let mut sep = q.separated(", ");
            for v in values {
                sep.push_bind(v);
            }
            q.push(")");
        }
    };
    let employee = format!("lower(trim({}))", json("e.data", &["employee_id"]));
    any_of(&mut q, employee, employee_ids.iter().map(|i| i.trim().to_lowercase()).collect());
    let immutable = json("e.data", &["immutable_id"]);
    any_of(&mut q, immutable, immutable_ids.iter().map(|i| i.trim().to_owned()).collect());
    q.push(") ORDER BY e.config_id, e.source_id");
    Some(q)
}

/// The statement of [`EntityStore::devices_owned_by`] for every backend; `None` for no owners.
pub(crate) fn devices_owned_by_query<'a, DB, I>(
    org: I,
    owners: &'a [(ConfigId, String)],
    id: impl Fn(Uuid) -> I,
    json: JsonText,
) -> Option<QueryBuilder<'a, DB>>
where
    DB: Database,
    DB::Arguments<'a>: Default,
    I: 'a + Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
{
    if owners.is_empty() {
        return None;
    }
    let mut q = QueryBuilder::new(format!(
        "SELECT {ENTITY_COLUMNS} FROM entities e WHERE e.kind = 'device' AND {IN_ORG}"
    ));
    q.push_bind(org).push(") AND (1 = 0");
    let owner = json("e.data", &["owner"]);
    for (config, source_id) in owners {
        q.push(" OR (e.config_id = ")
            .push_bind(id(config.0))
            .push(format!(" AND {owner} = "))
            .push_bind(source_id.as_str())
            .push(")");
    }
    q.push(") ORDER BY e.config_id, e.source_id");
    Some(q)
}
