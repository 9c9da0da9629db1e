//! A fake Microsoft Entra ID tenant: the identity platform's client-credentials token endpoint
//! and Microsoft Graph's users, groups, devices (with their registered owners) and role
//! assignments, with delta queries and `$count` totals, on one server.
//!
//! Graph's change notifications are there too (`subscriptions.rs`): subscriptions for users and
//! groups, made after the validation handshake, delivering every change of the tenant.
//!
//! Apps hold application permissions only once an admin consented; an app without consent gets
//! tokens but Graph answers 403 `Authorization_RequestDenied`, as it does for real. Between runs
//! a test changes the tenant with [`FakeEntra::mutate`], compares a sync with
//! [`FakeEntra::snapshot`], and breaks the service on purpose with the fault knobs.

mod budget;
mod graph;
mod login;
mod query;
mod subscriptions;
mod tenant;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Router, middleware};
pub use subscriptions::{FakeSubscription, LifecycleEvent};
use tokio::time::Instant;

use crate::admin::{self, FakeState};
use crate::common::{BASE62, Server, bind, secret};
use crate::directory::{Directory, TenantSpec};
use crate::faults::Faults;
pub use tenant::{EntraDevice, EntraGroup, EntraSnapshot, EntraTenant, EntraUser, MemberKind, OnPremises};

/// The permissions the consented app holds: all a sync needs.
const CONSENTED: [&str; 4] =
    ["User.Read.All", "Group.Read.All", "Device.Read.All", "RoleManagement.Read.Directory"];

/// An app registration: its secret and the Graph application permissions consented for it.
struct App {
    secret: String,
    roles: HashSet<&'static str>,
}

/// What an access token was issued to.
struct AccessGrant {
    /// The app's client id: Graph's throttling counts per app and tenant.
    app: String,
    roles: HashSet<&'static str>,
    expires: Instant,
}

/// How the fake pages and what its tokens are worth: knobs beyond the shared faults.
struct Limits {
    /// At most this many `members@delta` entries per page.
    members_per_page: usize,
    /// How long new access tokens live.
    token_lifetime: Duration,
    /// Whether lists that expand devices' `registeredOwners` are answered 403.
    owners_refused: bool,
    /// Whether `$deltatoken=latest` is answered 400, as for a resource that does not take it.
    latest_refused: bool,
    /// Whether `$count` is answered 400, as by a tenant without advanced queries (Azure AD B2C).
    counts_refused: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            members_per_page: 5_000,
            token_lifetime: Duration::from_secs(3599),
            owners_refused: false,
            latest_refused: false,
            counts_refused: false,
        }
    }
}

struct EntraState {
    base_url: String,
    tenant: RwLock<EntraTenant>,
    apps: Mutex<HashMap<String, App>>,
    tokens: Mutex<HashMap<String, AccessGrant>>,
    faults: Faults,
    limits: Mutex<Limits>,
    token_requests: AtomicUsize,
    subscriptions: subscriptions::Subscriptions,
    budget: Mutex<budget::Budget>,
}

impl EntraState {
    fn limits(&self) -> std::sync::MutexGuard<'_, Limits> {
        self.limits.lock().expect("limits lock")
    }

    /// Every app's secret replaced and every access token expired: the token in hand stops
    /// working and no new one is issued, as when an admin deletes the secret and the run's token
    /// runs out.
    fn revoke(&self) {
        for app in self.apps.lock().expect("apps lock").values_mut() {
            app.secret = new_secret();
        }
        let now = Instant::now();
        for grant in self.tokens.lock().expect("tokens lock").values_mut() {
            grant.expires = now;
        }
    }
}

impl FakeState for EntraState {
    type Tenant = EntraTenant;

    fn tenant(&self) -> &RwLock<EntraTenant> {
        &self.tenant
    }

    fn faults(&self) -> &Faults {
        &self.faults
    }
}

/// A running fake Entra ID tenant. Dropping it stops the server.
pub struct FakeEntra {
    server: Server,
    state: Arc<EntraState>,
    consented: (String, String),
    unconsented: (String, String),
}

/// Secrets look like the portal's: 40 characters with a `~` in them.
fn new_secret() -> String {
    format!("{}~{}", secret(BASE62, 3), secret(BASE62, 36))
}

impl FakeEntra {
    pub async fn start() -> io::Result<FakeEntra> {
        Self::start_with(TenantSpec::default()).await
    }

    pub async fn start_with(spec: TenantSpec) -> io::Result<FakeEntra> {
        Self::start_on(spec, 0, None).await
    }

