//! The fake console's HTTP surface: `ApiToken` auth, the `{"errors": [...]}` envelope, cursor
//! pagination of `/agents` with its filters, and the faults a test injects (a 429 carries
//! `Retry-After` in seconds).

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::tenant::{SentinelOneAgent, micros};
use super::{SentinelOneScope, SentinelOneState};
use crate::common::Refusal;
use crate::faults::{Gate, Listing, shaped};

pub(super) fn router(state: Arc<SentinelOneState>) -> Router {
    Router::new()
        .route("/web/api/v2.1/user", get(user))
        .route("/web/api/v2.1/agents", get(agents))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

fn error(status: StatusCode, code: u32, title: &str, detail: Option<&str>) -> Refusal {
    Refusal::new((status, Json(json!({"errors": [{"code": code, "title": title, "detail": detail}]}))))
}

fn invalid(detail: &str) -> Refusal {
    error(StatusCode::BAD_REQUEST, 4_000_010, "Validation Error", Some(detail))
}

async fn not_found() -> Refusal {
    error(StatusCode::NOT_FOUND, 4_040_010, "Not Found", None)
}

/// Injected faults, before the API looks at the request.
async fn gate(State(state): State<Arc<SentinelOneState>>, request: Request, next: Next) -> Response {
    match state.faults.gate() {
        Gate::RateLimited(wait) => error(StatusCode::TOO_MANY_REQUESTS, 4_290_010, "Too Many Requests", None)
            .with_header(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)))
            .into_response(),
        Gate::Failed(status) => error(status, 5_000_010, "Server Error", None).into_response(),
        Gate::Revoke => {
            state.tokens.lock().expect("tokens lock").clear();
            state.faults.serve(next.run(request)).await
        }
        Gate::Pass => state.faults.serve(next.run(request)).await,
    }
}

/// The token's scope, or the 401 SentinelOne sends for a missing, unknown or revoked token.
fn authenticate(state: &SentinelOneState, headers: &HeaderMap) -> Result<SentinelOneScope, Refusal> {
    let refused = || error(StatusCode::UNAUTHORIZED, 4_010_010, "Authentication Failed", None);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("ApiToken "))
        .map(str::trim)
        .ok_or_else(refused)?;
    state.tokens.lock().expect("tokens lock").get(token).copied().ok_or_else(refused)
}

async fn user(State(state): State<Arc<SentinelOneState>>, headers: HeaderMap) -> Result<Response, Refusal> {
    let scope = authenticate(&state, &headers)?;
    let mut user = state.tenant.read().expect("tenant lock").user.clone();
    if scope == SentinelOneScope::Site {
        user["scope"] = json!("site");
    }
    Ok(Json(json!({"data": user})).into_response())
}

/// The query as sent.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `limit`: 10 when absent, refused outside 1–1000.
    fn limit(&self) -> Result<usize, Refusal> {
        match self.get("limit") {
            None => Ok(10),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n @ 1..=1000) => Ok(n),
                _ => Err(invalid("limit: Must be between 1 and 1000.")),
            },
        }
    }

    fn time(&self, key: &str) -> Result<Option<OffsetDateTime>, Refusal> {
        self.get(key)
            .map(|v| {
                OffsetDateTime::parse(v.trim(), &Rfc3339)
                    .map_err(|_| invalid(&format!("{key}: Not a valid datetime.")))
            })
            .transpose()
    }
}

/// Where an agent sits in a listing sorted by `sort_by`: the sort value, then the id, so agents
/// updated at the same microsecond keep one order. Ids have one width, so they sort as text.
fn position(agent: &SentinelOneAgent, sort_by: &str) -> String {
    match sort_by {
        "updatedAt" => format!("{}|{}", micros(agent.updated_at), agent.id()),
        _ => agent.id().to_string(),
    }
}

async fn agents(
    State(state): State<Arc<SentinelOneState>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, Refusal> {
    let params = Params(params);
    if authenticate(&state, &headers)? == SentinelOneScope::Site {
        return Err(error(
            StatusCode::FORBIDDEN,
            4_030_010,
            "Insufficient permissions",
            Some("The token's scope does not cover the requested account"),
        ));
    }
    let limit = state.faults.page_size(params.limit()?);
    let sort_by = params.get("sortBy").unwrap_or("id");
    if !matches!(sort_by, "id" | "updatedAt") {
        return Err(invalid("sortBy: Not a valid choice."));
    }
    let descending = match params.get("sortOrder").unwrap_or("asc") {
        "asc" => false,
        "desc" => true,
        _ => return Err(invalid("sortOrder: Not a valid choice.")),
    };
    // Decommissioned agents are left out unless asked for.
    let mut decommissioned = [false, false];
    for value in params.get("isDecommissioned").unwrap_or("false").split(',') {
        match value.trim() {
            "true" => decommissioned[1] = true,
            "false" => decommissioned[0] = true,
            _ => return Err(invalid("isDecommissioned: Not a valid boolean.")),
        }
    }
    let (gt, gte) = (params.time("updatedAt__gt")?, params.time("updatedAt__gte")?);
    let (lt, lte) = (params.time("updatedAt__lt")?, params.time("updatedAt__lte")?);
    let after = match params.get("cursor") {
        None => None,
        Some(cursor) => {
            Some(decode_cursor(cursor, sort_by).ok_or_else(|| invalid("cursor: Invalid cursor."))?)
        }
    };
    let faults = state.faults.take_page(Listing::Devices);
    let tenant = state.tenant.read().expect("tenant lock");
    let mut listed: Vec<(String, &SentinelOneAgent)> = tenant
        .agents()
        .filter(|a| decommissioned[usize::from(a.is_decommissioned)])
        .filter(|a| gt.is_none_or(|t| a.updated_at > t) && gte.is_none_or(|t| a.updated_at >= t))
        .filter(|a| lt.is_none_or(|t| a.updated_at < t) && lte.is_none_or(|t| a.updated_at <= t))
        .map(|a| (position(a, sort_by), a))
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        listed.reverse();
    }
    let total = listed.len();
    let fetch = |after: Option<&str>, n: usize| {
        let start = after.map_or(0, |after| {
            listed
                .iter()
                .position(|(key, _)| if descending { key.as_str() < after } else { key.as_str() > after })
                .unwrap_or(listed.len())
        });
        let page: Vec<&SentinelOneAgent> = listed[start..].iter().take(n).map(|(_, a)| *a).collect();
        let next = (start + n < listed.len()).then(|| listed[start + n - 1].0.clone());
        (page, next)
    };
    let (page, next) = shaped(faults, after.as_deref(), limit, fetch);
    let data: Vec<Value> = page.iter().map(|a| a.to_json()).collect();
    let next_cursor = next.map(|key| STANDARD.encode(format!("{sort_by}:{key}")));
    let total_items = (params.get("skipCount") != Some("true")).then_some(total);
    Ok(Json(json!({"data": data, "pagination": {"totalItems": total_items, "nextCursor": next_cursor}}))
        .into_response())
}

/// The position a `nextCursor` this fake wrote names, for a listing sorted the same way.
fn decode_cursor(cursor: &str, sort_by: &str) -> Option<String> {
    let text = String::from_utf8(STANDARD.decode(cursor.trim()).ok()?).ok()?;
    let (sorted_by, key) = text.split_once(':')?;
    (sorted_by == sort_by).then(|| key.to_string())
}
