//! The fake org's HTTP surface: `SSWS` auth, Okta error objects, `Link` pagination and the
//! `X-Rate-Limit-*` headers on every response.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{OktaPermission, OktaState};
use crate::common::{BASE62, Refusal, absolute, page, secret};

/// Requests allowed per minute before 429 `E0000047`; Okta's per-endpoint limits are of this
/// order for a mid-sized org.
const LIMIT_PER_MINUTE: u32 = 6_000;

pub(super) fn router(state: Arc<OktaState>) -> Router {
    Router::new()
        .route("/api/v1/users/me", get(me))
        .route("/api/v1/users", get(list_users))
        .route("/api/v1/groups", get(list_groups))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .with_state(state)
}

/// A fixed one-minute window, reported the way Okta reports it: the ceiling, what is left, and
/// the UTC epoch second at which the window resets.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    started: u64,
    used: u32,
}

fn epoch_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn rate_limit(State(state): State<Arc<OktaState>>, request: Request, next: Next) -> Response {
    let (remaining, reset) = {
        let mut window = state.rate.lock().expect("rate lock");
        let now = epoch_seconds();
        if now >= window.started + 60 {
            *window = RateWindow { started: now, used: 0 };
        }
        window.used = window.used.saturating_add(1);
        (LIMIT_PER_MINUTE.checked_sub(window.used), window.started + 60)
    };
    let mut response = match remaining {
        Some(_) => next.run(request).await,
        None => error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        )
        .into_response(),
    };
    let headers = response.headers_mut();
    headers.insert("x-rate-limit-limit", HeaderValue::from(LIMIT_PER_MINUTE));
    headers.insert("x-rate-limit-remaining", HeaderValue::from(remaining.unwrap_or(0)));
    headers.insert("x-rate-limit-reset", HeaderValue::from(reset));
    response
}

/// An Okta error object with every field the real one carries.
fn error(status: StatusCode, code: &str, summary: &str) -> Refusal {
    let body = json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{}", secret(BASE62, 22)),
        "errorCauses": [],
    });
    Refusal::new((status, Json(body)))
}

fn invalid_token() -> Refusal {
    error(StatusCode::UNAUTHORIZED, "E0000011", "Invalid token provided")
}

fn forbidden() -> Refusal {
    error(StatusCode::FORBIDDEN, "E0000006", "You do not have permission to perform the requested action")
}

async fn not_found(request: Request) -> Refusal {
    let summary = format!("Not found: Resource not found: {} (GenericResource)", request.uri().path());
    error(StatusCode::NOT_FOUND, "E0000007", &summary)
}

/// The token's entry, or the 401 Okta sends for a missing, unknown or revoked token.
fn authenticate(state: &OktaState, headers: &HeaderMap) -> Result<OktaPermission, Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("SSWS "))
        .map(str::trim)
        .ok_or_else(invalid_token)?;
    state.tokens.lock().expect("tokens lock").get(token).copied().ok_or_else(invalid_token)
}

fn may_list(state: &OktaState, headers: &HeaderMap) -> Result<(), Refusal> {
    match authenticate(state, headers)? {
        OktaPermission::ReadAll => Ok(()),
        OktaPermission::NoPermission => Err(forbidden()),
    }
}

async fn me(State(state): State<Arc<OktaState>>, headers: HeaderMap) -> Result<Response, Refusal> {
    let permission = authenticate(&state, &headers)?;
    let tenant = state.tenant.read().expect("tenant lock");
    let id = match permission {
        OktaPermission::ReadAll => &tenant.admin_id,
        OktaPermission::NoPermission => &tenant.non_admin_id,
    };
    let user = tenant.users.get(id).ok_or_else(invalid_token)?;
    Ok(Json(user.to_json(&state.base_url)).into_response())
}

/// `limit` as Okta reads it: absent → the default, above the maximum → the maximum.
fn limit(query: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, Refusal> {
    match query.get("limit") {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) => Ok((n.max(1) as usize).min(max)),
            Err(_) => Err(error(StatusCode::BAD_REQUEST, "E0000001", "Api validation failed: limit")),
        },
    }
}

/// The two separate `Link` headers Okta sends: `self` always, `next` while more remain.
fn links(
    base: &str,
    path: &str,
    query: &HashMap<String, String>,
    limit: usize,
    next: Option<String>,
) -> HeaderMap {
    let limit = limit.to_string();
    let mut self_query: Vec<(&str, &str)> = Vec::new();
    if let Some(after) = query.get("after") {
        self_query.push(("after", after));
    }
    self_query.push(("limit", &limit));
    let mut headers = HeaderMap::new();
    let self_link = format!("<{}>; rel=\"self\"", absolute(base, path, &self_query));
    headers.append(header::LINK, HeaderValue::from_str(&self_link).expect("ASCII link"));
    if let Some(after) = next {
        let next_link =
            format!("<{}>; rel=\"next\"", absolute(base, path, &[("after", &after), ("limit", &limit)]));
        headers.append(header::LINK, HeaderValue::from_str(&next_link).expect("ASCII link"));
    }
    headers
}

async fn list_users(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    may_list(&state, &headers)?;
    let limit = limit(&query, 200, 200)?;
    // DEPROVISIONED users only appear when a filter or search asks for them.
    let everyone = query.contains_key("filter") || query.contains_key("search");
    let tenant = state.tenant.read().expect("tenant lock");
    let (users, next) = page(&tenant.users, query.get("after").map(String::as_str), limit, |u| {
        everyone || u.status != "DEPROVISIONED"
    });
    let body: Vec<Value> = users.iter().map(|u| u.to_json(&state.base_url)).collect();
    Ok((links(&state.base_url, "/api/v1/users", &query, limit, next), Json(body)).into_response())
}

async fn list_groups(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    may_list(&state, &headers)?;
    let limit = limit(&query, 10_000, 10_000)?;
    let stats = query.get("expand").is_some_and(|e| e.split(',').any(|x| x == "stats"));
    let tenant = state.tenant.read().expect("tenant lock");
    let (groups, next) = page(&tenant.groups, query.get("after").map(String::as_str), limit, |_| true);
    let body: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut json = g.to_json(&state.base_url);
            if stats {
                json["_embedded"] = json!({"stats": {"usersCount": g.members.len()}});
            }
            json
        })
        .collect();
    Ok((links(&state.base_url, "/api/v1/groups", &query, limit, next), Json(body)).into_response())
}
