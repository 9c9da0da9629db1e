//! `spawn_app()`: the real service on a random port against a fresh database and fresh fake
//! sources, with request helpers so tests read as scenarios.
//!
//! The database is SQLite, or a new PostgreSQL database when `CTXSYNC_TEST_DATABASE_URL` names a
//! server (`scripts/test-postgres` sets it), so the same tests cover both backends.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ctxsync::commands::demo::fake_endpoints;
use ctxsync::{Application, ConnectionLimits, ServeSettings};
use ctxsync_api::RateLimitSettings;
use ctxsync_core::Scopes;
use ctxsync_fakes::{Fakes, TenantSpec};
use ctxsync_sources::Endpoints;
use ctxsync_store::testing::TestDatabase;
use ctxsync_store::{KeyPair, MasterKey, Store};
use ctxsync_sync::{Clock, SyncSettings};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub const BASE: &str = "/api/v2/security_monitoring/configuration/integration_config";

/// The master key of every test app, for commands run on its database.
pub const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

pub struct TestApp {
    pub address: String,
    /// `http://host:port` of `/metrics`, when [`Options::metrics`] asked for it.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub api_key: String,
    pub app_key: String,
    pub fakes: Fakes,
    pub database: TestDatabase,
    /// The sync engine's clock: advancing it past a config's `full_sync_interval` makes the
    /// config's next run full, with no wait.
    pub clock: Clock,
    master_key: String,
}

/// How to start the app; `Default` is what most tests want.
pub struct Options {
    /// Route every source to the fakes (false: real hosts, to exercise the SSRF guard).
    pub use_fakes: bool,
    pub rate_limit: u32,
    /// Send Okta requests here instead of to the fake (e.g. a closed port).
    pub okta_base_url: Option<String>,
    /// The organisation every fake serves.
    pub tenant: TenantSpec,
    pub connections: ConnectionLimits,
    /// Serve `/metrics` on a port of its own.
    pub metrics: bool,
    /// Give the app's own address as `CTXSYNC_PUBLIC_URL`, for the sources that push to it.
    pub public_url: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            use_fakes: true,
            rate_limit: 10_000,
            okta_base_url: None,
            tenant: TenantSpec::default(),
            connections: ConnectionLimits::default(),
            metrics: false,
            public_url: true,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let fakes = Fakes::start_with(options.tenant).await.expect("fakes start");
    let database = TestDatabase::create().await;
    let master_key = MASTER_KEY.to_string();
    let mut endpoints = if options.use_fakes { fake_endpoints(&fakes) } else { Endpoints::default() };
    if let Some(okta) = options.okta_base_url {
        endpoints = endpoints.with("CTXSYNC_OKTA_BASE_URL", okta.parse().unwrap());
    }
    let clock = Clock::adjustable();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = listener.local_addr().unwrap();
    let api_key = "0123456789abcdef0123456789abcdef".to_string();
    let app_key = "0123456789abcdef0123456789abcdef01234567".to_string();
    let settings = ServeSettings {
        listen: own,
        metrics_listen: options.metrics.then(|| "127.0.0.1:0".parse().unwrap()),
        database_url: database.url.clone(),
        master_key: MasterKey::from_base64(&master_key).unwrap().into(),
        endpoints,
        bootstrap: Some((api_key.clone(), app_key.clone())),
        rate_limit: RateLimitSettings {
            limit: NonZeroU32::new(options.rate_limit).unwrap(),
            period: Duration::from_secs(60),
        },
        sync: SyncSettings {
            tick: Duration::from_millis(200),
            lease: Duration::from_secs(3),
            clock: clock.clone(),
            ..SyncSettings::default()
        },
        event_retention: Duration::from_secs(90 * 86400),
        connections: options.connections,
        public_url: options.public_url.then(|| format!("http://{own}")),
    };
    let app = Application::build_on(settings, listener).await.expect("the app builds");
    let address = format!("http://{}", app.local_addr());
    let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::new(),
        api_key,
        app_key,
        fakes,
        database,
        clock,
        master_key,
    }
}

