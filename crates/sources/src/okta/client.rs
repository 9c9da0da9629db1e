//! Requests to one Okta org: `SSWS` auth, Okta's rate-limit headers, and its error objects
//! turned into messages that say what to do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ctxsync_core::RateLimitShare;

use super::OktaCredentials;
use reqwest::StatusCode;
use reqwest::header::{DATE, HeaderMap, LINK};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;
use url::Url;

use super::auth::ApiToken;
use crate::SourceError;
use crate::endpoints::Target;
use crate::http::{
    Admission, Http, Pace, Reply, Retry, excerpt, http_date, json_get, transient, unavailable, unreadable,
};
use crate::split::Split;

const SOURCE: &str = "Okta";

/// Okta's error object; only `errorCode` is stable, the summary is for people.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OktaError {
    error_code: String,
    error_summary: String,
    #[serde(default)]
    error_causes: Vec<OktaErrorCause>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OktaErrorCause {
    error_summary: String,
}

/// What one page (or object) of a sync brought back.
#[derive(Debug)]
pub(crate) struct Got<T> {
    pub status: StatusCode,
    /// The decoded body of a 2xx; `None` for a tolerated error status.
    pub body: Option<T>,
    /// The `rel="next"` link, kept on the org's origin.
    pub next: Option<Url>,
    /// The reply's `Date`: Okta's clock.
    pub date: Option<OffsetDateTime>,
    pub retries: u32,
}

#[derive(Debug)]
pub(crate) struct OktaClient<'a> {
    http: &'a Http,
    target: Target,
    token: ApiToken,
    pacer: Arc<Pacer>,
    pace: Pace,
}

/// Okta's rate-limit window of each endpoint as its last reply reported it. Okta limits each
/// endpoint of an org separately, whoever asks, and says how many requests the window allows
/// (`X-Rate-Limit-Limit`), how many are left (`X-Rate-Limit-Remaining`) and when it resets
/// (`X-Rate-Limit-Reset`). Requests go while this process has taken less than its share of the
/// window and what remains of it, less those in flight, is more than the rest of the limit,
/// which is kept for others; otherwise they wait for the reset, instead of collecting 429s or
/// leaving the org's other integrations nothing. One pacer serves every config of an org in this
/// process ([`pacer_for`]), and since `Remaining` counts everyone's requests, processes that each
/// keep the rest free together take about the share: replicas need no shared state for the
/// windows, and go over it at most by what one has in flight when another's reply shows the
/// window's end. The org's requests in flight, every endpoint's together, also keep within this
/// process's part of the share of [`CONCURRENCY`]: Okta reports nothing of them, so the processes
/// syncing the org at once split it ([`Split`]), as the store's leases tell them.
///
/// Validating credentials does not wait ([`Pace::Now`]): an API caller waits for it, it is three
/// requests, and a running sync may have spent the window. Its requests count all the same, so a
/// running sync waits for them instead.
#[derive(Debug, Default)]
struct Pacer {
    windows: Mutex<HashMap<String, Window>>,
    /// Told when a request is answered: the first request to an endpoint goes alone, and the
    /// others wait for the limit its reply reports rather than burst into an unknown window.
    answered: Notify,
    /// The processes syncing the org at once, which split its requests in flight.
    split: Split,
}

#[derive(Debug, Default)]
struct Window {
    limit: Option<u32>,
    remaining: Option<u32>,
    reset: Option<Instant>,
    in_flight: u32,
    /// Requests this process sent in the current window.
    taken: u32,
}

impl Window {
    /// Starts the next window once this one's reset has passed: what was taken in it no longer
    /// counts, but the requests still in flight do, and the limit is presumed the same.
    fn renew(&mut self) {
        if self.reset.is_some_and(|reset| reset <= Instant::now()) {
            *self = Window { in_flight: self.in_flight, limit: self.limit, ..Window::default() };
        }
    }
}

