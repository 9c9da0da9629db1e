//! The HTTP stack every connector shares, written once:
//!
//! 1. one reqwest client per trust level (timeouts, `ctxsync/<version>` user agent, rustls, no
//!    redirects, the SSRF guard's resolver on the untrusted one);
//! 2. [`Http::send`], which retries what the connector's classifier calls transient, honouring
//!    the wait the source asks for, within a [`RetryPolicy`]'s budget;
//! 3. helpers turning what a source said into safe messages: [`excerpt`] keeps them short and
//!    free of secrets, [`unavailable`] words "the source kept failing".
//!
//! A connector only decides what differs: how to authenticate, which replies are worth a retry
//! and how long to wait ([`Retry`]), and what an error body means.

use std::error::Error as _;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::Rng;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, StatusCode, redirect};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::time::Instant;

use ctxsync_core::RateLimitShare;

use crate::SourceError;
use crate::endpoints::Target;
use crate::guard::{self, GuardedResolver};

const USER_AGENT: &str = concat!("ctxsync/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bigger bodies are refused rather than buffered: no page of any source comes near this.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// The most a reply's `Content-Length` reserves up front: pages of every source are smaller.
const RESERVE_AT_MOST: usize = 2 * 1024 * 1024;
/// Source text quoted in messages is cut to this many characters.
const EXCERPT_CHARS: usize = 300;

/// How long one logical request may keep retrying.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub attempts: u32,
    /// No retry starts later than this after the first attempt began.
    pub budget: Duration,
    pub base_delay: Duration,
    /// Limit on one attempt, from sending the request to the end of the reply's body.
    pub request_timeout: Duration,
    /// The longest wait between attempts, a source's own ask included; `None` honours any wait
    /// the budget allows.
    pub max_wait: Option<Duration>,
}

impl RetryPolicy {
    /// For credential validation a caller is waiting on the answer: a few seconds at most.
    pub(crate) const VALIDATION: RetryPolicy = RetryPolicy {
        attempts: 4,
        budget: Duration::from_secs(5),
        base_delay: Duration::from_millis(250),
        request_timeout: Duration::from_secs(10),
        max_wait: None,
    };

    /// For sync runs nobody waits on: rides out long throttling and outages before giving up.
    pub(crate) const SYNC: RetryPolicy = RetryPolicy {
        attempts: 8,
        budget: Duration::from_secs(600),
        base_delay: Duration::from_secs(1),
        request_timeout: Duration::from_secs(60),
        max_wait: None,
    };

    /// Exponential backoff with ±25% jitter, so clients that failed together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1 << attempt.saturating_sub(1).min(10));
        exp.mul_f64(rand::thread_rng().gen_range(0.75..1.25))
    }
}

/// How a request waits for its source's pacer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    /// Until it fits in this share of the source's limit.
    Within(RateLimitShare),
    /// Not at all, counted all the same so that the others wait for it: for validation, which an
    /// API caller waits on and which is only a few requests.
    Now,
}

/// A connector's verdict on a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    No,
    /// Transient, and the source did not say how long to wait.
    Backoff,
    /// Transient; the source asked for this wait.
    After(Duration),
}

/// A complete reply: the body is read whole (bounded by [`MAX_BODY`]) so classifiers and
/// error mappers can look at it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// An OAuth access token. `Debug` shows nothing of it; the header built from it is marked
/// sensitive so no HTTP-level logging prints it either.
pub(crate) struct AccessToken(SecretString);

impl AccessToken {
    pub(crate) fn new(token: String) -> Self {
        Self(SecretString::from(token))
    }

