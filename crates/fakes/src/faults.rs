//! Faults a test asks a fake to inject, consumed request by request: rate-limit bursts, server
//! errors, slow and truncated replies, credentials revoked, and pages a listing skips, repeats in
//! part or serves out of order.
//!
//! The request-level faults can be held back for a number of requests ([`Faults::hold`]), so a
//! test puts them at a chosen point of a run: its first request, one in the middle, its last.
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
    /// The credentials are to be revoked now, as by the fake's own revocation, and the request
    /// then answered as any later one is: refused.
    Revoke,
}

/// What is to happen to one page of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PageFaults {
    /// Skipped: its items are never served.
    pub drop: bool,
    /// Served whole, but its next cursor points back into its middle (even on a last page), so
    /// the next page repeats its second half, as a cursor listing does when items move under it.
    pub overlap: bool,
    /// Its items served in reverse order: no client may rely on any order within a page.
    pub reverse: bool,
}

/// A fault aimed at one page of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageFault {
    Drop,
    Overlap,
    Reverse,
}

/// The faults a test injected into one fake: set through its handle, consumed by its handlers.
/// (`pub` only so that [`FaultKnobs`] can name it; the module is private.)
#[derive(Debug, Default)]
pub struct Faults(Mutex<Pending>);

/// The faults every fake meets the same way, aimed at a point of a run: each fake's handle
/// implements this by naming its [`Faults`], and renders each fault in its vendor's words.
pub trait FaultKnobs: sealed::HasFaults {
    /// The next `requests` replies come after `delay`, later than a client's timeout when it is
    /// longer; later replies as before.
    fn delay_next(&self, requests: u32, delay: Duration) {
        self.faults().delay(requests, delay);
    }

    /// The next request loses the credentials as the vendor does (Okta: every token revoked,
    /// `E0000011`; Google: the service account's key deleted; Entra ID: the secret replaced and
    /// the tokens issued so far expired, since a revoked secret leaves a token working for its
    /// hour) and is refused like every request after it.
    fn revoke_credentials_next(&self) {
        self.faults().revoke();
    }

    /// The faults of the `*_next` knobs pass over the next `requests` API requests and start
    /// with the one after: a test aims them at a point of a run by counting its requests.
    fn hold_faults(&self, requests: u64) {
        self.faults().hold(requests);
    }

    /// Serves at most `items` per page whatever the request's page size asks, so a small tenant
    /// has many pages.
    fn limit_page_size(&self, items: usize) {
        self.faults().limit_pages(items);
    }

    /// After `after_pages` more pages of `listing` are served, the next one's link or token to
    /// the page after points back into its middle (a last page gets one too): the page after
    /// repeats its second half, as a cursor listing does when it overlaps.
    fn overlap_page(&self, listing: Listing, after_pages: usize) {
        self.faults().overlap_page(listing, after_pages);
    }

    /// After `after_pages` more pages of `listing` are served, serves the next one's items in
    /// reverse order: none of the vendors promises an order within a page.
    fn reverse_page(&self, listing: Listing, after_pages: usize) {
        self.faults().reverse_page(listing, after_pages);
    }

    /// How many pages of `listing` the fake has served.
    fn pages_served(&self, listing: Listing) -> u64 {
        self.faults().pages_served(listing)
    }

    /// How many API requests the fake has met, faults included (token requests are no API
    /// requests where the vendor serves tokens from another host).
    fn requests(&self) -> u64 {
        self.faults().requests()
    }

    /// Answers the next `requests` requests with `status` (a 5xx) in the vendor's error body.
    fn fail_next(&self, requests: u32, status: u16) {
        self.faults().fail(requests, status);
    }

    /// Delays every reply by `delay` from now on; `Duration::ZERO` stops.
    fn slow_pages(&self, delay: Duration) {
        self.faults().slow(delay);
    }

    /// Cuts the body of the next `requests` successful replies in half, mid-JSON.
    fn truncate_next(&self, requests: u32) {
        self.faults().truncate(requests);
    }

    /// After `after_pages` more pages of `listing` are served whole, silently skips the next
    /// one: its items are never served and the link or token to the page after points past
    /// them (Entra ID serves the delta page without its objects, links intact).
    fn drop_page(&self, listing: Listing, after_pages: usize) {
        self.faults().drop_page(listing, after_pages);
    }
}

/// Keeps [`FaultKnobs`] to this crate's fakes.
pub(crate) mod sealed {
    pub trait HasFaults {
        fn faults(&self) -> &super::Faults;
    }
}

#[derive(Debug, Default)]
struct Pending {
    /// Requests met so far.
    requests: u64,
    /// Request-level faults hit no request until `requests` passes this.
    held_until: u64,
    rate_limited: u32,
    rate_limit_wait: Duration,
    failing: u32,
    failure: Option<StatusCode>,
    revoke: bool,
    delay: Duration,
    /// Replies delayed by `delayed_by` instead of `delay`.
    delayed: u32,
    delayed_by: Duration,
    truncated: u32,
    /// The most items any page holds, whatever the client asked for.
    page_limit: Option<usize>,
    /// Pages served of each listing.
    pages: Vec<(Listing, u64)>,
    /// For each page fault: its listing and how many of its pages to serve first.
    page_faults: Vec<(Listing, PageFault, usize)>,
}

