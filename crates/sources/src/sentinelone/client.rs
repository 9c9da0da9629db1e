//! Requests to one SentinelOne console: `ApiToken` auth, `Retry-After` on 429, and the
//! `{"errors": [{code, title, detail}]}` envelope turned into messages that say what to do.

use reqwest::StatusCode;
use reqwest::header::{DATE, HeaderValue};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::SentinelOneCredentials;
use crate::SourceError;
use crate::endpoints::Target;
use crate::http::{
    Http, Reply, Retry, excerpt, http_date, json_get, retry_after, sensitive_header, transient, unavailable,
    unreadable,
};

const SOURCE: &str = "SentinelOne";
/// Every path of the Management API starts here.
const PREFIX: [&str; 3] = ["web", "api", "v2.1"];
/// The error code of a token scoped to a site: it may not read the account's agents.
const SITE_SCOPED: i64 = 4_030_010;

#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<ApiError>,
}

/// Only `code` is stable; `title` and `detail` are for people.
#[derive(Debug, Deserialize)]
struct ApiError {
    code: Option<i64>,
    title: Option<String>,
    detail: Option<String>,
}

/// What one request of a sync brought back.
#[derive(Debug)]
pub(crate) struct Got<T> {
    pub body: T,
    /// The reply's `Date`: the console's clock.
    pub date: Option<OffsetDateTime>,
    pub retries: u32,
}

#[derive(Debug)]
pub(crate) struct SentinelOneClient<'a> {
    http: &'a Http,
    target: Target,
    credentials: &'a SentinelOneCredentials,
}

impl<'a> SentinelOneClient<'a> {
    pub(crate) fn new(http: &'a Http, target: Target, credentials: &'a SentinelOneCredentials) -> Self {
        Self { http, target, credentials }
    }

    /// How messages name the console: `https://usea1-acme.sentinelone.net`.
    pub(crate) fn display(&self) -> String {
        self.target.display()
    }

    fn token(&self) -> &str {
        self.credentials.api_token.expose_secret()
    }

    fn auth(&self) -> Result<HeaderValue, SourceError> {
        sensitive_header(&format!("ApiToken {}", self.token()), "api_token")
    }

    /// `GET /web/api/v2.1/{path}?{query}`, its body decoded as `T`; a body cut short is retried.
    /// Any status but a 2xx is the error it means; `action` completes "SentinelOne refused to …".
    pub(crate) async fn fetch<T: DeserializeOwned>(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        action: &str,
    ) -> Result<Got<T>, SourceError> {
        let auth = self.auth()?;
        let url = self.target.url(&[&PREFIX[..], path].concat());
        tracing::debug!(source = SOURCE, path = url.path(), "request");
        let fetched = self
            .http
            .fetch(
                SOURCE,
                &self.target,
                |client| json_get(client, &url, &auth).query(query),
                classify,
                |reply| serde_json::from_slice::<T>(&reply.body).ok(),
            )
            .await?;
        let reply = &fetched.reply;
        if !reply.status.is_success() {
            return Err(self.failure(reply, action));
        }
        let body = fetched.body.ok_or_else(|| unreadable(SOURCE, &self.target))?;
        let date = reply.headers.get(DATE).and_then(|d| http_date(d.to_str().ok()?));
        Ok(Got { body, date, retries: fetched.retries })
    }

    fn failure(&self, reply: &Reply, action: &str) -> SourceError {
        let secrets = [self.token()];
        let errors = reply.json::<Envelope>().unwrap_or_default().errors;
        let said = match errors.first() {
            Some(e) => {
                let title = excerpt(e.title.as_deref().unwrap_or("no title"), &secrets);
                let mut said = match e.code {
                    Some(code) => format!("{title} ({code})"),
                    None => title,
                };
                if let Some(detail) = e.detail.as_deref().filter(|d| !d.trim().is_empty()) {
                    said.push_str(&format!(": {}", excerpt(detail, &secrets)));
                }
                said
            }
            None => format!("HTTP {}", reply.status.as_u16()),
        };
        let host = self.target.display();
        match reply.status {
            StatusCode::UNAUTHORIZED => SourceError::Rejected(format!(
                "SentinelOne rejected the API token: {said}; the token is unknown, revoked or expired (tokens \
                 expire), so generate a new API token in the management console and update the config's \
                 api_token"
            )),
            StatusCode::FORBIDDEN if errors.iter().any(|e| e.code == Some(SITE_SCOPED)) => {
                SourceError::Rejected(format!(
                    "SentinelOne refused to {action}: {said}; the API token is scoped to a site, so it cannot \
                     list the account's agents: generate the token for a user or service user with account \
                     scope and update the config's api_token"
                ))
            }
            StatusCode::FORBIDDEN => SourceError::Rejected(format!(
                "SentinelOne refused to {action} with this API token: {said}; the token lacks permission: \
                 give its user or service user a role that may view endpoints (for example Viewer) at account \
                 scope"
            )),
            status if transient(status) => {
                unavailable(SOURCE, &self.target, reply, &format!(": {said}"), retry_after(&reply.headers))
            }
            status if status.is_redirection() => SourceError::Rejected(format!(
                "SentinelOne at {host} answered with a redirect when asked to {action}; redirects are not \
                 followed, so set the domain to the management console's host (for example \
                 usea1-acme.sentinelone.net)"
            )),
            status => SourceError::Rejected(format!(
                "SentinelOne at {host} answered HTTP {} when asked to {action}: {said}; check that the domain \
                 is the management console's host (for example usea1-acme.sentinelone.net)",
                status.as_u16()
            )),
        }
    }
}

/// SentinelOne documents no rate-limit headers; a 429 may carry `Retry-After` in seconds, and
/// without one the policy's backoff applies.
fn classify(reply: &Reply) -> Retry {
    match reply.status {
        StatusCode::TOO_MANY_REQUESTS => retry_after(&reply.headers).map_or(Retry::Backoff, Retry::After),
        status if transient(status) => Retry::Backoff,
        _ => Retry::No,
    }
}