/// Okta's smallest limit on an org's requests in flight at once, across every client, on its
/// current plans (35 on the free integrator plan, 75 on most others; 15 on developer orgs of
/// the plan before). Okta reports it only in the 429 that passes it, so the pacer keeps this
/// process's requests within its part of the config's share of it. That leaves the per-minute windows, not
/// the round trips, setting a run's pace: at 300 ms a reply, 17 at once go 56 a second, where
/// half the users endpoint's 600 a minute is 5.
const CONCURRENCY: u32 = 35;

/// The name of the org at `target`'s pacer, and of the limits it keeps to.
pub(super) fn pacer_key(target: &Target) -> String {
    format!("okta {}", target.base())
}

/// The pacer of the org at `target`, shared by every client of it in this process.
fn pacer_for(target: &Target) -> Arc<Pacer> {
    static PACERS: OnceLock<Mutex<HashMap<String, Arc<Pacer>>>> = OnceLock::new();
    let key = pacer_key(target);
    let mut pacers = PACERS.get_or_init(Mutex::default).lock().expect("pacers lock");
    let new = || Arc::new(Pacer { split: Split::named(&key), ..Pacer::default() });
    pacers.entry(key.clone()).or_insert_with(new).clone()
}

impl Pacer {
    /// Waits until `endpoint`'s window, and the org's requests in flight, have room for one more
    /// request within the share `pace` names, and counts it as in flight until the returned guard
    /// is dropped; with [`Pace::Now`], counts it at once.
    async fn admit(&self, endpoint: String, pace: Pace) -> InFlight<'_> {
        let share = match pace {
            Pace::Within(share) => share,
            Pace::Now => {
                let mut windows = self.windows.lock().expect("pacer lock");
                let window = windows.entry(endpoint.clone()).or_default();
                window.renew();
                window.in_flight += 1;
                window.taken += 1;
                return InFlight { pacer: self, endpoint };
            }
        };
        loop {
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let reset = {
                let mut windows = self.windows.lock().expect("pacer lock");
                // Every endpoint's requests count against the org's limit on those in flight.
                let crowded = windows.values().map(|w| w.in_flight).sum::<u32>() >= self.concurrency(share);
                let window = windows.entry(endpoint.clone()).or_default();
                window.renew();
                let kept = window.limit.map_or(0, |limit| limit.saturating_sub(share.of(limit)));
                let full = window.remaining.is_some_and(|remaining| remaining <= window.in_flight + kept);
                let spent = window.limit.is_some_and(|limit| window.taken >= share.of(limit));
                // Without a limit or a count of what is left yet (a new window: others may have
                // used some already), or at it before a reply told when the window resets, a
                // request waits for the answers in flight.
                let unknown = window.limit.is_none() || window.remaining.is_none();
                let answers_due = window.in_flight > 0 && (unknown || full || spent);
                match window.reset {
                    Some(reset) if full || spent => Some(reset),
                    _ if answers_due || crowded => None,
                    _ => {
                        window.in_flight += 1;
                        window.taken += 1;
                        return InFlight { pacer: self, endpoint };
                    }
                }
            };
            match reset {
                Some(reset) => tokio::time::sleep_until(reset).await,
                None => answered.await,
            }
        }
    }

    /// The requests this process may have in flight: its part of the share of [`CONCURRENCY`],
    /// at least one, so more processes than the share has requests take one each.
    fn concurrency(&self, share: RateLimitShare) -> u32 {
        self.split.part(share.of(CONCURRENCY))
    }

    fn note(&self, endpoint: &str, headers: &HeaderMap) {
        let number = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()?.trim().parse::<u32>().ok());
        if let (Some(remaining), Some(wait)) = (number("x-rate-limit-remaining"), rate_limit_wait(headers)) {
            let mut windows = self.windows.lock().expect("pacer lock");
            let window = windows.entry(endpoint.to_owned()).or_default();
            window.limit = number("x-rate-limit-limit").or(window.limit);
            window.remaining = Some(remaining);
            window.reset = Some(Instant::now() + wait);
        }
    }
}

/// One request's attempts, each let through by the pacer of its org.
struct Paced<'p> {
    pacer: &'p Pacer,
    endpoint: &'p str,
    pace: Pace,
}

impl<'p> Admission for Paced<'p> {
    type Slot = InFlight<'p>;