impl Pending {
    fn held(&self) -> bool {
        self.requests <= self.held_until
    }
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

    /// The next `requests` replies come after `delay` (instead of the delay of [`Faults::slow`]).
    pub(crate) fn delay(&self, requests: u32, delay: Duration) {
        let mut pending = self.pending();
        pending.delayed = requests;
        pending.delayed_by = delay;
    }

    pub(crate) fn truncate(&self, requests: u32) {
        self.pending().truncated = requests;
    }

    /// The next request revokes the credentials.
    pub(crate) fn revoke(&self) {
        self.pending().revoke = true;
    }

    /// The request-level faults (rate limits, server errors, delays, truncations, a revocation)
    /// hit none of the next `requests` requests.
    pub(crate) fn hold(&self, requests: u64) {
        let mut pending = self.pending();
        pending.held_until = pending.requests + requests;
    }

    /// How many requests the fake met, faulted or not.
    pub(crate) fn requests(&self) -> u64 {
        self.pending().requests
    }

    /// Pages hold at most `items` from now on, as real APIs may serve fewer than asked for.
    pub(crate) fn limit_pages(&self, items: usize) {
        self.pending().page_limit = Some(items.max(1));
    }

    /// The page size to serve for a client that asked for `asked`.
    pub(crate) fn page_size(&self, asked: usize) -> usize {
        self.pending().page_limit.map_or(asked, |limit| asked.min(limit))
    }

    /// How many pages of `listing` were served.
    pub(crate) fn pages_served(&self, listing: Listing) -> u64 {
        self.pending().pages.iter().find(|(l, _)| *l == listing).map_or(0, |(_, n)| *n)
    }

    fn page_fault(&self, listing: Listing, fault: PageFault, after_pages: usize) {
        let mut pending = self.pending();
        pending.page_faults.retain(|(l, f, _)| (*l, *f) != (listing, fault));
        pending.page_faults.push((listing, fault, after_pages));
    }

    pub(crate) fn drop_page(&self, listing: Listing, after_pages: usize) {
        self.page_fault(listing, PageFault::Drop, after_pages);
    }

    pub(crate) fn overlap_page(&self, listing: Listing, after_pages: usize) {
        self.page_fault(listing, PageFault::Overlap, after_pages);
    }

    pub(crate) fn reverse_page(&self, listing: Listing, after_pages: usize) {
        self.page_fault(listing, PageFault::Reverse, after_pages);
    }

    /// Counts the request; then, unless faults are held, a revocation first, then rate limits,
    /// then server errors: a gateway answers both before the API runs.
    pub(crate) fn gate(&self) -> Gate {
        let mut pending = self.pending();
        pending.requests += 1;
        if pending.held() {
            return Gate::Pass;
        }
        if pending.revoke {
            pending.revoke = false;
            return Gate::Revoke;
        }
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
        if pending.held() {
            return false;
        }
        let cut = pending.truncated > 0;
        pending.truncated = pending.truncated.saturating_sub(1);
        cut
    }

    /// How long this reply waits before it leaves.
    fn take_delay(&self) -> Duration {
        let mut pending = self.pending();
        if pending.delayed > 0 && !pending.held() {
            pending.delayed -= 1;
            return pending.delayed_by;
        }
        pending.delay
    }

    /// Counts a page of `listing` and says what is to happen to it.
    pub(crate) fn take_page(&self, listing: Listing) -> PageFaults {
        let mut pending = self.pending();
        match pending.pages.iter_mut().find(|(l, _)| *l == listing) {
            Some((_, served)) => *served += 1,
            None => pending.pages.push((listing, 1)),
        }
        let mut faults = PageFaults::default();
        pending.page_faults.retain_mut(|(l, fault, remaining)| {
            if *l != listing {
                return true;
            }
            if *remaining > 0 {
                *remaining -= 1;
                return true;
            }
            match fault {
                PageFault::Drop => faults.drop = true,
                PageFault::Overlap => faults.overlap = true,
                PageFault::Reverse => faults.reverse = true,
            }
            false
        });
        faults
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
        let delay = self.take_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        reply.await
    }
}

