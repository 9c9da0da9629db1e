//! A fake Okta org: the Management API's users, groups, group members, admin role assignments
//! and factors behind `SSWS` API tokens, with `filter`, `Link` paging and rate-limit headers.
//!
//! Tokens act as the admin who created them, as real ones do: `/users/me` answers for any live
//! token, while listing needs an admin with read permission ([`OktaPermission`]). Between runs a
//! test changes the org with [`FakeOkta::mutate`], injects faults (429 bursts, 5xx, slow or
//! truncated replies, skipped, overlapping or reversed pages, revoked tokens, refused group
//! members), aimed at a request of a run by [`FakeOkta::hold_faults`], and compares a sync with
//! [`FakeOkta::snapshot`].

mod filter;
mod hooks;
mod routes;

pub use routes::OKTA_BUCKETS;
mod tenant;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::admin::{self, FakeState};
use crate::common::{BASE62, RateWindow, Server, Snapshot, bind, secret};
use crate::directory::{Directory, TenantSpec};
use crate::faults::Faults;
pub use tenant::{OktaGroup, OktaProfile, OktaTenant, OktaUser};

/// Requests allowed per minute before 429 `E0000047`, until [`FakeOkta::set_rate_limit`]. High
/// enough that a benchmark over a large tenant measures the sync, not the limit.
const DEFAULT_LIMIT_PER_MINUTE: u32 = 100_000;

/// What the admin behind a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OktaPermission {
    /// A super admin's token: can read users, groups, admin roles and factors.
    ReadAll,
    /// An admin who may read users and groups but not admin roles or factors (a custom admin
    /// role): those answer 403 `E0000006`.
    UsersAndGroupsOnly,
    /// A token whose user has no admin role: `/users/me` works, listing is refused (E0000006).
    NoPermission,
}

struct OktaState {
    base_url: String,
    tenant: RwLock<OktaTenant>,
    /// Live tokens and the permission of the admin each acts as.
    tokens: Mutex<HashMap<String, OktaPermission>>,
    /// Each endpoint's window, by its name in [`OKTA_BUCKETS`].
    rate: Mutex<HashMap<&'static str, RateWindow>>,
    limit_per_minute: AtomicU32,
    /// Endpoints whose window allows another number than `limit_per_minute`.
    bucket_limits: Mutex<HashMap<&'static str, u32>>,
    window_seconds: AtomicU64,
    /// The most requests any window of each endpoint met, every request each met, and the 429s
    /// the windows answered.
    busiest: Mutex<HashMap<&'static str, u32>>,
    served: Mutex<HashMap<&'static str, u64>>,
    rate_limited: AtomicU64,
    /// Okta's concurrent-request limit: requests past it while this many are being served get
    /// 429 `E0000047`; zero for none.
    concurrency_limit: AtomicU32,
    in_flight: AtomicU32,
    most_in_flight: AtomicU32,
    concurrency_refused: AtomicU64,
    faults: Faults,
    /// Groups whose member listing answers 403, as for a group outside the token's admin scope.
    members_refused: Mutex<std::collections::BTreeSet<String>>,
    /// Pages of admins served, and how many may be before the listing answers 403 (as once the
    /// token's admin loses the role that may view them); `None` while it does not.
    admin_pages: Mutex<(u64, Option<u64>)>,
    hooks: hooks::Hooks,
}

impl FakeState for OktaState {
    type Tenant = OktaTenant;

    fn tenant(&self) -> &RwLock<OktaTenant> {
        &self.tenant
    }

    fn faults(&self) -> &Faults {
        &self.faults
    }
}

/// A running fake Okta org. Dropping it stops the server.
pub struct FakeOkta {
    server: Server,
    state: Arc<OktaState>,
    domain: String,
    api_token: String,
}

impl FakeOkta {
    pub async fn start() -> io::Result<FakeOkta> {
        Self::start_with(TenantSpec::default()).await
    }

    pub async fn start_with(spec: TenantSpec) -> io::Result<FakeOkta> {
        Self::start_on(spec, 0, None).await
    }

