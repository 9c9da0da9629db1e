//! The fake org's HTTP surface: `SSWS` auth, Okta error objects, `Link` pagination, `filter`,
//! the `X-Rate-Limit-*` headers on every response, and the faults a test injects.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};

use super::filter::{Field, Filter};
use super::hooks;
use super::tenant::{OktaGroup, OktaUser};
use super::{OktaPermission, OktaState};
use crate::common::{
    BASE62, Refusal, absolute, after_cursor, epoch_seconds, http_date, page, secret, take_page,
};
use crate::faults::{Gate, Listing, shaped};

pub(super) fn router(state: Arc<OktaState>) -> Router {
    Router::new()
        .route("/api/v1/users/me", get(me))
        .route("/api/v1/users", get(list_users))
        .route("/api/v1/users/{id}", get(get_user))
        .route("/api/v1/users/{id}/roles", get(user_roles))
        .route("/api/v1/users/{id}/factors", get(user_factors))
        .route("/api/v1/groups", get(list_groups))
        .route("/api/v1/groups/{id}/users", get(group_members))
        .route("/api/v1/iam/assignees/users", get(assignees))
        .route("/api/v1/eventHooks", get(hooks::list).post(hooks::create))
        .route("/api/v1/eventHooks/{id}", get(hooks::get).delete(hooks::delete))
        .route("/api/v1/eventHooks/{id}/lifecycle/verify", post(hooks::verify))
        .route("/api/v1/eventHooks/{id}/lifecycle/deactivate", post(hooks::deactivate))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

fn rate_headers(response: &mut Response, limit: u32, remaining: u32, reset: u64) {
    let headers = response.headers_mut();
    headers.insert("x-rate-limit-limit", HeaderValue::from(limit));
    headers.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    headers.insert("x-rate-limit-reset", HeaderValue::from(reset));
}

/// The endpoints Okta limits separately, each with its own window.
pub const OKTA_BUCKETS: &[&str] = &[
    "/api/v1/users",
    "/api/v1/users/{id}",
    "/api/v1/users/{id}/roles",
    "/api/v1/users/{id}/factors",
    "/api/v1/groups",
    "/api/v1/groups/{id}/users",
    "/api/v1/iam/assignees/users",
    "/api/v1/eventHooks",
];

/// The rate-limit bucket a request counts against.
fn bucket(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1", "users"] => "/api/v1/users",
        ["api", "v1", "users", _] => "/api/v1/users/{id}",
        ["api", "v1", "users", _, "roles"] => "/api/v1/users/{id}/roles",
        ["api", "v1", "users", _, "factors"] => "/api/v1/users/{id}/factors",
        ["api", "v1", "groups"] => "/api/v1/groups",
        ["api", "v1", "groups", _, "users"] => "/api/v1/groups/{id}/users",
        ["api", "v1", "iam", "assignees", "users"] => "/api/v1/iam/assignees/users",
        _ => "/api/v1/eventHooks",
    }
}

/// What every request meets first: the limit on requests in flight, injected faults, then the
/// rate-limit window, then (after the handler) truncation and the rate-limit headers. A 429
/// carries its own `Date`, so the wait it asks for is exact whatever second the reply leaves in.
async fn gate(State(state): State<Arc<OktaState>>, request: Request, next: Next) -> Response {
    let now = epoch_seconds();
    let bucket = bucket(request.uri().path());
    let limit = state.bucket_limits.lock().expect("limits lock").get(bucket).copied();
    let limit = limit.unwrap_or_else(|| state.limit_per_minute.load(Ordering::Relaxed));
    let rate_limited = |reset: u64| {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        )
        .into_response();
        rate_headers(&mut response, limit, 0, reset);
        response.headers_mut().insert(header::DATE, http_date(now));
        response
    };
    // Before the faults, so a refused request uses up none of them.
    let serving = Serving::new(&state);
    let concurrency = state.concurrency_limit.load(Ordering::Relaxed);
    if concurrency > 0 && serving.at_once > concurrency {
        state.concurrency_refused.fetch_add(1, Ordering::Relaxed);
        let mut response = rate_limited(now + 1);
        rate_headers(&mut response, concurrency, 0, now + 1);
        return response;
    }
    let fault = state.faults.gate();
    match fault {
        Gate::RateLimited(wait) => return rate_limited(now + wait.as_secs().max(1)),
        Gate::Revoke => state.tokens.lock().expect("tokens lock").clear(),
        Gate::Pass | Gate::Failed(_) => {}
    }
    let seconds = state.window_seconds.load(Ordering::Relaxed);
    let (remaining, reset) = {
        let mut windows = state.rate.lock().expect("rate lock");
        let window = windows.entry(bucket).or_default();
        let taken = window.take(now, limit, seconds);
        let mut busiest = state.busiest.lock().expect("busiest lock");
        let most = busiest.entry(bucket).or_default();
        *most = (*most).max(window.used());
        *state.served.lock().expect("served lock").entry(bucket).or_default() += 1;
        taken
    };
    let Some(remaining) = remaining else {
        state.rate_limited.fetch_add(1, Ordering::Relaxed);
        return rate_limited(reset);
    };
    let mut response = match fault {
        Gate::Failed(status) => error(status, "E0000009", "Internal Server Error").into_response(),
        _ => state.faults.serve(next.run(request)).await,
    };
    rate_headers(&mut response, limit, remaining, reset);
    response
}