    pub(crate) fn bearer(&self) -> Result<HeaderValue, SourceError> {
        sensitive_header(&format!("Bearer {}", self.0.expose_secret()), "the access token the source issued")
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

/// A header value that carries a credential: marked sensitive, and an unusable value is reported
/// by name (`what`), never by content.
pub(crate) fn sensitive_header(value: &str, what: &str) -> Result<HeaderValue, SourceError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        SourceError::InvalidCredentials(format!(
            "{what} contains characters that cannot be sent in an HTTP header"
        ))
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// What lets each attempt of a request go, and counts it while it is in flight: a source's
/// pacer. The slot it gives is dropped once the attempt's reply is classified.
pub(crate) trait Admission {
    type Slot;
    fn admit(&self) -> impl Future<Output = Self::Slot> + Send;
}

/// Every attempt goes at once.
impl Admission for () {
    type Slot = ();
    fn admit(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// Awaits a pacer's `admission` of a request to `source`, recording how long it kept the request
/// waiting when it did: what keeping to the config's share of the source's limits costs a run.
pub(crate) async fn paced<T>(source: &str, admission: impl Future<Output = T>) -> T {
    let mut admission = std::pin::pin!(admission);
    if let Poll::Ready(admitted) = futures::poll!(admission.as_mut()) {
        return admitted;
    }
    let asked = Instant::now();
    let admitted = admission.await;
    metrics::record_pacing(source, asked.elapsed());
    admitted
}

/// Why an attempt produced no reply.
enum Failure {
    Transport(reqwest::Error),
    TooLarge,
}

#[derive(Debug, Clone)]
pub(crate) struct Http {
    /// For hosts an API caller chose: resolves through the SSRF guard.
    guarded: Client,
    /// For operator-chosen hosts (overrides, or every host with private sources allowed).
    trusted: Client,
    policy: RetryPolicy,
}

impl Http {
    pub(crate) fn new(policy: RetryPolicy) -> Result<Self, SourceError> {
        let builder = || {
            Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(CONNECT_TIMEOUT)
                // A redirect could lead to any host, past the guard; no source API needs one.
                .redirect(redirect::Policy::none())
                .no_proxy()
        };
        let build_error =
            |e: reqwest::Error| SourceError::Unreachable(format!("could not set up the HTTP client: {e}"));
        Ok(Self {
            guarded: builder().dns_resolver(GuardedResolver).build().map_err(build_error)?,
            trusted: builder().build().map_err(build_error)?,
            policy,
        })
    }

    /// Sends the request `build` makes (again for each attempt) to `target`, retrying while
    /// `classify` says so and the policy allows. Returns the last reply whatever its status;
    /// transport failures become [`SourceError::Unreachable`], guard refusals
    /// [`SourceError::Refused`].
    pub(crate) async fn send(
        &self,
        source: &str,
        target: &Target,
        build: impl Fn(&Client) -> RequestBuilder,
        classify: impl Fn(&Reply) -> Retry,
    ) -> Result<Reply, SourceError> {
        self.fetch(source, target, build, classify, |_| Some(())).await.map(|fetched| fetched.reply)
    }

    /// [`Http::send`] for a reply whose successful body must read as a `T` (`decode`): a 2xx
    /// whose body does not decode (cut short on the way) is retried like a transient failure,
    /// within the same policy, and when the retries run out it is
    /// [`SourceError::Unreachable`]. Also counts the retries, which sync runs report.
    pub(crate) async fn fetch<T>(
        &self,
        source: &str,
        target: &Target,
        build: impl Fn(&Client) -> RequestBuilder,
        classify: impl Fn(&Reply) -> Retry,
        decode: impl Fn(&Reply) -> Option<T>,
    ) -> Result<Fetched<T>, SourceError> {
        self.fetch_admitted(source, target, build, classify, decode, &()).await
    }

    /// [`Http::fetch`], each attempt sent once `admission` lets it go and counted by it until
    /// its reply is classified: a request waiting to retry holds nothing a pacer counts.
    pub(crate) async fn fetch_admitted<T, A: Admission>(
        &self,
        source: &str,
        target: &Target,
        build: impl Fn(&Client) -> RequestBuilder,
        classify: impl Fn(&Reply) -> Retry,
        decode: impl Fn(&Reply) -> Option<T>,
        admission: &A,
    ) -> Result<Fetched<T>, SourceError> {
        let client = if target.trusted() {
            &self.trusted
        } else {
            if let Some(host) = target.base().host() {
                guard::check_host(host).map_err(|b| refused(&b))?;
            }
            &self.guarded
        };
        // The budget runs from the first attempt's sending, not from the wait before it.
        let mut started = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let admitted = paced(source, admission.admit()).await;
            let sent = Instant::now();
            let started = *started.get_or_insert(sent);
            let outcome = match build(client).timeout(self.policy.request_timeout).send().await {
                Ok(response) => read(response).await,
                Err(e) => Err(Failure::Transport(e)),
            };
            metrics::record_request(source, outcome.as_ref().ok().map(|r| r.status), sent.elapsed());
            let mut body = None;
            let mut undecodable = false;
            let wait = match &outcome {
                Ok(reply) => match classify(reply) {
                    Retry::No if reply.status.is_success() => {
                        body = decode(reply);
                        undecodable = body.is_none();
                        undecodable.then(|| self.policy.backoff(attempt))
                    }
                    Retry::No => None,
                    Retry::Backoff => Some(self.policy.backoff(attempt)),
                    Retry::After(d) => Some(d),
                },
                Err(Failure::Transport(e)) => {
                    if let Some(blocked) = guard::blocked_cause(e) {
                        return Err(refused(blocked));
                    }
                    (e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() || e.is_decode())
                        .then(|| self.policy.backoff(attempt))
                }
                Err(Failure::TooLarge) => None,
            };
            drop(admitted);
            let wait = wait.map(|wait| self.policy.max_wait.map_or(wait, |most| wait.min(most)));
            let wait = match wait {
                Some(wait)
                    if attempt < self.policy.attempts && started.elapsed() + wait <= self.policy.budget =>
                {
                    wait
                }
                _ => {
                    return match outcome {
                        Ok(_) if undecodable => Err(unreadable(source, target)),
                        Ok(reply) => {
                            tracing::debug!(
                                source,
                                status = reply.status.as_u16(),
                                attempt,
                                "source replied"
                            );
                            Ok(Fetched { reply, body, retries: attempt - 1 })
                        }
                        Err(failure) => Err(unreachable(source, target, failure)),
                    };
                }
            };
            let status = outcome.as_ref().ok().map(|reply| reply.status.as_u16());
            tracing::info!(source, ?status, attempt, wait_ms = wait.as_millis() as u64, "retrying");
            metrics::record_retry(source);
            tokio::time::sleep(wait).await;
        }
    }
}

/// Requests to sources as the metrics recorder sees them, labelled by source (one of the
/// connectors' fixed names, as a slug) and status class: never a URL, a tenant or a credential.
pub mod metrics {
    use std::time::Duration;

    use metrics::{counter, describe_counter, describe_histogram, histogram};
    use reqwest::StatusCode;

    pub const REQUESTS: &str = "ctxsync_source_requests_total";
    pub const REQUEST_DURATION: &str = "ctxsync_source_request_duration_seconds";
    pub const RETRIES: &str = "ctxsync_source_retries_total";
    pub const RATE_LIMITED: &str = "ctxsync_source_rate_limited_total";
    pub const PACING_WAIT: &str = "ctxsync_source_pacing_wait_seconds";

    pub fn describe() {
        describe_counter!(
            REQUESTS,
            "Requests sent to sources, each attempt counted, by source and status (2xx, 3xx, 4xx, 429, 5xx, or error when no reply came)."
        );
        describe_histogram!(
            REQUEST_DURATION,
            metrics::Unit::Seconds,
            "Time from sending a request to a source to the end of its reply, by source."
        );
        describe_counter!(
            RETRIES,
            "Requests to sources sent again after a failure or a rate limit, by source."
        );
        describe_counter!(
            RATE_LIMITED,
            "Replies from sources that said the rate limit was reached (429), by source."
        );
        describe_histogram!(
            PACING_WAIT,
            metrics::Unit::Seconds,
            "Time a request to a source waited before going, to keep within the config's rate_limit_share of the source's limits, by source; requests that went at once are not counted."
        );
    }

    /// `Microsoft Graph` → `microsoft_graph`, `Google's token endpoint` → `googles_token_endpoint`.
    fn slug(source: &str) -> String {
        source
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
            .map(|c| if c == ' ' { '_' } else { c.to_ascii_lowercase() })
            .collect()
    }

    pub(super) fn record_request(source: &str, status: Option<StatusCode>, took: Duration) {
        let class = match status.map(|s| s.as_u16()) {
            None => "error",
            Some(429) => "429",
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(_) => "5xx",
        };
        let source = slug(source);
        counter!(REQUESTS, "source" => source.clone(), "status" => class).increment(1);
        histogram!(REQUEST_DURATION, "source" => source.clone()).record(took.as_secs_f64());
        if class == "429" {
            counter!(RATE_LIMITED, "source" => source).increment(1);
        }
    }

    pub(super) fn record_pacing(source: &str, waited: Duration) {
        histogram!(PACING_WAIT, "source" => slug(source)).record(waited.as_secs_f64());
    }

    pub(super) fn record_retry(source: &str) {
        counter!(RETRIES, "source" => slug(source)).increment(1);
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn sources_become_slugs() {
            assert_eq!(super::slug("Microsoft Graph"), "microsoft_graph");
            assert_eq!(super::slug("Google's token endpoint"), "googles_token_endpoint");
            assert_eq!(super::slug("Okta"), "okta");
        }
    }
}

/// What [`Http::fetch`] brought back.
#[derive(Debug)]
pub(crate) struct Fetched<T> {
    /// The last reply, whatever its status.
    pub reply: Reply,
    /// Its decoded body, when it was a 2xx that decoded.
    pub body: Option<T>,
    /// Attempts beyond the first.
    pub retries: u32,
}

/// A `GET` of `url` as every source reads its API: with the credentials' `Authorization` header,
/// asking for JSON.
pub(crate) fn json_get(client: &Client, url: &url::Url, auth: &HeaderValue) -> RequestBuilder {
    client.get(url.clone()).header(AUTHORIZATION, auth.clone()).header(ACCEPT, "application/json")
}

/// A source whose successful replies could not be read, attempt after attempt.
pub(crate) fn unreadable(source: &str, target: &Target) -> SourceError {
    SourceError::Unreachable(format!(
        "{source} at {} kept sending replies that could not be read (cut short, or not the JSON expected); try \
         again later",
        target.display()
    ))
}

async fn read(mut response: reqwest::Response) -> Result<Reply, Failure> {
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Failure::TooLarge);
    }
    // Sized from `Content-Length`, so a page is not copied as it grows; a length that is only
    // claimed reserves no more than a large page before the bytes arrive.
    let expected = response.content_length().unwrap_or(0).min(RESERVE_AT_MOST as u64);
    let mut body = BytesMut::with_capacity(expected as usize);
    while let Some(chunk) = response.chunk().await.map_err(Failure::Transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply { status, headers, body: body.freeze() })
}

fn refused(blocked: &guard::Blocked) -> SourceError {
    SourceError::Refused(format!("{blocked}; set CTXSYNC_ALLOW_PRIVATE_SOURCES=true to allow it"))
}

fn unreachable(source: &str, target: &Target, failure: Failure) -> SourceError {
    let reason = match failure {
        Failure::TooLarge => format!("the reply was larger than {} MiB", MAX_BODY / (1024 * 1024)),
        Failure::Transport(e) if e.is_timeout() => "the request timed out".to_string(),
        Failure::Transport(e) => {
            // The innermost cause says what went wrong (refused, no such host); reqwest's own
            // message would repeat the URL.
            match e.source() {
                None => e.without_url().to_string(),
                Some(mut cause) => {
                    while let Some(inner) = cause.source() {
                        cause = inner;
                    }
                    cause.to_string()
                }
            }
        }
    };
    SourceError::Unreachable(format!(
        "could not reach {source} at {}: {reason}; check the address and try again",
        target.display()
    ))
}

/// A reply that means "not now" rather than "no": rate limiting or a server error that outlasted
/// the retries. `wait` is how long the source asked to wait, when it said.
pub(crate) fn unavailable(
    source: &str,
    target: &Target,
    reply: &Reply,
    detail: &str,
    wait: Option<Duration>,
) -> SourceError {
    let status = reply.status;
    let hint = match wait {
        Some(wait) => format!("try again in {} s", wait.as_secs().max(1)),
        None => "try again later".to_string(),
    };
    let what =
        if status == StatusCode::TOO_MANY_REQUESTS { "kept rate-limiting requests" } else { "kept failing" };
    SourceError::Unreachable(format!(
        "{source} at {} {what} (HTTP {}{detail}); {hint}",
        target.display(),
        status.as_u16()
    ))
}

/// Whether a status is worth retrying whatever the source: 429 and the transient 5xx.
pub(crate) fn transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}

