//! `GET /admin/directory/v1/{users,groups}`: bearer tokens from `/token`, Google's error
//! envelopes, and `pageToken`/`nextPageToken` pagination that omits empty lists and the token on
//! the last page, as the real API does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::{GoogleState, SCOPE_PREFIX};
use crate::common::{Refusal, page};

/// `{"error": {"code", "message", "errors": [{domain, reason, message}]}}`, Google's v1 shape.
fn error(status: StatusCode, reason: &str, message: &str) -> Refusal {
    let body = json!({"error": {
        "errors": [{"domain": "global", "reason": reason, "message": message}],
        "code": status.as_u16(),
        "message": message,
    }});
    Refusal::new((status, Json(body)))
}

fn unauthenticated() -> Refusal {
    let body = json!({"error": {
        "code": 401,
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie \
                    or other valid authentication credential. See \
                    https://developers.google.com/identity/sign-in/web/devconsole-project.",
        "errors": [{
            "message": "Invalid Credentials",
            "domain": "global",
            "reason": "authError",
            "location": "Authorization",
            "locationType": "header",
        }],
        "status": "UNAUTHENTICATED",
    }});
    Refusal::new((StatusCode::UNAUTHORIZED, Json(body)))
}

fn not_authorized() -> Refusal {
    error(StatusCode::FORBIDDEN, "forbidden", "Not Authorized to access this resource/api")
}

pub(super) async fn not_found() -> Refusal {
    error(StatusCode::NOT_FOUND, "notFound", "Not Found")
}

/// Which list is asked for; each needs its own scope.
#[derive(Clone, Copy)]
enum Collection {
    Users,
    Groups,
}

impl Collection {
    /// Scopes that allow reading the collection (the read-only one or the read-write one).
    fn scopes(self) -> [&'static str; 2] {
        match self {
            Collection::Users => ["admin.directory.user.readonly", "admin.directory.user"],
            Collection::Groups => ["admin.directory.group.readonly", "admin.directory.group"],
        }
    }

    fn max_results(self) -> (usize, usize) {
        match self {
            Collection::Users => (100, 500),
            Collection::Groups => (200, 200),
        }
    }
}

/// Checks the bearer token, its scopes, that the impersonated user is an admin and that the
/// request names this account (`customer=my_customer`, the customer id, or the domain).
fn authorize(
    state: &GoogleState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    collection: Collection,
) -> Result<(), Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthenticated)?;
    let (subject, scoped) = {
        let tokens = state.tokens.lock().expect("tokens lock");
        let grant =
            tokens.get(token.trim()).filter(|g| g.expires > Instant::now()).ok_or_else(unauthenticated)?;
        let scoped = collection.scopes().iter().any(|s| grant.scopes.contains(&format!("{SCOPE_PREFIX}{s}")));
        (grant.subject.clone(), scoped)
    };
    if !scoped {
        let body = json!({"error": {
            "code": 403,
            "message": "Request had insufficient authentication scopes.",
            "errors": [{"message": "Insufficient Permission", "domain": "global", "reason": "insufficientPermissions"}],
            "status": "PERMISSION_DENIED",
        }});
        return Err(Refusal::new((StatusCode::FORBIDDEN, Json(body))));
    }
    let tenant = state.tenant.read().expect("tenant lock");
    if !subject.and_then(|s| tenant.user_by_email(&s).map(|u| u.is_admin)).unwrap_or(false) {
        return Err(not_authorized());
    }
    match (query.get("customer"), query.get("domain")) {
        (None, None) => Err(error(StatusCode::BAD_REQUEST, "badRequest", "Bad Request")),
        (Some(c), _) if c != "my_customer" && *c != tenant.customer_id => Err(not_authorized()),
        (None, Some(d)) if !d.eq_ignore_ascii_case(&tenant.domain) => Err(not_authorized()),
        _ => Ok(()),
    }
}

struct PageRequest {
    after: Option<String>,
    limit: usize,
}

fn page_request(query: &HashMap<String, String>, collection: Collection) -> Result<PageRequest, Refusal> {
    let (default, max) = collection.max_results();
    let limit = match query.get("maxResults") {
        None => default,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                let message = format!("Invalid value '{v}'. Values must be within the range: [1, {max}]");
                return Err(error(StatusCode::BAD_REQUEST, "invalid", &message));
            }
        },
    };
    let after = match query.get("pageToken").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| error(StatusCode::BAD_REQUEST, "invalid", "Invalid page token"))?,
        ),
    };
    Ok(PageRequest { after, limit })
}

/// The list envelope: `kind`, `etag`, the items under `key` when there are any, and
/// `nextPageToken` only when another page follows.
fn envelope(kind: &str, key: &str, items: Vec<Value>, next: Option<String>) -> Response {
    let mut body = Map::new();
    body.insert("kind".into(), json!(kind));
    body.insert("etag".into(), json!(format!("\"{kind}\"")));
    if !items.is_empty() {
        body.insert(key.into(), Value::Array(items));
    }
    if let Some(after) = next {
        body.insert("nextPageToken".into(), json!(URL_SAFE_NO_PAD.encode(after)));
    }
    Json(Value::Object(body)).into_response()
}

pub(super) async fn list_users(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    authorize(&state, &headers, &query, Collection::Users)?;
    let request = page_request(&query, Collection::Users)?;
    let tenant = state.tenant.read().expect("tenant lock");
    let (users, next) = page(&tenant.users, request.after.as_deref(), request.limit, |_| true);
    let items = users.iter().map(|u| u.to_json(&tenant.customer_id)).collect();
    Ok(envelope("admin#directory#users", "users", items, next))
}

pub(super) async fn list_groups(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    authorize(&state, &headers, &query, Collection::Groups)?;
    let request = page_request(&query, Collection::Groups)?;
    let tenant = state.tenant.read().expect("tenant lock");
    let (groups, next) = page(&tenant.groups, request.after.as_deref(), request.limit, |_| true);
    let items = groups.iter().map(|g| g.to_json()).collect();
    Ok(envelope("admin#directory#groups", "groups", items, next))
}
