//! The Directory API's per-user quota: by default 2,400 queries a minute per user per Google
//! Cloud project, the user being the admin a service account impersonates; past it Google answers
//! 403 `userRateLimitExceeded` in its error envelope, with no `Retry-After` ("Directory API:
//! Limits and Quotas", <https://developers.google.com/workspace/admin/directory/v1/limits>).
//!
//! Google does not say how it counts a minute; the fake keeps the stricter reading, what was
//! served in the last window, sliding: a client that keeps to that keeps to any fixed minute too.
//! A refused request is not counted (Google does not say whether it is).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::GoogleState;
use super::directory_api::error_in;

/// The documented default: queries a window per project and user, and the window.
const DOCUMENTED: (u32, Duration) = (2_400, Duration::from_secs(60));

/// What each project and admin was served, and what the windows met, for tests.
#[derive(Debug, Default)]
pub(super) struct Quota {
    /// Queries a window and its length, when set; else [`DOCUMENTED`].
    set: Option<(u32, Duration)>,
    /// Each (project, admin)'s requests in its current window, oldest first.
    served: HashMap<(String, String), VecDeque<Instant>>,
    busiest: u32,
    refused: u64,
    total: u64,
}

impl Quota {
    pub(super) fn set(&mut self, queries: u32, window: Duration) {
        self.set = Some((queries.max(1), window.max(Duration::from_millis(1))));
    }

    /// Counts a request of `project` as `admin` at `now`; `false` when the window is full.
    fn take(&mut self, project: &str, admin: &str, now: Instant) -> bool {
        let (queries, window) = self.set.unwrap_or(DOCUMENTED);
        let served = self.served.entry((project.to_owned(), admin.to_ascii_lowercase())).or_default();
        while served.front().is_some_and(|at| *at + window <= now) {
            served.pop_front();
        }
        if served.len() as u32 >= queries {
            self.refused += 1;
            return false;
        }
        served.push_back(now);
        self.total += 1;
        self.busiest = self.busiest.max(served.len() as u32);
        true
    }

    pub(super) fn busiest(&self) -> u32 {
        self.busiest
    }

    pub(super) fn refused(&self) -> u64 {
        self.refused
    }

    pub(super) fn served(&self) -> u64 {
        self.total
    }
}

/// Counts every Directory request of a valid delegated token against its project and admin
/// before anything else answers it; over the quota, Google's 403. Requests without such a token
/// go on to be refused as Google refuses them.
pub(super) async fn meter(State(state): State<Arc<GoogleState>>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "))
        .map(str::trim);
    let payer = token.and_then(|t| {
        let tokens = state.tokens.lock().expect("tokens lock");
        let grant = tokens.get(t).filter(|g| g.expires > std::time::Instant::now())?;
        Some((grant.project_id.clone(), grant.subject.clone()?))
    });
    let Some((project, admin)) = payer else { return next.run(request).await };
    if !state.quota.lock().expect("quota lock").take(&project, &admin, Instant::now()) {
        let message = "User Rate Limit Exceeded";
        return error_in(StatusCode::FORBIDDEN, "usageLimits", "userRateLimitExceeded", message)
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_slides_per_project_and_admin() {
        let mut quota = Quota::default();
        quota.set(2, Duration::from_secs(60));
        let start = Instant::now();
        assert!(quota.take("p", "admin@example.com", start));
        assert!(quota.take("p", "Admin@example.com", start + Duration::from_secs(30)), "one admin");
        assert!(!quota.take("p", "admin@example.com", start + Duration::from_secs(59)));
        assert!(quota.take("other", "admin@example.com", start + Duration::from_secs(59)), "its own project");
        assert!(quota.take("p", "someone@example.com", start + Duration::from_secs(59)), "its own admin");
        assert!(quota.take("p", "admin@example.com", start + Duration::from_secs(60)), "the first slid out");
        assert!(!quota.take("p", "admin@example.com", start + Duration::from_secs(89)));
        assert_eq!((quota.busiest(), quota.refused(), quota.served()), (2, 2, 5));
    }

    #[test]
    fn the_default_is_2400_a_minute() {
        let mut quota = Quota::default();
        let now = Instant::now();
        assert!((0..2_400).all(|_| quota.take("p", "a@example.com", now)));
        assert!(!quota.take("p", "a@example.com", now + Duration::from_secs(59)));
        assert!(quota.take("p", "a@example.com", now + Duration::from_secs(60)));
    }
}
