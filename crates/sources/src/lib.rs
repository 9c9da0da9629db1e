//! Connectors of ctxsync: how each identity source is reached, authenticated and read.
//!
//! One folder per source (`okta/`, `google_workspace/`, `entra_id/`) with the same inner files:
//! `mod.rs` (the source's [`SourceInfo`] and its `Connector`: credentials, validation, listing),
//! `auth.rs` (turning a config's credentials into what the source accepts), `client.rs`
//! (requests and the source's error bodies), `pages.rs` (a run) and `map.rs` (its objects in the
//! entity model). `registry.rs` lists the folders; everything else reads that list. What every
//! connector needs lives once: `http.rs` (client, retries honouring `Retry-After` /
//! `X-Rate-Limit-Reset`, redaction), `guard.rs` (the SSRF guard) and `endpoints.rs` (real hosts
//! and operator overrides).
//!
//! Nothing here stores anything or logs a secret: credentials are parsed into [`Credentials`],
//! used for the requests, and dropped.

#[cfg(test)]
mod arbitrary;
mod crowdstrike;
mod endpoints;
mod entra_id;
mod google_workspace;
mod guard;
mod http;
mod lenient;
mod okta;
mod registry;
mod sentinelone;
mod split;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use ctxsync_core::{Config, IntegrationType, SettingTypo, Settings};

pub use endpoints::Endpoints;
pub use entra_id::{GraphBudget, client_id as entra_client_id, tenant as entra_tenant};
pub use google_workspace::GoogleQuota;
pub use http::metrics::describe as describe_metrics;
use http::{Http, RetryPolicy};
pub use registry::{
    BaseUrl, Credentials, SecretKey, SourceInfo, Subscription, SubscriptionRequest, base_urls, source,
    sources,
};
pub use sync::{
    Checkpoint, Coverage, Cursor, Mark, Named, Outcome, Page, PageSink, Removal, SinkError, SyncError,
    SyncMode,
};

/// Why a source could not be used. Messages say what the source said and what to do next, and
/// never contain a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source refused the credentials or their permissions.
    #[error("{0}")]
    Rejected(String),
    /// The source could not be reached or kept failing (DNS, connect, timeout, 5xx, 429 after
    /// retries).
    #[error("{0}")]
    Unreachable(String),
    /// The SSRF guard refused the host.
    #[error("{0}")]
    Refused(String),
    /// The credentials are malformed in a way found only when using them (a private key that
    /// does not parse).
    #[error("{0}")]
    InvalidCredentials(String),
}

/// The connectors, sharing one HTTP stack. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sources {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoints: Endpoints,
    /// Validation answers a waiting API caller, so its retries are short.
    validation: Http,
    /// Sync runs wait out throttling and outages.
    sync: Http,
}

/// How a sync run times its requests: the limit on each attempt and the waits between attempts.
/// The default is for real sources; tests of faults shorten it, so that a reply slower than the
/// timeout or a storm of 429s costs milliseconds instead of minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTiming {
    /// Limit on one attempt, from sending the request to the end of the reply's body.
    pub request_timeout: Duration,
    /// The first backoff after a failure that came without a wait; each retry doubles it.
    pub base_delay: Duration,
    /// The longest wait between attempts, a wait the source asks for included; `None` honours
    /// whatever the source asks, within the run's retry budget.
    pub max_wait: Option<Duration>,
}

impl Default for SyncTiming {
    fn default() -> Self {
        let RetryPolicy { request_timeout, base_delay, max_wait, .. } = RetryPolicy::SYNC;
        SyncTiming { request_timeout, base_delay, max_wait }
    }
}

impl Sources {
    pub fn new(endpoints: Endpoints) -> Result<Sources, SourceError> {
        Self::with_sync_timing(endpoints, SyncTiming::default())
    }

    /// As [`Sources::new`], with sync runs timed by `timing`.
    pub fn with_sync_timing(endpoints: Endpoints, timing: SyncTiming) -> Result<Sources, SourceError> {
        endpoints.check()?;
        let validation = Http::new(RetryPolicy::VALIDATION)?;
        let SyncTiming { request_timeout, base_delay, max_wait } = timing;
        let sync = Http::new(RetryPolicy { request_timeout, base_delay, max_wait, ..RetryPolicy::SYNC })?;
        Ok(Sources { inner: Arc::new(Inner { endpoints, validation, sync }) })
    }

    /// Proves the read access a sync needs with the given credentials; nothing is stored.
    /// `domain` and `settings` are the config's (or the request's, before a config exists).
    pub async fn validate(
        &self,
        domain: &str,
        settings: &Settings,
        credentials: &Credentials,
    ) -> Result<(), SourceError> {
        let Inner { endpoints, validation: http, .. } = &*self.inner;
        let result = connector(credentials).validate(http, endpoints, domain, settings, credentials).await;
        if let Err(error) = &result {
            tracing::info!(%error, "credential validation failed");
        }
        result
    }