    /// On `port` when it is free, with `consented` (client id, secret) as the consented app when
    /// given.
    pub(crate) async fn start_on(
        spec: TenantSpec,
        port: u16,
        consented: Option<(String, String)>,
    ) -> io::Result<FakeEntra> {
        let (listener, base_url) = bind(port).await?;
        let tenant = EntraTenant::generate(&Directory::generate(&spec), &spec);
        // Credentials are fresh on every start unless given, unlike the tenant's data.
        let consented = consented.unwrap_or_else(|| (uuid::Uuid::new_v4().to_string(), new_secret()));
        let unconsented = (uuid::Uuid::new_v4().to_string(), new_secret());
        let apps = HashMap::from([
            (consented.0.clone(), App { secret: consented.1.clone(), roles: HashSet::from(CONSENTED) }),
            (unconsented.0.clone(), App { secret: unconsented.1.clone(), roles: HashSet::new() }),
        ]);
        let state = Arc::new(EntraState {
            base_url: base_url.clone(),
            tenant: RwLock::new(tenant),
            apps: Mutex::new(apps),
            tokens: Mutex::new(HashMap::new()),
            faults: Faults::default(),
            limits: Mutex::new(Limits::default()),
            token_requests: AtomicUsize::new(0),
            subscriptions: subscriptions::Subscriptions::default(),
            budget: Mutex::default(),
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(login::token))
            .route("/v1.0/users", get(graph::list_users))
            .route("/v1.0/groups", get(graph::list_groups))
            .route("/v1.0/devices", get(graph::list_devices))
            .route("/v1.0/users/delta", get(graph::users_delta))
            .route("/v1.0/groups/delta", get(graph::groups_delta))
            .route("/v1.0/devices/delta", get(graph::devices_delta))
            .route("/v1.0/users/$count", get(graph::count_users))
            .route("/v1.0/groups/$count", get(graph::count_groups))
            .route("/v1.0/devices/$count", get(graph::count_devices))
            .route("/v1.0/roleManagement/directory/roleAssignments", get(graph::role_assignments))
            .route("/v1.0/subscriptions", get(subscriptions::list).post(subscriptions::create))
            .route(
                "/v1.0/subscriptions/{id}",
                get(subscriptions::get).patch(subscriptions::update).delete(subscriptions::delete),
            )
            .route("/v1.0/subscriptions/{id}/reauthorize", post(subscriptions::reauthorize))
            .route("/_fake/entra/subscriptions/{id}/lifecycle", post(subscriptions::admin_lifecycle))
            .route("/_fake/entra/subscriptions/{id}/expire", post(subscriptions::admin_expire))
            .merge(admin::router("entra"))
            .fallback(graph::not_found)
            .layer(middleware::from_fn_with_state(state.clone(), budget::meter))
            .with_state(state.clone());
        let server = Server::serve("entra", listener, &base_url, app);
        Ok(FakeEntra { server, state, consented, unconsented })
    }

    /// The value for `CTXSYNC_ENTRA_LOGIN_BASE_URL`.
    pub fn login_base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The value for `CTXSYNC_GRAPH_BASE_URL`.
    pub fn graph_base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The variables that send ctxsync's Entra ID requests here, with their values.
    pub fn base_urls(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CTXSYNC_ENTRA_LOGIN_BASE_URL", self.login_base_url()),
            (Self::PORT_VARIABLE, self.graph_base_url()),
        ]
    }

    /// The variable whose URL names this fake's port.
    pub const PORT_VARIABLE: &str = "CTXSYNC_GRAPH_BASE_URL";

    /// The tenant's id (a GUID).
    pub fn tenant_id(&self) -> String {
        self.state.tenant.read().expect("tenant lock").tenant_id.clone()
    }

    /// The tenant's verified domain; it names the tenant at sign-in as well as its id does.
    pub fn domain(&self) -> String {
        self.state.tenant.read().expect("tenant lock").domain.clone()
    }

    /// The app with admin consent for `User.Read.All`, `Group.Read.All`, `Device.Read.All` and
    /// `RoleManagement.Read.Directory`.
    pub fn client_id(&self) -> String {
        self.consented.0.clone()
    }

    pub fn client_secret(&self) -> String {
        self.consented.1.clone()
    }

    /// `(client_id, client_secret)` of an app whose permissions were never consented.
    pub fn app_without_consent(&self) -> (String, String) {
        self.unconsented.clone()
    }

    /// Changes the tenant, as admins do between syncs; delta rounds see the changes.
    pub fn mutate<R>(&self, change: impl FnOnce(&mut EntraTenant) -> R) -> R {
        change(&mut self.state.tenant.write().expect("tenant lock"))
    }

    /// Everything the tenant holds, as Graph would serve it.
    pub fn snapshot(&self) -> EntraSnapshot {
        self.state.tenant.read().expect("tenant lock").snapshot()
    }

