//! Requests to the Admin SDK Directory API with a delegated access token, each within the
//! config's share of the quota of its project and admin (`pacer.rs`), and Google's error envelopes
//! turned into messages that say what to do.

use std::sync::Arc;
use std::time::Duration;

use ctxsync_core::RateLimitShare;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::auth::ServiceAccount;
use super::credentials::GoogleWorkspaceCredentials;
use super::pacer::{GoogleQuota, Pacer, pacer_for};
use crate::SourceError;
use crate::endpoints::{Endpoints, Target};
use crate::http::{
    AccessToken, Http, Pace, Reply, Retry, excerpt, paced, retry_after, transient, unavailable, unreadable,
};
use crate::split::{self, Split};

/// Where the Directory API's resources live under the base URL.
const DIRECTORY: [&str; 3] = ["admin", "directory", "v1"];

const SOURCE: &str = "Google Workspace";
/// How long before a token's expiry it is replaced (at most a tenth of its lifetime).
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Reasons Google gives for "slow down", some of them with status 403: they call for a retry,
/// not for marking the credentials invalid.
const RATE_LIMIT_REASONS: [&str; 3] = ["rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"];

#[derive(Deserialize)]
struct ErrorBody {
    error: GoogleError,
}

/// Both of Google's shapes: v1 (`errors[]` with reasons) and v2 (`status`).
#[derive(Deserialize)]
struct GoogleError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    errors: Vec<GoogleErrorItem>,
}

#[derive(Deserialize)]
struct GoogleErrorItem {
    #[serde(default)]
    reason: String,
}

impl GoogleError {
    fn reason(&self) -> &str {
        self.errors
            .first()
            .map(|e| e.reason.as_str())
            .filter(|r| !r.is_empty())
            .or(self.status.as_deref())
            .unwrap_or("")
    }
}

fn parse_error(reply: &Reply) -> Option<GoogleError> {
    reply.json::<ErrorBody>().map(|b| b.error)
}

/// One of the `tolerated` statuses; a 403 only when it refuses this resource (`forbidden`):
/// rate limits and missing scopes are 403s too, and mean the run cannot go on.
fn is_tolerated(reply: &Reply, tolerated: &[StatusCode]) -> bool {
    tolerated.contains(&reply.status)
        && (reply.status != StatusCode::FORBIDDEN
            || parse_error(reply).is_some_and(|e| e.reason() == "forbidden"))
}

fn rate_limited(reply: &Reply) -> bool {
    reply.status == StatusCode::TOO_MANY_REQUESTS
        || (reply.status == StatusCode::FORBIDDEN
            && parse_error(reply)
                .is_some_and(|e| e.errors.iter().any(|i| RATE_LIMIT_REASONS.contains(&i.reason.as_str()))))
}

/// One request: its method, its path from the base URL, its query and its JSON body.
struct Request<'r> {
    method: Method,
    path: &'r [&'r str],
    query: &'r [(&'r str, &'r str)],
    body: Option<&'r serde_json::Value>,
}

/// A cached access token and when to replace it.
#[derive(Debug)]
struct Token {
    value: AccessToken,
    renew_at: Instant,
}

/// What one Directory request brought back.
#[derive(Debug)]
pub(crate) struct Got<T> {
    /// The decoded body of a 2xx; `None` for a tolerated error status.
    pub body: Option<T>,
    /// Retries, minting included.
    pub retries: u32,
}

/// The Directory API as the service account's delegated admin. Tokens are minted when first
/// needed and again before they expire (they last an hour, a large tenant's sync may not), or
/// when the API refuses one during a run.
#[derive(Debug)]
pub(crate) struct DirectoryClient<'a> {
    http: &'a Http,
    token_target: Target,
    target: Target,
    account: ServiceAccount,
    /// Locked while a token is minted, so the requests of a run that find none, or an old one,
    /// at the same time wait for one token rather than each mint their own.
    token: tokio::sync::Mutex<Option<Token>>,
    /// Shared by every client of this project and admin in this process.
    pacer: Arc<Pacer>,
    pace: Pace,
    /// The processes syncing the config's domain at once, which split the quota.
    split: Split,
}

/// The name of the quota that processes syncing configs of `domain` at once split: the project's
/// and the admin's, for which the domain stands (configs of one domain almost always share both).
pub(super) fn quota_key(directory: &Target, domain: &str) -> String {
    split::domain_key("google", directory, domain)
}

