//! Okta: the Management API with an `SSWS` API token.
//!
//! Validation reads the token's own user (`/users/me`: is the token live?), then one user and
//! one group (does its admin have the list rights a sync needs?). A sync (`pages.rs`) lists
//! users, groups, members and admin roles, following `Link` headers, and incrementally asks
//! only for what changed since the last run.
//!
//! Settings: `okta_include_factors` (boolean, default `false`) also reads each listed user's
//! enrolled MFA factors. That is one more request per user, so it is off unless asked for.

mod auth;
mod client;
mod cursor;
mod map;
mod pages;

use ctxsync_core::{Config, FieldErrors, IntegrationType, RateLimitShare, Settings};
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::endpoints::{Endpoints, Target};
use crate::http::Http;
use crate::registry::{BaseUrl, Connector, Credentials, SecretKey, SourceInfo, required_secret};
use crate::{Named, Outcome, PageSink, SourceError, SyncError, SyncMode};
use client::OktaClient;

/// `settings.okta_include_factors`: read each listed user's MFA factors (default off).
pub(crate) const INCLUDE_FACTORS: &str = "okta_include_factors";

/// The org's host is the config's domain.
static BASE_URL: BaseUrl = BaseUrl {
    flag: "okta-base-url",
    env: "CTXSYNC_OKTA_BASE_URL",
    default: None,
    help: "Send Okta requests here instead of https://{domain} (tests, a proxy).",
};

pub(crate) struct Okta;

static INFO: SourceInfo = SourceInfo {
    integration_type: IntegrationType::Okta,
    credentials: "Credentials for an Okta entity context sync.",
    secrets: &[SecretKey {
        name: "api_token",
        description: "An Okta API token (sent as `SSWS`).",
        schema: None,
    }],
    settings: &[INCLUDE_FACTORS],
    validated_settings: &[],
    base_urls: &[&BASE_URL],
};

#[derive(Debug, Clone)]
pub(crate) struct OktaCredentials {
    /// Sent as `Authorization: SSWS <token>`.
    pub(crate) api_token: SecretString,
}

fn target(endpoints: &Endpoints, domain: &str) -> Result<Target, SourceError> {
    endpoints.domain(&BASE_URL, domain, "Okta", "acme.okta.com")
}

#[async_trait::async_trait]
impl Connector for Okta {
    fn info(&self) -> &'static SourceInfo {
        &INFO
    }

    fn parse(&self, secrets: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Credentials> {
        let api_token = required_secret(secrets, "api_token", errors)?;
        Some(Credentials::new(
            INFO.integration_type,
            OktaCredentials { api_token: SecretString::from(api_token) },
        ))
    }

    async fn validate(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        domain: &str,
        _: &Settings,
        credentials: &Credentials,
    ) -> Result<(), SourceError> {
        validate(http, target(endpoints, domain)?, credentials.get()?).await
    }

    async fn sync(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        config: &Config,
        credentials: &Credentials,
        mode: SyncMode,
        sink: &mut dyn PageSink,
    ) -> Result<Outcome, SyncError> {
        let target = target(endpoints, &config.domain)?;
        pages::sync(http, target, credentials.get()?, &config.settings, mode, sink).await
    }

    async fn refresh_users(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        config: &Config,
        credentials: &Credentials,
        named: Named<'_>,
        sink: &mut dyn PageSink,
    ) -> Result<(), SyncError> {
        let target = target(endpoints, &config.domain)?;
        pages::refresh_users(http, target, credentials.get()?, &config.settings, named, sink).await
    }

    /// The org's limit on requests in flight: Okta reports it only in the 429 past it, so
    /// processes cannot see each other's use of it as they see the windows'.
    fn shared_limit(&self, endpoints: &Endpoints, domain: &str) -> Option<String> {
        Some(client::pacer_key(&target(endpoints, domain).ok()?))
    }
}

async fn validate(http: &Http, target: Target, credentials: &OktaCredentials) -> Result<(), SourceError> {
    let client = OktaClient::new(http, target, credentials, RateLimitShare::DEFAULT).unpaced();
    let me = client.get(&["api", "v1", "users", "me"], &[], "read the token's own user").await?;
    expect_json(&client, me.json::<Value>().filter(|v| v.get("id").is_some()), "the token's user")?;
    for (collection, action) in [("users", "list users"), ("groups", "list groups")] {
        let reply = client.get(&["api", "v1", collection], &[("limit", "1")], action).await?;
        expect_json(&client, reply.json::<Value>().filter(Value::is_array), collection)?;
    }
    Ok(())
}

/// A 2xx that is not Okta's JSON means the domain points at something else (a portal, a proxy).
fn expect_json(client: &OktaClient<'_>, parsed: Option<Value>, what: &str) -> Result<(), SourceError> {
    match parsed {
        Some(_) => Ok(()),
        None => Err(SourceError::Rejected(format!(
            "{} did not answer like Okta (expected JSON for {what}); check that the domain is the org's Okta host",
            client.display()
        ))),
    }
}
