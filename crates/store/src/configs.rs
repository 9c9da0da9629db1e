use ctxsync_core::{Config, ConfigId, ConfigState, IntegrationType, OrgId, SecretValue};

use crate::StoreError;

/// Integration configs and their encrypted secrets. Every call is scoped to one org: a config of
/// another org is reported as absent, never as forbidden, so its existence does not leak.
#[async_trait::async_trait]
pub trait ConfigStore: Send + Sync {
    /// Stores a new config and its secrets, encrypted and bound to this org and config id.
    async fn insert_config(&self, config: &Config, secrets: &SecretValue) -> Result<(), StoreError>;

    async fn get_config(&self, org: OrgId, id: ConfigId) -> Result<Option<Config>, StoreError>;

    /// Ordered by `created_at`, then id; `filter` restricts to one integration type.
    async fn list_configs(
        &self,
        org: OrgId,
        filter: Option<IntegrationType>,
    ) -> Result<Vec<Config>, StoreError>;

    /// Every org's configs, ordered as [`ConfigStore::list_configs`]: for the operator's
    /// commands, which name what a database holds when asked for a config it does not.
    async fn list_all_configs(&self) -> Result<Vec<Config>, StoreError>;

    async fn load_secrets(&self, org: OrgId, id: ConfigId) -> Result<Option<SecretValue>, StoreError>;

    /// Writes every field of `config` (found by org and id) and, when `secrets` is given, replaces
    /// the secrets. `false` when there is no such config. A new domain or type makes what the
    /// config's runs left another source's: its running run is cancelled ([`SOURCE_CHANGED`];
    /// its next write finds it taken over), its stopped runs are not gone on with, and its cursor
    /// and last full run are forgotten, so the next run lists the new source in full.
    ///
    /// [`SOURCE_CHANGED`]: crate::SOURCE_CHANGED
    async fn update_config(&self, config: &Config, secrets: Option<&SecretValue>)
    -> Result<bool, StoreError>;

    /// Sets only `state`: a credential check is not a user's modification, so `modified_at` stays.
    /// `false` when there is no such config.
    async fn set_state(&self, org: OrgId, id: ConfigId, state: ConfigState) -> Result<bool, StoreError>;

    /// Sets only `state`, as [`ConfigStore::set_state`] does, while the config still names the
    /// domain and type of `listed`: a run's verdict on the credentials is about the source it
    /// listed, not one the config was pointed at since. `false` otherwise.
    async fn set_state_for(&self, listed: &Config, state: ConfigState) -> Result<bool, StoreError>;

    /// Deletes the config with its secrets. `false` when there is no such config.
    async fn delete_config(&self, org: OrgId, id: ConfigId) -> Result<bool, StoreError>;

    /// The master-key rotation: re-encrypts under the current key every config's secrets that
    /// another known key sealed, one row per transaction, so an interrupted rotation loses
    /// nothing and a rerun carries on; then seals the database's key check with the current key,
    /// so that from then on a process with the old key alone is refused at start. Calls
    /// `progress(done, total)` after each config.
    async fn reencrypt_secrets(
        &self,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Reencrypted, StoreError>;
}

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reencrypted {
    /// Configs whose secrets it re-encrypted.
    pub rewritten: u64,
    /// Configs already under the current key (written since, or by an interrupted run).
    pub already: u64,
}

/// What a backend provides for a master-key rotation; the order of the work, which is what makes
/// it safe to interrupt, is [`reencrypt`]'s, the same for both.
#[async_trait::async_trait]
pub(crate) trait Reseal: Send + Sync {
    fn cipher(&self) -> &crate::Cipher;

    /// Every config with the stored nonce column of its secrets (which names the sealing key).
    async fn sealed_rows(&self) -> Result<Vec<(OrgId, ConfigId, Vec<u8>)>, StoreError>;

    /// Re-seals one config's secrets under the current key in a transaction of its own; `false`
    /// when the config is gone or a write sealed it with the current key since the listing.
    async fn reseal(&self, org: OrgId, id: ConfigId) -> Result<bool, StoreError>;

    /// Seals the database's key check with the current key.
    async fn reseal_key_check(&self) -> Result<(), StoreError>;
}

/// [`ConfigStore::reencrypt_secrets`]: row by row, then the key check, so a rotation stopped at
/// any point leaves every row under one known key and the old key still accepted at start.
pub(crate) async fn reencrypt(
    store: &impl Reseal,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Reencrypted, StoreError> {
    let rows = store.sealed_rows().await?;
    let total = rows.len() as u64;
    let mut done = Reencrypted::default();
    for (n, (org, id, nonce)) in rows.into_iter().enumerate() {
        if !store.cipher().sealed_with_current(&nonce) && store.reseal(org, id).await? {
            done.rewritten += 1;
        } else {
            done.already += 1;
        }
        progress(n as u64 + 1, total);
    }
    store.reseal_key_check().await?;
    Ok(done)
}