/// The page of up to `limit` items after the cursor `after`, as `faults` shape it. `fetch(after,
/// limit)` gives a page and the cursor after it. A dropped page gives way to the page after it,
/// so its items are never served; an overlapping one points its cursor at its own middle, so the
/// next page starts there (a last page too: the list then ends with its second half again); a
/// reversed one lists its items backwards.
pub(crate) fn shaped<T>(
    faults: PageFaults,
    after: Option<&str>,
    limit: usize,
    fetch: impl Fn(Option<&str>, usize) -> (Vec<T>, Option<String>),
) -> (Vec<T>, Option<String>) {
    let (start, (mut items, mut next)) = match (faults.drop, fetch(after, limit)) {
        (false, first) => (after.map(str::to_owned), first),
        (true, (_, Some(skipped))) => {
            let page = fetch(Some(&skipped), limit);
            (Some(skipped), page)
        }
        (true, (_, None)) => (None, (Vec::new(), None)),
    };
    if faults.overlap && items.len() > 1 {
        next = fetch(start.as_deref(), items.len() / 2).1;
    }
    if faults.reverse {
        items.reverse();
    }
    (items, next)
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
    fn held_faults_wait_for_their_request() {
        let faults = Faults::default();
        faults.hold(2);
        faults.fail(1, 503);
        faults.truncate(1);
        faults.revoke();
        assert_eq!(faults.gate(), Gate::Pass);
        assert!(!faults.take_truncation(), "the request was held");
        assert_eq!(faults.gate(), Gate::Pass);
        assert_eq!(faults.gate(), Gate::Revoke);
        assert_eq!(faults.gate(), Gate::Failed(StatusCode::SERVICE_UNAVAILABLE));
        assert!(faults.take_truncation());
        assert_eq!(faults.gate(), Gate::Pass);
        assert_eq!(faults.requests(), 5);
    }

    #[test]
    fn a_counted_delay_passes_and_leaves_the_standing_one() {
        let faults = Faults::default();
        faults.slow(Duration::from_millis(5));
        faults.delay(1, Duration::from_secs(2));
        // Every reply follows its request through the gate.
        assert_eq!(faults.gate(), Gate::Pass);
        assert_eq!(faults.take_delay(), Duration::from_secs(2));
        assert_eq!(faults.gate(), Gate::Pass);
        assert_eq!(faults.take_delay(), Duration::from_millis(5));
    }

    #[test]
    fn page_faults_wait_for_their_page() {
        let faults = Faults::default();
        faults.drop_page(Listing::Users, 1);
        faults.overlap_page(Listing::Users, 0);
        faults.reverse_page(Listing::Members, 2);
        let none = PageFaults::default();
        assert_eq!(faults.take_page(Listing::Groups), none);
        assert_eq!(faults.take_page(Listing::Users), PageFaults { overlap: true, ..none });
        assert_eq!(faults.take_page(Listing::Users), PageFaults { drop: true, ..none });
        assert_eq!(faults.take_page(Listing::Users), none);
        for _ in 0..2 {
            assert_eq!(faults.take_page(Listing::Members), none);
        }
        assert_eq!(faults.take_page(Listing::Members), PageFaults { reverse: true, ..none });
        assert_eq!(faults.pages_served(Listing::Users), 3);
        assert_eq!(faults.pages_served(Listing::Devices), 0);
    }

    #[test]
    fn pages_are_limited_to_what_the_fake_allows() {
        let faults = Faults::default();
        assert_eq!(faults.page_size(200), 200);
        faults.limit_pages(5);
        assert_eq!((faults.page_size(200), faults.page_size(3)), (5, 3));
    }

    /// Ten items `0`…`9`, each its own cursor, as the fakes page them.
    fn ten(after: Option<&str>, limit: usize) -> (Vec<u32>, Option<String>) {
        let from = after.map_or(0, |a| a.parse::<u32>().unwrap() + 1);
        let items: Vec<u32> = (from..10).take(limit).collect();
        let next = items.last().filter(|&&last| last < 9).map(u32::to_string);
        (items, next)
    }

    #[test]
    fn shaped_pages_skip_repeat_or_reverse_items() {
        let plain = PageFaults::default();
        assert_eq!(shaped(plain, None, 4, ten), (vec![0, 1, 2, 3], Some("3".into())));
        let dropped = PageFaults { drop: true, ..plain };
        assert_eq!(shaped(dropped, None, 4, ten), (vec![4, 5, 6, 7], Some("7".into())));
        assert_eq!(shaped(dropped, Some("5"), 4, ten), (vec![], None));
        // The next page starts after 1: 2 and 3 are served twice.
        let overlap = PageFaults { overlap: true, ..plain };
        assert_eq!(shaped(overlap, None, 4, ten), (vec![0, 1, 2, 3], Some("1".into())));
        assert_eq!(shaped(overlap, Some("7"), 4, ten), (vec![8, 9], Some("8".into())), "even the last page");
        assert_eq!(shaped(overlap, Some("8"), 4, ten), (vec![9], None), "one item cannot overlap");
        let both = PageFaults { drop: true, overlap: true, ..plain };
        assert_eq!(shaped(both, None, 4, ten), (vec![4, 5, 6, 7], Some("5".into())));
        let reversed = PageFaults { reverse: true, ..plain };
        assert_eq!(shaped(reversed, Some("3"), 4, ten), (vec![7, 6, 5, 4], Some("7".into())));
    }
}
