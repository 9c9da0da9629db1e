//! Change events, filtered and paged by id, and an entity's history (membership and admin role
//! intervals, all of them or those in effect at one time).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ctxsync_core::{ChangeType, ConfigId, EntityKind};
use ctxsync_store::{ChangeEvent, EventQuery, IntervalQuery};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::response::rfc3339;
use crate::auth::{Authorized, SiemEntitiesRead};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsResponse {
    pub data: Vec<EventData>,
    /// `{"page": {"next_cursor": "…"}}`; `next_cursor` is null on the last page.
    #[schema(value_type = Object)]
    pub meta: Value,
}

/// A change a sync run found.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventData {
    /// The event's id: it only grows, so events sort by it.
    pub id: String,
    /// Always `change_event`.
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    /// `type` (`user.created`, `user.deleted`, `user.status_changed`, `user.attribute_changed`,
    /// `group.created`, `group.deleted`, `group.attribute_changed`, `membership.added`,
    /// `membership.removed`, `admin_role.granted`, `admin_role.revoked`, `mfa_factor.enrolled`,
    /// `mfa_factor.removed`, `device.created`, `device.deleted`, `device.attribute_changed`,
    /// `device.containment_changed`),
    /// `config_id`, `run_id`, `entity_kind`, `entity_id` (a membership's group), `related_id`
    /// (the member, role or factor), `field`, `old`, `new`, `observed_at`, `source_time`.
    #[schema(value_type = Object)]
    pub attributes: Value,
}

impl EventData {
    /// The event as one JSON object, as the API's attributes and `ctxsync events` lines show it.
    pub fn attributes(e: &ChangeEvent) -> Value {
        json!({
            "type": e.change_type.as_str(),
            "config_id": e.config_id.to_string(),
            "run_id": e.run_id.to_string(),
            "entity_kind": e.entity_kind.as_str(),
            "entity_id": e.entity_id,
            "related_id": e.related_id,
            "field": e.field,
            "old": e.old,
            "new": e.new,
            "observed_at": rfc3339(e.observed_at),
            "source_time": e.source_time.map(rfc3339),
        })
    }
}

impl From<ChangeEvent> for EventData {
    fn from(e: ChangeEvent) -> Self {
        EventData {
            id: e.id.to_string(),
            resource_type: "change_event",
            attributes: EventData::attributes(&e),
        }
    }
}

