//! SentinelOne: the Management API v2.1 of a console, with an `ApiToken`.
//!
//! Validation reads the token's own user (`/user`: is the token live?), then lists one agent
//! (may it read the account's agents?). A sync (`pages.rs`) lists agents by `updatedAt`,
//! decommissioned ones included, and incrementally asks only for those updated since the last
//! run. Agents are devices; this source has no users or groups.

mod client;
mod cursor;
mod map;
mod pages;

use ctxsync_core::{Config, FieldErrors, IntegrationType, Settings};
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::endpoints::{Endpoints, Target};
use crate::http::Http;
use crate::registry::{BaseUrl, Connector, Credentials, SecretKey, SourceInfo, required_secret};
use crate::{Outcome, PageSink, SourceError, SyncError, SyncMode};
use client::SentinelOneClient;

/// The console's host is the config's domain.
static BASE_URL: BaseUrl = BaseUrl {
    flag: "sentinelone-base-url",
    env: "CTXSYNC_SENTINELONE_BASE_URL",
    default: None,
    help: "Send SentinelOne requests here instead of https://{domain} (tests, a proxy).",
};

pub(crate) struct SentinelOne;

static INFO: SourceInfo = SourceInfo {
    integration_type: IntegrationType::SentinelOne,
    credentials: "Credentials for a SentinelOne entity context sync.",
    secrets: &[SecretKey {
        name: "api_token",
        description: "A SentinelOne API token (sent as `ApiToken`) of a user or service user with account scope.",
        schema: None,
    }],
    settings: &[],
    validated_settings: &[],
    base_urls: &[&BASE_URL],
};

#[derive(Debug, Clone)]
pub(crate) struct SentinelOneCredentials {
    /// Sent as `Authorization: ApiToken <token>`.
    pub(crate) api_token: SecretString,
}

fn target(endpoints: &Endpoints, domain: &str) -> Result<Target, SourceError> {
    endpoints.domain(&BASE_URL, domain, "SentinelOne", "usea1-acme.sentinelone.net")
}

#[async_trait::async_trait]
impl Connector for SentinelOne {
    fn info(&self) -> &'static SourceInfo {
        &INFO
    }

    fn parse(&self, secrets: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Credentials> {
        let api_token = required_secret(secrets, "api_token", errors)?;
        Some(Credentials::new(
            INFO.integration_type,
            SentinelOneCredentials { api_token: SecretString::from(api_token) },
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
        let client = SentinelOneClient::new(http, target(endpoints, domain)?, credentials.get()?);
        let user = client.fetch::<Value>(&["user"], &[], "read the token's own user").await?;
        expect_data(&client, user.body, Value::is_object, "the token's user")?;
        let query = [("limit", "1"), ("isDecommissioned", "true,false")];
        let agents = client.fetch::<Value>(&["agents"], &query, "list agents").await?;
        expect_data(&client, agents.body, Value::is_array, "agents")
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
        let client = SentinelOneClient::new(http, target(endpoints, &config.domain)?, credentials.get()?);
        pages::sync(&client, mode, sink).await
    }
}

/// A 2xx without SentinelOne's `data` means the domain points at something else (a portal, a
/// proxy).
fn expect_data(
    client: &SentinelOneClient<'_>,
    body: Value,
    shape: fn(&Value) -> bool,
    what: &str,
) -> Result<(), SourceError> {
    if body.get("data").is_some_and(shape) {
        return Ok(());
    }
    Err(SourceError::Rejected(format!(
        "{} did not answer like SentinelOne (expected JSON with data for {what}); check that the domain is \
         the management console's host",
        client.display()
    )))
}
