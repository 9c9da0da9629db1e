//! A fake Google Workspace: the OAuth token endpoint's JWT-bearer grant (service accounts with
//! domain-wide delegation), the Admin SDK Directory API's users, groups and members lists, a
//! user by its key, and Directory push (`users.watch` channels, `channels.stop`; `channels.rs`).
//!
//! Both live on one server; `token_url()` and `directory_base_url()` are the two values a
//! connector needs. Every Directory request draws on its project's per-admin quota (`quota.rs`),
//! scaled down by [`FakeGoogle::set_directory_quota`]. Between runs a test changes the account with [`FakeGoogle::mutate`], injects
//! faults (Google's 429 and 403 rate limits, 5xx, slow or truncated replies, skipped, overlapping
//! or reversed pages, expired tokens, a revoked service account, refused group members), aimed
//! at a request of a run by [`FakeGoogle::hold_faults`], and compares a sync with
//! [`FakeGoogle::snapshot`].

mod channels;
mod directory_api;
mod keys;
mod quota;
mod tenant;
mod token;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use serde_json::Value;

use crate::admin::{self, FakeState};
use crate::common::{Server, Snapshot, bind};
use crate::directory::{Directory, TenantSpec};
use crate::faults::Faults;
pub use channels::FakeChannel;
use keys::ServiceAccount;
pub use tenant::{GoogleGroup, GoogleTenant, GoogleUser};

pub(crate) const SCOPE_PREFIX: &str = "https://www.googleapis.com/auth/";

/// The scopes an admin grants a sync's service account in the Admin console.
const READ_ONLY_SCOPES: [&str; 5] = [
    "admin.directory.user.readonly",
    "admin.directory.group.readonly",
    "admin.directory.group.member.readonly",
    "admin.directory.device.mobile.readonly",
    "admin.directory.device.chromeos.readonly",
];

/// A key the token endpoint knows, and the account it belongs to.
struct RegisteredKey {
    client_email: String,
    client_id: String,
    /// The Google Cloud project whose quota the account's requests draw on.
    project_id: String,
    public_key: Vec<u8>,
}

/// What an access token was issued for.
struct AccessGrant {
    client_id: String,
    project_id: String,
    subject: Option<String>,
    scopes: HashSet<String>,
    expires: Instant,
}

struct GoogleState {
    tenant: RwLock<GoogleTenant>,
    keys: Vec<RegisteredKey>,
    /// Domain-wide delegation: client id → scopes granted to it.
    delegation: HashMap<String, HashSet<String>>,
    tokens: Mutex<HashMap<String, AccessGrant>>,
    /// Client ids whose keys were deleted: their assertions fail, their tokens are gone.
    revoked: Mutex<HashSet<String>>,
    faults: Faults,
    rate_limit: Mutex<GoogleRateLimit>,
    /// The per-user quota of each project, and what it met.
    quota: Mutex<quota::Quota>,
    tokens_issued: AtomicU64,
    /// Groups (by id) whose member listing answers 403.
    members_refused: Mutex<HashSet<String>>,
    /// `users.watch` channels, and what they delivered.
    channels: channels::Channels,
    base_url: String,
}

impl GoogleState {
    /// Deletes the keys of `client_id`: its tokens stop working, its assertions fail.
    fn revoke(&self, client_id: &str) {
        self.tokens.lock().expect("tokens lock").retain(|_, g| g.client_id != client_id);
        self.revoked.lock().expect("revoked lock").insert(client_id.to_owned());
    }
}

impl FakeState for GoogleState {
    type Tenant = GoogleTenant;

    fn tenant(&self) -> &RwLock<GoogleTenant> {
        &self.tenant
    }

    fn faults(&self) -> &Faults {
        &self.faults
    }
}

/// The ways the Directory API says "slow down"; two of them are 403s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GoogleRateLimit {
    /// 403 `userRateLimitExceeded`: the per-user queries-per-minute quota.
    #[default]
    UserRateLimitExceeded,
    /// 429 `rateLimitExceeded`: the account's rate.
    RateLimitExceeded,
    /// 403 `quotaExceeded`: too many concurrent requests.
    QuotaExceeded,
}

/// A running fake Google Workspace. Dropping it stops the server.
pub struct FakeGoogle {
    server: Server,
    state: Arc<GoogleState>,
    base_url: String,
    delegated: Value,
    undelegated: Value,
    wrong_key: Value,
}

impl FakeGoogle {
    pub async fn start() -> io::Result<FakeGoogle> {
        Self::start_with(TenantSpec::default()).await
    }

