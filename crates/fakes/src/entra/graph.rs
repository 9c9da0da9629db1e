//! Microsoft Graph: `GET /v1.0/{users,groups,devices}` lists (devices by `id` filter too, and
//! with their `registeredOwners` expanded), their `/delta` rounds (`$deltatoken=latest` included)
//! and `/$count` totals, and directory role assignments, behind bearer tokens from the login
//! endpoint. Links
//! (`@odata.nextLink`, `@odata.deltaLink`) point at this server; the fault knobs apply to every
//! request, except that a `$count` is never cut short.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::EntraState;
use super::query::{
    DEFAULT_PAGE, MAX_PAGE, bad_request, error, filter_ids, listed_ids, max_page_size, next_link, owned,
    owner_expansion, page_size, selection, skip_token, unknown_property,
};
use super::tenant::{
    DEVICE_PROPERTIES, DeltaQuery, GROUP_PROPERTIES, Kind, Member, MemberKind, Position, USER_DEFAULT,
    USER_PROPERTIES,
};
use crate::common::{Refusal, absolute};
use crate::faults::{Gate, Listing};

pub(super) const USER_READ: &[&str] =
    &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"];
pub(super) const GROUP_READ: &[&str] = &[
    "Group.Read.All",
    "GroupMember.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const DEVICE_READ: &[&str] = &["Device.Read.All", "Directory.Read.All", "Directory.ReadWrite.All"];
const ROLE_READ: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// The most ids one `$filter` on a delta query may name.
const MAX_FILTER_IDS: usize = 50;
/// The largest page Graph serves when it expands a relationship of each object.
const MAX_EXPANDED_PAGE: usize = 100;

pub(super) async fn not_found() -> Refusal {
    bad_request("BadRequest", "Resource not found for the segment.")
}

/// Throttling and injected failures first (Graph throttles before it looks further), then the
/// token, then the permissions it carries: any one of `roles` will do.
pub(super) fn gate(state: &EntraState, headers: &HeaderMap, roles: &[&str]) -> Result<(), Refusal> {
    match state.faults.gate() {
        Gate::Pass => {}
        Gate::Revoke => state.revoke(),
        Gate::RateLimited(wait) => {
            let refusal = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests. Please retry after the time in the Retry-After header.",
            );
            return Err(refusal.with_header(header::RETRY_AFTER, HeaderValue::from(wait.as_secs())));
        }
        Gate::Failed(status) => {
            let (code, message) = match status {
                StatusCode::INTERNAL_SERVER_ERROR => {
                    ("generalException", "General exception while processing.")
                }
                StatusCode::BAD_GATEWAY => ("badGateway", "The server returned an invalid response."),
                StatusCode::GATEWAY_TIMEOUT => ("gatewayTimeout", "The operation timed out."),
                _ => {
                    ("serviceNotAvailable", "The service is temporarily unavailable. Please try again later.")
                }
            };
            return Err(error(status, code, message));
        }
    }
    let unauthenticated =
        |message: &str| error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("Access token is empty."))?;
    let tokens = state.tokens.lock().expect("tokens lock");
    let grant = tokens.get(token).ok_or_else(|| unauthenticated("Access token validation failure."))?;
    if grant.expires <= Instant::now() {
        return Err(unauthenticated("Lifetime validation failed, the token is expired."));
    }
    if !roles.iter().any(|r| grant.roles.contains(r)) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    Ok(())
}

/// A successful reply, after the configured delay; cut short when a truncation is due.
async fn finish(state: &EntraState, body: &Value, extra: Option<(HeaderName, HeaderValue)>) -> Response {
    state
        .faults
        .serve(async {
            let mut response = serde_json::to_vec(body).expect("JSON values serialize").into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8",
                ),
            );
            if let Some((name, value)) = extra {
                headers.insert(name, value);
            }
            response
        })
        .await
}

/// How Graph serves one collection of directory objects, to plain lists and delta rounds alike.
struct Served {
    /// The path segment: `users`, `groups` or `devices`.
    name: &'static str,
    /// The type name error messages use.
    entity_type: &'static str,
    /// The permissions that may read it; any one will do.
    roles: &'static [&'static str],
    /// The properties served when no `$select` is given.
    defaults: &'static [&'static str],
    /// Every property the collection knows.
    known: &'static [&'static str],
    /// The navigation property a delta round tracks as `{relation}@delta`.
    relation: Option<&'static str>,
    /// The fault knob's name for the collection's pages.
    listing: Listing,
}

