//! `GET /admin/directory/v1/{users,users/{userKey},groups,groups/{groupKey}/members}`: bearer tokens from
//! `/token`, Google's error envelopes, and `pageToken`/`nextPageToken` pagination that omits
//! empty lists and the token on the last page, as the real API does. Injected faults are
//! answered here too, in Google's words.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::tenant::Member;
use super::{GoogleRateLimit, GoogleState, SCOPE_PREFIX};
use crate::common::{Refusal, after_cursor, page, take_page};
use crate::faults::{Gate, Listing, shaped};

/// `{"error": {"code", "message", "errors": [{domain, reason, message}]}}`, Google's v1 shape.
pub(super) fn error_in(status: StatusCode, domain: &str, reason: &str, message: &str) -> Refusal {
    let body = json!({"error": {
        "errors": [{"domain": domain, "reason": reason, "message": message}],
        "code": status.as_u16(),
        "message": message,
    }});
    Refusal::new((status, Json(body)))
}

pub(super) fn error(status: StatusCode, reason: &str, message: &str) -> Refusal {
    error_in(status, "global", reason, message)
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

/// Injected faults first, as Google's front ends answer them before the API runs; then the
/// handler, whose successful reply may be cut short.
pub(super) async fn gate(State(state): State<Arc<GoogleState>>, request: Request, next: Next) -> Response {
    match state.faults.gate() {
        Gate::RateLimited(_) => {
            let reason = *state.rate_limit.lock().expect("rate limit lock");
            let (status, reason, message) = match reason {
                GoogleRateLimit::UserRateLimitExceeded => {
                    (StatusCode::FORBIDDEN, "userRateLimitExceeded", "User Rate Limit Exceeded")
                }
                GoogleRateLimit::RateLimitExceeded => {
                    (StatusCode::TOO_MANY_REQUESTS, "rateLimitExceeded", "Rate Limit Exceeded")
                }
                GoogleRateLimit::QuotaExceeded => (StatusCode::FORBIDDEN, "quotaExceeded", "Quota Exceeded"),
            };
            error_in(status, "usageLimits", reason, message).into_response()
        }
        Gate::Failed(status) => error(status, "backendError", "Backend Error").into_response(),
        Gate::Revoke => {
            // Every delegated service account: the one a sync uses is among them.
            state.delegation.keys().for_each(|client_id| state.revoke(client_id));
            state.faults.serve(next.run(request)).await
        }
        Gate::Pass => state.faults.serve(next.run(request)).await,
    }
}

/// Which list is asked for; each needs its own scope.
#[derive(Clone, Copy)]
pub(super) enum Collection {
    Users,
    Groups,
    Members,
}

impl Collection {
    /// Scopes that allow reading the collection (read-only or read-write).
    fn scopes(self) -> &'static [&'static str] {
        match self {
            Collection::Users => &["admin.directory.user.readonly", "admin.directory.user"],
            Collection::Groups => &["admin.directory.group.readonly", "admin.directory.group"],
            Collection::Members => &[
                "admin.directory.group.member.readonly",
                "admin.directory.group.member",
                "admin.directory.group.readonly",
                "admin.directory.group",
            ],
        }
    }

    fn max_results(self) -> (usize, usize) {
        match self {
            Collection::Users => (100, 500),
            Collection::Groups | Collection::Members => (200, 200),
        }
    }
}

/// Checks the bearer token, its scopes and that the impersonated user is an admin.
pub(super) fn authenticate(
    state: &GoogleState,
    headers: &HeaderMap,
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
    Ok(())
}