    pub async fn start_with(spec: TenantSpec) -> io::Result<FakeGoogle> {
        Self::start_on(spec, 0, None).await
    }

    /// On `port` when it is free, with `service_account` (a key file this fake issued before) as
    /// the delegated service account when given.
    pub(crate) async fn start_on(
        spec: TenantSpec,
        port: u16,
        service_account: Option<&Value>,
    ) -> io::Result<FakeGoogle> {
        let (listener, base_url) = bind(port).await?;
        let tenant = GoogleTenant::from_directory(&Directory::generate(&spec), spec.seed, "example.com");
        let project = "acme-identity-sync";
        let key_file = service_account.cloned();
        // Key generation is CPU work; keep it off the runtime's worker threads.
        let (delegated, undelegated, wrong_key) = tokio::task::spawn_blocking(move || {
            let delegated = match key_file {
                Some(file) => ServiceAccount::from_key_file(&file)?,
                None => ServiceAccount::generate("ctxsync", project)?,
            };
            let undelegated = ServiceAccount::generate("no-dwd", project)?;
            let wrong_key = ServiceAccount::generate("retired", project)?
                .presented_as(delegated.client_email.clone(), delegated.client_id.clone());
            Ok::<_, io::Error>((delegated, undelegated, wrong_key))
        })
        .await
        .map_err(io::Error::other)??;
        let registered = |sa: &ServiceAccount| RegisteredKey {
            client_email: sa.client_email.clone(),
            client_id: sa.client_id.clone(),
            project_id: sa.project_id.clone(),
            public_key: sa.public_key.clone(),
        };
        let granted = READ_ONLY_SCOPES.iter().map(|s| format!("{SCOPE_PREFIX}{s}")).collect();
        let state = Arc::new(GoogleState {
            tenant: RwLock::new(tenant),
            keys: vec![registered(&delegated), registered(&undelegated)],
            delegation: HashMap::from([(delegated.client_id.clone(), granted)]),
            tokens: Mutex::new(HashMap::new()),
            revoked: Mutex::new(HashSet::new()),
            faults: Faults::default(),
            rate_limit: Mutex::new(GoogleRateLimit::default()),
            quota: Mutex::default(),
            tokens_issued: AtomicU64::new(0),
            members_refused: Mutex::default(),
            channels: channels::Channels::default(),
            base_url: base_url.clone(),
        });
        let directory = Router::new()
            .route("/admin/directory/v1/users", get(directory_api::list_users))
            .route("/admin/directory/v1/users/watch", post(channels::watch))
            .route("/admin/directory/v1/users/{user_key}", get(directory_api::get_user))
            .route("/admin/directory_v1/channels/stop", post(channels::stop))
            .route("/admin/directory/v1/groups", get(directory_api::list_groups))
            .route("/admin/directory/v1/groups/{group_key}/members", get(directory_api::list_members))
            .fallback(directory_api::not_found)
            .layer(middleware::from_fn_with_state(state.clone(), directory_api::gate))
            .layer(middleware::from_fn_with_state(state.clone(), quota::meter));
        let app = Router::new()
            .route("/token", post(token::token))
            .merge(directory)
            .route("/_fake/google/channels/{id}/expire", post(channels::admin_expire))
            .merge(admin::router("google"))
            .with_state(state.clone());
        let server = Server::serve("google", listener, &base_url, app);
        Ok(FakeGoogle {
            server,
            state,
            base_url,
            delegated: delegated.key_file(),
            undelegated: undelegated.key_file(),
            wrong_key: wrong_key.key_file(),
        })
    }

