use ctxsync_core::{Config, ConfigId, ConfigState, IntegrationType, OrgId, SecretValue};

use super::{Backend, Conn, Store, for_update};
use crate::configs::Reseal;
use crate::rows::{ConfigRow, encode_settings};
use crate::values::{DbId, DbTime};
use crate::{ConfigStore, Reencrypted, SOURCE_CHANGED, StoreError};

/// The columns of [`ConfigRow`].
pub(super) const CONFIG_COLUMNS: &str =
    "id, org_id, integration_type, name, domain, enabled, state, settings, created_at, modified_at";

type Query<'q> = sqlx::query::Query<'q, super::Db, <super::Db as sqlx::Database>::Arguments<'q>>;

/// Binds `config` as `$1` to `$10`, in the order of [`CONFIG_COLUMNS`].
fn bind_config<'q>(query: Query<'q>, config: &'q Config) -> Query<'q> {
    query
        .bind(DbId(config.id.0))
        .bind(DbId(config.org_id.0))
        .bind(config.integration_type.as_str())
        .bind(&config.name)
        .bind(&config.domain)
        .bind(config.enabled)
        .bind(config.state.as_str())
        .bind(encode_settings(&config.settings))
        .bind(DbTime(config.created_at))
        .bind(DbTime(config.modified_at))
}

