//! Authentications remembered for a moment, so a busy key pair costs one store lookup per
//! [`AUTH_TTL`] instead of one per request (the lookup was half of a GET's database time).
//!
//! Bounded staleness is the price: a key revoked or rotated out (by this replica, another one or
//! the `ctxsync keys` command) stops working within `AUTH_TTL`, since nothing here outlives it.
//! An expiry is honoured to the instant, as it is known in advance. Failed lookups are not kept:
//! a wrong key costs a lookup every time, behind the per-address rate limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ctxsync_store::{Authenticated, Store, StoreError};
use sha2::{Digest, Sha256};

use crate::ttl_map::TtlMap;

/// How long an authentication is trusted without asking the store again: well inside the five
/// seconds within which a revocation must take effect everywhere.
pub const AUTH_TTL: Duration = Duration::from_secs(2);

/// Uses are written to the store at most this often per key pair and process.
const USE_RECORDING: Duration = Duration::from_secs(60);

pub struct AuthCache {
    /// By a hash of both keys, so no plaintext key is kept in memory past the request.
    pairs: TtlMap<[u8; 32], Authenticated>,
    /// When this process last recorded each pair's use in the store; kept longer than the pairs.
    uses: TtlMap<[u8; 32], Instant>,
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache { pairs: TtlMap::new(AUTH_TTL, 10_000), uses: TtlMap::new(USE_RECORDING, 10_000) }
    }
}

impl AuthCache {
    /// The pair's authentication, from memory when it was checked less than [`AUTH_TTL`] ago and
    /// has not expired since, else from the store. Records the keys' use at most once a minute.
    pub async fn authenticate(
        &self,
        store: &Arc<dyn Store>,
        api_key: &str,
        app_key: &str,
    ) -> Result<Option<Authenticated>, StoreError> {
        let id = pair_id(api_key, app_key);
        let remembered = self.pairs.get(&id);
        let auth = match remembered.filter(|a| a.expires_at.is_none_or(|at| ctxsync_core::now() < at)) {
            Some(auth) => auth,
            None => {
                let Some(auth) = store.authenticate_keys(api_key, app_key).await? else {
                    self.pairs.remove(&id);
                    return Ok(None);
                };
                self.pairs.insert(id, auth.clone());
                auth
            }
        };
        if self.uses.get(&id).is_none() {
            self.uses.insert(id, Instant::now());
            record_use(store, &auth);
        }
        Ok(Some(auth))
    }

    /// Forgets every remembered pair, so a change this replica made to keys counts at once here.
    pub fn clear(&self) {
        self.pairs.clear();
    }
}

/// Writes the use in the background: a request does not wait for it, and a failure only leaves
/// `last_used_at` older.
fn record_use(store: &Arc<dyn Store>, auth: &Authenticated) {
    let (store, ids) = (store.clone(), auth.key_ids);
    tokio::spawn(async move {
        if let Err(e) = store.record_key_use(&ids, ctxsync_core::now()).await {
            tracing::debug!(error = %e, "could not record a key pair's use");
        }
    });
}

fn pair_id(api_key: &str, app_key: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(api_key.as_bytes());
    hash.update([0]);
    hash.update(app_key.as_bytes());
    hash.finalize().into()
}