    fn admit(&self) -> impl Future<Output = InFlight<'p>> + Send {
        self.pacer.admit(self.endpoint.to_owned(), self.pace)
    }
}

/// A request [`Pacer::admit`] let through, counted until it is answered.
struct InFlight<'p> {
    pacer: &'p Pacer,
    endpoint: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut windows = self.pacer.windows.lock().expect("pacer lock");
        if let Some(window) = windows.get_mut(&self.endpoint) {
            window.in_flight -= 1;
        }
        self.pacer.answered.notify_waiters();
    }
}

impl<'a> OktaClient<'a> {
    /// A client of the org at `target`, taking at most `share` of each of its rate limits.
    pub(crate) fn new(
        http: &'a Http,
        target: Target,
        credentials: &OktaCredentials,
        share: RateLimitShare,
    ) -> Self {
        let pacer = pacer_for(&target);
        Self { http, target, token: ApiToken::new(credentials), pacer, pace: Pace::Within(share) }
    }

    /// This client's requests do not wait for room in the share ([`Pace::Now`]).
    pub(crate) fn unpaced(self) -> Self {
        Self { pace: Pace::Now, ..self }
    }

    /// How messages name the org: `https://acme.okta.com`.
    pub(crate) fn display(&self) -> String {
        self.target.display()
    }

    /// `GET {base}/{path}?{query}`, admitted by the org's pacer; a 2xx reply, or the error it
    /// means. `action` completes "Okta refused to …" in messages.
    pub(crate) async fn get(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        action: &str,
    ) -> Result<Reply, SourceError> {
        let auth = self.token.header()?;
        let url = self.target.url(path);
        let endpoint = endpoint(&url);
        let paced = Paced { pacer: &self.pacer, endpoint: &endpoint, pace: self.pace };
        tracing::debug!(source = SOURCE, path = url.path(), "request");
        let reply = self
            .http
            .fetch_admitted(
                SOURCE,
                &self.target,
                |client| json_get(client, &url, &auth).query(query),
                |reply| self.noted(&endpoint, reply),
                |_| Some(()),
                &paced,
            )
            .await?
            .reply;
        if reply.status.is_success() { Ok(reply) } else { Err(self.failure(&reply, action)) }
    }

