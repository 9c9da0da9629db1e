//! The fake Falcon API's HTTP surface: the token endpoint (201, `X-CS-Region`), bearer checks,
//! the MSA envelope on every answer, the host listings (combined, scroll + entities, hidden) with
//! FQL `modified_timestamp` filters and sorts, the `X-RateLimit-*` headers, and injected faults.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::CrowdStrikeState;
use super::tenant::CrowdStrikeHost;
use crate::common::{BASE62, HEX, Refusal, epoch_seconds, http_date, secret};
use crate::faults::{Gate, Listing, shaped};

/// What Falcon's combined endpoints take at most; the scroll and entities endpoints take 5,000.
const COMBINED_MAX: usize = 10_000;
const SCROLL_MAX: usize = 5_000;
const DEFAULT_LIMIT: usize = 100;

pub(super) fn router(state: Arc<CrowdStrikeState>) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/devices/combined/devices/v1", get(combined))
        .route("/devices/combined/devices-hidden/v1", get(combined_hidden))
        .route("/devices/queries/devices-scroll/v1", get(scroll))
        .route("/devices/queries/devices-hidden/v1", get(hidden_ids))
        .route("/devices/entities/devices/v2", post(entities))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

fn meta(powered_by: &str) -> Value {
    json!({"query_time": 0.004, "powered_by": powered_by, "trace_id": uuid::Uuid::new_v4().to_string()})
}

/// The MSA envelope of an error.
fn error(status: StatusCode, message: &str, powered_by: &str) -> Refusal {
    let body = json!({
        "meta": meta(powered_by),
        "resources": [],
        "errors": [{"code": status.as_u16(), "message": message}],
    });
    Refusal::new((status, Json(body)))
}

fn invalid_bearer() -> Refusal {
    error(StatusCode::UNAUTHORIZED, "access denied, invalid bearer token", "crowdstrike-api-gateway")
}

fn bad_request(message: &str) -> Refusal {
    error(StatusCode::BAD_REQUEST, message, "device-api")
}

fn missing() -> Refusal {
    error(StatusCode::NOT_FOUND, "Not Found", "crowdstrike-api-gateway")
}

async fn not_found() -> Refusal {
    missing()
}

/// Faults first, then the per-minute window; every answer carries the window's headers, and a
/// 429 the epoch second from which requests are accepted again, with the `Date` it is measured
/// against.
async fn gate(State(state): State<Arc<CrowdStrikeState>>, request: Request, next: Next) -> Response {
    let now = epoch_seconds();
    let limit = state.limit_per_minute.load(Ordering::Relaxed);
    let rate_limited = |at: u64| {
        let mut response =
            error(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded.", "crowdstrike-api-gateway")
                .into_response();
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
        headers.insert("x-ratelimit-retryafter", HeaderValue::from(at));
        headers.insert(header::DATE, http_date(now));
        response
    };
    let fault = state.faults.gate();
    match fault {
        Gate::RateLimited(wait) => return rate_limited(now + wait.as_secs().max(1)),
        Gate::Revoke => state.revoke(),
        Gate::Pass | Gate::Failed(_) => {}
    }
    let (remaining, reset) = state.window.lock().expect("window lock").take(now, limit, 60);
    let Some(remaining) = remaining else {
        return rate_limited(reset);
    };
    let mut response = match fault {
        Gate::Failed(status) => {
            error(status, "Internal Server Error", "crowdstrike-api-gateway").into_response()
        }
        _ => state.faults.serve(next.run(request)).await,
    };
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert(header::DATE, http_date(now));
    response
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

async fn token(
    State(state): State<Arc<CrowdStrikeState>>,
    Form(form): Form<TokenForm>,
) -> Result<Response, Refusal> {
    if form.client_id.len() != 32 || !form.client_id.bytes().all(|b| HEX.contains(&b)) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("Failed to generate access token for clientID={}", form.client_id),
            "csam",
        ));
    }
    let (client_id, client_secret) = state.credentials.lock().expect("credentials lock").clone();
    if form.client_id != client_id || form.client_secret != client_secret {
        return Err(error(StatusCode::FORBIDDEN, "Failed to issue access token - Not Authorized", "csam"));
    }
    let token = secret(BASE62, 64);
    state.tokens.lock().expect("tokens lock").insert(token.clone());
    let body = json!({"access_token": token, "token_type": "bearer", "expires_in": 1799});
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    let region = state.region.lock().expect("region lock").clone();
    response.headers_mut().insert("x-cs-region", HeaderValue::from_str(&region).expect("an ASCII region"));
    Ok(response)
}

