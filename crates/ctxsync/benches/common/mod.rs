//! What the service benchmarks share: the service on SQLite in a temporary directory, against
//! the fake sources, with a key pair of every permission.

use std::num::NonZeroU32;
use std::time::Duration;

use ctxsync::commands::demo::fake_endpoints;
use ctxsync::{Application, ConnectionLimits, ServeSettings};
use ctxsync_api::RateLimitSettings;
use ctxsync_fakes::Fakes;
use ctxsync_store::MasterKey;
use ctxsync_sync::SyncSettings;

pub const API_KEY: &str = "0123456789abcdef0123456789abcdef";
pub const APP_KEY: &str = "0123456789abcdef0123456789abcdef01234567";

/// Starts the service (its rate limit out of the way, its sync settings the production ones, its
/// own address as the public URL the fakes push to) and returns its address.
pub async fn serve(fakes: &Fakes, dir: &tempfile::TempDir) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let settings = ServeSettings {
        listen: listener.local_addr().unwrap(),
        metrics_listen: None,
        database_url: format!("sqlite://{}/ctxsync.db", dir.path().display()),
        master_key: MasterKey::load_or_generate(dir.path()).unwrap().into(),
        endpoints: fake_endpoints(fakes),
        bootstrap: Some((API_KEY.into(), APP_KEY.into())),
        rate_limit: RateLimitSettings { limit: NonZeroU32::MAX, period: Duration::from_secs(1) },
        sync: SyncSettings::default(),
        event_retention: Duration::from_secs(86_400),
        connections: ConnectionLimits::default(),
        public_url: Some(address.clone()),
    };
    let app = Application::build_on(settings, listener).await.unwrap();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    address
}

/// The headers that authenticate as the bootstrap key pair.
pub fn auth() -> reqwest::header::HeaderMap {
    let mut auth = reqwest::header::HeaderMap::new();
    auth.insert("DD-API-KEY", API_KEY.parse().unwrap());
    auth.insert("DD-APPLICATION-KEY", APP_KEY.parse().unwrap());
    auth
}
