//! A fake CrowdStrike Falcon cloud: the OAuth token endpoint and the host APIs an API client with
//! `Hosts: Read` uses, with Falcon's MSA envelope, pagination, FQL `modified_timestamp` filters,
//! rate-limit headers (`X-RateLimit-RetryAfter` as an epoch second) and the faults of
//! [`FaultKnobs`](crate::FaultKnobs).
//!
//! Switches make it answer as other clouds and clients do: without the `Hosts: Read` scope
//! ([`FakeCrowdStrike::set_hosts_read`]), as a GovCloud without the combined endpoints
//! ([`FakeCrowdStrike::refuse_combined`]), or naming another home region in `X-CS-Region`.

mod routes;
mod tenant;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;

use crate::admin::{self, FakeState};
use crate::common::{BASE62, HEX, RateWindow, Server, bind, secret};
use crate::directory::{Directory, TenantSpec};
use crate::faults::Faults;
pub use tenant::{CrowdStrikeHost, CrowdStrikeTenant, Platform};

/// Falcon's limit per customer: 6,000 requests a minute.
const DEFAULT_LIMIT_PER_MINUTE: u32 = 6_000;

struct CrowdStrikeState {
    tenant: RwLock<CrowdStrikeTenant>,
    /// The API client's id and secret.
    credentials: Mutex<(String, String)>,
    tokens: Mutex<BTreeSet<String>>,
    /// What `X-CS-Region` names.
    region: Mutex<String>,
    hosts_read: AtomicBool,
    combined_refused: AtomicBool,
    limit_per_minute: AtomicU32,
    window: Mutex<RateWindow>,
    faults: Faults,
}

impl FakeState for CrowdStrikeState {
    type Tenant = CrowdStrikeTenant;

    fn tenant(&self) -> &RwLock<CrowdStrikeTenant> {
        &self.tenant
    }

    fn faults(&self) -> &Faults {
        &self.faults
    }
}

impl CrowdStrikeState {
    /// The secret replaced and every token expired, as when an API client's secret is reset.
    fn revoke(&self) {
        self.credentials.lock().expect("credentials lock").1 = secret(BASE62, 40);
        self.tokens.lock().expect("tokens lock").clear();
    }
}

/// A running fake Falcon cloud. Dropping it stops the server.
pub struct FakeCrowdStrike {
    server: Server,
    state: Arc<CrowdStrikeState>,
    base_url: String,
    client_id: String,
    client_secret: String,
}

impl FakeCrowdStrike {
    pub async fn start() -> io::Result<FakeCrowdStrike> {
        Self::start_with(TenantSpec::default()).await
    }

    pub async fn start_with(spec: TenantSpec) -> io::Result<FakeCrowdStrike> {
        Self::start_on(spec, 0, None).await
    }

    /// On `port` when it is free, accepting `credentials` (client id, secret) when given.
    pub(crate) async fn start_on(
        spec: TenantSpec,
        port: u16,
        credentials: Option<(String, String)>,
    ) -> io::Result<FakeCrowdStrike> {
        let (listener, base_url) = bind(port).await?;
        let (client_id, client_secret) = credentials.unwrap_or_else(|| (secret(HEX, 32), secret(BASE62, 40)));
        let tenant = CrowdStrikeTenant::from_directory(&Directory::generate(&spec), &spec);
        let state = Arc::new(CrowdStrikeState {
            tenant: RwLock::new(tenant),
            credentials: Mutex::new((client_id.clone(), client_secret.clone())),
            tokens: Mutex::default(),
            region: Mutex::new("us-1".to_string()),
            hosts_read: AtomicBool::new(true),
            combined_refused: AtomicBool::new(false),
            limit_per_minute: AtomicU32::new(DEFAULT_LIMIT_PER_MINUTE),
            window: Mutex::default(),
            faults: Faults::default(),
        });
        let app =
            routes::router(state.clone()).merge(admin::fleet_router("crowdstrike").with_state(state.clone()));
        let server = Server::serve("crowdstrike", listener, &base_url, app);
        Ok(FakeCrowdStrike { server, state, base_url, client_id, client_secret })
    }

    /// `http://127.0.0.1:PORT`, the value for `CTXSYNC_CROWDSTRIKE_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The variables that send ctxsync's CrowdStrike requests here, with their values.
    pub fn base_urls(&self) -> Vec<(&'static str, String)> {
        vec![(Self::PORT_VARIABLE, self.base_url())]
    }

    /// The variable whose URL names this fake's port.
    pub const PORT_VARIABLE: &str = "CTXSYNC_CROWDSTRIKE_BASE_URL";

    /// The cloud's API host, for a config's `domain`.
    pub fn domain(&self) -> String {
        "api.crowdstrike.com".to_string()
    }

    pub fn client_id(&self) -> String {
        self.client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.client_secret.clone()
    }

    /// Whether the API client holds the `Hosts: Read` scope; without it host requests answer 403
    /// "access denied, authorization failed".
    pub fn set_hosts_read(&self, granted: bool) {
        self.state.hosts_read.store(granted, Ordering::Relaxed);
    }

    /// Answers 404 to the combined endpoints, as a GovCloud does, or serves them again.
    pub fn refuse_combined(&self, refused: bool) {
        self.state.combined_refused.store(refused, Ordering::Relaxed);
    }

    /// The home region the token endpoint names in `X-CS-Region` (`us-1` until set).
    pub fn set_region(&self, region: &str) {
        *self.state.region.lock().expect("region lock") = region.to_string();
    }

    /// Every token issued so far stops working, as when it expired.
    pub fn expire_tokens(&self) {
        self.state.tokens.lock().expect("tokens lock").clear();
    }

    /// Accepts the handed-out secret again after a revocation.
    pub fn restore_credentials(&self) {
        *self.state.credentials.lock().expect("credentials lock") =
            (self.client_id.clone(), self.client_secret.clone());
    }

    /// Changes the fleet between (or during) runs; see [`CrowdStrikeTenant`].
    pub fn mutate<R>(&self, change: impl FnOnce(&mut CrowdStrikeTenant) -> R) -> R {
        change(&mut self.state.tenant.write().expect("tenant lock"))
    }

    /// Every visible host by AID, as the API serves it.
    pub fn snapshot(&self) -> BTreeMap<String, Value> {
        self.state.tenant.read().expect("tenant lock").snapshot()
    }

    /// The AIDs of hidden hosts.
    pub fn hidden(&self) -> BTreeSet<String> {
        let tenant = self.state.tenant.read().expect("tenant lock");
        tenant.hosts.values().filter(|h| h.hidden).map(|h| h.device_id.clone()).collect()
    }

    /// The ceiling of the one-minute window after which requests get 429.
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.state.limit_per_minute.store(per_minute, Ordering::Relaxed);
    }

    /// Answers the next `requests` requests with 429 and an `X-RateLimit-RetryAfter` `wait`
    /// after the reply's `Date` (at least one second).
    pub fn rate_limit_next(&self, requests: u32, wait: Duration) {
        self.state.faults.rate_limit(requests, wait);
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl crate::faults::sealed::HasFaults for FakeCrowdStrike {
    fn faults(&self) -> &crate::faults::Faults {
        &self.state.faults
    }
}

impl crate::FaultKnobs for FakeCrowdStrike {}