    /// On `port` when it is free, accepting `api_token` (when given) as the super admin's token.
    pub(crate) async fn start_on(
        spec: TenantSpec,
        port: u16,
        api_token: Option<&str>,
    ) -> io::Result<FakeOkta> {
        let (listener, base_url) = bind(port).await?;
        let domain = "acme.okta.com".to_string();
        let tenant = OktaTenant::from_directory(&Directory::generate(&spec), spec.seed, "acme.com");
        let state = Arc::new(OktaState {
            base_url: base_url.clone(),
            tenant: RwLock::new(tenant),
            tokens: Mutex::new(HashMap::new()),
            rate: Mutex::default(),
            limit_per_minute: AtomicU32::new(DEFAULT_LIMIT_PER_MINUTE),
            bucket_limits: Mutex::default(),
            window_seconds: AtomicU64::new(60),
            busiest: Mutex::default(),
            served: Mutex::default(),
            rate_limited: AtomicU64::new(0),
            concurrency_limit: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            most_in_flight: AtomicU32::new(0),
            concurrency_refused: AtomicU64::new(0),
            faults: Faults::default(),
            members_refused: Mutex::default(),
            admin_pages: Mutex::default(),
            hooks: hooks::Hooks::default(),
        });
        let app = routes::router(state.clone()).merge(admin::router("okta").with_state(state.clone()));
        let server = Server::serve("okta", listener, &base_url, app);
        let mut fake = FakeOkta { server, state, domain, api_token: String::new() };
        fake.api_token = match api_token {
            Some(token) => {
                fake.state
                    .tokens
                    .lock()
                    .expect("tokens lock")
                    .insert(token.to_string(), OktaPermission::ReadAll);
                token.to_string()
            }
            None => fake.add_token(OktaPermission::ReadAll),
        };
        Ok(fake)
    }

    /// `http://127.0.0.1:PORT`, the value for `CTXSYNC_OKTA_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The variables that send ctxsync's Okta requests here, with their values.
    pub fn base_urls(&self) -> Vec<(&'static str, String)> {
        vec![(Self::PORT_VARIABLE, self.base_url())]
    }

    /// The variable whose URL names this fake's port.
    pub const PORT_VARIABLE: &str = "CTXSYNC_OKTA_BASE_URL";

    /// The org's host, for a config's `domain`.
    pub fn domain(&self) -> String {
        self.domain.clone()
    }

    /// A super admin's token.
    pub fn api_token(&self) -> String {
        self.api_token.clone()
    }

    /// The operator's part of an Event Hook, through this org's own API as an admin would: the
    /// hook created for `events` with the endpoint `uri` and the header secret, then verified
    /// (Okta calls `uri` with a challenge, which must come back). Returns the hook's id.
    pub async fn register_event_hook(&self, uri: &str, secret: &str, events: &[&str]) -> String {
        let (base, token) = (self.base_url(), format!("SSWS {}", self.api_token));
        let hook = serde_json::json!({
            "name": "ctxsync",
            "events": {"type": "EVENT_TYPE", "items": events},
            "channel": {"type": "HTTP", "version": "1.0.0", "config": {
                "uri": uri, "headers": [], "authScheme": {"type": "HEADER", "key": "Authorization", "value": secret},
            }},
        });
        let client = reqwest::Client::new();
        let ask = |request: reqwest::RequestBuilder| async {
            let reply = request.header("Authorization", &token).send().await.expect("the fake Okta answers");
            reply.json::<serde_json::Value>().await.expect("the fake Okta answers JSON")
        };
        let created = ask(client.post(format!("{base}/api/v1/eventHooks")).json(&hook)).await;
        let id =
            created["id"].as_str().unwrap_or_else(|| panic!("the hook is created: {created}")).to_owned();
        let verified = ask(client.post(format!("{base}/api/v1/eventHooks/{id}/lifecycle/verify"))).await;
        assert_eq!(verified["verificationStatus"], "VERIFIED", "{verified}");
        id
    }

    /// A new token, like one created in the admin console by an admin with `permission`.
    pub fn add_token(&self, permission: OktaPermission) -> String {
        let token = format!("00{}", secret(BASE62, 40));
        self.state.tokens.lock().expect("tokens lock").insert(token.clone(), permission);
        token
    }

    /// From now on the token is refused with E0000011, as a revoked one is.
    pub fn revoke_token(&self, token: &str) {
        self.state.tokens.lock().expect("tokens lock").remove(token);
    }

    /// Answers 403 `E0000006` to listings of `group`'s members, as Okta does for a group outside
    /// the scope of a group administrator's role, while the group itself is listed.
    pub fn refuse_group_members(&self, group: &str) {
        self.state.members_refused.lock().expect("refusals lock").insert(group.to_owned());
    }

    /// Lists `group`'s members again after [`FakeOkta::refuse_group_members`].
    pub fn allow_group_members(&self, group: &str) {
        self.state.members_refused.lock().expect("refusals lock").remove(group);
    }

    /// Answers 403 `E0000006` to the listing of admins (`/iam/assignees/users`) once `pages` more
    /// of its pages were served, as Okta does when the token's admin loses, mid-run, the role
    /// that may view them.
    pub fn refuse_admins_after(&self, pages: u64) {
        let mut admin_pages = self.state.admin_pages.lock().expect("refusals lock");
        admin_pages.1 = Some(admin_pages.0 + pages);
    }

