use ctxsync_core::{OrgId, Scopes, now};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::PostgresStore;
use crate::keys::{
    check_given_key, check_org_name, generate_api_key, generate_app_key, hash_key, scopes_from_json,
    scopes_to_json,
};
use crate::{KeyPair, KeyStore, Principal, StoreError};

/// One statement that inserts the org or, when it exists, returns the existing row (the no-op
/// update makes `RETURNING` see it): concurrent callers agree on one org without a second read.
async fn ensure_org(conn: &mut PgConnection, name: &str) -> Result<OrgId, StoreError> {
    check_org_name(name)?;
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
    )
    .bind(OrgId::new().0)
    .bind(name)
    .bind(now())
    .fetch_one(conn)
    .await?;
    Ok(OrgId(id))
}

/// Adds the key pair's hashes to `org`, returning the org each hash belongs to afterwards: `org`
/// unless the hash was already registered to another. An existing application key of `org` gets
/// `scopes`; one of another org keeps its own.
async fn insert_keys(
    conn: &mut PgConnection,
    org: OrgId,
    api_key: &str,
    app_key: &str,
    scopes: &Scopes,
    created_at: OffsetDateTime,
) -> Result<(OrgId, OrgId), StoreError> {
    let api_owner: Uuid = sqlx::query_scalar(
        "INSERT INTO api_keys (hash, org_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (hash) DO UPDATE SET org_id = api_keys.org_id RETURNING org_id",
    )
    .bind(hash_key(api_key))
    .bind(org.0)
    .bind(created_at)
    .fetch_one(&mut *conn)
    .await?;
    let app_owner: Uuid = sqlx::query_scalar(
        "INSERT INTO app_keys (hash, org_id, scopes, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (hash) DO UPDATE SET scopes = CASE WHEN app_keys.org_id = EXCLUDED.org_id \
           THEN EXCLUDED.scopes ELSE app_keys.scopes END RETURNING org_id",
    )
    .bind(hash_key(app_key))
    .bind(org.0)
    .bind(scopes_to_json(scopes))
    .bind(created_at)
    .fetch_one(conn)
    .await?;
    Ok((OrgId(api_owner), OrgId(app_owner)))
}

#[async_trait::async_trait]
impl KeyStore for PostgresStore {
    async fn ensure_org(&self, name: &str) -> Result<OrgId, StoreError> {
        let mut conn = self.pool.acquire().await?;
        ensure_org(&mut conn, name).await
    }

    async fn create_key_pair(&self, org_name: &str, scopes: &Scopes) -> Result<KeyPair, StoreError> {
        let (api_key, app_key) = (generate_api_key(), generate_app_key());
        let mut tx = self.pool.begin().await?;
        let org_id = ensure_org(&mut tx, org_name).await?;
        // Fresh random keys: a collision with a stored hash would be a broken random source.
        let owners = insert_keys(&mut tx, org_id, &api_key, &app_key, scopes, now()).await?;
        if owners != (org_id, org_id) {
            return Err(StoreError::Invalid("a generated key collided with a stored one; retry".into()));
        }
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
        let mut tx = self.pool.begin().await?;
        let org_id = ensure_org(&mut tx, org_name).await?;
        let (api_owner, app_owner) = insert_keys(&mut tx, org_id, api_key, app_key, scopes, now()).await?;
        if api_owner != org_id {
            return Err(StoreError::KeyInOtherOrg { kind: "API key", org: org_name.to_owned() });
        }
        if app_owner != org_id {
            return Err(StoreError::KeyInOtherOrg { kind: "application key", org: org_name.to_owned() });
        }
        tx.commit().await?;
        Ok(())
    }

    async fn authenticate(&self, api_key: &str, app_key: &str) -> Result<Option<Principal>, StoreError> {
        if api_key.is_empty() || app_key.is_empty() {
            return Ok(None);
        }
        let found: Option<(Uuid, Option<String>)> = sqlx::query_as(
            "SELECT api.org_id, app.scopes FROM api_keys api \
             JOIN app_keys app ON app.org_id = api.org_id \
             WHERE api.hash = $1 AND app.hash = $2",
        )
        .bind(hash_key(api_key))
        .bind(hash_key(app_key))
        .fetch_optional(&self.pool)
        .await?;
        found
            .map(|(org, scopes)| {
                Ok(Principal { org_id: OrgId(org), scopes: scopes_from_json(scopes.as_deref())? })
            })
            .transpose()
    }
}
