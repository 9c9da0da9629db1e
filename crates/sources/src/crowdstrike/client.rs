//! Requests to the Falcon API: the bearer token is minted once and reused until shortly before it
//! expires (again when the API refuses it), the client follows its home cloud, rate limits are
//! honoured (`X-RateLimit-RetryAfter`, `X-RateLimit-Remaining`), and the MSA error envelope
//! becomes a message that says what to do.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::auth::{ClientSecret, SOURCE};
use super::{CrowdStrikeCredentials, region_target};
use crate::SourceError;
use crate::endpoints::{Endpoints, Target};
use crate::http::{
    AccessToken, Http, Reply, Retry, excerpt, retry_after, retry_after_epoch, transient, unavailable,
    unreadable,
};

/// A token is renewed this long before it expires (a tenth of its life for short-lived ones).
const RENEW_BEFORE: Duration = Duration::from_secs(120);
/// The wait before the next request once `X-RateLimit-Remaining` reaches 0: Falcon's window
/// slides, so a slot frees within moments, and the wait spares the 429 that would come first.
const EMPTY_WINDOW_WAIT: Duration = Duration::from_secs(1);

/// Falcon's envelope ("MSA"): `errors` may be absent, `null` or `[]` on success.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Msa {
    #[serde(default)]
    errors: Option<Vec<MsaError>>,
}

#[derive(Debug, Deserialize)]
struct MsaError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: String,
}

impl Msa {
    /// The first error, fit to quote: `access denied, authorization failed (403)`.
    pub(super) fn said(&self, secrets: &[&str]) -> Option<String> {
        let e = self.errors.as_ref()?.first()?;
        let code = e.code.map(|c| format!(" ({c})")).unwrap_or_default();
        Some(format!("{}{code}", excerpt(&e.message, secrets)))
    }

    fn says(&self, text: &str) -> bool {
        self.errors.iter().flatten().any(|e| e.message.to_ascii_lowercase().contains(text))
    }
}

/// A transient reply is retried, waiting as long as Falcon's `X-RateLimit-RetryAfter` (an epoch
/// second) or a `Retry-After` asks.
pub(super) fn classify(reply: &Reply) -> Retry {
    match reply.status {
        status if transient(status) => retry_after_epoch(&reply.headers)
            .or_else(|| retry_after(&reply.headers))
            .map_or(Retry::Backoff, Retry::After),
        _ => Retry::No,
    }
}

/// What one request brought back.
#[derive(Debug)]
pub(super) struct Got<T> {
    /// The decoded body of a 2xx; `None` for a tolerated error status.
    pub body: Option<T>,
    pub retries: u32,
}

struct Token {
    value: AccessToken,
    renew_at: Instant,
}

pub(crate) struct FalconClient<'a> {
    http: &'a Http,
    endpoints: &'a Endpoints,
    target: Target,
    /// Whether to move to the cloud `X-CS-Region` names (never for an operator's override).
    follow_region: bool,
    app: ClientSecret,
    token: Option<Token>,
    /// CrowdStrike's clock when the first token was minted: before anything was listed.
    started: Option<OffsetDateTime>,
    /// No request leaves before this (the rate-limit window was empty).
    not_before: Option<Instant>,
}

/// The header a request carries, and what getting it took.
struct Bearer {
    header: HeaderValue,
    /// Minted for this request: a 401 to it is no expired token.
    minted: bool,
    /// Token requests asked again.
    retries: u32,
}

impl<'a> FalconClient<'a> {
    pub(crate) fn new(
        http: &'a Http,
        endpoints: &'a Endpoints,
        target: Target,
        follow_region: bool,
        credentials: &CrowdStrikeCredentials,
    ) -> Self {
        Self {
            http,
            endpoints,
            target,
            follow_region,
            app: ClientSecret::new(credentials),
            token: None,
            started: None,
            not_before: None,
        }
    }

    pub(super) fn started(&self) -> Option<OffsetDateTime> {
        self.started
    }

    /// The bearer header, minting a token when there is none or it is due for renewal. The
    /// first token answered by another cloud than the configured one is minted again there, as
    /// the API client's data lives there.
    async fn bearer(&mut self) -> Result<Bearer, SourceError> {
        if let Some(token) = &self.token
            && Instant::now() < token.renew_at
        {
            return Ok(Bearer { header: token.value.bearer()?, minted: false, retries: 0 });
        }
        let mut minted = self.app.mint(self.http, &self.target).await?;
        let mut retries = minted.retries;
        if self.follow_region
            && let Some(home) =
                minted.region.as_deref().and_then(|r| region_target(self.endpoints, &self.target, r))
        {
            tracing::info!(source = SOURCE, cloud = %home.display(), "following the API client's home cloud");
            self.target = home;
            minted = self.app.mint(self.http, &self.target).await?;
            retries += minted.retries;
        }
        self.started = self.started.or(minted.date).or_else(|| Some(OffsetDateTime::now_utc()));
        let renew_at =
            Instant::now() + minted.lifetime.saturating_sub(RENEW_BEFORE.min(minted.lifetime / 10));
        let header = minted.token.bearer()?;
        self.token = Some(Token { value: minted.token, renew_at });
        Ok(Bearer { header, minted: true, retries })
    }