fn served(kind: Kind) -> Served {
    match kind {
        Kind::Users => Served {
            name: "users",
            entity_type: "user",
            roles: USER_READ,
            defaults: USER_DEFAULT,
            known: USER_PROPERTIES,
            relation: Some("manager"),
            listing: Listing::Users,
        },
        Kind::Groups => Served {
            name: "groups",
            entity_type: "group",
            roles: GROUP_READ,
            defaults: GROUP_PROPERTIES,
            known: GROUP_PROPERTIES,
            relation: Some("members"),
            listing: Listing::Groups,
        },
        Kind::Devices => Served {
            name: "devices",
            entity_type: "device",
            roles: DEVICE_READ,
            defaults: DEVICE_PROPERTIES,
            known: DEVICE_PROPERTIES,
            relation: None,
            listing: Listing::Devices,
        },
    }
}

async fn list(
    state: &EntraState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    kind: Kind,
) -> Result<Response, Refusal> {
    let Served { name, entity_type, roles, defaults, known, .. } = served(kind);
    gate(state, headers, roles)?;
    let owners = match (kind, query.get("$expand")) {
        (_, None) => None,
        (Kind::Devices, Some(expand)) => Some(owner_expansion(expand)?),
        (_, Some(expand)) => return Err(unknown_property(entity_type, expand)),
    };
    if owners.is_some() && state.limits().owners_refused {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    let ids = match (kind, query.get("$filter")) {
        (_, None) => None,
        (Kind::Devices, Some(filter)) => Some(listed_ids(filter)?),
        (_, Some(_)) => return Err(bad_request("Request_UnsupportedQuery", "Unsupported query.")),
    };
    let top = state.faults.page_size(page_size(query)?);
    // Graph serves at most 100 objects a page when it expands a relationship of each.
    let top = if owners.is_some() { top.min(MAX_EXPANDED_PAGE) } else { top };
    let after = skip_token::<u32>(query)?;
    let select = selection(query);
    let properties = select.clone().unwrap_or_else(|| owned(defaults));
    if let Some(unknown) = properties.iter().find(|p| !known.contains(&p.as_str())) {
        return Err(unknown_property(entity_type, unknown));
    }
    let (value, next) = {
        let tenant = state.tenant.read().expect("tenant lock");
        match kind {
            Kind::Devices => tenant.list_devices(&properties, owners.as_deref(), ids.as_deref(), after, top),
            _ => tenant.list(kind, &properties, after, top),
        }
    };
    let context = match &select {
        Some(selected) => format!("{}/v1.0/$metadata#{name}({})", state.base_url, selected.join(",")),
        None => format!("{}/v1.0/$metadata#{name}", state.base_url),
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context));
    if let Some(after) = next {
        let select = select.as_ref().map(|s| s.join(","));
        let mut shaped: Vec<(&str, &str)> = select.as_deref().map(|s| ("$select", s)).into_iter().collect();
        shaped.extend(query.get("$expand").map(|e| ("$expand", e.as_str())));
        let link = next_link(&state.base_url, &format!("/v1.0/{name}"), top, &shaped, after);
        body.insert("@odata.nextLink".into(), json!(link));
    }
    body.insert("value".into(), Value::Array(value));
    Ok(finish(state, &Value::Object(body), None).await)
}

pub(super) async fn list_users(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    list(&state, &headers, &query, Kind::Users).await
}

pub(super) async fn list_groups(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    list(&state, &headers, &query, Kind::Groups).await
}

pub(super) async fn list_devices(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    list(&state, &headers, &query, Kind::Devices).await
}

