//! A fake Google Workspace: the OAuth token endpoint's JWT-bearer grant (service accounts with
//! domain-wide delegation) and the Admin SDK Directory API's users and groups lists.
//!
//! Both live on one server; `token_url()` and `directory_base_url()` are the two values a
//! connector needs.

mod directory_api;
mod keys;
mod tenant;
mod token;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;

use crate::common::{Server, bind};
use crate::directory::{Directory, TenantSpec};
use keys::ServiceAccount;
use tenant::GoogleTenant;

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
    public_key: Vec<u8>,
}

/// What an access token was issued for.
struct AccessGrant {
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
        let (listener, base_url) = bind().await?;
        let tenant = GoogleTenant::from_directory(&Directory::generate(&spec), spec.seed, "example.com");
        let project = "acme-identity-sync";
        // Key generation is CPU work; keep it off the runtime's worker threads.
        let (delegated, undelegated, wrong_key) = tokio::task::spawn_blocking(move || {
            let delegated = ServiceAccount::generate("ctxsync", project)?;
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
            public_key: sa.public_key.clone(),
        };
        let granted = READ_ONLY_SCOPES.iter().map(|s| format!("{SCOPE_PREFIX}{s}")).collect();
        let state = Arc::new(GoogleState {
            tenant: RwLock::new(tenant),
            keys: vec![registered(&delegated), registered(&undelegated)],
            delegation: HashMap::from([(delegated.client_id.clone(), granted)]),
            tokens: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/token", post(token::token))
            .route("/admin/directory/v1/users", get(directory_api::list_users))
            .route("/admin/directory/v1/groups", get(directory_api::list_groups))
            .fallback(directory_api::not_found)
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

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
