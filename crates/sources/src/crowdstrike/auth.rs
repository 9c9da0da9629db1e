//! Falcon API clients' OAuth client credentials: `POST /oauth2/token` answers **201** with a
//! bearer token, and names the client's home cloud in `X-CS-Region`.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, DATE};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;

use super::CrowdStrikeCredentials;
use super::client::{Msa, classify};
use crate::SourceError;
use crate::endpoints::Target;
use crate::http::{AccessToken, Http, Reply, http_date, retry_after_epoch, transient, unavailable};

pub(super) const SOURCE: &str = "CrowdStrike";

/// Falcon's tokens live 30 minutes; a reply that does not say is taken to mean that.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(1799);

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token just minted.
pub(super) struct Minted {
    pub token: AccessToken,
    pub lifetime: Duration,
    /// `X-CS-Region`: the cloud the API client belongs to.
    pub region: Option<String>,
    /// The reply's `Date`: CrowdStrike's clock when the run began.
    pub date: Option<OffsetDateTime>,
    /// Token requests asked again (rate-limited, failed or cut short): the token endpoint
    /// shares the API gateway's limits, and a run reports these with its own.
    pub retries: u32,
}

/// `Debug` redacts the secret (through [`SecretString`]).
#[derive(Debug)]
pub(super) struct ClientSecret {
    client_id: String,
    secret: SecretString,
}

impl ClientSecret {
    pub(super) fn new(credentials: &CrowdStrikeCredentials) -> Self {
        Self { client_id: credentials.client_id.clone(), secret: credentials.client_secret.clone() }
    }

    pub(super) async fn mint(&self, http: &Http, target: &Target) -> Result<Minted, SourceError> {
        let url = target.url(&["oauth2", "token"]);
        let build = |client: &reqwest::Client| {
            client.post(url.clone()).header(ACCEPT, "application/json").form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.secret.expose_secret()),
            ])
        };
        let fetched = http
            .fetch(SOURCE, target, build, classify, |reply| {
                reply.json::<TokenReply>().filter(|t| !t.access_token.is_empty())
            })
            .await?;
        let reply = &fetched.reply;
        if !reply.status.is_success() {
            return Err(self.failure(target, reply));
        }
        let Some(token) = fetched.body else { return Err(not_falcon(target, reply)) };
        Ok(Minted {
            lifetime: token.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs),
            token: AccessToken::new(token.access_token),
            region: reply.headers.get("x-cs-region").and_then(|v| Some(v.to_str().ok()?.to_owned())),
            date: reply.headers.get(DATE).and_then(|d| http_date(d.to_str().ok()?)),
            retries: fetched.retries,
        })
    }

    fn failure(&self, target: &Target, reply: &Reply) -> SourceError {
        let secrets = [self.secret.expose_secret(), self.client_id.as_str()];
        let said = reply.json::<Msa>().and_then(|m| m.said(&secrets));
        if transient(reply.status) {
            let detail = said.map(|s| format!(": {s}")).unwrap_or_default();
            return unavailable(SOURCE, target, reply, &detail, retry_after_epoch(&reply.headers));
        }
        let Some(said) = said else {
            return not_falcon(target, reply);
        };
        let next = match reply.status {
            StatusCode::FORBIDDEN => format!(
                "check client_id and client_secret: the API client must exist in the cloud of {} (or its IP \
                 allow-list must admit this server)",
                target.display()
            ),
            StatusCode::BAD_REQUEST => "check client_id: it is not an API client's ID".to_string(),
            _ => "check the API client's client_id and client_secret".to_string(),
        };
        SourceError::Rejected(format!("CrowdStrike refused the API client's credentials: {said}; {next}"))
    }
}

/// A reply without Falcon's JSON means the domain points at something else.
fn not_falcon(target: &Target, reply: &Reply) -> SourceError {
    SourceError::Unreachable(format!(
        "{} did not answer like the CrowdStrike API (HTTP {} to the token request); set the domain to the \
         cloud's API host, for example api.crowdstrike.com",
        target.display(),
        reply.status.as_u16()
    ))
}
