//! Requests to one Okta org: `SSWS` auth, Okta's rate-limit headers, and its error objects
//! turned into messages that say what to do.

use std::time::Duration;

use ctxsync_core::OktaCredentials;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, DATE, HeaderMap};
use serde::Deserialize;
use time::OffsetDateTime;

use super::auth::ApiToken;
use crate::SourceError;
use crate::endpoints::Target;
use crate::http::{Http, Reply, Retry, excerpt, http_date, transient, unavailable};

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

#[derive(Debug)]
pub(crate) struct OktaClient<'a> {
    http: &'a Http,
    target: Target,
    token: ApiToken,
}

impl<'a> OktaClient<'a> {
    pub(crate) fn new(http: &'a Http, target: Target, credentials: &OktaCredentials) -> Self {
        Self { http, target, token: ApiToken::new(credentials) }
    }

    /// How messages name the org: `https://acme.okta.com`.
    pub(crate) fn display(&self) -> String {
        self.target.display()
    }

    /// `GET {base}/{path}?{query}`; a 2xx reply, or the error it means. `action` completes
    /// "Okta refused to …" in messages.
    pub(crate) async fn get(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        action: &str,
    ) -> Result<Reply, SourceError> {
        let auth = self.token.header()?;
        let url = self.target.url(path);
        tracing::debug!(source = SOURCE, path = url.path(), "request");
        let reply = self
            .http
            .send(
                SOURCE,
                &self.target,
                |client| {
                    client
                        .get(url.clone())
                        .query(query)
                        .header(AUTHORIZATION, auth.clone())
                        .header(ACCEPT, "application/json")
                },
                classify,
            )
            .await?;
        if reply.status.is_success() { Ok(reply) } else { Err(self.failure(&reply, action)) }
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

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

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
