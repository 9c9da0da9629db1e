use ctxsync_core::{Config, ConfigId, ConfigState, IntegrationType, OrgId, SecretValue};

use super::{SqliteStore, decode_id, encode_time};
use crate::configs::Reseal;
use crate::rows::{self, encode_settings};
use crate::{ConfigStore, Reencrypted, StoreError};

/// A row as stored, with ids and times as text.
pub(super) type ConfigRow = rows::ConfigRow<String, String>;

#[async_trait::async_trait]
impl ConfigStore for SqliteStore {
    async fn insert_config(&self, config: &Config, secrets: &SecretValue) -> Result<(), StoreError> {
        let sealed = self.cipher.seal_secrets(config.org_id, config.id, secrets);
        sqlx::query(
            "INSERT INTO integration_configs (id, org_id, integration_type, name, domain, enabled, state, \
             settings, created_at, modified_at, secrets_nonce, secrets_ciphertext) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(config.id.to_string())
        .bind(config.org_id.to_string())
        .bind(config.integration_type.as_str())
        .bind(&config.name)
        .bind(&config.domain)
        .bind(config.enabled)
        .bind(config.state.as_str())
        .bind(encode_settings(&config.settings))
        .bind(encode_time(config.created_at))
        .bind(encode_time(config.modified_at))
        .bind(sealed.nonce)
        .bind(sealed.ciphertext)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_config(&self, org: OrgId, id: ConfigId) -> Result<Option<Config>, StoreError> {
        sqlx::query_as::<_, ConfigRow>(
            "SELECT id, org_id, integration_type, name, domain, enabled, state, settings, created_at, \
             modified_at FROM integration_configs WHERE org_id = ? AND id = ?",
        )
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(Config::try_from)
        .transpose()
    }

    async fn list_configs(
        &self,
        org: OrgId,
        filter: Option<IntegrationType>,
    ) -> Result<Vec<Config>, StoreError> {
        sqlx::query_as::<_, ConfigRow>(
            "SELECT id, org_id, integration_type, name, domain, enabled, state, settings, created_at, \
             modified_at FROM integration_configs \
             WHERE org_id = ?1 AND (?2 IS NULL OR integration_type = ?2) \
             ORDER BY created_at, id",
        )
        .bind(org.to_string())
        .bind(filter.map(IntegrationType::as_str))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Config::try_from)
        .collect()
    }

    async fn list_all_configs(&self) -> Result<Vec<Config>, StoreError> {
        sqlx::query_as::<_, ConfigRow>(
            "SELECT id, org_id, integration_type, name, domain, enabled, state, settings, created_at, \
             modified_at FROM integration_configs ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Config::try_from)
        .collect()
    }

    async fn load_secrets(&self, org: OrgId, id: ConfigId) -> Result<Option<SecretValue>, StoreError> {
        let sealed: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT secrets_nonce, secrets_ciphertext FROM integration_configs WHERE org_id = ? AND id = ?",
        )
        .bind(org.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        sealed.map(|(nonce, ciphertext)| self.cipher.open_secrets(org, id, &nonce, &ciphertext)).transpose()
    }

    async fn update_config(
        &self,
        config: &Config,
        secrets: Option<&SecretValue>,
    ) -> Result<bool, StoreError> {
        let sealed = secrets.map(|s| self.cipher.seal_secrets(config.org_id, config.id, s));
        let (nonce, ciphertext) = sealed.map(|s| (s.nonce, s.ciphertext)).unzip();
        let done = sqlx::query(
            "UPDATE integration_configs SET integration_type = ?, name = ?, domain = ?, enabled = ?, \
             state = ?, settings = ?, created_at = ?, modified_at = ?, \
             secrets_nonce = COALESCE(?, secrets_nonce), \
             secrets_ciphertext = COALESCE(?, secrets_ciphertext) \
             WHERE org_id = ? AND id = ?",
        )
        .bind(config.integration_type.as_str())
        .bind(&config.name)
        .bind(&config.domain)
        .bind(config.enabled)
        .bind(config.state.as_str())
        .bind(encode_settings(&config.settings))
        .bind(encode_time(config.created_at))
        .bind(encode_time(config.modified_at))
        .bind(nonce)
        .bind(ciphertext)
        .bind(config.org_id.to_string())
        .bind(config.id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_state(&self, org: OrgId, id: ConfigId, state: ConfigState) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE integration_configs SET state = ? WHERE org_id = ? AND id = ?")
            .bind(state.as_str())
            .bind(org.to_string())
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_config(&self, org: OrgId, id: ConfigId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM integration_configs WHERE org_id = ? AND id = ?")
            .bind(org.to_string())
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn reencrypt_secrets(
        &self,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Reencrypted, StoreError> {
        crate::configs::reencrypt(self, progress).await
    }
}

#[async_trait::async_trait]
impl Reseal for SqliteStore {
    fn cipher(&self) -> &crate::Cipher {
        &self.cipher
    }

    async fn sealed_rows(&self) -> Result<Vec<(OrgId, ConfigId, Vec<u8>)>, StoreError> {
        let rows: Vec<(String, String, Vec<u8>)> =
            sqlx::query_as("SELECT org_id, id, secrets_nonce FROM integration_configs ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(|(org, id, nonce)| Ok((decode_id(&org)?, decode_id(&id)?, nonce))).collect()
    }

    async fn reseal(&self, org: OrgId, id: ConfigId) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let sealed: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT secrets_nonce, secrets_ciphertext FROM integration_configs WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let Some((nonce, ciphertext)) = sealed.filter(|(nonce, _)| !self.cipher.sealed_with_current(nonce))
        else {
            return Ok(false);
        };
        let resealed =
            self.cipher.seal_secrets(org, id, &self.cipher.open_secrets(org, id, &nonce, &ciphertext)?);
        sqlx::query("UPDATE integration_configs SET secrets_nonce = ?, secrets_ciphertext = ? WHERE id = ?")
            .bind(resealed.nonce)
            .bind(resealed.ciphertext)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn reseal_key_check(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE store_meta SET value = ? WHERE name = 'master_key_check'")
            .bind(self.cipher.seal_key_check())
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
