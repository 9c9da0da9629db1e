//! Faults a test asks a fake to inject, consumed request by request: rate-limit bursts, server
//! errors, slow and truncated replies, and pages a listing silently skips.
//!
//! Each fake renders a fault in its own vendor's words (Okta's `E0000047` with
//! `X-Rate-Limit-Reset`, Google's `userRateLimitExceeded`…); this module only keeps count.

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

#[derive(Debug, Default)]
pub(crate) struct Faults {
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
    pub(crate) fn rate_limit(&mut self, requests: u32, wait: Duration) {
        self.rate_limited = requests;
        self.rate_limit_wait = wait;
    }

    pub(crate) fn fail(&mut self, requests: u32, status: StatusCode) {
        self.failing = requests;
        self.failure = Some(status);
    }

    pub(crate) fn slow(&mut self, delay: Duration) {
        self.delay = delay;
    }

    pub(crate) fn truncate(&mut self, requests: u32) {
        self.truncated = requests;
    }

    pub(crate) fn drop_page(&mut self, listing: Listing, after_pages: usize) {
        self.drops.retain(|(l, _)| *l != listing);
        self.drops.push((listing, after_pages));
    }

    /// Rate limits first, then server errors: a gateway answers both before the API runs.
    pub(crate) fn gate(&mut self) -> Gate {
        if self.rate_limited > 0 {
            self.rate_limited -= 1;
            return Gate::RateLimited(self.rate_limit_wait);
        }
        match self.failure {
            Some(status) if self.failing > 0 => {
                self.failing -= 1;
                Gate::Failed(status)
            }
            _ => Gate::Pass,
        }
    }

    pub(crate) fn delay(&self) -> Duration {
        self.delay
    }

    /// Whether this successful reply is to be cut short.
    pub(crate) fn take_truncation(&mut self) -> bool {
        let cut = self.truncated > 0;
        self.truncated = self.truncated.saturating_sub(1);
        cut
    }

    /// Whether this page of `listing` is to be skipped.
    pub(crate) fn take_drop(&mut self, listing: Listing) -> bool {
        let Some(i) = self.drops.iter().position(|(l, _)| *l == listing) else {
            return false;
        };
        match &mut self.drops[i].1 {
            0 => {
                self.drops.remove(i);
                true
            }
            remaining => {
                *remaining -= 1;
                false
            }
        }
    }
}

/// `first` (a page and the cursor after it), or with `drop` the page after it in its place
/// (fetched with `next_page`), so the skipped page's items are never served.
pub(crate) fn dropping<T>(
    drop: bool,
    first: (Vec<T>, Option<String>),
    next_page: impl FnOnce(&str) -> (Vec<T>, Option<String>),
) -> (Vec<T>, Option<String>) {
    match (drop, first) {
        (false, first) => first,
        (true, (_, Some(after))) => next_page(&after),
        (true, (_, None)) => (Vec::new(), None),
    }
}

/// The reply with only the first half of its body, framed as a complete reply: the JSON is cut
/// mid-value, as by a proxy that gave up, so only a client that parses notices.
pub(crate) async fn truncated(response: Response) -> Response {
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
        let mut faults = Faults::default();
        faults.rate_limit(1, Duration::from_secs(3));
        faults.fail(2, StatusCode::BAD_GATEWAY);
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
        let mut faults = Faults::default();
        faults.drop_page(Listing::Users, 1);
        assert!(!faults.take_drop(Listing::Groups));
        assert!(!faults.take_drop(Listing::Users));
        assert!(faults.take_drop(Listing::Users));
        assert!(!faults.take_drop(Listing::Users));
    }

    #[test]
    fn a_dropped_page_is_replaced_by_the_next() {
        let next = |after: &str| (vec![format!("after {after}")], None);
        assert_eq!(dropping(false, (vec!["a".to_string()], Some("a".into())), next).0, ["a"]);
        assert_eq!(dropping(true, (vec!["a".to_string()], Some("a".into())), next).0, ["after a"]);
        assert_eq!(dropping(true, (vec!["a".to_string()], None), next), (vec![], None));
    }
}