/// A live bearer token whose API client may read hosts.
fn authorize(state: &CrowdStrikeState, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(invalid_bearer)?;
    if !state.tokens.lock().expect("tokens lock").contains(token.trim()) {
        return Err(invalid_bearer());
    }
    if !state.hosts_read.load(Ordering::Relaxed) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "access denied, authorization failed",
            "crowdstrike-api-gateway",
        ));
    }
    Ok(())
}

/// The combined endpoints exist only on the commercial clouds.
fn combined_allowed(state: &CrowdStrikeState) -> Result<(), Refusal> {
    if state.combined_refused.load(Ordering::Relaxed) { Err(missing()) } else { Ok(()) }
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    limit: Option<String>,
    offset: Option<String>,
    sort: Option<String>,
    filter: Option<String>,
}

/// An FQL filter the fake understands: `modified_timestamp:>"…"` (or `>=`, `'…'` quotes).
#[derive(Debug, Clone, Copy)]
struct Since {
    at: OffsetDateTime,
    inclusive: bool,
}

fn parse_filter(filter: Option<&str>) -> Result<Option<Since>, Refusal> {
    let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) else { return Ok(None) };
    let invalid = || bad_request(&format!("Invalid filter: {filter}"));
    let rest = filter.strip_prefix("modified_timestamp:").ok_or_else(invalid)?;
    let (inclusive, literal) = match rest.strip_prefix(">=") {
        Some(literal) => (true, literal),
        None => (false, rest.strip_prefix('>').ok_or_else(invalid)?),
    };
    let literal = literal.trim();
    let unquoted =
        ['"', '\''].iter().find_map(|q| literal.strip_prefix(*q)?.strip_suffix(*q)).ok_or_else(invalid)?;
    let at = OffsetDateTime::parse(unquoted, &Rfc3339).map_err(|_| invalid())?;
    Ok(Some(Since { at, inclusive }))
}

fn parse_limit(limit: Option<&str>, max: usize) -> Result<usize, Refusal> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(bad_request(&format!("limit must be between 1 and {max}"))),
        },
    }
}

/// The hosts `hidden` or not that pass the filter, in the requested order.
fn listed(state: &CrowdStrikeState, hidden: bool, query: &ListQuery) -> Result<Vec<Value>, Refusal> {
    let since = parse_filter(query.filter.as_deref())?;
    let tenant = state.tenant.read().expect("tenant lock");
    let mut hosts: Vec<&CrowdStrikeHost> = tenant
        .hosts
        .values()
        .filter(|h| h.hidden == hidden)
        .filter(|h| since.is_none_or(|s| h.modified > s.at || (s.inclusive && h.modified == s.at)))
        .collect();
    match query.sort.as_deref().unwrap_or("device_id.asc") {
        "device_id.asc" | "device_id|asc" => {}
        "device_id.desc" | "device_id|desc" => hosts.reverse(),
        "modified_timestamp.asc" | "modified_timestamp|asc" => hosts.sort_by_key(|h| h.modified),
        "modified_timestamp.desc" | "modified_timestamp|desc" => {
            hosts.sort_by_key(|h| std::cmp::Reverse(h.modified))
        }
        other => return Err(bad_request(&format!("Invalid sort: {other}"))),
    }
    Ok(hosts.into_iter().map(|h| h.to_json(&tenant.cid)).collect())
}

/// A page of `items` from the position `offset` names (an opaque pointer for a client), as the
/// faults shape it; and the pointer to the page after.
fn paged(
    state: &CrowdStrikeState,
    items: Vec<Value>,
    offset: Option<&str>,
    limit: usize,
) -> (Vec<Value>, Option<String>) {
    let limit = state.faults.page_size(limit);
    let faults = state.faults.take_page(Listing::Devices);
    shaped(faults, offset, limit, |after, limit| {
        let from = after.and_then(|a| a.strip_prefix("cs1.")?.parse::<usize>().ok()).unwrap_or(0);
        let page: Vec<Value> = items.iter().skip(from).take(limit).cloned().collect();
        let end = from + page.len();
        (page, (end < items.len()).then(|| format!("cs1.{end}")))
    })
}

