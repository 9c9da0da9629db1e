//! A fake SentinelOne console: the Management API v2.1's `/user` and `/agents` behind
//! `ApiToken` tokens, with cursor paging, `updatedAt` filters, decommissioned agents hidden
//! unless asked for, and the `{"errors": [...]}` envelope.
//!
//! Tokens are account-scoped unless made site-scoped ([`SentinelOneScope::Site`]), which
//! `/user` accepts and `/agents` refuses with 403 `4030010`, as the console does for a site's
//! token asked for the account's agents. Between runs a test changes the fleet with
//! [`FakeSentinelOne::mutate`], injects faults through [`crate::FaultKnobs`] and the `*_next`
//! methods, and compares a sync with [`FakeSentinelOne::snapshot`].

mod routes;
mod tenant;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;

use crate::admin::{self, FakeState};
use crate::common::{BASE62, Server, bind, secret};
use crate::directory::TenantSpec;
use crate::faults::Faults;
pub use tenant::{AgentInterface, SentinelOneAgent, SentinelOneTenant};

/// What a token may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentinelOneScope {
    /// The account's: every site's agents.
    Account,
    /// One site's: `/agents` for the account is refused (403 `4030010`).
    Site,
}

struct SentinelOneState {
    tenant: RwLock<SentinelOneTenant>,
    tokens: Mutex<HashMap<String, SentinelOneScope>>,
    faults: Faults,
}

impl FakeState for SentinelOneState {
    type Tenant = SentinelOneTenant;

    fn tenant(&self) -> &RwLock<SentinelOneTenant> {
        &self.tenant
    }

    fn faults(&self) -> &Faults {
        &self.faults
    }
}

/// A running fake console. Dropping it stops the server.
pub struct FakeSentinelOne {
    server: Server,
    state: Arc<SentinelOneState>,
    base_url: String,
    api_token: String,
}

impl FakeSentinelOne {
    pub async fn start() -> io::Result<FakeSentinelOne> {
        Self::start_with(TenantSpec::default()).await
    }

    pub async fn start_with(spec: TenantSpec) -> io::Result<FakeSentinelOne> {
        Self::start_on(spec, 0, None).await
    }

    /// On `port` when it is free, accepting `api_token` (when given) as the account's token.
    pub(crate) async fn start_on(
        spec: TenantSpec,
        port: u16,
        api_token: Option<&str>,
    ) -> io::Result<FakeSentinelOne> {
        let (listener, base_url) = bind(port).await?;
        let state = Arc::new(SentinelOneState {
            tenant: RwLock::new(SentinelOneTenant::generate(&spec)),
            tokens: Mutex::new(HashMap::new()),
            faults: Faults::default(),
        });
        let app =
            routes::router(state.clone()).merge(admin::fleet_router("sentinelone").with_state(state.clone()));
        let server = Server::serve("sentinelone", listener, &base_url, app);
        let mut fake = FakeSentinelOne { server, state, base_url, api_token: String::new() };
        fake.api_token = match api_token {
            Some(token) => {
                fake.state
                    .tokens
                    .lock()
                    .expect("tokens lock")
                    .insert(token.to_string(), SentinelOneScope::Account);
                token.to_string()
            }
            None => fake.add_token(SentinelOneScope::Account),
        };
        Ok(fake)
    }

    /// `http://127.0.0.1:PORT`, the value for `CTXSYNC_SENTINELONE_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The variables that send ctxsync's SentinelOne requests here, with their values.
    pub fn base_urls(&self) -> Vec<(&'static str, String)> {
        vec![(Self::PORT_VARIABLE, self.base_url())]
    }

    /// The variable whose URL names this fake's port.
    pub const PORT_VARIABLE: &str = "CTXSYNC_SENTINELONE_BASE_URL";

    /// The console's host, for a config's `domain`.
    pub fn domain(&self) -> String {
        "usea1-acme.sentinelone.net".to_string()
    }

    /// The account's token.
    pub fn api_token(&self) -> String {
        self.api_token.clone()
    }

    /// A new token with `scope`, like one a console user generates.
    pub fn add_token(&self, scope: SentinelOneScope) -> String {
        let token = secret(BASE62, 80);
        self.state.tokens.lock().expect("tokens lock").insert(token.clone(), scope);
        token
    }

    /// From now on the token is refused with 401 `4010010`, as a revoked or expired one is.
    pub fn revoke_token(&self, token: &str) {
        self.state.tokens.lock().expect("tokens lock").remove(token);
    }

    /// Accepts [`FakeSentinelOne::api_token`] again, account-scoped, after a revocation.
    pub fn restore_credentials(&self) {
        self.state
            .tokens
            .lock()
            .expect("tokens lock")
            .insert(self.api_token.clone(), SentinelOneScope::Account);
    }

    /// Changes the fleet between (or during) runs; see [`SentinelOneTenant`] for what can change.
    pub fn mutate<R>(&self, change: impl FnOnce(&mut SentinelOneTenant) -> R) -> R {
        change(&mut self.state.tenant.write().expect("tenant lock"))
    }

    /// Every agent by id, decommissioned ones included, as `/agents` serves them.
    pub fn snapshot(&self) -> BTreeMap<String, Value> {
        self.state.tenant.read().expect("tenant lock").snapshot()
    }

    /// Answers the next `requests` requests with 429 and `Retry-After: wait` (whole seconds, at
    /// least one).
    pub fn rate_limit_next(&self, requests: u32, wait: Duration) {
        self.state.faults.rate_limit(requests, wait);
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl crate::faults::sealed::HasFaults for FakeSentinelOne {
    fn faults(&self) -> &Faults {
        &self.state.faults
    }
}

impl crate::FaultKnobs for FakeSentinelOne {}
