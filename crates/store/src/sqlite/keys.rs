use ctxsync_core::{OrgId, Scopes, now};
use sqlx::SqliteConnection;

use super::{SqliteStore, decode_id, encode_time};
use crate::keys::{
    check_given_key, check_org_name, generate_api_key, generate_app_key, hash_key, scopes_from_json,
    scopes_to_json,
};
use crate::{KeyPair, KeyStore, Principal, StoreError};

/// Insert-then-read, so concurrent callers agree on one org. Inside a transaction the insert comes
/// first, taking the write lock before any read (a read first could not upgrade under WAL).
async fn ensure_org(conn: &mut SqliteConnection, name: &str) -> Result<OrgId, StoreError> {
    check_org_name(name)?;
    sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING")
        .bind(OrgId::new().to_string())
        .bind(name)
        .bind(encode_time(now()))
        .execute(&mut *conn)
        .await?;
    let id: String =
        sqlx::query_scalar("SELECT id FROM orgs WHERE name = ?").bind(name).fetch_one(conn).await?;
    decode_id(&id)
}

#[async_trait::async_trait]
impl KeyStore for SqliteStore {
    async fn ensure_org(&self, name: &str) -> Result<OrgId, StoreError> {
        let mut conn = self.writer.acquire().await?;
        ensure_org(&mut conn, name).await
    }

    async fn create_key_pair(&self, org_name: &str, scopes: &Scopes) -> Result<KeyPair, StoreError> {
        let (api_key, app_key) = (generate_api_key(), generate_app_key());
        let created_at = encode_time(now());
        let mut tx = self.begin_write().await?;
        let org_id = ensure_org(&mut tx, org_name).await?;
        sqlx::query("INSERT INTO api_keys (hash, org_id, created_at) VALUES (?, ?, ?)")
            .bind(hash_key(&api_key))
            .bind(org_id.to_string())
            .bind(&created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO app_keys (hash, org_id, scopes, created_at) VALUES (?, ?, ?, ?)")
            .bind(hash_key(&app_key))
            .bind(org_id.to_string())
            .bind(scopes_to_json(scopes))
            .bind(&created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(KeyPair { org_id, org_name: org_name.to_owned(), api_key, app_key, scopes: scopes.clone() })
    }

    async fn ensure_key_pair(
        &self,
        org_name: &str,
        api_key: &str,
        app_key: &str,
        scopes: &Scopes,
    ) -> Result<(), StoreError> {
        check_given_key("API key", api_key)?;
        check_given_key("application key", app_key)?;
        let created_at = encode_time(now());
        let mut tx = self.begin_write().await?;
        let org_id = ensure_org(&mut tx, org_name).await?;

        sqlx::query(
            "INSERT INTO api_keys (hash, org_id, created_at) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash_key(api_key))
        .bind(org_id.to_string())
        .bind(&created_at)
        .execute(&mut *tx)
        .await?;
        let owner: String = sqlx::query_scalar("SELECT org_id FROM api_keys WHERE hash = ?")
            .bind(hash_key(api_key))
            .fetch_one(&mut *tx)
            .await?;
        if owner != org_id.to_string() {
            return Err(StoreError::KeyInOtherOrg { kind: "API key", org: org_name.to_owned() });
        }

        sqlx::query(
            "INSERT INTO app_keys (hash, org_id, scopes, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (hash) DO UPDATE SET scopes = excluded.scopes WHERE app_keys.org_id = excluded.org_id",
        )
        .bind(hash_key(app_key))
        .bind(org_id.to_string())
        .bind(scopes_to_json(scopes))
        .bind(&created_at)
        .execute(&mut *tx)
        .await?;
        let owner: String = sqlx::query_scalar("SELECT org_id FROM app_keys WHERE hash = ?")
            .bind(hash_key(app_key))
            .fetch_one(&mut *tx)
            .await?;
        if owner != org_id.to_string() {
            return Err(StoreError::KeyInOtherOrg { kind: "application key", org: org_name.to_owned() });
        }

        tx.commit().await?;
        Ok(())
    }

    async fn authenticate(&self, api_key: &str, app_key: &str) -> Result<Option<Principal>, StoreError> {
        if api_key.is_empty() || app_key.is_empty() {
            return Ok(None);
        }
        let found: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT api.org_id, app.scopes FROM api_keys api \
             JOIN app_keys app ON app.org_id = api.org_id \
             WHERE api.hash = ? AND app.hash = ?",
        )
        .bind(hash_key(api_key))
        .bind(hash_key(app_key))
        .fetch_optional(&self.pool)
        .await?;
        found
            .map(|(org, scopes)| {
                Ok(Principal { org_id: decode_id(&org)?, scopes: scopes_from_json(scopes.as_deref())? })
            })
            .transpose()
    }
}
