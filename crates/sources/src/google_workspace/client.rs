//! Requests to the Admin SDK Directory API with a delegated access token, and Google's error
//! envelopes turned into messages that say what to do.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Deserialize;

use crate::SourceError;
use crate::endpoints::Target;
use crate::http::{AccessToken, Http, Reply, Retry, excerpt, retry_after, transient, unavailable};

const SOURCE: &str = "Google Workspace";

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

fn rate_limited(reply: &Reply) -> bool {
    reply.status == StatusCode::TOO_MANY_REQUESTS
        || (reply.status == StatusCode::FORBIDDEN
            && parse_error(reply)
                .is_some_and(|e| e.errors.iter().any(|i| RATE_LIMIT_REASONS.contains(&i.reason.as_str()))))
}

#[derive(Debug)]
pub(crate) struct DirectoryClient<'a> {
    http: &'a Http,
    target: Target,
    token: AccessToken,
    admin_email: String,
}

impl<'a> DirectoryClient<'a> {
    pub(crate) fn new(http: &'a Http, target: Target, token: AccessToken, admin_email: &str) -> Self {
        Self { http, target, token, admin_email: admin_email.to_string() }
    }

    /// `GET {base}/admin/directory/v1/{collection}?{query}`; a 2xx reply, or the error it means.
    pub(crate) async fn get(&self, collection: &str, query: &[(&str, &str)]) -> Result<Reply, SourceError> {
        let auth = self.token.bearer()?;
        let url = self.target.url(&["admin", "directory", "v1", collection]);
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
        if reply.status.is_success() { Ok(reply) } else { Err(self.failure(&reply, collection)) }
    }

    fn failure(&self, reply: &Reply, collection: &str) -> SourceError {
        let error = parse_error(reply);
        let secrets = [self.token.expose()];
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
        let admin = &self.admin_email;
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
        SourceError::Rejected(format!(
            "Google Workspace refused to list {collection} as {admin}: {said}; {next}"
        ))
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
