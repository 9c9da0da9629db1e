use std::ops::Deref;
use std::sync::Arc;

use ctxsync_sources::Sources;
use ctxsync_store::Store;

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
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, sources: Sources, limits: RateLimits) -> AppState {
        AppState(Arc::new(Shared {
            store,
            sources,
            limits,
            auth: AuthCache::default(),
            configs: ConfigCache::default(),
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
