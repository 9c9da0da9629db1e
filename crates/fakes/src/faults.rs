//! Faults a test asks a fake to inject, consumed request by request: rate-limit bursts, server
//! errors, slow and truncated replies, and pages a listing silently skips.
//!
//! Each fake renders a fault in its own vendor's words (Okta's `E0000047` with
//! `X-Rate-Limit-Reset`, Google's `userRateLimitExceeded`…); this module only keeps count.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::http::header::CONTENT_LENGTH;
use axum::response::Response;

/// A paged list whose pages a fault can drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    Users,
    Groups,
    /// The members of any group.
    Members,
    /// Registered devices, where a source lists them.
    Devices,
}

/// What the next request meets before the API looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    Pass,
    /// Refused as rate-limited; the client is told to wait this long.
    RateLimited(Duration),
    Failed(StatusCode),
}

/// The faults a test injected into one fake: set through its handle, consumed by its handlers.
#[derive(Debug, Default)]
pub(crate) struct Faults(Mutex<Pending>);

#[derive(Debug, Default)]
struct Pending {
    rate_limited: u32,
    rate_limit_wait: Duration,
    failing: u32,
    failure: Option<StatusCode>,
    delay: Duration,
    truncated: u32,
    /// For each listing with a page to drop: how many of its pages to serve first.
    drops: Vec<(Listing, usize)>,
}

impl Faults {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.0.lock().expect("faults lock")
    }

    pub(crate) fn rate_limit(&self, requests: u32, wait: Duration) {
        let mut pending = self.pending();
        pending.rate_limited = requests;
        pending.rate_limit_wait = wait;
    }

    /// `status` is a bare number, as every fake's `fail_next` takes it; one that is no HTTP
    /// status is the calling test's mistake.
    pub(crate) fn fail(&self, requests: u32, status: u16) {
        let status = StatusCode::from_u16(status).expect("an HTTP status");
        let mut pending = self.pending();
        pending.failing = requests;
        pending.failure = Some(status);
    }

    pub(crate) fn slow(&self, delay: Duration) {
        self.pending().delay = delay;
    }

    pub(crate) fn truncate(&self, requests: u32) {
        self.pending().truncated = requests;
    }

    pub(crate) fn drop_page(&self, listing: Listing, after_pages: usize) {
        let mut pending = self.pending();
        pending.drops.retain(|(l, _)| *l != listing);
        pending.drops.push((listing, after_pages));
    }

    /// Rate limits first, then server errors: a gateway answers both before the API runs.
    pub(crate) fn gate(&self) -> Gate {
        let mut pending = self.pending();
        if pending.rate_limited > 0 {
            pending.rate_limited -= 1;
            return Gate::RateLimited(pending.rate_limit_wait);
        }
        match pending.failure {
            Some(status) if pending.failing > 0 => {
                pending.failing -= 1;
                Gate::Failed(status)
            }
            _ => Gate::Pass,
        }
    }

    /// Whether this successful reply is to be cut short.
    fn take_truncation(&self) -> bool {
        let mut pending = self.pending();
        let cut = pending.truncated > 0;
        pending.truncated = pending.truncated.saturating_sub(1);
        cut
    }

    /// Whether this page of `listing` is to be skipped.
    pub(crate) fn take_drop(&self, listing: Listing) -> bool {
        let mut pending = self.pending();
        let Some(i) = pending.drops.iter().position(|(l, _)| *l == listing) else {
            return false;
        };
        match &mut pending.drops[i].1 {
            0 => {
                pending.drops.remove(i);
                true
            }
            remaining => {
                *remaining -= 1;
                false
            }
        }
    }

    /// The reply of a request that passed the gate: made after the configured delay, and cut
    /// short when it succeeded and a truncation is due.
    pub(crate) async fn serve(&self, reply: impl Future<Output = Response>) -> Response {
        let response = self.serve_whole(reply).await;
        if response.status().is_success() && self.take_truncation() {
            truncated(response).await
        } else {
            response
        }
    }

    /// The reply after the configured delay, never cut: half of a bare number still reads as a
    /// number, so no client could tell, and no truncation is spent on it.
    pub(crate) async fn serve_whole(&self, reply: impl Future<Output = Response>) -> Response {
        let delay = self.pending().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        reply.await
    }
}

/// The page after the cursor `after` (a page and the cursor after it, as `fetch` returns them),
/// or with `drop` the page after that in its place, so the skipped page's items are never served.
pub(crate) fn dropping<T>(
    drop: bool,
    after: Option<&str>,
    fetch: impl Fn(Option<&str>) -> (Vec<T>, Option<String>),
) -> (Vec<T>, Option<String>) {
    match (drop, fetch(after)) {
        (false, first) => first,
        (true, (_, Some(skipped))) => fetch(Some(&skipped)),
        (true, (_, None)) => (Vec::new(), None),
    }
}

/// The reply with only the first half of its body, framed as a complete reply: the JSON is cut
/// mid-value, as by a proxy that gave up, so only a client that parses notices.
async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes.slice(..bytes.len() / 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_in_order() {
        let faults = Faults::default();
        faults.rate_limit(1, Duration::from_secs(3));
        faults.fail(2, 502);
        assert_eq!(faults.gate(), Gate::RateLimited(Duration::from_secs(3)));
        assert_eq!(faults.gate(), Gate::Failed(StatusCode::BAD_GATEWAY));
        assert_eq!(faults.gate(), Gate::Failed(StatusCode::BAD_GATEWAY));
        assert_eq!(faults.gate(), Gate::Pass);
        faults.truncate(1);
        assert!(faults.take_truncation());
        assert!(!faults.take_truncation());
    }

    #[test]
    fn a_drop_waits_for_its_page() {
        let faults = Faults::default();
        faults.drop_page(Listing::Users, 1);
        assert!(!faults.take_drop(Listing::Groups));
        assert!(!faults.take_drop(Listing::Users));
        assert!(faults.take_drop(Listing::Users));
        assert!(!faults.take_drop(Listing::Users));
    }

    #[test]
    fn a_dropped_page_is_replaced_by_the_next() {
        let pages = |after: Option<&str>| match after {
            None => (vec!["a".to_string()], Some("a".to_string())),
            Some(after) => (vec![format!("after {after}")], None),
        };
        assert_eq!(dropping(false, None, pages).0, ["a"]);
        assert_eq!(dropping(true, None, pages).0, ["after a"]);
        assert_eq!(dropping(true, Some("a"), pages), (vec![], None));
    }
}