/// Also checks that the request names this account (`customer=my_customer`, the customer id,
/// or the domain), as lists across the account must.
pub(super) fn authorize(
    state: &GoogleState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    collection: Collection,
) -> Result<(), Refusal> {
    authenticate(state, headers, collection)?;
    let tenant = state.tenant.read().expect("tenant lock");
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

fn page_request(
    state: &GoogleState,
    query: &HashMap<String, String>,
    collection: Collection,
) -> Result<PageRequest, Refusal> {
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
    Ok(PageRequest { after, limit: state.faults.page_size(limit) })
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
    let request = page_request(&state, &query, Collection::Users)?;
    if let Some(p) = query.get("projection").filter(|p| !matches!(p.as_str(), "basic" | "custom" | "full")) {
        let message = format!("Invalid value '{p}'. Values must be one of: basic, custom, full");
        return Err(error(StatusCode::BAD_REQUEST, "invalid", &message));
    }
    let faults = state.faults.take_page(Listing::Users);
    let tenant = state.tenant.read().expect("tenant lock");
    let (customer, domain) = (&tenant.customer_id, &tenant.domain);
    let (after, limit) = (request.after.as_deref(), request.limit);
    // `showDeleted=true` lists the deleted users instead of the others.
    let items = if query.get("showDeleted").is_some_and(|v| v == "true") {
        let deleted = tenant.deleted_users();
        let (found, next) = shaped(faults, after, limit, |a, n| page(deleted, a, n, |_| true));
        (found.iter().map(|(u, at)| u.to_json(customer, domain, Some(*at))).collect(), next)
    } else {
        let users = tenant.users_by_id();
        let (found, next) = shaped(faults, after, limit, |a, n| page(users, a, n, |_| true));
        (found.iter().map(|u| u.to_json(customer, domain, None)).collect(), next)
    };
    Ok(envelope("admin#directory#users", "users", items.0, items.1))
}

/// `users.get`: a user by its `userKey` (the id or the primary address); 404 for one deleted or
/// never known.
pub(super) async fn get_user(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Path(user_key): Path<String>,
) -> Result<Response, Refusal> {
    authenticate(&state, &headers, Collection::Users)?;
    let tenant = state.tenant.read().expect("tenant lock");
    let user = tenant.user(&user_key).or_else(|| tenant.user_by_email(&user_key));
    let user = user.ok_or_else(|| error(StatusCode::NOT_FOUND, "notFound", "Resource Not Found: userKey"))?;
    Ok(Json(user.to_json(&tenant.customer_id, &tenant.domain, None)).into_response())
}

pub(super) async fn list_groups(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    authorize(&state, &headers, &query, Collection::Groups)?;
    let request = page_request(&state, &query, Collection::Groups)?;
    let faults = state.faults.take_page(Listing::Groups);
    let tenant = state.tenant.read().expect("tenant lock");
    let groups = tenant.groups_by_id();
    let (found, next) =
        shaped(faults, request.after.as_deref(), request.limit, |a, n| page(groups, a, n, |_| true));
    let items = found.iter().map(|g| g.to_json(&tenant.domain)).collect();
    Ok(envelope("admin#directory#groups", "groups", items, next))
}

/// Up to `limit` members after the member id `after`, with their ids, and the cursor of the next
/// page when more remain.
fn page_of_members<'a>(
    members: &'a BTreeMap<String, Member>,
    after: Option<&str>,
    limit: usize,
) -> (Vec<(&'a String, &'a Member)>, Option<String>) {
    take_page(members.range::<String, _>(after_cursor(after)).map(|entry| (entry.0, entry)), limit)
}

/// Direct members only: `includeDerivedMembership` is not served.
pub(super) async fn list_members(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Path(group_key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    authenticate(&state, &headers, Collection::Members)?;
    let request = page_request(&state, &query, Collection::Members)?;
    let faults = state.faults.take_page(Listing::Members);
    let tenant = state.tenant.read().expect("tenant lock");
    let group = tenant
        .group_by_key(&group_key)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "notFound", "Resource Not Found: groupKey"))?;
    if state.members_refused.lock().expect("refusals lock").contains(group.id()) {
        return Err(not_authorized());
    }
    let members = group.member_map();
    let (found, next) =
        shaped(faults, request.after.as_deref(), request.limit, |a, n| page_of_members(members, a, n));
    let body: Vec<Value> = found.into_iter().map(|(id, m)| tenant.member_json(group, id, *m)).collect();
    Ok(envelope("admin#directory#members", "members", body, next))
}
