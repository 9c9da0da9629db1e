//! Authentications remembered for a moment, so a busy key pair costs one store lookup per
//! [`AUTH_TTL`] instead of one per request (the lookup was half of a GET's database time).
//!
//! Bounded staleness is the price: a key revoked or rotated out (by this replica, another one or
//! the `ctxsync keys` command) stops working within `AUTH_TTL`, since nothing here outlives it.
//! An expiry is honoured to the instant, as it is known in advance. Failed lookups are not kept:
//! a wrong key costs a lookup every time, behind the per-address rate limit.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ctxsync_store::{Authenticated, Store, StoreError};
use sha2::{Digest, Sha256};

/// How long an authentication is trusted without asking the store again: well inside the five
/// seconds within which a revocation must take effect everywhere.
pub const AUTH_TTL: Duration = Duration::from_secs(2);

/// Uses are written to the store at most this often per key pair and process.
const USE_RECORDING: Duration = Duration::from_secs(60);

/// Past this many remembered pairs, the oldest are forgotten at the next insertion.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct AuthCache {
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

#[derive(Clone)]
struct Entry {
    auth: Authenticated,
    checked: Instant,
    /// When this process last recorded the pair's use in the store.
    use_recorded: Option<Instant>,
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
        let now = Instant::now();
        let remembered = self.entries.read().expect("auth cache lock").get(&id).cloned();
        if let Some(entry) = &remembered
            && now.duration_since(entry.checked) < AUTH_TTL
            && entry.auth.expires_at.is_none_or(|at| ctxsync_core::now() < at)
        {
            if entry.use_recorded.is_none_or(|at| now.duration_since(at) >= USE_RECORDING) {
                self.record_use(store, id, &entry.auth, now);
            }
            return Ok(Some(entry.auth.clone()));
        }
        let Some(auth) = store.authenticate_keys(api_key, app_key).await? else {
            self.entries.write().expect("auth cache lock").remove(&id);
            return Ok(None);
        };
        let use_recorded = remembered.and_then(|e| e.use_recorded);
        let entry = Entry { auth: auth.clone(), checked: now, use_recorded };
        {
            let mut entries = self.entries.write().expect("auth cache lock");
            if entries.len() >= CAPACITY {
                entries.retain(|_, e| now.duration_since(e.checked) < AUTH_TTL);
            }
            entries.insert(id, entry);
        }
        if use_recorded.is_none_or(|at| now.duration_since(at) >= USE_RECORDING) {
            self.record_use(store, id, &auth, now);
        }
        Ok(Some(auth))
    }

    /// Forgets every remembered pair, so a change this replica made to keys counts at once here.
    pub fn clear(&self) {
        self.entries.write().expect("auth cache lock").clear();
    }

    /// Writes the use in the background: a request does not wait for it, and a failure only
    /// leaves `last_used_at` older.
    fn record_use(&self, store: &Arc<dyn Store>, id: [u8; 32], auth: &Authenticated, now: Instant) {
        if let Some(entry) = self.entries.write().expect("auth cache lock").get_mut(&id) {
            entry.use_recorded = Some(now);
        }
        let (store, ids) = (store.clone(), auth.key_ids);
        tokio::spawn(async move {
            if let Err(e) = store.record_key_use(&ids, ctxsync_core::now()).await {
                tracing::debug!(error = %e, "could not record a key pair's use");
            }
        });
    }
}

/// The map's key: a hash of both keys, so no plaintext key is kept in memory past the request.
fn pair_id(api_key: &str, app_key: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(api_key.as_bytes());
    hash.update([0]);
    hash.update(app_key.as_bytes());
    hash.finalize().into()
}