    /// Lists the config's source into `sink`: everything (`SyncMode::Full`, or `FullAfter` a
    /// previous run), what changed since a previous run's cursor, or the rest of a stopped full
    /// listing. Pages stream as they arrive; nothing is stored here.
    pub async fn sync(
        &self,
        config: &Config,
        credentials: &Credentials,
        mode: SyncMode,
        sink: &mut dyn PageSink,
    ) -> Result<Outcome, SyncError> {
        let Inner { endpoints, sync: http, .. } = &*self.inner;
        connector(credentials).sync(http, endpoints, config, credentials, mode, sink).await
    }

    /// Reads the users a push named one by one into `sink`: as the source has each now, or a
    /// removal for one it no longer knows. Only a source that pushes reads anything.
    pub async fn refresh_users(
        &self,
        config: &Config,
        credentials: &Credentials,
        named: Named<'_>,
        sink: &mut dyn PageSink,
    ) -> Result<(), SyncError> {
        let Inner { endpoints, sync: http, .. } = &*self.inner;
        connector(credentials).refresh_users(http, endpoints, config, credentials, named, sink).await
    }

    /// The name of the limit the source of `integration_type` sets on all the clients of the
    /// tenant `domain` names together, which processes syncing that tenant at once split between
    /// them (an Okta org's requests in flight, a Google or Entra ID domain's quota or budget);
    /// configs with the same name share it. `None` for a source whose connector does not split its
    /// limits, or a domain that names no host.
    pub fn shared_limit(&self, integration_type: IntegrationType, domain: &str) -> Option<String> {
        registry::connector(integration_type)?.shared_limit(&self.inner.endpoints, domain)
    }

    /// Keeps this process to one of `processes` equal parts of the config's share of the limit
    /// [`Sources::shared_limit`] named `key`, until told another number; the number it replaces
    /// (0 if none).
    pub fn split_limit(&self, key: &str, processes: u32) -> u32 {
        split::Split::named(key).set(processes)
    }
}

/// Whether configs of `integration_type` push through subscriptions ctxsync makes (Entra ID's
/// Graph subscriptions, Google Workspace's channels).
pub fn subscribes(integration_type: IntegrationType) -> bool {
    registry::connector(integration_type).is_some_and(|c| c.subscriber().is_some())
}

/// Subscriptions are made while an API caller waits, or by the renewal that comes round again
/// soon: they take validation's short retries.
impl Sources {
    fn reach<'a>(
        &'a self,
        config: &'a Config,
        credentials: &'a Credentials,
    ) -> Result<(&'static dyn registry::Subscriber, registry::Reach<'a>), SourceError> {
        let Inner { endpoints, validation: http, .. } = &*self.inner;
        let subscriber = connector(credentials).subscriber().ok_or_else(|| {
            SourceError::Rejected(format!(
                "{} does not push change notifications through subscriptions",
                credentials.integration_type()
            ))
        })?;
        Ok((subscriber, registry::Reach { http, endpoints, config, credentials }))
    }

    /// Subscribes the config to the changes of every resource the source notifies about, to be
    /// delivered as `request` says; all or none.
    pub async fn subscribe(
        &self,
        config: &Config,
        credentials: &Credentials,
        request: &SubscriptionRequest<'_>,
    ) -> Result<Vec<Subscription>, SourceError> {
        let (subscriber, reach) = self.reach(config, credentials)?;
        subscriber.subscribe(&reach, request).await
    }

    /// Renews a subscription: its new expiry and renewal time, or `None` when the source no longer
    /// knows it.
    pub async fn renew_subscription(
        &self,
        config: &Config,
        credentials: &Credentials,
        id: &str,
    ) -> Result<Option<Subscription>, SourceError> {
        let (subscriber, reach) = self.reach(config, credentials)?;
        subscriber.renew(&reach, id).await
    }

    /// Reauthorizes a subscription, as the source asked; `false` when it no longer knows it.
    pub async fn reauthorize_subscription(
        &self,
        config: &Config,
        credentials: &Credentials,
        id: &str,
    ) -> Result<bool, SourceError> {
        let (subscriber, reach) = self.reach(config, credentials)?;
        subscriber.reauthorize(&reach, id).await
    }

    /// Ends a subscription at the source (`resource_id`: what else names it, as it was made).
    pub async fn unsubscribe(
        &self,
        config: &Config,
        credentials: &Credentials,
        id: &str,
        resource_id: Option<&str>,
    ) -> Result<(), SourceError> {
        let (subscriber, reach) = self.reach(config, credentials)?;
        subscriber.unsubscribe(&reach, id, resource_id).await
    }
}

/// The source that parsed `credentials`: only a registered source makes them.
fn connector(credentials: &Credentials) -> &'static dyn registry::Connector {
    registry::connector(credentials.integration_type())
        .expect("credentials come only from a registered source")
}

/// The keys of `settings` that look like misspelt keys of a setting ctxsync reads.
pub fn setting_typos(settings: &Settings) -> Vec<SettingTypo> {
    let known: Vec<&'static str> = sources().flat_map(|s| s.settings.iter().copied()).collect();
    ctxsync_core::setting_typos(settings, &known)
}
