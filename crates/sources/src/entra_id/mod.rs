//! Microsoft Entra ID: Microsoft Graph with an app registration's client credentials.
//!
//! Validation gets a token (proves tenant, app and secret), then lists one user, one group and
//! one device (proves the app holds consented `User.Read.All`, `Group.Read.All` and
//! `Device.Read.All`). A sync walks Graph's delta queries (`pages.rs`), mapping what they return
//! into the entity model (`map.rs`). Push is Graph's change notifications, through subscriptions
//! ctxsync makes and renews (`subscriptions.rs`). Every request waits for room in the config's
//! share of the resource units Graph lets the app spend in the tenant (`pacer.rs`).

mod auth;
mod client;
mod map;
mod pacer;
mod pages;
mod subscriptions;
#[cfg(test)]
mod tests;

use ctxsync_core::{Config, FieldErrors, IntegrationType, RateLimitShare, Settings};
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::endpoints::Endpoints;
use crate::http::Http;
use crate::registry::{
    BaseUrl, Connector, Credentials, Reach, SecretKey, SourceInfo, Subscriber, Subscription,
    SubscriptionRequest, required_secret,
};
use crate::{PageSink, SourceError, SyncError, SyncMode, sync::Outcome};
use client::GraphClient;
pub use pacer::GraphBudget;

/// `settings.tenant_id`: the tenant to sign in to, when the domain does not name it.
const TENANT_ID: &str = "tenant_id";

static LOGIN: BaseUrl = BaseUrl {
    flag: "entra-login-base-url",
    env: "CTXSYNC_ENTRA_LOGIN_BASE_URL",
    default: Some("https://login.microsoftonline.com"),
    help: "The Microsoft identity platform's base URL, for Entra ID tokens.",
};

static GRAPH: BaseUrl = BaseUrl {
    flag: "graph-base-url",
    env: "CTXSYNC_GRAPH_BASE_URL",
    default: Some("https://graph.microsoft.com"),
    help: "Microsoft Graph's base URL.",
};

pub(crate) struct EntraId;

static INFO: SourceInfo = SourceInfo {
    integration_type: IntegrationType::EntraId,
    credentials: "Credentials of an Entra ID app registration with User.Read.All, Group.Read.All and \
                  Device.Read.All (client credentials).",
    secrets: &[
        SecretKey {
            name: "client_id",
            description: "The app registration's application (client) ID.",
            schema: None,
        },
        SecretKey {
            name: "client_secret",
            description: "A client secret of the app registration.",
            schema: None,
        },
    ],
    settings: &[TENANT_ID],
    validated_settings: &[TENANT_ID],
    base_urls: &[&LOGIN, &GRAPH],
};

/// An app registration using the client-credentials grant.
#[derive(Debug, Clone)]
pub(crate) struct EntraIdCredentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
}

/// The app registration's client id, for the app registrations route; `None` for credentials
/// of another type.
pub fn client_id(credentials: &Credentials) -> Option<&str> {
    credentials.get::<EntraIdCredentials>().ok().map(|c| c.client_id.as_str())
}

/// The tenant to sign in to: `settings.tenant_id` when set, else the domain (a verified domain
/// such as `contoso.onmicrosoft.com` names its tenant too).
pub fn tenant<'a>(domain: &'a str, settings: &'a Settings) -> &'a str {
    match settings.get(TENANT_ID).and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() => t.trim(),
        _ => domain,
    }
}

