use std::sync::Arc;

use ctxsync_sources::Sources;
use ctxsync_store::Store;

use crate::auth_cache::AuthCache;
use crate::rate_limit::RateLimits;

/// What every handler may use. Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub sources: Sources,
    pub limits: RateLimits,
    pub auth: Arc<AuthCache>,
}
