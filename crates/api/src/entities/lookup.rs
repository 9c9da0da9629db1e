use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::response::EntityData;
use crate::auth::{Authorized, SiemEntitiesRead};
use crate::error::{ApiError, ErrorBody};
use crate::json::JsonBody;
use crate::state::AppState;

/// Identifiers one lookup may ask for.
const MAX_IDENTIFIERS: usize = 1000;

/// The body of a lookup: `{"identifiers": [...]}`, 1 to `max` non-empty strings. Described by hand
/// since [`parse_identifiers`] reads it (every problem named with its path).
pub(super) fn identifiers_schema(max: usize) -> RefOr<Schema> {
    let item = ObjectBuilder::new().schema_type(Type::String).min_length(Some(1));
    let list = ArrayBuilder::new().items(item).min_items(Some(1)).max_items(Some(max));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("identifiers", list)
        .required("identifiers")
        .into()
}

/// [`lookup`]'s request body.
pub struct EntityLookupRequest;

impl PartialSchema for EntityLookupRequest {
    fn schema() -> RefOr<Schema> {
        identifiers_schema(MAX_IDENTIFIERS)
    }
}

impl ToSchema for EntityLookupRequest {}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupResponse {
    /// One entry per requested identifier, in the request's order.
    pub data: Vec<LookupResult>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupResult {
    pub identifier: String,
    /// Every entity answering to the identifier, across the org's configs; empty when none.
    pub entities: Vec<EntityData>,
}

/// Look up many identifiers (emails, logins, source ids) at once, for enrichment.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/entities/lookup",
    operation_id = "LookupEntities",
    tag = "ctxsync",
    request_body(content = EntityLookupRequest, content_type = "application/json", description = "`{\"identifiers\": [\"alice@example.com\", \"00u1…\"]}`, at most 1000."),
    responses(
        (status = 200, description = "OK", body = LookupResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["siem_entities_read"])),
)]
pub async fn lookup(
    State(state): State<AppState>,
    auth: Authorized<SiemEntitiesRead>,
    JsonBody(doc): JsonBody,
) -> Result<Json<LookupResponse>, ApiError> {
    let identifiers = parse_identifiers(&doc, MAX_IDENTIFIERS)?;
    let found = state.store.lookup_entities(auth.org_id, &identifiers).await?;
    let mut results: Vec<LookupResult> =
        identifiers.iter().map(|i| LookupResult { identifier: i.clone(), entities: Vec::new() }).collect();
    for (identifier, entity) in found {
        let data = EntityData::from(entity);
        for result in results.iter_mut().filter(|r| r.identifier.trim().eq_ignore_ascii_case(&identifier)) {
            result.entities.push(data.clone());
        }
    }
    Ok(Json(LookupResponse { data: results }))
}

/// The `identifiers` array of a lookup body: 1 to `max` non-empty strings.
pub(super) fn parse_identifiers(doc: &Value, max: usize) -> Result<Vec<String>, ApiError> {
    let list = doc
        .get("identifiers")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("identifiers: is required and must be an array of strings"))?;
    if list.is_empty() || list.len() > max {
        return Err(ApiError::bad_request(format!("identifiers: must hold 1 to {max} identifiers")));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| match v.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(s.to_owned()),
            _ => Err(ApiError::bad_request(format!("identifiers[{i}]: must be a non-empty string"))),
        })
        .collect()
}