    /// `{base}/{path}?{query}`, for a listing's first page.
    pub(crate) fn url(&self, path: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.target.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// `GET url`, its body decoded as `T`; a body cut short is retried. The `tolerated`
    /// statuses (404 for something deleted during the run, 403 for data the token may not read)
    /// come back without a body instead of as errors. `action` completes "Okta refused to …".
    pub(crate) async fn fetch<T: DeserializeOwned>(
        &self,
        url: &Url,
        action: &str,
        tolerated: &[StatusCode],
    ) -> Result<Got<T>, SourceError> {
        let auth = self.token.header()?;
        let endpoint = endpoint(url);
        let paced = Paced { pacer: &self.pacer, endpoint: &endpoint, pace: self.pace };
        tracing::debug!(source = SOURCE, path = url.path(), "request");
        let fetched = self
            .http
            .fetch_admitted(
                SOURCE,
                &self.target,
                |client| json_get(client, url, &auth),
                |reply| self.noted(&endpoint, reply),
                |reply| serde_json::from_slice::<T>(&reply.body).ok(),
                &paced,
            )
            .await?;
        let reply = &fetched.reply;
        let next = if reply.status.is_success() {
            if fetched.body.is_none() {
                return Err(unreadable(SOURCE, &self.target));
            }
            next_link(&reply.headers).map(|link| self.follow(url, &link)).transpose()?
        } else if tolerated.contains(&reply.status) {
            None
        } else {
            return Err(self.failure(reply, action));
        };
        let date = reply.headers.get(DATE).and_then(|d| http_date(d.to_str().ok()?));
        Ok(Got { status: reply.status, body: fetched.body, next, date, retries: fetched.retries })
    }

    /// Classifies an attempt's reply after telling the pacer about `endpoint`'s window from its
    /// headers, unless it is a 429: past the limit on requests in flight, Okta reports that
    /// limit in them, not the window's.
    fn noted(&self, endpoint: &str, reply: &Reply) -> Retry {
        if reply.status != StatusCode::TOO_MANY_REQUESTS {
            self.pacer.note(endpoint, &reply.headers);
        }
        classify(reply)
    }

    /// A link Okta returned, resolved against the request it came with. It must stay on the
    /// org's origin: following it elsewhere would hand the API token to another host.
    pub(crate) fn follow(&self, from: &Url, link: &str) -> Result<Url, SourceError> {
        match from.join(link) {
            Ok(url) if url.origin() == self.target.base().origin() => Ok(url),
            _ => Err(SourceError::Unreachable(format!(
                "Okta at {} sent a next-page link to another host; check that the domain (or \
                 CTXSYNC_OKTA_BASE_URL) is the org's Okta host",
                self.target.display()
            ))),
        }
    }

    fn failure(&self, reply: &Reply, action: &str) -> SourceError {
        let secrets = [self.token.expose()];
        let said = match reply.json::<OktaError>() {
            Some(e) => {
                let mut said =
                    format!("{} ({})", excerpt(&e.error_summary, &secrets), excerpt(&e.error_code, &secrets));
                let causes: Vec<String> =
                    e.error_causes.iter().map(|c| excerpt(&c.error_summary, &secrets)).collect();
                if !causes.is_empty() {
                    said.push_str(&format!(": {}", causes.join("; ")));
                }
                said
            }
            None => format!("HTTP {}", reply.status.as_u16()),
        };
        let host = self.target.display();
        match reply.status {
            StatusCode::UNAUTHORIZED => SourceError::Rejected(format!(
                "Okta rejected the API token: {said}; create a new API token in the Okta admin console \
                 (Security → API → Tokens) and update the config's api_token"
            )),
            StatusCode::FORBIDDEN => SourceError::Rejected(format!(
                "Okta refused to {action} with this API token: {said}; the token lacks permission: a token has \
                 the permissions of the admin who created it, so create it as an admin allowed to read users \
                 and groups (for example a Read-only Administrator)"
            )),
            status if transient(status) => unavailable(
                SOURCE,
                &self.target,
                reply,
                &format!(": {said}"),
                rate_limit_wait(&reply.headers),
            ),
            status if status.is_redirection() => SourceError::Rejected(format!(
                "Okta at {host} answered with a redirect when asked to {action}; redirects are not followed, \
                 so set the domain to the org's Okta host (for example acme.okta.com)"
            )),
            status => SourceError::Rejected(format!(
                "Okta at {host} answered HTTP {} when asked to {action}: {said}; check that the domain is the \
                 org's Okta host (for example acme.okta.com)",
                status.as_u16()
            )),
        }
    }
}

/// The endpoint a request counts against, as Okta's limits name it: its path with the ids left
/// out (`/api/v1/groups/{id}/users`).
fn endpoint(url: &Url) -> String {
    let segments = url.path_segments().into_iter().flatten();
    let named: Vec<&str> = segments
        .map(|s| {
            if s == "me" || (s.len() >= 15 && s.bytes().all(|b| b.is_ascii_alphanumeric())) {
                "{id}"
            } else {
                s
            }
        })
        .collect();
    format!("/{}", named.join("/"))
}

fn classify(reply: &Reply) -> Retry {
    match reply.status {
        StatusCode::TOO_MANY_REQUESTS => rate_limit_wait(&reply.headers).map_or(Retry::Backoff, Retry::After),
        status if transient(status) => Retry::Backoff,
        _ => Retry::No,
    }
}

/// Okta sends no `Retry-After`: the wait is until `X-Rate-Limit-Reset` (epoch seconds), measured
/// against the reply's own `Date` so that clock skew between us and Okta does not matter.
fn rate_limit_wait(headers: &HeaderMap) -> Option<Duration> {
    let reset: i64 = headers.get("x-rate-limit-reset")?.to_str().ok()?.trim().parse().ok()?;
    let now = headers
        .get(DATE)
        .and_then(|d| http_date(d.to_str().ok()?))
        .unwrap_or_else(OffsetDateTime::now_utc)
        .unix_timestamp();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1) as u64))
}

