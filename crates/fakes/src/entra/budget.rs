//! Graph's identity and access throttling: every request of an app in a tenant costs resource
//! units, and the app may spend only so many in a window ("Identity and access service limits",
//! <https://learn.microsoft.com/en-us/graph/throttling-limits>).
//!
//! Graph calls its bucket a token bucket and gives no refill rate; the fake keeps the stricter
//! reading of "N resource units per 10 seconds": what was spent in the last window, sliding. A
//! client that never goes over that never meets a token bucket's limit either. A refused request
//! costs nothing here (Graph does not say whether it does).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

use super::EntraState;
use super::tenant::Kind;
use crate::common::{now, seconds};

/// The documented window of the app+tenant resource-unit limit.
const WINDOW: Duration = Duration::from_secs(10);

/// The documented resource units an app may spend in a tenant each [`WINDOW`], by the tenant's
/// size: S under 50 users, M from 50 to 500, L above 500.
fn documented_units(users: usize) -> u32 {
    match users {
        0..50 => 3_500,
        50..=500 => 5_000,
        _ => 8_000,
    }
}

/// What each app spent, and what the windows met, for tests.
#[derive(Debug, Default)]
pub(super) struct Budget {
    /// Units a window and its length, when set; else the documented figures for the tenant.
    set: Option<(u32, Duration)>,
    /// Each app's charges in its current window, oldest first.
    spent: HashMap<String, VecDeque<(Instant, u32)>>,
    busiest: u32,
    refused: u64,
    charged: u64,
}

/// A charge that fits: the units it cost and how full the window now is (a fraction of it).
struct Charged {
    cost: u32,
    used: f64,
}

impl Budget {
    pub(super) fn set(&mut self, units: u32, window: Duration) {
        self.set = Some((units.max(1), window.max(Duration::from_millis(1))));
    }

    /// Charges `cost` to `app` at `now` within `units` a `window`; when it does not fit, how long
    /// until enough of the window has slid past.
    fn charge(
        &mut self,
        app: &str,
        cost: u32,
        units: u32,
        window: Duration,
        now: Instant,
    ) -> Result<Charged, Duration> {
        let spent = self.spent.entry(app.to_owned()).or_default();
        while spent.front().is_some_and(|(at, _)| *at + window <= now) {
            spent.pop_front();
        }
        let used: u32 = spent.iter().map(|(_, c)| c).sum();
        if used + cost > units {
            self.refused += 1;
            let mut freed = 0;
            let until = spent.iter().find_map(|(at, c)| {
                freed += c;
                (used - freed + cost <= units).then_some(*at + window)
            });
            return Err(until.map_or(window, |until| until - now));
        }
        spent.push_back((now, cost));
        self.charged += u64::from(cost);
        self.busiest = self.busiest.max(used + cost);
        Ok(Charged { cost, used: f64::from(used + cost) / f64::from(units) })
    }

    pub(super) fn busiest(&self) -> u32 {
        self.busiest
    }

    pub(super) fn refused(&self) -> u64 {
        self.refused
    }

    pub(super) fn charged(&self) -> u64 {
        self.charged
    }
}

/// A request's cost as the limits' table gives it: `GET users` 2, `GET groups/{id}/members` 3,
/// `GET groups/{id}/transitiveMembers` 5, any other 1; `$select` takes one off, `$expand` adds
/// one, a `$top` under 20 takes one off, and nothing costs less than 1. The table names paths,
/// not functions: `users/delta` is read as a path it does not list (1), which the documentation
/// leaves open. Role assignments and subscriptions, which the documentation does not put under
/// these limits, are metered all the same: a client that keeps to this keeps to Graph.
fn cost(method: &Method, path: &str, query: Option<&str>) -> u32 {
    let segments: Vec<&str> = path.trim_start_matches("/v1.0").trim_matches('/').split('/').collect();
    let base: i32 = match (method == Method::GET, segments.as_slice()) {
        (true, ["users"]) => 2,
        (true, ["groups", _, "members"]) => 3,
        (true, ["groups", _, "transitiveMembers"]) => 5,
        _ => 1,
    };
    let options = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes());
    let adjusted = options.fold(base, |cost, (key, value)| match key.as_ref() {
        "$select" => cost - 1,
        "$expand" => cost + 1,
        "$top" if value.parse::<u32>().is_ok_and(|top| top < 20) => cost - 1,
        _ => cost,
    });
    adjusted.max(1) as u32
}

