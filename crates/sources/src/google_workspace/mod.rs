//! Google Workspace: the Admin SDK Directory API, through a service account with domain-wide
//! delegation impersonating a Workspace admin.
//!
//! Validation mints a token (proves the key, the delegation and that the admin exists), then
//! lists one user and one group as that admin (proves the admin may read them). A sync
//! (`pages.rs`) lists users, groups and each group's members; Google has no change feed, so
//! every run lists everything. Push is `users.watch` channels (`channels.rs`); the users a
//! notification names are read one by one (`refresh_users`). Every Directory request keeps to the
//! config's share of the quota of the service account's project as the admin (`pacer.rs`).

mod auth;
mod channels;
mod client;
mod credentials;
mod map;
mod pacer;
mod pages;

use ctxsync_core::{Config, FieldErrors, IntegrationType, RateLimitShare, Settings};
use serde_json::{Map, Value};

use crate::endpoints::Endpoints;
use crate::http::Http;
use crate::registry::{
    BaseUrl, Connector, Credentials, Reach, SecretKey, SourceInfo, Subscriber, Subscription,
    SubscriptionRequest,
};
use crate::{Named, Outcome, PageSink, SourceError, SyncError, SyncMode};
use client::DirectoryClient;
use credentials::GoogleWorkspaceCredentials;
pub use pacer::GoogleQuota;

/// Google's token endpoint. Also the JWT's `aud`, whatever URL the request goes to: Google checks
/// the audience against this value, not against the URL that received the request.
const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

static TOKEN: BaseUrl = BaseUrl {
    flag: "google-token-url",
    env: "CTXSYNC_GOOGLE_TOKEN_URL",
    default: Some(TOKEN_URL),
    help: "Google's OAuth token endpoint (the full URL).",
};

static DIRECTORY: BaseUrl = BaseUrl {
    flag: "google-directory-base-url",
    env: "CTXSYNC_GOOGLE_DIRECTORY_BASE_URL",
    default: Some("https://admin.googleapis.com"),
    help: "The Admin SDK Directory API's base URL.",
};

pub(crate) struct GoogleWorkspace;

static INFO: SourceInfo = SourceInfo {
    integration_type: IntegrationType::GoogleWorkspace,
    credentials: "Credentials for a Google Workspace entity context sync.",
    secrets: &[
        SecretKey {
            name: "service_account_json",
            description: "The service account's key file, as an object (or its text).",
            schema: Some("SecurityMonitoringIntegrationConfigGoogleWorkspaceServiceAccount"),
        },
        SecretKey {
            name: "admin_email",
            description: "The Workspace admin the service account impersonates.",
            schema: None,
        },
    ],
    settings: &[],
    validated_settings: &[],
    base_urls: &[&TOKEN, &DIRECTORY],
};

#[async_trait::async_trait]
impl Connector for GoogleWorkspace {
    fn info(&self) -> &'static SourceInfo {
        &INFO
    }

    fn parse(&self, secrets: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Credentials> {
        credentials::parse(secrets, errors).map(|c| Credentials::new(INFO.integration_type, c))
    }

    /// The domain is not needed: the impersonated admin's account is the tenant
    /// (`customer=my_customer`).
    async fn validate(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        domain: &str,
        settings: &Settings,
        credentials: &Credentials,
    ) -> Result<(), SourceError> {
        validate(http, endpoints, domain, credentials.get()?, share(settings)).await
    }

    /// Google has no incremental listing: every run lists everything, whatever `mode`.
    async fn sync(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        config: &Config,
        credentials: &Credentials,
        mode: SyncMode,
        sink: &mut dyn PageSink,
    ) -> Result<Outcome, SyncError> {
        pages::sync(client(http, endpoints, config, credentials)?, mode, sink).await
    }

    /// Users a push named, each read as a listing reads it; one Google no longer knows is gone.
    async fn refresh_users(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        config: &Config,
        credentials: &Credentials,
        named: Named<'_>,
        sink: &mut dyn PageSink,
    ) -> Result<(), SyncError> {
        pages::refresh_users(client(http, endpoints, config, credentials)?, named.ids, sink).await
    }

    fn subscriber(&self) -> Option<&'static dyn Subscriber> {
        Some(&GoogleWorkspace)
    }

    /// The Directory quota: Google reports nobody's use of it.
    fn shared_limit(&self, endpoints: &Endpoints, domain: &str) -> Option<String> {
        Some(client::quota_key(&endpoints.target(&DIRECTORY), domain))
    }
}

/// Directory push: `users.watch` channels, one per event.
#[async_trait::async_trait]
impl Subscriber for GoogleWorkspace {
    async fn subscribe(
        &self,
        reach: &Reach<'_>,
        request: &SubscriptionRequest<'_>,
    ) -> Result<Vec<Subscription>, SourceError> {
        channels::watch(&reach_client(reach)?, request).await
    }

    /// Google has no renewal call: a channel due is made again, with the others of its config.
    async fn renew(&self, _: &Reach<'_>, _: &str) -> Result<Option<Subscription>, SourceError> {
        Ok(None)
    }

    /// Google never asks for a reauthorization.
    async fn reauthorize(&self, _: &Reach<'_>, _: &str) -> Result<bool, SourceError> {
        Ok(false)
    }

    async fn unsubscribe(
        &self,
        reach: &Reach<'_>,
        id: &str,
        resource_id: Option<&str>,
    ) -> Result<(), SourceError> {
        channels::stop(&reach_client(reach)?, id, resource_id.unwrap_or_default()).await
    }
}

/// A Directory client for `config`, within its share.
fn client<'a>(
    http: &'a Http,
    endpoints: &Endpoints,
    config: &Config,
    credentials: &Credentials,
) -> Result<DirectoryClient<'a>, SourceError> {
    let share = share(&config.settings);
    Ok(DirectoryClient::new(http, endpoints, &config.domain, credentials.get()?, share))
}

/// A Directory client for the config of `reach`.
fn reach_client<'a>(reach: &Reach<'a>) -> Result<DirectoryClient<'a>, SourceError> {
    client(reach.http, reach.endpoints, reach.config, reach.credentials)
}

/// The config's share of the Directory quota; a setting that does not read as one (refused when
/// the config was saved) is the default.
fn share(settings: &Settings) -> RateLimitShare {
    RateLimitShare::for_settings(settings).unwrap_or(RateLimitShare::DEFAULT)
}

async fn validate(
    http: &Http,
    endpoints: &Endpoints,
    domain: &str,
    credentials: &GoogleWorkspaceCredentials,
    share: RateLimitShare,
) -> Result<(), SourceError> {
    let client = DirectoryClient::new(http, endpoints, domain, credentials, share).unpaced();
    client.authenticate().await?;
    for collection in ["users", "groups"] {
        let reply = client.get(collection, &[("customer", "my_customer"), ("maxResults", "1")]).await?;
        if !reply.json::<Value>().is_some_and(|v| v.is_object()) {
            return Err(SourceError::Unreachable(format!(
                "{} did not answer like the Directory API (expected a JSON object listing {collection}); check \
                 CTXSYNC_GOOGLE_DIRECTORY_BASE_URL",
                endpoints.target(&DIRECTORY).display()
            )));
        }
    }
    Ok(())
}