impl TestApp {
    /// A second handle on the same database, for what the API does not offer (creating keys).
    pub async fn store(&self) -> Arc<dyn Store> {
        ctxsync_store::connect(&self.database.url, MasterKey::from_base64(&self.master_key).unwrap())
            .await
            .unwrap()
    }

    pub async fn create_keys(&self, org: &str, scopes: &str) -> KeyPair {
        self.store().await.create_key_pair(org, &Scopes::parse_list(scopes).unwrap()).await.unwrap()
    }

    /// A request with the default (full-permission) keys.
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.request_as(&self.api_key, &self.app_key, method, path, body).await
    }

    pub async fn request_as(
        &self,
        api: &str,
        app: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address))
            .header("DD-API-KEY", api)
            .header("DD-APPLICATION-KEY", app);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    /// Every item of a cursor-paginated listing (`path` has a query already), page by page.
    pub async fn list_all(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, body) =
                status_json(self.request(Method::GET, &format!("{path}{cursor}"), None).await).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            out.extend(body["data"].as_array().unwrap().iter().cloned());
            match body["meta"]["page"]["next_cursor"].as_str() {
                Some(c) => cursor = format!("&page[cursor]={c}"),
                None => return out,
            }
        }
    }

    pub async fn create(&self, attributes: Value) -> Response {
        self.request(Method::POST, BASE, Some(envelope(attributes))).await
    }

    /// Creates a config that must succeed and returns its `data` object.
    pub async fn create_ok(&self, attributes: Value) -> Value {
        let response = self.create(attributes).await;
        let (status, body) = status_json(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].clone()
    }

    pub async fn patch(&self, id: &str, attributes: Value) -> Response {
        self.request(Method::PATCH, &format!("{BASE}/{id}"), Some(envelope(attributes))).await
    }

    pub async fn get(&self, id: &str) -> Response {
        self.request(Method::GET, &format!("{BASE}/{id}"), None).await
    }

    pub async fn list(&self, query: &str) -> Vec<Value> {
        let (status, body) =
            status_json(self.request(Method::GET, &format!("{BASE}{query}"), None).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    pub fn okta_attributes(&self) -> Value {
        json!({
            "integration_type": "OKTA",
            "name": "Okta",
            "domain": self.fakes.okta.domain(),
            "secrets": {"api_token": self.fakes.okta.api_token()},
            "settings": {"team": "secops"}
        })
    }

    pub fn google_attributes(&self) -> Value {
        json!({
            "integration_type": "GOOGLE_WORKSPACE",
            "name": "Workspace",
            "domain": self.fakes.google.domain(),
            "secrets": {
                "service_account_json": self.fakes.google.service_account_json(),
                "admin_email": self.fakes.google.admin_email()
            }
        })
    }

    pub fn entra_attributes(&self) -> Value {
        json!({
            "integration_type": "ENTRA_ID",
            "name": "Entra",
            "domain": self.fakes.entra.domain(),
            "secrets": {"client_id": self.fakes.entra.client_id(), "client_secret": self.fakes.entra.client_secret()}
        })
    }

    pub fn crowdstrike_attributes(&self) -> Value {
        let falcon = &self.fakes.crowdstrike;
        json!({
            "integration_type": "CROWDSTRIKE",
            "name": "Falcon",
            "domain": falcon.domain(),
            "secrets": {"client_id": falcon.client_id(), "client_secret": falcon.client_secret()},
        })
    }

    pub fn sentinelone_attributes(&self) -> Value {
        json!({
            "integration_type": "SENTINELONE",
            "name": "Singularity",
            "domain": self.fakes.sentinelone.domain(),
            "secrets": {"api_token": self.fakes.sentinelone.api_token()},
        })
    }
}

pub fn envelope(attributes: Value) -> Value {
    json!({"data": {"type": "integration_config", "attributes": attributes}})
}

pub async fn status_json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// The `errors` array of an error response, asserting the contract's shape.
pub fn errors(body: &Value) -> Vec<String> {
    let obj = body.as_object().unwrap_or_else(|| panic!("an error body is an object: {body}"));
    assert_eq!(obj.len(), 1, "only `errors`: {body}");
    obj["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect()
}

/// Sends `request` on a connection of its own and reads the answer until the server closes it.
pub async fn raw(address: &str, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://")).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8(answer).unwrap()
}
