//! Microsoft Graph `GET /v1.0/{users,groups}`: bearer tokens from the login endpoint,
//! application permissions, `$top`/`$select`, `@odata.nextLink` on this server's own base, and
//! injectable 429s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::EntraState;
use super::tenant::USER_DEFAULT;
use crate::common::{Refusal, absolute, now, page, seconds};

/// Graph's error envelope: `{"error": {"code", "message", "innerError": {…}}}`.
fn error(status: StatusCode, code: &str, message: &str) -> Refusal {
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": seconds(now()),
            "request-id": uuid::Uuid::new_v4(),
            "client-request-id": uuid::Uuid::new_v4(),
        },
    }});
    Refusal::new((status, Json(body)))
}

pub(super) async fn not_found() -> Refusal {
    error(StatusCode::BAD_REQUEST, "BadRequest", "Resource not found for the segment.")
}

#[derive(Clone, Copy)]
enum Collection {
    Users,
    Groups,
}

impl Collection {
    fn name(self) -> &'static str {
        match self {
            Collection::Users => "users",
            Collection::Groups => "groups",
        }
    }

    fn entity_type(self) -> &'static str {
        match self {
            Collection::Users => "microsoft.graph.user",
            Collection::Groups => "microsoft.graph.group",
        }
    }

    /// Application permissions any one of which allows listing the collection.
    fn roles(self) -> [&'static str; 4] {
        match self {
            Collection::Users => {
                ["User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"]
            }
            Collection::Groups => {
                ["Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"]
            }
        }
    }
}

/// Throttling first (Graph throttles before it looks further), then the token, then the
/// permissions it carries.
fn gate(state: &EntraState, headers: &HeaderMap, collection: Collection) -> Result<(), Refusal> {
    {
        let mut throttle = state.throttle.lock().expect("throttle lock");
        if throttle.remaining > 0 {
            throttle.remaining -= 1;
            let refusal = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests. Please retry after the time in the Retry-After header.",
            );
            return Err(
                refusal.with_header(header::RETRY_AFTER, HeaderValue::from(throttle.retry_after_secs))
            );
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
    if !collection.roles().iter().any(|r| grant.roles.contains(r)) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    Ok(())
}

struct ListRequest {
    top: usize,
    select: Option<Vec<String>>,
    after: Option<String>,
}

fn list_request(query: &HashMap<String, String>) -> Result<ListRequest, Refusal> {
    let top = match query.get("$top") {
        None => 100,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                let message =
                    format!("Invalid page size specified: '{v}'. Must be between 1 and 999 inclusive.");
                return Err(error(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", &message));
            }
        },
    };
    let select = query
        .get("$select")
        .map(|s| s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect::<Vec<_>>());
    let after = match query.get("$skiptoken") {
        None => None,
        Some(t) => {
            Some(URL_SAFE_NO_PAD.decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "The specified page token value is invalid.",
                )
            })?)
        }
    };
    Ok(ListRequest { top, select, after })
}

fn list(
    state: &EntraState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    collection: Collection,
) -> Result<Response, Refusal> {
    gate(state, headers, collection)?;
    let request = list_request(query)?;
    let tenant = state.tenant.read().expect("tenant lock");
    let items = match collection {
        Collection::Users => &tenant.users,
        Collection::Groups => &tenant.groups,
    };
    let properties: Vec<String> = match (&request.select, collection) {
        (Some(selected), _) => selected.clone(),
        (None, Collection::Users) => USER_DEFAULT.iter().map(|p| p.to_string()).collect(),
        (None, Collection::Groups) => {
            items.values().next().map(|g| g.keys().cloned().collect()).unwrap_or_default()
        }
    };
    if let Some(unknown) =
        properties.iter().find(|p| items.values().next().is_some_and(|e| !e.contains_key(*p)))
    {
        let message =
            format!("Could not find a property named '{unknown}' on type '{}'.", collection.entity_type());
        return Err(error(StatusCode::BAD_REQUEST, "Request_BadRequest", &message));
    }
    let (entities, next) = page(items, request.after.as_deref(), request.top, |_| true);
    let value: Vec<Value> = entities
        .iter()
        .map(|e| {
            Value::Object(
                properties.iter().filter_map(|p| e.get(p).map(|v| (p.clone(), v.clone()))).collect(),
            )
        })
        .collect();
    let name = collection.name();
    let context = match &request.select {
        Some(selected) => format!("{}/v1.0/$metadata#{name}({})", state.base_url, selected.join(",")),
        None => format!("{}/v1.0/$metadata#{name}", state.base_url),
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context));
    if let Some(after) = next {
        let top = request.top.to_string();
        let token = URL_SAFE_NO_PAD.encode(after);
        let select = request.select.as_ref().map(|s| s.join(","));
        let mut params: Vec<(&str, &str)> = vec![("$top", &top)];
        if let Some(select) = &select {
            params.push(("$select", select));
        }
        params.push(("$skiptoken", &token));
        body.insert(
            "@odata.nextLink".into(),
            json!(absolute(&state.base_url, &format!("/v1.0/{name}"), &params)),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Ok(Json(Value::Object(body)).into_response())
}

pub(super) async fn list_users(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    list(&state, &headers, &query, Collection::Users)
}

pub(super) async fn list_groups(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    list(&state, &headers, &query, Collection::Groups)
}
