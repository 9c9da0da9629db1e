//! Connectors of ctxsync: how each identity source is reached, authenticated and read.
//!
//! One folder per source (`okta/`, `google_workspace/`, `entra_id/`) with the same inner files:
//! `auth.rs` (turning a config's credentials into what the source accepts), `client.rs`
//! (requests and the source's error bodies). What every connector needs lives once: `http.rs`
//! (client, retries honouring `Retry-After` / `X-Rate-Limit-Reset`, redaction), `guard.rs` (the
//! SSRF guard) and `endpoints.rs` (real hosts and operator overrides).
//!
//! Nothing here stores anything or logs a secret: credentials arrive as
//! [`ctxsync_core::Credentials`], are used for the requests, and are dropped.

#[cfg(test)]
mod arbitrary;
mod endpoints;
mod entra_id;
mod google_workspace;
mod guard;
mod http;
mod lenient;
mod okta;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use ctxsync_core::{Config, Credentials, Settings, entra_tenant};

pub use endpoints::Endpoints;
pub use http::metrics::describe as describe_metrics;
use http::{Http, RetryPolicy};
pub use sync::{Coverage, Cursor, Outcome, Page, PageSink, Removal, SinkError, SyncError, SyncMode};

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

    /// Proves the read access a sync needs (users and groups; devices too for Entra ID) with the
    /// given credentials; nothing is stored. `domain` is the config's domain: the Okta org's host,
    /// or the Entra tenant unless `settings.tenant_id` names it. Google Workspace ignores it: the impersonated
    /// admin's account is the tenant (`customer=my_customer`).
    pub async fn validate(
        &self,
        domain: &str,
        settings: &Settings,
        credentials: &Credentials,
    ) -> Result<(), SourceError> {
        let Inner { endpoints, validation: http, .. } = &*self.inner;
        let result = match credentials {
            Credentials::Okta(c) => okta::validate(http, endpoints.okta(domain)?, c).await,
            Credentials::GoogleWorkspace(c) => {
                google_workspace::validate(http, &endpoints.google_token(), endpoints.google_directory(), c)
                    .await
            }
            Credentials::EntraId(c) => {
                let tenant = entra_tenant(domain, settings);
                entra_id::validate(http, &endpoints.entra_login(), endpoints.graph(), tenant, c).await
            }
        };
        if let Err(error) = &result {
            tracing::info!(%error, "credential validation failed");
        }
        result
    }

    /// Lists the config's source into `sink`: everything (`SyncMode::Full`), or what changed
    /// since a previous run's cursor. Pages stream as they arrive; nothing is stored here.
    pub async fn sync(
        &self,
        config: &Config,
        credentials: &Credentials,
        mode: SyncMode,
        sink: &mut dyn PageSink,
    ) -> Result<Outcome, SyncError> {
        let Inner { endpoints, sync: http, .. } = &*self.inner;
        match credentials {
            Credentials::EntraId(c) => {
                let (login, graph) = (endpoints.entra_login(), endpoints.graph());
                entra_id::sync(http, login, graph, config.entra_tenant(), c, mode, sink).await
            }
            Credentials::Okta(c) => {
                okta::sync(http, endpoints.okta(&config.domain)?, c, &config.settings, mode, sink).await
            }
            // Google has no incremental listing: every run lists everything, whatever `mode`.
            Credentials::GoogleWorkspace(c) => {
                google_workspace::sync(http, endpoints.google_token(), endpoints.google_directory(), c, sink)
                    .await
            }
        }
    }
}