    /// Answers the next `n` Graph requests with 429 and `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        self.state.faults.rate_limit(n, Duration::from_secs(retry_after_secs));
    }

    /// Graph's resource-unit limit for each app in this tenant: `units` a `window` (sliding)
    /// instead of the documented figure for the tenant's size a 10-second window
    /// (3,500 under 50 users, 5,000 to 500, 8,000 above), scaled down for tests and benchmarks.
    pub fn set_resource_unit_budget(&self, units: u32, window: Duration) {
        self.state.budget.lock().expect("budget lock").set(units, window);
    }

    /// The most resource units one app held in one window.
    pub fn busiest_window(&self) -> u32 {
        self.state.budget.lock().expect("budget lock").busiest()
    }

    /// The 429s the resource-unit limit answered (injected ones not counted).
    pub fn rate_limited(&self) -> u64 {
        self.state.budget.lock().expect("budget lock").refused()
    }

    /// The resource units charged for every request served.
    pub fn resource_units_charged(&self) -> u64 {
        self.state.budget.lock().expect("budget lock").charged()
    }

    /// At most `n` `members@delta` entries per page, so big groups split across pages.
    pub fn limit_members_per_page(&self, n: usize) {
        self.state.limits().members_per_page = n.max(1);
    }

    /// Answers 403 `Authorization_RequestDenied` to device lists that expand `registeredOwners`,
    /// while devices themselves stay readable.
    pub fn refuse_device_owners(&self) {
        self.state.limits().owners_refused = true;
    }

    /// Answers 400 to delta queries "from now" (`$deltatoken=latest`), which Graph documents for
    /// users and groups only: clients must then list the whole delta round.
    pub fn refuse_latest_delta(&self) {
        self.state.limits().latest_refused = true;
    }

    /// Answers 400 `Request_UnsupportedQuery` to every `$count`, as a tenant without advanced
    /// queries does: clients must list without totals.
    pub fn refuse_counts(&self) {
        self.state.limits().counts_refused = true;
    }

    /// Forgets every delta and skip token issued so far: using one answers 410 Gone.
    pub fn expire_delta_tokens(&self) {
        self.state.tenant.write().expect("tenant lock").token_epoch += 1;
    }

    /// Replaces the consented app's secret, as an admin deleting it would: the token endpoint
    /// answers `invalid_client` to the old one. Access tokens issued before keep working.
    pub fn revoke_secret(&self) {
        let mut apps = self.state.apps.lock().expect("apps lock");
        if let Some(app) = apps.get_mut(&self.consented.0) {
            app.secret = new_secret();
        }
    }

    /// Accepts [`FakeEntra::client_secret`] again after a revocation, as if the config had been
    /// given a new secret.
    pub fn restore_credentials(&self) {
        let mut apps = self.state.apps.lock().expect("apps lock");
        if let Some(app) = apps.get_mut(&self.consented.0) {
            app.secret.clone_from(&self.consented.1);
        }
    }

    /// Makes every access token issued so far expired: Graph answers 401 to them.
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for grant in self.state.tokens.lock().expect("tokens lock").values_mut() {
            grant.expires = now;
        }
    }

    /// How long access tokens issued from now on live (`expires_in`).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state.limits().token_lifetime = lifetime;
    }

    /// Withdraws one of the consented app's permissions for tokens issued from now on.
    pub fn withdraw_permission(&self, permission: &str) {
        let mut apps = self.state.apps.lock().expect("apps lock");
        if let Some(app) = apps.get_mut(&self.consented.0) {
            app.roles.retain(|r| *r != permission);
        }
    }

    /// Grants the consented app a permission again, after [`FakeEntra::withdraw_permission`],
    /// for tokens issued from now on.
    pub fn grant_permission(&self, permission: &'static str) {
        let mut apps = self.state.apps.lock().expect("apps lock");
        if let Some(app) = apps.get_mut(&self.consented.0) {
            app.roles.insert(permission);
        }
    }

    /// How many token requests the login endpoint answered with a token.
    pub fn tokens_issued(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// The live subscriptions for change notifications, as Graph keeps them.
    pub fn subscriptions(&self) -> Vec<FakeSubscription> {
        self.state.subscriptions.live().clone()
    }

    /// Sends a lifecycle notification about the subscription `id`, as Graph does
    /// (`subscriptionRemoved` removes it first); the endpoint's status, or `None` when there is no
    /// such live subscription with a lifecycle URL or the endpoint did not answer.
    pub async fn send_lifecycle(&self, id: &str, event: LifecycleEvent) -> Option<reqwest::StatusCode> {
        subscriptions::send_lifecycle(&self.state, id, event).await
    }

    /// Makes the subscription `id` expire now: it delivers nothing more and the API no longer
    /// knows it. `false` when there is no such live subscription.
    pub fn expire_subscription(&self, id: &str) -> bool {
        subscriptions::expire(&self.state, id)
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl crate::faults::sealed::HasFaults for FakeEntra {
    fn faults(&self) -> &crate::faults::Faults {
        &self.state.faults
    }
}

impl crate::FaultKnobs for FakeEntra {}