    /// `GET path?query` decoded as `T`.
    pub(super) async fn get<T: DeserializeOwned>(
        &mut self,
        path: &[&str],
        query: &[(&str, String)],
        what: &str,
        tolerated: &[StatusCode],
    ) -> Result<Got<T>, SourceError> {
        self.request(path, query, None, what, tolerated).await
    }

    /// `POST path` with a JSON body, decoded as `T`.
    pub(super) async fn post<T: DeserializeOwned>(
        &mut self,
        path: &[&str],
        body: &serde_json::Value,
        what: &str,
    ) -> Result<Got<T>, SourceError> {
        self.request(path, &[], Some(body), what, &[]).await
    }

    /// A request, its body decoded by `T`; a body cut short is retried. The `tolerated`
    /// statuses come back without a body instead of as errors. A 401 to a cached token mints a
    /// new one and tries once more: it may have expired while the run went on. `what` completes
    /// "CrowdStrike refused to …".
    async fn request<T: DeserializeOwned>(
        &mut self,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        what: &str,
        tolerated: &[StatusCode],
    ) -> Result<Got<T>, SourceError> {
        let mut renewed = false;
        let mut retries = 0;
        loop {
            let bearer = self.bearer().await?;
            retries += bearer.retries;
            // After the token, which may have moved the client to its home cloud.
            let url = self.target.url(path);
            if let Some(at) = self.not_before.take() {
                tokio::time::sleep_until(at).await;
            }
            tracing::debug!(source = SOURCE, path = url.path(), "request");
            let build = |client: &reqwest::Client| {
                let request = match body {
                    Some(body) => client.post(url.clone()).json(body),
                    None => client.get(url.clone()).query(query),
                };
                request.header(AUTHORIZATION, bearer.header.clone()).header(ACCEPT, "application/json")
            };
            let fetched = self
                .http
                .fetch(SOURCE, &self.target, build, classify, |reply| {
                    serde_json::from_slice::<T>(&reply.body).ok()
                })
                .await?;
            retries += fetched.retries;
            let reply = &fetched.reply;
            if reply.headers.get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()).map(str::trim)
                == Some("0")
            {
                self.not_before = Some(Instant::now() + EMPTY_WINDOW_WAIT);
            }
            if reply.status.is_success() {
                return match fetched.body {
                    Some(body) => Ok(Got { body: Some(body), retries }),
                    None => Err(unreadable(SOURCE, &self.target)),
                };
            }
            if reply.status == StatusCode::UNAUTHORIZED && !bearer.minted && !renewed {
                self.token = None;
                renewed = true;
                retries += 1;
                continue;
            }
            if tolerated.contains(&reply.status) {
                return Ok(Got { body: None, retries });
            }
            return Err(self.failure(reply, what));
        }
    }

    fn failure(&self, reply: &Reply, what: &str) -> SourceError {
        let secrets: Vec<&str> = self.token.iter().map(|t| t.value.expose()).collect();
        let msa = reply.json::<Msa>().unwrap_or_default();
        let said = msa.said(&secrets).unwrap_or_else(|| format!("HTTP {}", reply.status.as_u16()));
        if transient(reply.status) {
            let wait = retry_after_epoch(&reply.headers).or_else(|| retry_after(&reply.headers));
            return unavailable(SOURCE, &self.target, reply, &format!(": {said}"), wait);
        }
        let next = match reply.status {
            StatusCode::FORBIDDEN if msa.says("authorization failed") => {
                "the API client lacks the Hosts: Read scope (or its IP allow-list does not admit this server); \
                 add Hosts: Read to the API client in the Falcon console"
            }
            StatusCode::UNAUTHORIZED => {
                "CrowdStrike refused the bearer token it had just issued; check that the domain (or \
                 CTXSYNC_CROWDSTRIKE_BASE_URL) is the API client's cloud"
            }
            _ => "check the config's domain and the API client",
        };
        SourceError::Rejected(format!("CrowdStrike refused to {what}: {said}; {next}"))
    }
}