impl<'a> DirectoryClient<'a> {
    /// A client of a config of `domain` taking at most `share` of the quota of the service
    /// account's project as its admin, or its part of that share while other processes sync the
    /// domain too.
    pub(crate) fn new(
        http: &'a Http,
        endpoints: &Endpoints,
        domain: &str,
        credentials: &GoogleWorkspaceCredentials,
        share: RateLimitShare,
    ) -> Self {
        let (token_target, target) = (endpoints.target(&super::TOKEN), endpoints.target(&super::DIRECTORY));
        let quota = endpoints.google_quota().unwrap_or(GoogleQuota::DOCUMENTED);
        let pacer = pacer_for(target.base(), &credentials.project_id, &credentials.admin_email, quota);
        let split = Split::named(&quota_key(&target, domain));
        let account = ServiceAccount::new(credentials);
        let token = tokio::sync::Mutex::new(None);
        Self { http, token_target, target, account, token, pacer, pace: Pace::Within(share), split }
    }

    /// This client's requests do not wait for room in the share ([`Pace::Now`]).
    pub(crate) fn unpaced(self) -> Self {
        Self { pace: Pace::Now, ..self }
    }

    /// The bearer header, minting a token when there is none or it is due for renewal; whether
    /// it was minted now; and the retries minting took.
    async fn bearer(&self) -> Result<(HeaderValue, bool, u32), SourceError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok((token.value.bearer()?, false, 0));
        }
        let minted = self.account.access_token(self.http, &self.token_target).await?;
        let renew_at =
            Instant::now() + minted.lifetime.saturating_sub(RENEW_BEFORE.min(minted.lifetime / 10));
        let header = minted.token.bearer()?;
        *cached = Some(Token { value: minted.token, renew_at });
        Ok((header, true, minted.retries))
    }

    /// Mints the first token, so credential problems surface before any listing.
    pub(crate) async fn authenticate(&self) -> Result<(), SourceError> {
        self.bearer().await.map(|_| ())
    }

    /// `GET {base}/admin/directory/v1/{collection}?{query}`; a 2xx reply, or the error it means.
    pub(crate) async fn get(&self, collection: &str, query: &[(&str, &str)]) -> Result<Reply, SourceError> {
        let path: Vec<&str> = DIRECTORY.iter().copied().chain([collection]).collect();
        let request = Request { method: Method::GET, path: &path, query, body: None };
        let action = format!("list {collection}");
        let got = self.request(request, &action, &[], |_| Some(())).await?;
        Ok(got.0)
    }

    /// `POST {base}/{path…}?{query}` with a JSON body (`path` from the root: `channels.stop` is
    /// not under the Directory's `v1`); a 2xx or `tolerated` reply, or the error it means.
    /// `action` completes "refused to …".
    pub(crate) async fn post(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        body: &serde_json::Value,
        action: &str,
        tolerated: &[StatusCode],
    ) -> Result<Reply, SourceError> {
        let request = Request { method: Method::POST, path, query, body: Some(body) };
        Ok(self.request(request, action, tolerated, |_| Some(())).await?.0)
    }

    /// `GET {base}/admin/directory/v1/{path…}?{query}`, its body decoded as `T`; a body cut
    /// short is retried. The `tolerated` statuses (404 for a group deleted during the run, 403
    /// for one outside the admin's role) come back without a body instead of as errors. `what` completes "refused to list …".
    pub(crate) async fn fetch<T: DeserializeOwned>(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        what: &str,
        tolerated: &[StatusCode],
    ) -> Result<Got<T>, SourceError> {
        let decode = |reply: &Reply| serde_json::from_slice::<T>(&reply.body).ok();
        let path: Vec<&str> = DIRECTORY.iter().chain(path).copied().collect();
        let request = Request { method: Method::GET, path: &path, query, body: None };
        let action = format!("list {what}");
        let (reply, body, retries) = self.request(request, &action, tolerated, decode).await?;
        if reply.status.is_success() && body.is_none() {
            return Err(unreadable(SOURCE, &self.target));
        }
        Ok(Got { body, retries })
    }

    /// A 401 to a cached token mints a new one and tries once more: the token may have expired
    /// or been revoked while the run went on.
    async fn request<T>(
        &self,
        request: Request<'_>,
        action: &str,
        tolerated: &[StatusCode],
        decode: impl Fn(&Reply) -> Option<T>,
    ) -> Result<(Reply, Option<T>, u32), SourceError> {
        let Request { method, path, query, body } = request;
        let url = self.target.url(path);
        tracing::debug!(source = SOURCE, path = url.path(), "request");
        let (mut retries, mut renewed) = (0, false);
        loop {
            // The token is taken once the pacer lets the request go, so a long wait does not
            // send one that fell due meanwhile.
            let admitted = paced(SOURCE, self.pacer.admit(self.pace, &self.split)).await;
            let (auth, fresh, minting) = self.bearer().await?;
            retries += minting;
            let classify = |reply: &Reply| {
                admitted.note(rate_limited(reply));
                classify(reply)
            };
            let fetched = self
                .http
                .fetch(
                    SOURCE,
                    &self.target,
                    |client| {
                        let request = client
                            .request(method.clone(), url.clone())
                            .header(AUTHORIZATION, auth.clone())
                            .header(ACCEPT, "application/json")
                            .query(query);
                        match body {
                            Some(body) => request.json(body),
                            None => request,
                        }
                    },
                    classify,
                    &decode,
                )
                .await?;
            retries += fetched.retries;
            let status = fetched.reply.status;
            if status == StatusCode::UNAUTHORIZED && !fresh && !renewed {
                tracing::debug!(source = SOURCE, "the access token was refused; minting a new one");
                // Only the token this request sent: another request may have minted its successor.
                let mut cached = self.token.lock().await;
                if cached.as_ref().and_then(|t| t.value.bearer().ok()).is_some_and(|sent| sent == auth) {
                    *cached = None;
                }
                renewed = true;
                retries += 1;
                continue;
            }
            if status.is_success() || is_tolerated(&fetched.reply, tolerated) {
                return Ok((fetched.reply, fetched.body, retries));
            }
            return Err(self.failure(&fetched.reply, action, &auth));
        }
    }

    /// What `reply` to a request sent with `auth` means; the token is kept out of the message.
    fn failure(&self, reply: &Reply, action: &str, auth: &HeaderValue) -> SourceError {
        let error = parse_error(reply);
        let secrets: Vec<&str> =
            auth.to_str().ok().and_then(|a| a.strip_prefix("Bearer ")).into_iter().collect();
        let (message, reason) = match &error {
            Some(e) => (excerpt(&e.message, &secrets), excerpt(e.reason(), &secrets)),
            None => (format!("HTTP {}", reply.status.as_u16()), String::new()),
        };
        let said = if reason.is_empty() { message } else { format!("{message} ({reason})") };
        if rate_limited(reply) || transient(reply.status) {
            return unavailable(
                SOURCE,
                &self.target,
                reply,
                &format!(": {said}"),
                retry_after(&reply.headers),
            );
        }
        let admin = self.account.admin_email();
        let next = match (reply.status, reason.as_str()) {
            (StatusCode::UNAUTHORIZED, _) => {
                "the access token Google just issued was refused; check CTXSYNC_GOOGLE_DIRECTORY_BASE_URL and \
                 CTXSYNC_GOOGLE_TOKEN_URL point at the same Google"
                    .to_string()
            }
            (StatusCode::FORBIDDEN, "insufficientPermissions" | "PERMISSION_DENIED") => format!(
                "authorise the service account's client ID for the scopes {} under domain-wide delegation",
                super::auth::SCOPES.join(",")
            ),
            (StatusCode::FORBIDDEN, "accessNotConfigured" | "SERVICE_DISABLED") => {
                "enable the Admin SDK API in the service account's Google Cloud project".to_string()
            }
            (StatusCode::FORBIDDEN, _) => format!(
                "admin_email ({admin}) must be a Workspace administrator allowed to read users and groups, for \
                 example a super admin"
            ),
            _ => "check the config's domain and admin_email".to_string(),
        };
        SourceError::Rejected(format!("Google Workspace refused to {action} as {admin}: {said}; {next}"))
    }
}

fn classify(reply: &Reply) -> Retry {
    if rate_limited(reply) || transient(reply.status) {
        retry_after(&reply.headers).map_or(Retry::Backoff, Retry::After)
    } else {
        Retry::No
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;

    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.to_owned().into(),
        }
    }

    #[test]
    fn quota_403s_are_rate_limiting_not_refusals() {
        let quota = r#"{"error":{"errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded","message":"x"}],"code":403,"message":"x"}}"#;
        assert!(rate_limited(&reply(403, quota)));
        assert_eq!(classify(&reply(403, quota)), Retry::Backoff);
        assert!(rate_limited(&reply(429, "")));
        let forbidden = r#"{"error":{"errors":[{"domain":"global","reason":"forbidden","message":"Not Authorized to access this resource/api"}],"code":403,"message":"Not Authorized to access this resource/api"}}"#;
        assert!(!rate_limited(&reply(403, forbidden)));
        assert_eq!(classify(&reply(403, forbidden)), Retry::No);
    }
}