/// `Retry-After` as seconds (fractions allowed, at least one second) or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.max(1.0)));
    }
    let at = http_date(value)?;
    let now = headers
        .get(reqwest::header::DATE)
        .and_then(|d| http_date(d.to_str().ok()?))
        .unwrap_or_else(OffsetDateTime::now_utc);
    Some(Duration::try_from(at - now).unwrap_or_default().max(Duration::from_secs(1)))
}

/// CrowdStrike's `X-RateLimit-RetryAfter` on a 429: the Unix epoch second from which requests
/// are accepted again, measured against the reply's `Date` (the source's clock) when it has one;
/// at least one second.
pub(crate) fn retry_after_epoch(headers: &HeaderMap) -> Option<Duration> {
    let at: i64 = headers.get("x-ratelimit-retryafter")?.to_str().ok()?.trim().parse().ok()?;
    let at = OffsetDateTime::from_unix_timestamp(at).ok()?;
    let now = headers
        .get(reqwest::header::DATE)
        .and_then(|d| http_date(d.to_str().ok()?))
        .unwrap_or_else(OffsetDateTime::now_utc);
    Some(Duration::try_from(at - now).unwrap_or_default().max(Duration::from_secs(1)))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(value: &str) -> Option<OffsetDateTime> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value.trim(), &format).ok().map(|t| t.assume_utc())
}