/// The `rel="next"` target among the `Link` headers, whether Okta sent one header per relation
/// or joined them with commas in one.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers.get_all(LINK).iter().filter_map(|v| v.to_str().ok()).flat_map(split_links).find_map(|link| {
        let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
        let next = params.split(';').any(|param| {
            param.split_once('=').is_some_and(|(key, value)| {
                key.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        next.then(|| target.to_string())
    })
}

/// A `Link` value split on the commas between links, not on those inside `<…>` or quotes.
fn split_links(value: &str) -> Vec<&str> {
    let (mut links, mut start, mut in_target, mut in_quotes) = (Vec::new(), 0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            '<' if !in_quotes => in_target = true,
            '>' if !in_quotes => in_target = false,
            '"' if !in_target => in_quotes = !in_quotes,
            ',' if !in_target && !in_quotes => {
                links.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    links.push(&value[start..]);
    links
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn requests_count_against_their_endpoint_without_the_ids() {
        let endpoint = |path: &str| endpoint(&Url::parse(&format!("https://acme.okta.com{path}")).unwrap());
        assert_eq!(endpoint("/api/v1/users"), "/api/v1/users");
        assert_eq!(endpoint("/api/v1/groups/00g1a2b3c4d5e6f7g8h9/users"), "/api/v1/groups/{id}/users");
        assert_eq!(endpoint("/api/v1/users/00u1a2b3c4d5e6f7g8h9/factors"), "/api/v1/users/{id}/factors");
        assert_eq!(endpoint("/api/v1/users/me"), "/api/v1/users/{id}");
        assert_eq!(endpoint("/api/v1/iam/assignees/users"), "/api/v1/iam/assignees/users");
    }

    fn links(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(LINK, HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn links_are_followed_only_on_the_orgs_origin() {
        let http = Http::new(crate::http::RetryPolicy::VALIDATION).unwrap();
        let target = super::super::target(&crate::Endpoints::default(), "acme.okta.com").unwrap();
        let credentials = OktaCredentials { api_token: "00token".to_string().into() };
        let client = OktaClient::new(&http, target, &credentials, RateLimitShare::DEFAULT);
        let from = client.url(&["api", "v1", "users"], &[("limit", "200")]);
        let next = client.follow(&from, "https://acme.okta.com/api/v1/users?after=00u2&limit=200").unwrap();
        assert_eq!(next.as_str(), "https://acme.okta.com/api/v1/users?after=00u2&limit=200");
        assert_eq!(
            client.follow(&from, "/api/v1/users?after=00u3").unwrap().host_str(),
            Some("acme.okta.com")
        );
        for elsewhere in
            ["https://evil.example/api/v1/users", "http://acme.okta.com/api/v1/users", "//evil.example/x"]
        {
            assert!(client.follow(&from, elsewhere).is_err(), "{elsewhere}");
        }
    }

    #[test]
    fn next_link_is_found_in_separate_headers() {
        let h = links(&[
            "<https://acme.okta.com/api/v1/users?limit=200>; rel=\"self\"",
            "<https://acme.okta.com/api/v1/users?after=00ub%2Cx&limit=200>; rel=\"next\"",
        ]);
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://acme.okta.com/api/v1/users?after=00ub%2Cx&limit=200")
        );
        assert_eq!(
            next_link(&links(&["<https://acme.okta.com/api/v1/users?limit=200>; rel=\"self\""])),
            None
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn next_link_is_found_in_a_comma_joined_header() {
        let h = links(&["<https://acme.okta.com/api/v1/groups?filter=a,b&limit=2>; rel=\"self\", \
             <https://acme.okta.com/api/v1/groups?after=00g1,2&limit=2>; title=\"x, y\"; rel=\"next\""]);
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://acme.okta.com/api/v1/groups?after=00g1,2&limit=2")
        );
        let unquoted = links(&["<https://a.okta.com/p?after=1>; REL=next"]);
        assert_eq!(next_link(&unquoted).as_deref(), Some("https://a.okta.com/p?after=1"));
        let several = links(&["<https://a.okta.com/p?after=1>; rel=\"last next\""]);
        assert_eq!(next_link(&several).as_deref(), Some("https://a.okta.com/p?after=1"));
    }

    /// A fake Okta org, where it is, an HTTP client for sync runs, and the org's API token.
    async fn fake_org() -> (ctxsync_fakes::FakeOkta, Target, Http, OktaCredentials) {
        let fake = ctxsync_fakes::FakeOkta::start().await.unwrap();
        let target =
            super::super::target(&crate::Endpoints::overridden(fake.base_urls()), &fake.domain()).unwrap();
        let http = Http::new(crate::http::RetryPolicy::SYNC).unwrap();
        let credentials = OktaCredentials { api_token: fake.api_token().into() };
        (fake, target, http, credentials)
    }

    /// A share of Okta's limits that leaves room for one request in flight.
    fn one_in_flight() -> RateLimitShare {
        let settings = serde_json::from_value(serde_json::json!({"rate_limit_share": 1})).unwrap();
        let share = RateLimitShare::for_settings(&settings).unwrap();
        assert_eq!(share.of(CONCURRENCY), 1);
        share
    }

    /// With room for one request in flight, a request waiting out a 429 lets another endpoint's
    /// go meanwhile: only an attempt on its way counts, not the wait before the next one.
    #[tokio::test(start_paused = true)]
    async fn a_request_waiting_out_a_429_leaves_its_place_in_flight_to_others() {
        let (fake, target, http, credentials) = fake_org().await;
        let client = OktaClient::new(&http, target, &credentials, one_in_flight());
        fake.rate_limit_next(1, Duration::from_secs(30));
        let started = Instant::now();
        let timed = |path: &'static [&'static str]| {
            let (client, url) = (&client, client.url(path, &[]));
            async move {
                let got: Got<serde_json::Value> = client.fetch(&url, "list", &[]).await.unwrap();
                (got.retries, started.elapsed())
            }
        };
        // The users listing is asked for first, so it meets the 429.
        let (throttled, other) =
            tokio::join!(timed(&["api", "v1", "users"]), timed(&["api", "v1", "groups"]));
        assert_eq!(throttled.0, 1);
        assert!(throttled.1 >= Duration::from_secs(30), "{throttled:?}");
        assert_eq!(other.0, 0);
        assert!(other.1 < Duration::from_secs(1), "{other:?}");
    }

    /// With room for one request in flight, checking a config's credentials goes at once beside
    /// a sync's request (an API caller waits for it), and counts all the same: a sync request
    /// asked for meanwhile waits for it as well. Every reply takes a second, and the check is
    /// three requests, one after another.
    #[tokio::test(start_paused = true)]
    async fn a_credential_check_goes_at_once_and_the_syncs_requests_wait_for_it() {
        use ctxsync_fakes::FaultKnobs;

        let (fake, target, http, credentials) = fake_org().await;
        fake.slow_pages(Duration::from_secs(1));
        let syncing = OktaClient::new(&http, target.clone(), &credentials, one_in_flight());
        let started = Instant::now();
        let listed = |path: &'static [&'static str], after: Duration| {
            let (client, url) = (&syncing, syncing.url(path, &[]));
            async move {
                tokio::time::sleep(after).await;
                let _: Got<serde_json::Value> = client.fetch(&url, "list", &[]).await.unwrap();
                started.elapsed()
            }
        };
        let checked = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            super::super::validate(&http, target, &credentials).await.unwrap();
            started.elapsed()
        };
        let (first, second, check) = tokio::join!(
            listed(&["api", "v1", "users"], Duration::ZERO),
            listed(&["api", "v1", "groups"], Duration::from_millis(100)),
            checked
        );
        assert!(first < Duration::from_millis(1_400), "{first:?}");
        // Its three replies at 1.5, 2.5 and 3.5 s; waiting for the first listing's reply (at 1 s)
        // first, it would end at 4 s.
        assert!(check < Duration::from_millis(3_900), "{check:?}");
        // After the check's first reply at 1.5 s, not the first listing's at 1 s.
        assert!(second >= Duration::from_millis(2_500), "{second:?}");
    }

    /// A sync that has taken its share of the users endpoint's window leaves the rest to others,
    /// but checking a config's credentials, which asks for that endpoint too, does not wait for
    /// the window's reset a minute later: an API caller waits for the check.
    #[tokio::test(start_paused = true)]
    async fn a_credential_check_does_not_wait_for_a_window_a_sync_has_spent() {
        let (fake, target, http, credentials) = fake_org().await;
        fake.set_rate_limit(4);
        let syncing = OktaClient::new(&http, target.clone(), &credentials, RateLimitShare::DEFAULT);
        let users = syncing.url(&["api", "v1", "users"], &[]);
        for _ in 0..2 {
            let _: Got<serde_json::Value> = syncing.fetch(&users, "list users", &[]).await.unwrap();
        }
        let started = Instant::now();
        super::super::validate(&http, target, &credentials).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(fake.rate_limited(), 0);
    }

    /// A window's headers: `limit`, `remaining`, and a reset `in` seconds after the reply's date.
    fn window(limit: u32, remaining: u32, reset_in: i64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(DATE, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        h.insert("x-rate-limit-limit", limit.into());
        h.insert("x-rate-limit-remaining", remaining.into());
        h.insert("x-rate-limit-reset", (784111777 + reset_in).into());
        h
    }

    /// A credential check in a window after the last sync's begins that window: what the sync
    /// took before the reset does not count in it, so the next sync does not wait out a window it
    /// has not used.
    #[tokio::test(start_paused = true)]
    async fn a_credential_check_after_a_reset_starts_the_new_window_afresh() {
        let (pacer, half, endpoint) = (Pacer::default(), RateLimitShare::DEFAULT, "/api/v1/users");
        // Half of a window of 10, all taken.
        drop(pacer.admit(endpoint.into(), Pace::Within(half)).await);
        pacer.note(endpoint, &window(10, 9, 10));
        for remaining in (5..9).rev() {
            drop(pacer.admit(endpoint.into(), Pace::Within(half)).await);
            pacer.note(endpoint, &window(10, remaining, 10));
        }
        tokio::time::sleep(Duration::from_secs(11)).await;
        let checking = pacer.admit(endpoint.into(), Pace::Now).await;
        pacer.note(endpoint, &window(10, 9, 60));
        drop(checking);
        let asked = Instant::now();
        drop(pacer.admit(endpoint.into(), Pace::Within(half)).await);
        assert!(asked.elapsed() < Duration::from_secs(1), "waited {:?}", asked.elapsed());
    }

    /// Processes syncing one org split its requests in flight: two keep to half the share each,
    /// and one alone again takes all of it.
    #[tokio::test(start_paused = true)]
    async fn processes_syncing_one_org_split_its_requests_in_flight() {
        use ctxsync_fakes::FaultKnobs;

        let (fake, target, http, credentials) = fake_org().await;
        fake.slow_pages(Duration::from_secs(1));
        let client = OktaClient::new(&http, target.clone(), &credentials, RateLimitShare::DEFAULT);
        let url = client.url(&["api", "v1", "users"], &[]);
        let listed_at_once = || {
            futures::future::join_all((0..40).map(|_| async {
                let _: Got<serde_json::Value> = client.fetch(&url, "list users", &[]).await.unwrap();
            }))
        };
        let share = RateLimitShare::DEFAULT.of(CONCURRENCY);
        Split::named(&pacer_key(&target)).set(2);
        listed_at_once().await;
        assert_eq!(fake.most_in_flight(), share / 2);
        Split::named(&pacer_key(&target)).set(1);
        listed_at_once().await;
        assert_eq!(fake.most_in_flight(), share);
    }

    #[test]
    fn waits_until_the_reset_by_okta_clock() {
        let mut h = HeaderMap::new();
        h.insert(DATE, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        h.insert("x-rate-limit-reset", HeaderValue::from_static("784111800"));
        assert_eq!(rate_limit_wait(&h), Some(Duration::from_secs(23)));
        h.insert("x-rate-limit-reset", HeaderValue::from_static("784111700"));
        assert_eq!(rate_limit_wait(&h), Some(Duration::from_secs(1)));
    }
}