/// A request being served, counted against the org's concurrent-request limit until dropped.
struct Serving<'s> {
    state: &'s OktaState,
    /// Requests being served with this one.
    at_once: u32,
}

impl<'s> Serving<'s> {
    fn new(state: &'s OktaState) -> Serving<'s> {
        let at_once = state.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        state.most_in_flight.fetch_max(at_once, Ordering::Relaxed);
        Serving { state, at_once }
    }
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An Okta error object with every field the real one carries.
pub(super) fn error_with_causes(status: StatusCode, code: &str, summary: &str, causes: &[String]) -> Refusal {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    let body = json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": format!("oae{}", secret(BASE62, 22)),
        "errorCauses": causes,
    });
    Refusal::new((status, Json(body)))
}

pub(super) fn error(status: StatusCode, code: &str, summary: &str) -> Refusal {
    error_with_causes(status, code, summary, &[])
}

fn invalid_token() -> Refusal {
    error(StatusCode::UNAUTHORIZED, "E0000011", "Invalid token provided")
}

fn forbidden() -> Refusal {
    error(StatusCode::FORBIDDEN, "E0000006", "You do not have permission to perform the requested action")
}

fn resource_not_found(id: &str, kind: &str) -> Refusal {
    error(StatusCode::NOT_FOUND, "E0000007", &format!("Not found: Resource not found: {id} ({kind})"))
}

async fn not_found(request: Request) -> Refusal {
    resource_not_found(request.uri().path(), "GenericResource")
}

/// The token's entry, or the 401 Okta sends for a missing, unknown or revoked token.
/// The org's address as the request named it: Okta's links stay on the host a client asked.
fn asked_base(state: &OktaState, headers: &HeaderMap) -> String {
    let scheme = state.base_url.split_once("://").map_or("http", |(scheme, _)| scheme);
    match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => format!("{scheme}://{host}"),
        None => state.base_url.clone(),
    }
}

pub(super) fn authenticate(state: &OktaState, headers: &HeaderMap) -> Result<OktaPermission, Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("SSWS "))
        .map(str::trim)
        .ok_or_else(invalid_token)?;
    state.tokens.lock().expect("tokens lock").get(token).copied().ok_or_else(invalid_token)
}

/// Reading users and groups.
fn may_list(state: &OktaState, headers: &HeaderMap) -> Result<(), Refusal> {
    match authenticate(state, headers)? {
        OktaPermission::ReadAll | OktaPermission::UsersAndGroupsOnly => Ok(()),
        OktaPermission::NoPermission => Err(forbidden()),
    }
}

/// Reading admin roles and enrolled factors.
fn may_read_security(state: &OktaState, headers: &HeaderMap) -> Result<(), Refusal> {
    match authenticate(state, headers)? {
        OktaPermission::ReadAll => Ok(()),
        OktaPermission::UsersAndGroupsOnly | OktaPermission::NoPermission => Err(forbidden()),
    }
}

async fn me(State(state): State<Arc<OktaState>>, headers: HeaderMap) -> Result<Response, Refusal> {
    let permission = authenticate(&state, &headers)?;
    let tenant = state.tenant.read().expect("tenant lock");
    let id = match permission {
        OktaPermission::ReadAll => &tenant.admin_id,
        OktaPermission::UsersAndGroupsOnly | OktaPermission::NoPermission => &tenant.non_admin_id,
    };
    let user = tenant.user(id).ok_or_else(invalid_token)?;
    Ok(Json(user.to_json(&state.base_url)).into_response())
}

