//! A fake Okta org: the Management API's users and groups lists behind `SSWS` API tokens.
//!
//! Tokens act as the admin who created them, as real ones do: `/users/me` answers for any live
//! token, while listing needs an admin with read permission ([`OktaPermission`]).

mod routes;
mod tenant;

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, RwLock};

use crate::common::{BASE62, Server, bind, secret};
use crate::directory::{Directory, TenantSpec};
use tenant::OktaTenant;

/// What the admin behind a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OktaPermission {
    /// A super admin's token: can read users and groups.
    ReadAll,
    /// A token whose user has no admin role: `/users/me` works, listing is refused (E0000006).
    NoPermission,
}

struct OktaState {
    base_url: String,
    tenant: RwLock<OktaTenant>,
    /// Live tokens and the permission of the admin each acts as.
    tokens: Mutex<HashMap<String, OktaPermission>>,
    rate: Mutex<routes::RateWindow>,
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
        let (listener, base_url) = bind().await?;
        let domain = "acme.okta.com".to_string();
        let tenant = OktaTenant::from_directory(&Directory::generate(&spec), spec.seed, "acme.com");
        let state = Arc::new(OktaState {
            base_url: base_url.clone(),
            tenant: RwLock::new(tenant),
            tokens: Mutex::new(HashMap::new()),
            rate: Mutex::new(routes::RateWindow::default()),
        });
        let server = Server::serve("okta", listener, &base_url, routes::router(state.clone()));
        let mut fake = FakeOkta { server, state, domain, api_token: String::new() };
        fake.api_token = fake.add_token(OktaPermission::ReadAll);
        Ok(fake)
    }

    /// `http://127.0.0.1:PORT`, the value for `CTXSYNC_OKTA_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// The org's host, for a config's `domain`.
    pub fn domain(&self) -> String {
        self.domain.clone()
    }

    /// A super admin's token.
    pub fn api_token(&self) -> String {
        self.api_token.clone()
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

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
