use std::ops::Deref;
use std::sync::Arc;

use ctxsync_sources::Sources;
use ctxsync_store::Store;
use tokio::sync::Notify;

use crate::auth_cache::AuthCache;
use crate::config_cache::ConfigCache;
use crate::rate_limit::RateLimits;

/// What every handler may use. Cloned for every extractor and middleware of every request, so it
/// is one shared pointer: a clone is one atomic increment, whatever it holds.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub sources: Sources,
    pub limits: RateLimits,
    pub auth: AuthCache,
    pub configs: ConfigCache,
    /// Woken when a run is asked for (a push, "sync now"), so the scheduler of this replica
    /// starts it at once rather than at its next look.
    pub runs_due: Arc<Notify>,
    /// `CTXSYNC_PUBLIC_URL`: the address sources reach this service at, for push endpoints.
    pub public_url: Option<String>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        sources: Sources,
        limits: RateLimits,
        public_url: Option<String>,
    ) -> AppState {
        AppState(Arc::new(Shared {
            store,
            sources,
            limits,
            auth: AuthCache::default(),
            configs: ConfigCache::default(),
            runs_due: Arc::default(),
            public_url,
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