#[async_trait::async_trait]
impl ConfigStore for Store {
    async fn insert_config(&self, config: &Config, secrets: &SecretValue) -> Result<(), StoreError> {
        let sealed = self.cipher.seal_secrets(config.org_id, config.id, secrets);
        let sql = format!(
            "INSERT INTO integration_configs ({CONFIG_COLUMNS}, secrets_nonce, secrets_ciphertext) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        bind_config(sqlx::query(&sql), config)
            .bind(sealed.nonce)
            .bind(sealed.ciphertext)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn get_config(&self, org: OrgId, id: ConfigId) -> Result<Option<Config>, StoreError> {
        let row: Option<ConfigRow> = sqlx::query_as(&format!(
            "SELECT {CONFIG_COLUMNS} FROM integration_configs WHERE org_id = $1 AND id = $2"
        ))
        .bind(DbId(org.0))
        .bind(DbId(id.0))
        .fetch_optional(self.reader())
        .await?;
        row.map(Config::try_from).transpose()
    }

    async fn list_configs(
        &self,
        org: OrgId,
        filter: Option<IntegrationType>,
    ) -> Result<Vec<Config>, StoreError> {
        let rows: Vec<ConfigRow> = sqlx::query_as(&format!(
            "SELECT {CONFIG_COLUMNS} FROM integration_configs \
             WHERE org_id = $1 AND (CAST($2 AS TEXT) IS NULL OR integration_type = $2) ORDER BY created_at, id"
        ))
        .bind(DbId(org.0))
        .bind(filter.map(IntegrationType::as_str))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(Config::try_from).collect()
    }

    async fn list_all_configs(&self) -> Result<Vec<Config>, StoreError> {
        let rows: Vec<ConfigRow> = sqlx::query_as(&format!(
            "SELECT {CONFIG_COLUMNS} FROM integration_configs ORDER BY created_at, id"
        ))
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(Config::try_from).collect()
    }

    async fn load_secrets(&self, org: OrgId, id: ConfigId) -> Result<Option<SecretValue>, StoreError> {
        let sealed: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT secrets_nonce, secrets_ciphertext FROM integration_configs WHERE org_id = $1 AND id = $2",
        )
        .bind(DbId(org.0))
        .bind(DbId(id.0))
        .fetch_optional(self.reader())
        .await?;
        sealed.map(|(nonce, ciphertext)| self.cipher.open_secrets(org, id, &nonce, &ciphertext)).transpose()
    }

    async fn update_config(
        &self,
        config: &Config,
        secrets: Option<&SecretValue>,
    ) -> Result<bool, StoreError> {
        let sealed = secrets.map(|s| self.cipher.seal_secrets(config.org_id, config.id, s));
        let mut tx = self.begin_write().await?;
        // The config's row first, as a run's writes and a deletion take it, so that none of them
        // deadlocks with this on what hangs off it.
        let stored: Option<(String, String)> = sqlx::query_as(&format!(
            "SELECT domain, integration_type FROM integration_configs WHERE id = $1 AND org_id = $2{}",
            for_update(None)
        ))
        .bind(DbId(config.id.0))
        .bind(DbId(config.org_id.0))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((domain, integration_type)) = stored else { return Ok(false) };
        if domain != config.domain || integration_type != config.integration_type.as_str() {
            Self::forget_source(&mut tx, config.id).await?;
        }
        let update = sqlx::query(
            "UPDATE integration_configs SET integration_type = $3, name = $4, domain = $5, enabled = $6, \
             state = $7, settings = $8, created_at = $9, modified_at = $10, \
             secrets_nonce = COALESCE($11, secrets_nonce), secrets_ciphertext = COALESCE($12, secrets_ciphertext) \
             WHERE id = $1 AND org_id = $2",
        );
        let done = bind_config(update, config)
            .bind(sealed.as_ref().map(|s| s.nonce.as_slice()))
            .bind(sealed.as_ref().map(|s| s.ciphertext.as_slice()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_state(&self, org: OrgId, id: ConfigId, state: ConfigState) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE integration_configs SET state = $3 WHERE org_id = $1 AND id = $2")
            .bind(DbId(org.0))
            .bind(DbId(id.0))
            .bind(state.as_str())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_state_for(&self, listed: &Config, state: ConfigState) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE integration_configs SET state = $3 \
             WHERE org_id = $1 AND id = $2 AND domain = $4 AND integration_type = $5",
        )
        .bind(DbId(listed.org_id.0))
        .bind(DbId(listed.id.0))
        .bind(state.as_str())
        .bind(&listed.domain)
        .bind(listed.integration_type.as_str())
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_config(&self, org: OrgId, id: ConfigId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM integration_configs WHERE org_id = $1 AND id = $2")
            .bind(DbId(org.0))
            .bind(DbId(id.0))
            .execute(self.writer())
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

impl Store {
    /// What the config's runs left is another source's: its running run is cancelled (its next
    /// write finds it taken over), no stopped run is gone on with, and the next run lists
    /// everything without the old cursor.
    async fn forget_source(conn: &mut Conn, config: ConfigId) -> Result<(), StoreError> {
        let cancelled: Vec<(DbId,)> = sqlx::query_as(
            "UPDATE sync_runs SET status = 'cancelled', finished_at = $2, error = $3, checkpoint = NULL \
             WHERE config_id = $1 AND status = 'running' RETURNING id",
        )
        .bind(DbId(config.0))
        .bind(DbTime(ctxsync_core::now()))
        .bind(SOURCE_CHANGED)
        .fetch_all(&mut *conn)
        .await?;
        let stopped: Vec<(DbId,)> = sqlx::query_as(
            "UPDATE sync_runs SET checkpoint = NULL WHERE config_id = $1 AND checkpoint IS NOT NULL RETURNING id",
        )
        .bind(DbId(config.0))
        .fetch_all(&mut *conn)
        .await?;
        let runs: Vec<uuid::Uuid> = cancelled.into_iter().chain(stopped).map(|(id,)| id.0).collect();
        Self::clear_run_scratch(conn, &runs).await?;
        sqlx::query("UPDATE sync_state SET cursor = NULL, last_full_at = NULL WHERE config_id = $1")
            .bind(DbId(config.0))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Reseal for Store {
    fn cipher(&self) -> &crate::Cipher {
        &self.cipher
    }

    async fn sealed_rows(&self) -> Result<Vec<(OrgId, ConfigId, Vec<u8>)>, StoreError> {
        let rows: Vec<(DbId, DbId, Vec<u8>)> =
            sqlx::query_as("SELECT org_id, id, secrets_nonce FROM integration_configs ORDER BY id")
                .fetch_all(self.reader())
                .await?;
        Ok(rows.into_iter().map(|(org, id, nonce)| (OrgId(org.0), ConfigId(id.0), nonce)).collect())
    }

    async fn reseal(&self, org: OrgId, id: ConfigId) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // The row lock keeps a replica's concurrent update from being overwritten.
        let sealed: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(&format!(
            "SELECT secrets_nonce, secrets_ciphertext FROM integration_configs WHERE id = $1{}",
            for_update(None)
        ))
        .bind(DbId(id.0))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((nonce, ciphertext)) = sealed.filter(|(nonce, _)| !self.cipher.sealed_with_current(nonce))
        else {
            return Ok(false);
        };
        let resealed =
            self.cipher.seal_secrets(org, id, &self.cipher.open_secrets(org, id, &nonce, &ciphertext)?);
        sqlx::query(
            "UPDATE integration_configs SET secrets_nonce = $1, secrets_ciphertext = $2 WHERE id = $3",
        )
        .bind(resealed.nonce)
        .bind(resealed.ciphertext)
        .bind(DbId(id.0))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn reseal_key_check(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE store_meta SET value = $1 WHERE name = 'master_key_check'")
            .bind(self.cipher.seal_key_check())
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