/// `GET /v1.0/{users,groups,devices}/$count`: the collection's size as a bare `text/plain`
/// integer. Graph counts directory objects only as an advanced query, which takes
/// `ConsistencyLevel: eventual`.
async fn count(state: &EntraState, headers: &HeaderMap, kind: Kind) -> Result<Response, Refusal> {
    gate(state, headers, served(kind).roles)?;
    let eventual = headers
        .get_all("consistencylevel")
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.trim().eq_ignore_ascii_case("eventual")));
    if state.limits().counts_refused {
        return Err(bad_request(
            "Request_UnsupportedQuery",
            "This request is not supported by the tenant: advanced queries such as /$count are not available.",
        ));
    }
    if !eventual {
        return Err(bad_request(
            "Request_UnsupportedQuery",
            "Raw count (/$count) is not supported because the 'ConsistencyLevel:eventual' header is missing. \
             Refer to https://aka.ms/graph-docs/advanced-queries for more information",
        ));
    }
    let total = state.tenant.read().expect("tenant lock").count(kind);
    let reply = async { ([(header::CONTENT_TYPE, "text/plain")], total.to_string()).into_response() };
    Ok(state.faults.serve_whole(reply).await)
}

pub(super) async fn count_users(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    count(&state, &headers, Kind::Users).await
}

pub(super) async fn count_groups(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    count(&state, &headers, Kind::Groups).await
}

pub(super) async fn count_devices(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    count(&state, &headers, Kind::Devices).await
}

/// What a delta token carries: the round's place and the query it started with, since later
/// requests send only the token. Encoded, never meant to be read by clients.
#[derive(Serialize, Deserialize)]
struct DeltaState {
    #[serde(rename = "e")]
    epoch: u32,
    #[serde(rename = "k")]
    collection: String,
    #[serde(rename = "s")]
    since: u64,
    #[serde(rename = "a")]
    after: u64,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    member: Option<(u8, u32)>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    select: Option<String>,
}

impl DeltaState {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("delta states serialize"))
    }

    fn decode(token: &str) -> Option<Self> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token).ok()?).ok()
    }
}

/// The token is unknown or expired: start over, here.
fn gone(state: &EntraState, collection: &str) -> Refusal {
    let refusal = error(
        StatusCode::GONE,
        "syncStateNotFound",
        "The sync state is not found or has expired. Start a new round of change tracking without a state token.",
    );
    let location = format!("{}/v1.0/{collection}/delta", state.base_url);
    refusal.with_header(header::LOCATION, HeaderValue::from_str(&location).expect("URLs are header values"))
}