/// Text a source sent, fit to quote in a message: its first line, at most a few hundred
/// characters, with every value in `secrets` replaced, since some sources echo parts of a
/// request back.
pub(crate) fn excerpt(text: &str, secrets: &[&str]) -> String {
    let mut line: String =
        text.lines().next().unwrap_or("").trim().chars().filter(|c| !c.is_control()).collect();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        line = line.replace(secret, "[redacted]");
    }
    match line.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("0.2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(1)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(reqwest::header::DATE, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:49 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retry_after_epoch_is_measured_from_the_replys_date() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::DATE, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        h.insert("x-ratelimit-retryafter", HeaderValue::from_static("784111789"));
        assert_eq!(retry_after_epoch(&h), Some(Duration::from_secs(12)));
        h.insert("x-ratelimit-retryafter", HeaderValue::from_static("784111000"));
        assert_eq!(retry_after_epoch(&h), Some(Duration::from_secs(1)), "a moment already past");
        h.insert("x-ratelimit-retryafter", HeaderValue::from_static("in a while"));
        assert_eq!(retry_after_epoch(&h), None);
        assert_eq!(retry_after_epoch(&HeaderMap::new()), None);
    }

    #[test]
    fn excerpt_is_short_single_line_and_redacted() {
        let text = format!("bad token 00secretvalue\r\nTrace ID: x {}", "y".repeat(10));
        assert_eq!(excerpt(&text, &["00secretvalue"]), "bad token [redacted]");
        assert_eq!(excerpt(&"z".repeat(1000), &[]).chars().count(), EXCERPT_CHARS + 1);
    }

    #[test]
    fn backoff_grows_and_stays_jittered() {
        let p = RetryPolicy::VALIDATION;
        for attempt in 1..4 {
            let d = p.backoff(attempt).as_secs_f64();
            let nominal = 0.25 * f64::from(1 << (attempt - 1));
            assert!(d >= nominal * 0.75 && d <= nominal * 1.25, "{attempt}: {d}");
        }
    }

    #[test]
    fn debug_of_a_token_shows_nothing() {
        let token = AccessToken::new("ya29.secret".into());
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        assert!(token.bearer().unwrap().is_sensitive());
    }
}