/// Meters every Graph request of a known token against its app's budget before it is served:
/// a 429 with `Retry-After` past the limit, else the reply with `x-ms-resource-unit` and, above
/// 0.8 of the limit, `x-ms-throttle-limit-percentage`. Requests without a valid token go on to
/// be refused as Graph refuses them.
pub(super) async fn meter(State(state): State<Arc<EntraState>>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/v1.0/") {
        return next.run(request).await;
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "))
        .map(str::trim);
    let app = token.and_then(|t| state.tokens.lock().expect("tokens lock").get(t).map(|g| g.app.clone()));
    let Some(app) = app else { return next.run(request).await };
    let cost = cost(request.method(), request.uri().path(), request.uri().query());
    let users = state.tenant.read().expect("tenant lock").count(Kind::Users);
    let charged = {
        let mut budget = state.budget.lock().expect("budget lock");
        let (units, window) = budget.set.unwrap_or((documented_units(users), WINDOW));
        budget.charge(&app, cost, units, window, Instant::now())
    };
    match charged {
        Ok(Charged { cost, used }) => {
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            headers.insert("x-ms-resource-unit", HeaderValue::from(cost));
            // Graph's examples give one decimal ("0.8", "1.2"); two keep a client's reading of
            // others' use finer, and any float parses.
            if used >= 0.8 {
                let percentage =
                    HeaderValue::from_str(&format!("{used:.2}")).expect("digits are header values");
                headers.insert("x-ms-throttle-limit-percentage", percentage);
            }
            response
        }
        Err(wait) => throttled(&state, &app, wait),
    }
}

/// Graph's 429: its documented body, `Retry-After` in seconds (fractional, as in Graph's own
/// example), and the scope and reason headers of a throttled reply.
fn throttled(state: &EntraState, app: &str, wait: Duration) -> Response {
    let tenant = state.tenant.read().expect("tenant lock").tenant_id.clone();
    let body = json!({"error": {
        "code": "TooManyRequests",
        "innerError": {
            "code": "429",
            "date": seconds(now()),
            "message": "Please retry after",
            "request-id": uuid::Uuid::new_v4(),
            "status": "429",
        },
        "message": "Please retry again later.",
    }});
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let headers = response.headers_mut();
    let seconds = format!("{:.3}", wait.as_secs_f64().max(0.001));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_str(&seconds).expect("digits are header values"));
    // The documentation's example names the limit `ReadWrite`; which one a read over its resource
    // units names is not said.
    let scope = format!("Tenant_Application/ReadWrite/{app}/{tenant}");
    headers.insert("x-ms-throttle-scope", HeaderValue::from_str(&scope).expect("ids are header values"));
    headers.insert("x-ms-throttle-information", HeaderValue::from_static("ResourceUnitLimitExceeded"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_cost_what_the_limits_table_says() {
        let get = |path: &str, query: Option<&str>| cost(&Method::GET, path, query);
        assert_eq!(get("/v1.0/users", None), 2);
        assert_eq!(get("/v1.0/users", Some("$select=id,mail")), 1);
        assert_eq!(get("/v1.0/users", Some("$top=1&$select=id")), 1, "never under 1");
        assert_eq!(get("/v1.0/groups/g1/members", Some("$top=999")), 3);
        assert_eq!(get("/v1.0/groups/g1/transitiveMembers", Some("$top=5")), 4);
        assert_eq!(get("/v1.0/devices", Some("$expand=registeredOwners&$top=100")), 2);
        assert_eq!(get("/v1.0/users/delta", Some("$skiptoken=x")), 1);
        assert_eq!(cost(&Method::POST, "/v1.0/subscriptions", None), 1);
    }

    #[test]
    fn a_window_slides_and_says_when_a_charge_fits_again() {
        let mut budget = Budget::default();
        let start = Instant::now();
        let window = Duration::from_secs(10);
        assert!(budget.charge("app", 6, 10, window, start).is_ok());
        let later = start + Duration::from_secs(4);
        assert!((budget.charge("app", 3, 10, window, later).unwrap().used - 0.9).abs() < 1e-9);
        assert_eq!(budget.charge("app", 2, 10, window, later).err(), Some(Duration::from_secs(6)));
        assert!(budget.charge("other", 10, 10, window, later).is_ok(), "each app has its own");
        assert!(budget.charge("app", 2, 10, window, start + window).is_ok(), "the first charge slid out");
        assert_eq!((budget.busiest(), budget.refused(), budget.charged()), (10, 1, 21));
    }

    #[test]
    fn the_tenant_size_sets_the_documented_budget() {
        assert_eq!([0, 49, 50, 500, 501].map(documented_units), [3_500, 3_500, 5_000, 5_000, 8_000]);
    }
}