    /// `http://127.0.0.1:PORT/token`, the value for `CTXSYNC_GOOGLE_TOKEN_URL`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url)
    }

    /// `http://127.0.0.1:PORT`, the value for `CTXSYNC_GOOGLE_DIRECTORY_BASE_URL`.
    pub fn directory_base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The variables that send ctxsync's Google requests here, with their values.
    pub fn base_urls(&self) -> Vec<(&'static str, String)> {
        vec![("CTXSYNC_GOOGLE_TOKEN_URL", self.token_url()), (Self::PORT_VARIABLE, self.directory_base_url())]
    }

    /// The variable whose URL names this fake's port.
    pub const PORT_VARIABLE: &str = "CTXSYNC_GOOGLE_DIRECTORY_BASE_URL";

    /// The Workspace account's primary domain.
    pub fn domain(&self) -> String {
        self.state.tenant.read().expect("tenant lock").domain.clone()
    }

    /// A super admin of the account.
    pub fn admin_email(&self) -> String {
        self.state.tenant.read().expect("tenant lock").admin_email.clone()
    }

    /// An existing user without admin rights.
    pub fn non_admin_email(&self) -> String {
        self.state.tenant.read().expect("tenant lock").non_admin_email.clone()
    }

    /// The key file of a service account granted the read-only directory scopes by
    /// domain-wide delegation.
    pub fn service_account_json(&self) -> Value {
        self.delegated.clone()
    }

    /// A registered service account's key file, with no domain-wide delegation granted.
    pub fn service_account_without_delegation(&self) -> Value {
        self.undelegated.clone()
    }

    /// The delegated account's identity with a private key Google never registered.
    pub fn service_account_with_wrong_key(&self) -> Value {
        self.wrong_key.clone()
    }

    /// Changes the account between (or during) runs; see [`GoogleTenant`] for what can change.
    pub fn mutate<R>(&self, change: impl FnOnce(&mut GoogleTenant) -> R) -> R {
        change(&mut self.state.tenant.write().expect("tenant lock"))
    }

    /// Every listed user, group and membership, as the API serves them.
    pub fn snapshot(&self) -> Snapshot {
        self.state.tenant.read().expect("tenant lock").snapshot()
    }

    /// How many access tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> u64 {
        self.state.tokens_issued.load(Ordering::Relaxed)
    }

    /// Every access token issued so far expires now, as after an hour: the API answers 401
    /// until a new one is minted.
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        for grant in self.state.tokens.lock().expect("tokens lock").values_mut() {
            grant.expires = now;
        }
    }

    /// Deletes the key of [`FakeGoogle::service_account_json`]: its tokens stop working at once
    /// and new assertions fail with `invalid_grant` ("Invalid JWT Signature.").
    pub fn revoke_service_account(&self) {
        let client_id = self.delegated["client_id"].as_str().unwrap_or_default();
        self.state.revoke(client_id);
    }

    /// Answers the next `requests` Directory requests with Google's `reason` for rate limiting
    /// (no `Retry-After`: Google documents none).
    pub fn rate_limit_next(&self, requests: u32, reason: GoogleRateLimit) {
        *self.state.rate_limit.lock().expect("rate limit lock") = reason;
        self.state.faults.rate_limit(requests, Duration::ZERO);
    }

    /// Allows `queries` Directory requests a `window` per project and impersonated admin instead
    /// of Google's default 2,400 a minute: a quota scaled down, for tests and benchmarks.
    pub fn set_directory_quota(&self, queries: u32, window: Duration) {
        self.state.quota.lock().expect("quota lock").set(queries, window);
    }

    /// The most requests one project and admin had served in one window.
    pub fn busiest_window(&self) -> u32 {
        self.state.quota.lock().expect("quota lock").busiest()
    }

    /// The requests the quota refused with `userRateLimitExceeded` (injected refusals not counted).
    pub fn rate_limited(&self) -> u64 {
        self.state.quota.lock().expect("quota lock").refused()
    }

    /// The Directory requests the quota let through.
    pub fn queries_served(&self) -> u64 {
        self.state.quota.lock().expect("quota lock").served()
    }

    /// Answers 403 `forbidden` ("Not Authorized to access this resource/api") to listings of
    /// `group`'s members, as Google does for a group outside a delegated admin's role, while the
    /// group itself is listed. `group` is its id.
    pub fn refuse_group_members(&self, group: &str) {
        self.state.members_refused.lock().expect("refusals lock").insert(group.to_owned());
    }

    /// Lists `group`'s members again after [`FakeGoogle::refuse_group_members`].
    pub fn allow_group_members(&self, group: &str) {
        self.state.members_refused.lock().expect("refusals lock").remove(group);
    }

    /// Accepts [`FakeGoogle::service_account_json`] again after a revocation, as if the config
    /// had been given a new key of the same account.
    pub fn restore_credentials(&self) {
        let client_id = self.delegated["client_id"].as_str().unwrap_or_default();
        self.state.revoked.lock().expect("revoked lock").remove(client_id);
    }

    /// The live `users.watch` channels, as Google keeps them.
    pub fn channels(&self) -> Vec<FakeChannel> {
        self.state.channels.live().clone()
    }

    /// Makes the channel `id` expire now: it delivers nothing more and `channels.stop` no longer
    /// finds it. `false` when there is no such live channel.
    pub fn expire_channel(&self, id: &str) -> bool {
        channels::expire(&self.state, id)
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl crate::faults::sealed::HasFaults for FakeGoogle {
    fn faults(&self) -> &crate::faults::Faults {
        &self.state.faults
    }
}

impl crate::FaultKnobs for FakeGoogle {}