    /// Lists the admins again after [`FakeOkta::refuse_admins_after`].
    pub fn allow_admins(&self) {
        self.state.admin_pages.lock().expect("refusals lock").1 = None;
    }

    /// Accepts [`FakeOkta::api_token`] again after a revocation, as if the config had been given
    /// a new token.
    pub fn restore_credentials(&self) {
        self.state
            .tokens
            .lock()
            .expect("tokens lock")
            .insert(self.api_token.clone(), OktaPermission::ReadAll);
    }

    /// Revokes every token, [`FakeOkta::api_token`] included.
    pub fn revoke_all_tokens(&self) {
        self.state.tokens.lock().expect("tokens lock").clear();
    }

    /// Changes the org between (or during) runs; see [`OktaTenant`] for what can change.
    pub fn mutate<R>(&self, change: impl FnOnce(&mut OktaTenant) -> R) -> R {
        change(&mut self.state.tenant.write().expect("tenant lock"))
    }

    /// Every user (all statuses), group, membership, role assignment and factor, as the API
    /// serves them.
    pub fn snapshot(&self) -> Snapshot {
        self.state.tenant.read().expect("tenant lock").snapshot(&self.state.base_url)
    }

    /// The ceiling of each endpoint's one-minute window after which requests get 429 `E0000047`.
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.state.limit_per_minute.store(per_minute, Ordering::Relaxed);
    }

    /// The ceiling of one endpoint's window, named as Okta's rate-limit documentation names it
    /// (one of [`OKTA_BUCKETS`]), as an org's plan sets them.
    ///
    /// # Panics
    /// For a name not in [`OKTA_BUCKETS`].
    pub fn set_bucket_limit(&self, bucket: &str, per_window: u32) {
        let bucket =
            OKTA_BUCKETS.iter().find(|b| **b == bucket).unwrap_or_else(|| panic!("no Okta bucket {bucket}"));
        self.state.bucket_limits.lock().expect("limits lock").insert(bucket, per_window);
    }

    /// Windows of `length` (whole seconds, at least one) instead of Okta's minute, so a test sees
    /// many of them.
    pub fn set_rate_window(&self, length: Duration) {
        self.state.window_seconds.store(length.as_secs().max(1), Ordering::Relaxed);
    }

    /// The most requests one window of `bucket` met, those refused included.
    pub fn busiest_window(&self, bucket: &str) -> u32 {
        self.state.busiest.lock().expect("busiest lock").get(bucket).copied().unwrap_or(0)
    }

    /// Every request `bucket` met, those refused included.
    pub fn requests_in(&self, bucket: &str) -> u64 {
        self.state.served.lock().expect("served lock").get(bucket).copied().unwrap_or(0)
    }

    /// The 429s the rate-limit windows answered (injected ones not counted).
    pub fn rate_limited(&self) -> u64 {
        self.state.rate_limited.load(Ordering::Relaxed)
    }

    /// Okta's limit on requests being served at once across the org (15 to 75 by plan): a request
    /// past it gets 429 `E0000047` with the limit, no remaining and a reset a second away in the
    /// rate-limit headers, and counts against no window.
    pub fn set_concurrency_limit(&self, limit: u32) {
        self.state.concurrency_limit.store(limit, Ordering::Relaxed);
    }

    /// The most requests served at once, those refused for it included.
    pub fn most_in_flight(&self) -> u32 {
        self.state.most_in_flight.load(Ordering::Relaxed)
    }

    /// [`FakeOkta::most_in_flight`] so far, counting afresh from the requests being served now:
    /// what a stretch of a run had at once.
    pub fn take_most_in_flight(&self) -> u32 {
        let most = self.state.most_in_flight.swap(0, Ordering::Relaxed);
        // A request that starts meanwhile raises the count itself.
        self.state.most_in_flight.fetch_max(self.state.in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
        most
    }

    /// The 429s the concurrent-request limit answered.
    pub fn concurrency_refused(&self) -> u64 {
        self.state.concurrency_refused.load(Ordering::Relaxed)
    }

    /// Answers the next `requests` requests with 429 `E0000047`, `X-Rate-Limit-Remaining: 0` and
    /// an `X-Rate-Limit-Reset` `reset_in` after the reply's `Date` (at least one second).
    pub fn rate_limit_next(&self, requests: u32, reset_in: Duration) {
        self.state.faults.rate_limit(requests, reset_in);
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl crate::faults::sealed::HasFaults for FakeOkta {
    fn faults(&self) -> &crate::faults::Faults {
        &self.state.faults
    }
}

impl crate::FaultKnobs for FakeOkta {}
