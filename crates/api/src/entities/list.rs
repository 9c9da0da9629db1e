use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ctxsync_core::{ConfigId, EntityKind};
use ctxsync_store::{EntityCursor, EntityQuery};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::response::EntityData;
use crate::auth::{Authorized, SiemEntitiesRead};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct EntitiesResponse {
    pub data: Vec<EntityData>,
    /// `{"page": {"next_cursor": "…"}}`; `next_cursor` is null on the last page.
    #[schema(value_type = Object)]
    pub meta: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntityResponse {
    pub data: EntityData,
}

/// List synced entities, filtered, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/entities",
    operation_id = "ListEntities",
    tag = "ctxsync",
    params(
        ("filter[kind]" = Option<String>, Query, description = "`user`, `group` or `device`."),
        ("filter[config_id]" = Option<String>, Query, description = "Only this config's entities."),
        ("filter[status]" = Option<String>, Query, description = "`active`, `pending`, `suspended`, `locked`, `deprovisioned` (users) or a device status."),
        ("filter[identifier]" = Option<String>, Query, description = "An email, login or source id the entity answers to (case-insensitive)."),
        ("filter[member_of]" = Option<String>, Query, description = "Direct members of the group with this source id."),
        ("filter[groups_of]" = Option<String>, Query, description = "Groups the entity with this source id is a direct member of."),
        ("page[size]" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100."),
        ("page[cursor]" = Option<String>, Query, description = "`meta.page.next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "OK", body = EntitiesResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["siem_entities_read"])),
)]
pub async fn list_entities(
    State(state): State<AppState>,
    auth: Authorized<SiemEntitiesRead>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EntitiesResponse>, ApiError> {
    let query = parse_query(&params)?;
    let limit = query.limit;
    let entities = state.store.list_entities(auth.org_id, &query).await?;
    let next_cursor = (entities.len() as u32 == limit).then(|| {
        let last = entities.last().expect("a full page has a last entity");
        encode_cursor(&EntityCursor {
            config_id: last.config_id,
            kind: last.entity.kind(),
            source_id: last.entity.source_id().to_owned(),
        })
    });
    Ok(Json(EntitiesResponse {
        data: entities.into_iter().map(EntityData::from).collect(),
        meta: json!({"page": {"next_cursor": next_cursor}}),
    }))
}

/// Get one synced entity.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/entities/{kind}/{source_id}",
    operation_id = "GetEntity",
    tag = "ctxsync",
    params(
        ("config_id" = String, Path, description = "The config the entity was synced by."),
        ("kind" = String, Path, description = "`user`, `group` or `device`."),
        ("source_id" = String, Path, description = "The source's id of the entity."),
    ),
    responses(
        (status = 200, description = "OK", body = EntityResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["siem_entities_read"])),
)]
pub async fn get_entity(
    State(state): State<AppState>,
    auth: Authorized<SiemEntitiesRead>,
    Path((config_id, kind, source_id)): Path<(String, String, String)>,
) -> Result<Json<EntityResponse>, ApiError> {
    let not_found = || ApiError::NotFound("entity not found".into());
    let config: ConfigId = config_id.parse().map_err(|_| not_found())?;
    let kind = EntityKind::parse(&kind).ok_or_else(not_found)?;
    let entity =
        state.store.get_entity(auth.org_id, config, kind, &source_id).await?.ok_or_else(not_found)?;
    Ok(Json(EntityResponse { data: entity.into() }))
}

fn parse_query(params: &HashMap<String, String>) -> Result<EntityQuery, ApiError> {
    let known = [
        "filter[kind]",
        "filter[config_id]",
        "filter[status]",
        "filter[identifier]",
        "filter[member_of]",
        "filter[groups_of]",
        "page[size]",
        "page[cursor]",
    ];
    let mut errors = super::params::unknown(params, &known);
    let mut query =
        EntityQuery { limit: super::params::page_size(params, &mut errors), ..EntityQuery::default() };
    if let Some(kind) = params.get("filter[kind]") {
        match EntityKind::parse(kind) {
            Some(k) => query.kind = Some(k),
            None => errors.push("filter[kind]: must be one of user, group, device".into()),
        }
    }
    if let Some(config) = params.get("filter[config_id]") {
        match config.parse() {
            Ok(c) => query.config = Some(c),
            Err(_) => errors.push("filter[config_id]: must be a UUID".into()),
        }
    }
    query.status = params.get("filter[status]").cloned();
    query.identifier = params.get("filter[identifier]").cloned();
    query.member_of = params.get("filter[member_of]").cloned();
    query.groups_of = params.get("filter[groups_of]").cloned();
    if let Some(cursor) = params.get("page[cursor]") {
        match decode_cursor(cursor) {
            Some(c) => query.after = Some(c),
            None => errors.push("page[cursor]: is not a cursor this API returned".into()),
        }
    }
    if errors.is_empty() { Ok(query) } else { Err(ApiError::BadRequest(errors)) }
}

fn encode_cursor(c: &EntityCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}\n{}\n{}", c.config_id, c.kind.as_str(), c.source_id))
}

fn decode_cursor(s: &str) -> Option<EntityCursor> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    let mut parts = text.splitn(3, '\n');
    Some(EntityCursor {
        config_id: parts.next()?.parse().ok()?,
        kind: EntityKind::parse(parts.next()?)?,
        source_id: parts.next()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = EntityCursor {
            config_id: ConfigId::new(),
            kind: EntityKind::Group,
            source_id: "00g:x\ny".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c));
        assert_eq!(decode_cursor("not-a-cursor"), None);
    }

    fn any_cursor() -> impl Strategy<Value = EntityCursor> {
        (any::<[u8; 16]>(), prop::sample::select(EntityKind::ALL.to_vec()), "\\PC{0,40}").prop_map(
            |(id, kind, source_id)| EntityCursor {
                config_id: ConfigId(uuid::Uuid::from_bytes(id)),
                kind,
                source_id,
            },
        )
    }

    proptest! {
        /// A cursor the API handed out resumes at the same position, whatever the source id holds.
        #[test]
        fn any_cursor_round_trips(cursor in any_cursor()) {
            prop_assert_eq!(decode_cursor(&encode_cursor(&cursor)), Some(cursor));
        }

        /// Any other `page[cursor]` is a 400 naming the parameter, never a panic.
        #[test]
        fn any_cursor_text_is_read_or_refused_by_name(
            text in prop_oneof!["\\PC{0,60}", "[A-Za-z0-9_-]{0,80}", any_cursor().prop_map(|c| encode_cursor(&c)[1..].to_string())],
        ) {
            let params = HashMap::from([("page[cursor]".to_string(), text)]);
            match parse_query(&params) {
                Ok(query) => prop_assert!(query.after.is_some()),
                Err(ApiError::BadRequest(errors)) => {
                    prop_assert_eq!(errors, vec!["page[cursor]: is not a cursor this API returned".to_string()]);
                }
                Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
            }
        }
    }

    #[test]
    fn every_query_problem_is_reported() {
        let params: HashMap<String, String> =
            [("filter[kind]", "person"), ("page[size]", "0"), ("colour", "red")]
                .map(|(k, v)| (k.into(), v.into()))
                .into();
        let Err(ApiError::BadRequest(errors)) = parse_query(&params) else { panic!() };
        assert_eq!(errors.len(), 3, "{errors:?}");
    }
}