/// List change events, oldest first, filtered, a page at a time. A config's first completed full
/// run is its baseline and records none.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/events",
    operation_id = "ListChangeEvents",
    tag = "ctxsync",
    params(
        ("filter[type]" = Option<String>, Query, description = "Event types, comma-separated (`user.status_changed,admin_role.granted`)."),
        ("filter[config_id]" = Option<String>, Query, description = "Only this config's events."),
        ("filter[entity_id]" = Option<String>, Query, description = "Events about this source id: as the entity, or as the member or role it relates to."),
        ("filter[from]" = Option<String>, Query, description = "Observed at or after this time (RFC 3339)."),
        ("filter[to]" = Option<String>, Query, description = "Observed before this time (RFC 3339)."),
        ("page[size]" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100."),
        ("page[cursor]" = Option<String>, Query, description = "`meta.page.next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "OK", body = EventsResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["siem_entities_read"])),
)]
pub async fn list_events(
    State(state): State<AppState>,
    auth: Authorized<SiemEntitiesRead>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EventsResponse>, ApiError> {
    let query = parse_query(&params)?;
    let events = state.store.list_events(Some(auth.org_id), &query).await?;
    let next_cursor = (events.len() as u32 == query.limit)
        .then(|| events.last().map(|e| URL_SAFE_NO_PAD.encode(e.id.to_string())))
        .flatten();
    Ok(Json(EventsResponse {
        data: events.into_iter().map(EventData::from).collect(),
        meta: json!({"page": {"next_cursor": next_cursor}}),
    }))
}

fn parse_query(params: &HashMap<String, String>) -> Result<EventQuery, ApiError> {
    let known = [
        "filter[type]",
        "filter[config_id]",
        "filter[entity_id]",
        "filter[from]",
        "filter[to]",
        "page[size]",
        "page[cursor]",
    ];
    let mut errors = super::params::unknown(params, &known);
    let mut query =
        EventQuery { limit: super::params::page_size(params, &mut errors), ..EventQuery::default() };
    for name in params.get("filter[type]").iter().flat_map(|t| t.split(',')).map(str::trim) {
        match ChangeType::parse(name) {
            Some(t) => query.types.push(t),
            None => errors.push(format!(
                "filter[type]: {name:?} is not an event type; expected any of {}",
                ChangeType::ALL.map(ChangeType::as_str).join(", ")
            )),
        }
    }
    if let Some(config) = params.get("filter[config_id]") {
        match config.parse() {
            Ok(c) => query.config = Some(c),
            Err(_) => errors.push("filter[config_id]: must be a UUID".into()),
        }
    }
    query.entity_id = params.get("filter[entity_id]").cloned();
    query.from = time_param(params, "filter[from]", &mut errors);
    query.to = time_param(params, "filter[to]", &mut errors);
    if let Some(cursor) = params.get("page[cursor]") {
        let id = URL_SAFE_NO_PAD.decode(cursor).ok().and_then(|b| String::from_utf8(b).ok()?.parse().ok());
        match id {
            Some(id) => query.after = Some(id),
            None => errors.push("page[cursor]: is not a cursor this API returned".into()),
        }
    }
    if errors.is_empty() { Ok(query) } else { Err(ApiError::BadRequest(errors)) }
}

fn time_param(
    params: &HashMap<String, String>,
    name: &str,
    errors: &mut Vec<String>,
) -> Option<OffsetDateTime> {
    let raw = params.get(name)?;
    match OffsetDateTime::parse(raw, &Rfc3339) {
        Ok(t) => Some(t),
        Err(_) => {
            errors.push(format!("{name}: must be an RFC 3339 time, such as 2026-01-31T09:15:00Z"));
            None
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryResponse {
    pub data: HistoryData,
}

/// An entity's membership and admin role intervals.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryData {
    /// `{config_id}:{kind}:{source_id}`.
    pub id: String,
    /// Always `entity_history`.
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    /// `config_id`, `kind`, `source_id`, `as_of` (null without one); `memberships`: for a group
    /// its members, for a user or device the groups it belongs to, each
    /// `{group_id, member_kind, member_id, valid_from, valid_to}`; `admin_roles` (users):
    /// `{role, valid_from, valid_to}`. `valid_to` is null while the interval is open. With
    /// `as_of`, only the intervals in effect then.
    #[schema(value_type = Object)]
    pub attributes: Value,
}

/// An entity's history: its memberships and admin roles as effective-dated intervals, all of
/// them, or (with `as_of`) those in effect at that time. Works for entities since deleted.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/entities/{kind}/{source_id}/history",
    operation_id = "GetEntityHistory",
    tag = "ctxsync",
    params(
        ("config_id" = String, Path, description = "The config the entity was synced by."),
        ("kind" = String, Path, description = "`user`, `group` or `device`."),
        ("source_id" = String, Path, description = "The source's id of the entity."),
        ("as_of" = Option<String>, Query, description = "Only the intervals in effect at this time (RFC 3339): the groups, members and roles as they were then."),
    ),
    responses(
        (status = 200, description = "OK", body = HistoryResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["siem_entities_read"])),
)]
pub async fn entity_history(
    State(state): State<AppState>,
    auth: Authorized<SiemEntitiesRead>,
    Path((config_id, kind, source_id)): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let config: ConfigId = config_id.parse().map_err(|_| ApiError::config_not_found())?;
    let kind = EntityKind::parse(&kind)
        .ok_or_else(|| ApiError::NotFound("entity kind not found: use user, group or device".into()))?;
    let mut errors: Vec<String> = params
        .keys()
        .filter(|k| *k != "as_of")
        .map(|key| format!("{key}: unknown parameter; expected as_of"))
        .collect();
    let at = time_param(&params, "as_of", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors));
    }
    state.store.get_config(auth.org_id, config).await?.ok_or_else(ApiError::config_not_found)?;
    let mut query = IntervalQuery { at, ..IntervalQuery::default() };
    match kind {
        EntityKind::Group => query.group = Some(source_id.clone()),
        EntityKind::User | EntityKind::Device => query.member = Some(source_id.clone()),
    }
    let memberships = state.store.membership_intervals(auth.org_id, config, &query).await?;
    let roles = if kind == EntityKind::User {
        let query = IntervalQuery { user: Some(source_id.clone()), at, ..IntervalQuery::default() };
        state.store.role_intervals(auth.org_id, config, &query).await?
    } else {
        Vec::new()
    };
    let memberships: Vec<Value> = memberships
        .into_iter()
        .filter(|i| kind == EntityKind::Group || i.membership.member_kind == kind)
        .map(|i| {
            json!({
                "group_id": i.membership.group_id,
                "member_kind": i.membership.member_kind.as_str(),
                "member_id": i.membership.member_id,
                "valid_from": rfc3339(i.valid_from),
                "valid_to": i.valid_to.map(rfc3339),
            })
        })
        .collect();
    let roles: Vec<Value> = roles
        .into_iter()
        .map(|i| json!({"role": i.role, "valid_from": rfc3339(i.valid_from), "valid_to": i.valid_to.map(rfc3339)}))
        .collect();
    Ok(Json(HistoryResponse {
        data: HistoryData {
            id: format!("{config}:{}:{source_id}", kind.as_str()),
            resource_type: "entity_history",
            attributes: json!({
                "config_id": config.to_string(),
                "kind": kind.as_str(),
                "source_id": source_id,
                "as_of": at.map(rfc3339),
                "memberships": memberships,
                "admin_roles": roles,
            }),
        },
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The cursor of the last event of a page resumes after that event; any other
        /// `page[cursor]` is a 400 naming the parameter, never a panic.
        #[test]
        fn cursors_resume_after_their_event_and_others_are_refused(
            id in any::<i64>(),
            text in prop_oneof!["\\PC{0,40}", "[A-Za-z0-9_-]{0,40}"],
        ) {
            let cursor = URL_SAFE_NO_PAD.encode(id.to_string());
            let params = HashMap::from([("page[cursor]".to_string(), cursor)]);
            prop_assert_eq!(parse_query(&params).map(|q| q.after).ok(), Some(Some(id)));
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
        let params: HashMap<String, String> = [
            ("filter[type]", "user.created,user.renamed"),
            ("filter[from]", "yesterday"),
            ("page[cursor]", "%%"),
            ("colour", "red"),
        ]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
        let Err(ApiError::BadRequest(errors)) = parse_query(&params) else { panic!() };
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn types_and_times_are_read() {
        let params: HashMap<String, String> =
            [("filter[type]", "user.created, admin_role.granted"), ("filter[to]", "2026-01-31T09:15:00Z")]
                .map(|(k, v)| (k.into(), v.into()))
                .into();
        let query = parse_query(&params).unwrap();
        assert_eq!(query.types, [ChangeType::UserCreated, ChangeType::AdminRoleGranted]);
        assert!(query.to.is_some());
    }
}
