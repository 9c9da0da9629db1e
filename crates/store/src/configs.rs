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
    /// the secrets. `false` when there is no such config.
    async fn update_config(&self, config: &Config, secrets: Option<&SecretValue>)
    -> Result<bool, StoreError>;

    /// Sets only `state`: a credential check is not a user's modification, so `modified_at` stays.
    /// `false` when there is no such config.
    async fn set_state(&self, org: OrgId, id: ConfigId, state: ConfigState) -> Result<bool, StoreError>;

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