/// The query as sent, in order, so `Link`s can repeat it.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `limit` as Okta reads it: absent → the default, above the maximum → the maximum.
    fn limit(&self, default: usize, max: usize) -> Result<usize, Refusal> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) => Ok((n.max(1) as usize).min(max)),
                Err(_) => Err(error(StatusCode::BAD_REQUEST, "E0000001", "Api validation failed: limit")),
            },
        }
    }

    /// The `filter` (or `search`, which the fake answers the same way), if any.
    fn filter(&self, attributes: &[(&str, bool)]) -> Result<Option<Filter>, Refusal> {
        match self.get("filter").or_else(|| self.get("search")) {
            None => Ok(None),
            Some(text) => Filter::parse(text, attributes).map(Some).map_err(|cause| {
                error_with_causes(StatusCode::BAD_REQUEST, "E0000031", "Invalid search criteria.", &[cause])
            }),
        }
    }

    /// The `Link` headers Okta sends, one per relation: `self` always, `next` while more remain.
    /// Both repeat every parameter of the request, with `after` moved to the next page.
    fn links(&self, base: &str, path: &str, limit: usize, next: Option<String>) -> HeaderMap {
        let limit = limit.to_string();
        let kept: Vec<(&str, &str)> = self
            .0
            .iter()
            .filter(|(k, _)| k != "after" && k != "limit")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let with_after = |after: Option<&str>| {
            let mut query = kept.clone();
            query.extend(after.map(|a| ("after", a)));
            query.push(("limit", &limit));
            absolute(base, path, &query)
        };
        let mut headers = HeaderMap::new();
        let self_link = format!("<{}>; rel=\"self\"", with_after(self.get("after")));
        headers.append(header::LINK, HeaderValue::from_str(&self_link).expect("ASCII link"));
        if let Some(after) = next {
            let next_link = format!("<{}>; rel=\"next\"", with_after(Some(&after)));
            headers.append(header::LINK, HeaderValue::from_str(&next_link).expect("ASCII link"));
        }
        headers
    }
}

const USER_FILTERS: &[(&str, bool)] = &[("id", false), ("status", false), ("lastUpdated", true)];
const GROUP_FILTERS: &[(&str, bool)] =
    &[("id", false), ("type", false), ("lastUpdated", true), ("lastMembershipUpdated", true)];

fn user_field<'a>(user: &'a OktaUser, attribute: &str) -> Option<Field<'a>> {
    match attribute {
        "id" => Some(Field::Text(user.id())),
        "status" => Some(Field::Text(user.status)),
        "lastUpdated" => Some(Field::Time(user.last_updated)),
        _ => None,
    }
}

fn group_field<'a>(group: &'a OktaGroup, attribute: &str) -> Option<Field<'a>> {
    match attribute {
        "id" => Some(Field::Text(group.id())),
        "type" => Some(Field::Text(group.kind)),
        "lastUpdated" => Some(Field::Time(group.last_updated)),
        "lastMembershipUpdated" => Some(Field::Time(group.last_membership_updated)),
        _ => None,
    }
}