fn combined_page(state: &CrowdStrikeState, hidden: bool, query: ListQuery) -> Result<Response, Refusal> {
    let limit = parse_limit(query.limit.as_deref(), COMBINED_MAX)?;
    let items = listed(state, hidden, &query)?;
    let total = items.len();
    let (page, next) = paged(state, items, query.offset.as_deref(), limit);
    let mut meta = meta("device-api");
    meta["pagination"] =
        json!({"offset": query.offset.clone().unwrap_or_default(), "limit": limit, "total": total});
    if let Some(next) = next {
        meta["pagination"]["next"] = json!(next);
    }
    Ok(Json(json!({"meta": meta, "resources": page, "errors": []})).into_response())
}

async fn combined(
    State(state): State<Arc<CrowdStrikeState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, Refusal> {
    authorize(&state, &headers)?;
    combined_allowed(&state)?;
    combined_page(&state, false, query)
}

async fn combined_hidden(
    State(state): State<Arc<CrowdStrikeState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, Refusal> {
    authorize(&state, &headers)?;
    combined_allowed(&state)?;
    combined_page(&state, true, query)
}

fn ids(hosts: Vec<Value>) -> Vec<Value> {
    hosts.into_iter().map(|h| h["device_id"].clone()).collect()
}

/// Host ids after the scroll pointer; the pointer is `""` at the end.
async fn scroll(
    State(state): State<Arc<CrowdStrikeState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, Refusal> {
    authorize(&state, &headers)?;
    let limit = parse_limit(query.limit.as_deref(), SCROLL_MAX)?;
    let items = listed(&state, false, &query)?;
    let total = items.len();
    let (page, next) = paged(&state, items, query.offset.as_deref(), limit);
    let mut meta = meta("device-api");
    let expires_at = (epoch_seconds() + 120) * 1_000_000_000;
    meta["pagination"] =
        json!({"offset": next.unwrap_or_default(), "limit": limit, "total": total, "expires_at": expires_at});
    Ok(Json(json!({"meta": meta, "resources": ids(page), "errors": []})).into_response())
}

/// Hidden host ids by numeric offset, as the older query endpoints page.
async fn hidden_ids(
    State(state): State<Arc<CrowdStrikeState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, Refusal> {
    authorize(&state, &headers)?;
    let limit = parse_limit(query.limit.as_deref(), SCROLL_MAX)?;
    let offset = match query.offset.as_deref() {
        None => 0,
        Some(o) => o.trim().parse::<usize>().map_err(|_| bad_request("offset must be a number"))?,
    };
    let items = listed(&state, true, &query)?;
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let mut meta = meta("device-api");
    meta["pagination"] = json!({"offset": offset + page.len(), "limit": limit, "total": total});
    Ok(Json(json!({"meta": meta, "resources": ids(page), "errors": []})).into_response())
}

#[derive(Deserialize)]
struct IdsBody {
    #[serde(default)]
    ids: Vec<String>,
}

/// Full records of up to 5,000 hosts by id; unknown ids are reported in `errors`.
async fn entities(
    State(state): State<Arc<CrowdStrikeState>>,
    headers: HeaderMap,
    Json(body): Json<IdsBody>,
) -> Result<Response, Refusal> {
    authorize(&state, &headers)?;
    if body.ids.is_empty() || body.ids.len() > SCROLL_MAX {
        return Err(bad_request(&format!("ids must hold between 1 and {SCROLL_MAX} ids")));
    }
    let tenant = state.tenant.read().expect("tenant lock");
    let mut resources = Vec::with_capacity(body.ids.len());
    let mut errors = Vec::new();
    for id in &body.ids {
        match tenant.hosts.get(id) {
            Some(host) => resources.push(host.to_json(&tenant.cid)),
            None => errors.push(json!({"code": 404, "message": format!("Device not found: {id}")})),
        }
    }
    Ok(Json(json!({"meta": meta("device-api"), "resources": resources, "errors": errors})).into_response())
}
