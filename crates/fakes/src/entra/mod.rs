//! A fake Microsoft Entra ID tenant: the identity platform's client-credentials token endpoint
//! and Microsoft Graph's users and groups lists, on one server.
//!
//! Apps hold application permissions only once an admin consented; an app without consent gets
//! tokens but Graph answers 403 `Authorization_RequestDenied`, as it does for real.

mod graph;
mod login;
mod tenant;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::Router;
use axum::routing::{get, post};

use crate::common::{BASE62, Server, bind, secret};
use crate::directory::{Directory, TenantSpec};
use tenant::EntraTenant;

/// An app registration: its secret and the Graph application permissions consented for it.
struct App {
    secret: String,
    roles: HashSet<&'static str>,
}

/// What an access token was issued to.
struct AccessGrant {
    roles: HashSet<&'static str>,
    expires: Instant,
}

/// The next `remaining` Graph requests are answered 429 with this `Retry-After`.
#[derive(Default)]
struct Throttle {
    remaining: usize,
    retry_after_secs: u64,
}

struct EntraState {
    base_url: String,
    tenant: RwLock<EntraTenant>,
    apps: HashMap<String, App>,
    tokens: Mutex<HashMap<String, AccessGrant>>,
    throttle: Mutex<Throttle>,
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
        let (listener, base_url) = bind().await?;
        let tenant = EntraTenant::from_directory(&Directory::generate(&spec), spec.seed);
        // Credentials are fresh on every start, unlike the tenant's data.
        let consented = (uuid::Uuid::new_v4().to_string(), new_secret());
        let unconsented = (uuid::Uuid::new_v4().to_string(), new_secret());
        let apps = HashMap::from([
            (
                consented.0.clone(),
                App {
                    secret: consented.1.clone(),
                    roles: HashSet::from(["User.Read.All", "Group.Read.All"]),
                },
            ),
            (unconsented.0.clone(), App { secret: unconsented.1.clone(), roles: HashSet::new() }),
        ]);
        let state = Arc::new(EntraState {
            base_url: base_url.clone(),
            tenant: RwLock::new(tenant),
            apps,
            tokens: Mutex::new(HashMap::new()),
            throttle: Mutex::new(Throttle::default()),
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(login::token))
            .route("/v1.0/users", get(graph::list_users))
            .route("/v1.0/groups", get(graph::list_groups))
            .fallback(graph::not_found)
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

    /// The tenant's id (a GUID).
    pub fn tenant_id(&self) -> String {
        self.state.tenant.read().expect("tenant lock").tenant_id.clone()
    }

    /// The tenant's verified domain; it names the tenant at sign-in as well as its id does.
    pub fn domain(&self) -> String {
        self.state.tenant.read().expect("tenant lock").domain.clone()
    }

    /// The app with admin consent for `User.Read.All` and `Group.Read.All`.
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

    /// Answers the next `n` Graph requests with 429 and `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: usize, retry_after_secs: u64) {
        *self.state.throttle.lock().expect("throttle lock") = Throttle { remaining: n, retry_after_secs };
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