async fn list_users(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, Refusal> {
    let params = Params(params);
    may_list(&state, &headers)?;
    let limit = state.faults.page_size(params.limit(200, 200)?);
    let filter = params.filter(USER_FILTERS)?;
    // DEPROVISIONED users only appear when a filter or search asks for them.
    let keep = |u: &OktaUser| match &filter {
        None => u.status != "DEPROVISIONED",
        Some(f) => f.matches(|a| user_field(u, a)),
    };
    let faults = state.faults.take_page(Listing::Users);
    let tenant = state.tenant.read().expect("tenant lock");
    let users = tenant.users_by_id();
    let (found, next) = shaped(faults, params.get("after"), limit, |after, n| page(users, after, n, keep));
    let body: Vec<Value> = found.iter().map(|u| u.to_json(&state.base_url)).collect();
    Ok((params.links(&asked_base(&state, &headers), "/api/v1/users", limit, next), Json(body))
        .into_response())
}

/// What `render` serves of the user `id`, or Okta's 404 when there is no such user.
fn user_resource<T: Serialize>(
    state: &OktaState,
    id: &str,
    render: impl FnOnce(&OktaUser, &str) -> T,
) -> Result<Response, Refusal> {
    let tenant = state.tenant.read().expect("tenant lock");
    let user = tenant.user(id).ok_or_else(|| resource_not_found(id, "User"))?;
    Ok(Json(render(user, &state.base_url)).into_response())
}

async fn get_user(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    may_list(&state, &headers)?;
    user_resource(&state, &id, OktaUser::to_json)
}

async fn user_roles(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    may_read_security(&state, &headers)?;
    user_resource(&state, &id, OktaUser::roles_json)
}

async fn user_factors(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    may_read_security(&state, &headers)?;
    user_resource(&state, &id, OktaUser::factors_json)
}

async fn list_groups(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, Refusal> {
    let params = Params(params);
    may_list(&state, &headers)?;
    let limit = state.faults.page_size(params.limit(10_000, 10_000)?);
    let filter = params.filter(GROUP_FILTERS)?;
    let stats = params.get("expand").is_some_and(|e| e.split(',').any(|x| x == "stats"));
    let keep = |g: &OktaGroup| filter.as_ref().is_none_or(|f| f.matches(|a| group_field(g, a)));
    let faults = state.faults.take_page(Listing::Groups);
    let tenant = state.tenant.read().expect("tenant lock");
    let groups = tenant.groups_by_id();
    let (found, next) = shaped(faults, params.get("after"), limit, |after, n| page(groups, after, n, keep));
    let body: Vec<Value> = found
        .iter()
        .map(|g| {
            let mut json = g.to_json(&state.base_url);
            if stats {
                let href = format!("{}/api/v1/groups/{}/stats", state.base_url, g.id());
                json["_embedded"] = json!({"stats": {
                    "usersCount": g.member_ids().len(),
                    "appsCount": 0,
                    "groupPushMappingsCount": 0,
                    "hasAdminPrivilege": false,
                    "_links": {"self": {"href": href}},
                }});
            }
            json
        })
        .collect();
    Ok((params.links(&asked_base(&state, &headers), "/api/v1/groups", limit, next), Json(body))
        .into_response())
}

/// Up to `limit` ids after `after`, and the cursor of the next page when more remain.
fn page_of_ids<'a>(
    ids: &'a BTreeSet<String>,
    after: Option<&str>,
    limit: usize,
) -> (Vec<&'a String>, Option<String>) {
    take_page(ids.range::<String, _>(after_cursor(after)).map(|id| (id, id)), limit)
}

async fn group_members(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, Refusal> {
    let params = Params(params);
    may_list(&state, &headers)?;
    // 1000 by default "for legacy reasons", as Okta documents; 200 is what it recommends.
    let limit = state.faults.page_size(params.limit(1_000, 10_000)?);
    if state.members_refused.lock().expect("refusals lock").contains(&id) {
        return Err(forbidden());
    }
    let faults = state.faults.take_page(Listing::Members);
    let tenant = state.tenant.read().expect("tenant lock");
    let group = tenant.group(&id).ok_or_else(|| resource_not_found(&id, "UserGroup"))?;
    let members = group.member_ids();
    let (found, next) = shaped(faults, params.get("after"), limit, |after, n| page_of_ids(members, after, n));
    let body: Vec<Value> =
        found.iter().filter_map(|m| tenant.user(m)).map(|u| u.to_json(&state.base_url)).collect();
    let path = format!("/api/v1/groups/{id}/users");
    Ok((params.links(&asked_base(&state, &headers), &path, limit, next), Json(body)).into_response())
}

/// `{"value": [...], "_links": {"self", "next"}}`: this newer API pages in its body.
async fn assignees(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, Refusal> {
    let params = Params(params);
    may_read_security(&state, &headers)?;
    let limit = state.faults.page_size(params.limit(100, 1_000)?);
    {
        let mut admin_pages = state.admin_pages.lock().expect("refusals lock");
        let (served, refused_after) = &mut *admin_pages;
        if refused_after.is_some_and(|after| *served >= after) {
            return Err(forbidden());
        }
        *served += 1;
    }
    let tenant = state.tenant.read().expect("tenant lock");
    let (found, next) = page_of_ids(tenant.assignees(), params.get("after"), limit);
    let value: Vec<Value> = found.iter().map(|id| tenant.assignee_json(id, &state.base_url)).collect();
    let path = "/api/v1/iam/assignees/users";
    let limit = limit.to_string();
    let mut links = json!({"self": {"href": absolute(&state.base_url, path, &[("limit", &limit)])}});
    if let Some(after) = next {
        let href = absolute(&state.base_url, path, &[("after", &after), ("limit", &limit)]);
        links["next"] = json!({"href": href});
    }
    Ok(Json(json!({"value": value, "_links": links})).into_response())
}