#[async_trait::async_trait]
impl Connector for EntraId {
    fn info(&self) -> &'static SourceInfo {
        &INFO
    }

    fn parse(&self, secrets: &Map<String, Value>, errors: &mut FieldErrors) -> Option<Credentials> {
        let client_id = required_secret(secrets, "client_id", errors);
        let client_secret = required_secret(secrets, "client_secret", errors);
        let parsed =
            EntraIdCredentials { client_id: client_id?, client_secret: SecretString::from(client_secret?) };
        Some(Credentials::new(INFO.integration_type, parsed))
    }

    async fn validate(
        &self,
        http: &Http,
        endpoints: &Endpoints,
        domain: &str,
        settings: &Settings,
        credentials: &Credentials,
    ) -> Result<(), SourceError> {
        let tenant = tenant(domain, settings);
        validate(http, endpoints, domain, tenant, credentials.get()?, share(settings)).await
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
        let tenant = tenant(&config.domain, &config.settings);
        check_tenant(tenant)?;
        let share = share(&config.settings);
        let client = GraphClient::new(http, endpoints, &config.domain, tenant, credentials.get()?, share);
        pages::sync(&client, mode, sink).await
    }

    fn subscriber(&self) -> Option<&'static dyn Subscriber> {
        Some(&EntraId)
    }

    /// The app's budget in the tenant: Graph tells of others' use of it only above 0.8 full.
    fn shared_limit(&self, endpoints: &Endpoints, domain: &str) -> Option<String> {
        Some(client::budget_key(&endpoints.target(&GRAPH), domain))
    }
}

/// Graph's change notifications for users and groups.
#[async_trait::async_trait]
impl Subscriber for EntraId {
    async fn subscribe(
        &self,
        reach: &Reach<'_>,
        request: &SubscriptionRequest<'_>,
    ) -> Result<Vec<Subscription>, SourceError> {
        with_client(reach, async |client| subscriptions::subscribe(client, request).await).await
    }

    async fn renew(&self, reach: &Reach<'_>, id: &str) -> Result<Option<Subscription>, SourceError> {
        with_client(reach, async |client| subscriptions::renew(client, id).await).await
    }

    async fn reauthorize(&self, reach: &Reach<'_>, id: &str) -> Result<bool, SourceError> {
        with_client(reach, async |client| subscriptions::reauthorize(client, id).await).await
    }

    async fn unsubscribe(&self, reach: &Reach<'_>, id: &str, _: Option<&str>) -> Result<(), SourceError> {
        with_client(reach, async |client| subscriptions::delete(client, id).await).await
    }
}

/// A Graph client for the config of `reach`.
async fn with_client<T>(
    reach: &Reach<'_>,
    call: impl AsyncFnOnce(&GraphClient<'_>) -> Result<T, SourceError>,
) -> Result<T, SourceError> {
    let tenant = tenant(&reach.config.domain, &reach.config.settings);
    check_tenant(tenant)?;
    let share = share(&reach.config.settings);
    let (domain, credentials) = (&reach.config.domain, reach.credentials.get()?);
    let client = GraphClient::new(reach.http, reach.endpoints, domain, tenant, credentials, share);
    call(&client).await
}

/// The config's share of Graph's limit; a setting that does not read as one (refused when the
/// config was saved) is the default.
fn share(settings: &Settings) -> RateLimitShare {
    RateLimitShare::for_settings(settings).unwrap_or(RateLimitShare::DEFAULT)
}

async fn validate(
    http: &Http,
    endpoints: &Endpoints,
    domain: &str,
    tenant: &str,
    credentials: &EntraIdCredentials,
    share: RateLimitShare,
) -> Result<(), SourceError> {
    check_tenant(tenant)?;
    let client = GraphClient::new(http, endpoints, domain, tenant, credentials, share).unpaced();
    for collection in ["users", "groups", "devices"] {
        let url = client.url(&[collection], "$top=1&$select=id");
        let (body, _) = client
            .fetch(&url, collection, &[], |r| r.json::<Value>())
            .await
            .map_err(client::Failure::into_source)?;
        if !body.get("value").is_some_and(Value::is_array) {
            return Err(SourceError::Unreachable(format!(
                "{} did not answer like Microsoft Graph (expected a JSON collection of {collection}); check \
                 CTXSYNC_GRAPH_BASE_URL",
                client.graph().display()
            )));
        }
    }
    Ok(())
}

fn check_tenant(tenant: &str) -> Result<(), SourceError> {
    if is_tenant(tenant) {
        return Ok(());
    }
    Err(SourceError::Rejected(format!(
        "{tenant:?} is not an Entra ID tenant; set the domain to a verified domain of the tenant (for example \
         contoso.onmicrosoft.com) or settings.tenant_id to its tenant ID"
    )))
}

/// A tenant ID or a domain: letters, digits, `-` and `.`, not starting with `.`. Anything else
/// would change the token URL's path.
fn is_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && !tenant.starts_with('.')
        && tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}
