//! Configs read by id, remembered for [`CONFIG_TTL`]: a GET of one config then needs no database
//! round trip (the last one left on that route once authentications are remembered too).
//!
//! Writes made through this process forget the config at once, so this replica reads its own
//! writes; a change made through another replica, or a state a sync run set, shows here within
//! `CONFIG_TTL`. Lists and everything a sync or validation reads still go to the store.

use std::sync::Arc;
use std::time::Duration;

use ctxsync_core::{Config, ConfigId, OrgId};
use ctxsync_store::{Store, StoreError};

use crate::ttl_map::TtlMap;

/// How stale a config read by id may be when another process changed it.
pub const CONFIG_TTL: Duration = Duration::from_secs(1);

pub struct ConfigCache(TtlMap<(OrgId, ConfigId), Config>);

impl Default for ConfigCache {
    fn default() -> Self {
        ConfigCache(TtlMap::new(CONFIG_TTL, 10_000))
    }
}

impl ConfigCache {
    pub async fn get(
        &self,
        store: &Arc<dyn Store>,
        org: OrgId,
        id: ConfigId,
    ) -> Result<Option<Config>, StoreError> {
        if let Some(config) = self.0.get(&(org, id)) {
            return Ok(Some(config));
        }
        let config = store.get_config(org, id).await?;
        if let Some(config) = &config {
            self.0.insert((org, id), config.clone());
        }
        Ok(config)
    }

    /// After this process changed or deleted the config.
    pub fn forget(&self, org: OrgId, id: ConfigId) {
        self.0.remove(&(org, id));
    }
}