async fn delta(
    state: &EntraState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    kind: Kind,
) -> Result<Response, Refusal> {
    let Served { name: collection, entity_type, roles, defaults, known, relation, listing } = served(kind);
    gate(state, headers, roles)?;
    if query.contains_key("$top") {
        return Err(bad_request(
            "Request_UnsupportedQuery",
            "The query specified in the URI is not valid. Query option 'Top' is not allowed.",
        ));
    }
    let epoch = state.tenant.read().expect("tenant lock").token_epoch;
    let token = query.get("$deltatoken").or_else(|| query.get("$skiptoken"));
    let (select, at) = match token {
        // "Sync from now": no objects, only a delta link from the present.
        Some(latest) if latest == "latest" && query.contains_key("$deltatoken") => {
            if state.limits().latest_refused {
                return Err(bad_request(
                    "Request_UnsupportedQuery",
                    "The query specified in the URI is not valid. '$deltatoken=latest' is not supported.",
                ));
            }
            let clock = state.tenant.read().expect("tenant lock").clock();
            (query.get("$select").cloned(), Position { since: clock, after: clock, member: None })
        }
        Some(token) => {
            let Some(s) =
                DeltaState::decode(token).filter(|s| s.epoch == epoch && s.collection == collection)
            else {
                return Err(gone(state, collection));
            };
            let member =
                s.member.and_then(|(kind, slot)| Some(Member { kind: MemberKind::from_code(kind)?, slot }));
            (s.select, Position { since: s.since, after: s.after, member })
        }
        None => (query.get("$select").cloned(), Position { since: 0, after: 0, member: None }),
    };
    let (mut properties, tracks_relation) = match &select {
        Some(select) => {
            let names: Vec<String> =
                select.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
            let tracks = relation.is_some_and(|r| names.iter().any(|n| n == r));
            (names.into_iter().filter(|n| Some(n.as_str()) != relation).collect::<Vec<_>>(), tracks)
        }
        None if kind == Kind::Users => (owned(defaults), false),
        None => (owned(known), relation.is_some()),
    };
    if let Some(unknown) = properties.iter().find(|p| !known.contains(&p.as_str())) {
        return Err(unknown_property(entity_type, unknown));
    }
    if !properties.iter().any(|p| p == "id") {
        properties.push("id".to_string());
    }
    let preferred = max_page_size(headers);
    let limit = state.faults.page_size(preferred.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE));
    let member_limit = state.limits().members_per_page;
    let filter = match (kind, token, query.get("$filter")) {
        (_, _, None) => None,
        (Kind::Users, None, Some(filter)) => match filter_ids(filter) {
            Some(ids) if ids.len() <= MAX_FILTER_IDS => Some(ids),
            Some(_) => {
                return Err(bad_request(
                    "Request_UnsupportedQuery",
                    "Too many ids in the filter: at most 50.",
                ));
            }
            None => return Err(bad_request("Request_UnsupportedQuery", "Unsupported query.")),
        },
        _ => return Err(bad_request("Request_UnsupportedQuery", "Unsupported query.")),
    };
    let delta_query = DeltaQuery { properties: &properties, relation: tracks_relation, limit, member_limit };
    let faults = state.faults.take_page(listing);
    let (mut value, next, clock) = {
        let tenant = state.tenant.read().expect("tenant lock");
        match &filter {
            // A filtered round is small by definition: one page.
            Some(ids) => (tenant.delta_users_by_id(ids, &delta_query), None, tenant.clock()),
            None => {
                let page = tenant.delta(kind, at, &delta_query);
                let mut next = page.next;
                if faults.overlap && page.value.len() > 1 {
                    let half = DeltaQuery { limit: page.value.len() / 2, ..delta_query };
                    next = tenant.delta(kind, at, &half).next;
                }
                (page.value, next, page.clock)
            }
        }
    };
    if faults.drop {
        value.clear();
    }
    if faults.reverse {
        value.reverse();
    }
    let path = format!("/v1.0/{collection}/delta");
    let link = |key: &str, position: Position| {
        let token = DeltaState {
            epoch,
            collection: collection.to_string(),
            since: position.since,
            after: position.after,
            member: position.member.map(|m| (m.kind.code(), m.slot)),
            select: select.clone(),
        }
        .encode();
        absolute(&state.base_url, &path, &[(key, &token)])
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(format!("{}/v1.0/$metadata#{collection}", state.base_url)));
    match next {
        Some(next) => body.insert("@odata.nextLink".into(), json!(link("$skiptoken", next))),
        None => {
            let end = Position { since: clock, after: clock, member: None };
            body.insert("@odata.deltaLink".into(), json!(link("$deltatoken", end)))
        }
    };
    body.insert("value".into(), Value::Array(value));
    let applied = preferred.map(|_| {
        let value =
            HeaderValue::from_str(&format!("odata.maxpagesize={limit}")).expect("digits are header values");
        (HeaderName::from_static("preference-applied"), value)
    });
    Ok(finish(state, &Value::Object(body), applied).await)
}

pub(super) async fn users_delta(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    delta(&state, &headers, &query, Kind::Users).await
}

pub(super) async fn groups_delta(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    delta(&state, &headers, &query, Kind::Groups).await
}

pub(super) async fn devices_delta(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    delta(&state, &headers, &query, Kind::Devices).await
}

/// `GET /v1.0/roleManagement/directory/roleAssignments`, optionally `$expand=roleDefinition`.
pub(super) async fn role_assignments(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    gate(&state, &headers, ROLE_READ)?;
    let top = page_size(&query)?;
    let offset = skip_token::<usize>(&query)?.unwrap_or(0);
    let expand = match query.get("$expand").map(String::as_str) {
        None => false,
        Some("roleDefinition") => true,
        Some(other) => return Err(unknown_property("unifiedRoleAssignment", other)),
    };
    let (value, next) = state.tenant.read().expect("tenant lock").role_assignments(offset, top, expand);
    let path = "/v1.0/roleManagement/directory/roleAssignments";
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}/v1.0/$metadata#roleManagement/directory/roleAssignments", state.base_url)),
    );
    if let Some(next) = next {
        let shaped: &[(&str, &str)] = if expand { &[("$expand", "roleDefinition")] } else { &[] };
        body.insert("@odata.nextLink".into(), json!(next_link(&state.base_url, path, top, shaped, next)));
    }
    body.insert("value".into(), Value::Array(value));
    Ok(finish(&state, &Value::Object(body), None).await)
}
