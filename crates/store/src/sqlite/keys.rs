use std::time::Duration;

use ctxsync_core::{OrgId, Scopes, now};
use sqlx::SqliteConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, decode_id, decode_time, encode_time};
use crate::keys::{
    KeyRow, check_given_key, check_org_name, expiry_after_rotation, generate_api_key, generate_app_key,
    hash_key, keys_query, scopes_from_json, scopes_to_json,
};
use crate::{
    Authenticated, IssuedKey, KeyFilter, KeyInfo, KeyKind, KeyPair, KeyStore, Principal, StoreError,
};

/// Keys matching `filter` and `id` (when given), read inside `conn`.
async fn find_keys(
    conn: &mut SqliteConnection,
    filter: KeyFilter,
    id: Option<Uuid>,
) -> Result<Vec<KeyInfo>, StoreError> {
    let condition = match (filter, id) {
        (KeyFilter::All, None) => "1 = 1",
        (KeyFilter::All, Some(_)) => "k.id = ?1",
        (KeyFilter::Org(_), None) => "k.org_id = ?1",
        (KeyFilter::Org(_), Some(_)) => "k.org_id = ?1 AND k.id = ?2",
    };
    let query = keys_query(condition, "NULL");
    let mut rows = sqlx::query_as::<_, KeyRow<String, String>>(&query);
    if let KeyFilter::Org(org) = filter {
        rows = rows.bind(org.to_string());
    }
    if let Some(id) = id {
        rows = rows.bind(id.to_string());
    }
    rows.fetch_all(conn).await?.into_iter().map(KeyInfo::try_from).collect()
}

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

    async fn org_name(&self, org: OrgId) -> Result<String, StoreError> {
        Ok(sqlx::query_scalar("SELECT name FROM orgs WHERE id = ?")
            .bind(org.to_string())
            .fetch_one(&self.pool)
            .await?)
    }

    async fn issue_key_pair(
        &self,
        org_name: &str,
        scopes: &Scopes,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<KeyPair, StoreError> {
        let (api_key, app_key) = (generate_api_key(), generate_app_key());
        let (api_key_id, app_key_id) = (Uuid::new_v4(), Uuid::new_v4());
        let created_at = encode_time(now());
        let expires = expires_at.map(encode_time);
        let mut tx = self.begin_write().await?;
        let org_id = ensure_org(&mut tx, org_name).await?;
        sqlx::query("INSERT INTO api_keys (hash, id, org_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(hash_key(&api_key))
            .bind(api_key_id.to_string())
            .bind(org_id.to_string())
            .bind(&created_at)
            .bind(&expires)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO app_keys (hash, id, org_id, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(hash_key(&app_key))
        .bind(app_key_id.to_string())
        .bind(org_id.to_string())
        .bind(scopes_to_json(scopes))
        .bind(&created_at)
        .bind(&expires)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(KeyPair {
            org_id,
            org_name: org_name.to_owned(),
            api_key,
            app_key,
            scopes: scopes.clone(),
            api_key_id,
            app_key_id,
            expires_at,
        })
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
            "INSERT INTO api_keys (hash, id, org_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash_key(api_key))
        .bind(Uuid::new_v4().to_string())
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
            "INSERT INTO app_keys (hash, id, org_id, scopes, created_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (hash) DO UPDATE SET scopes = excluded.scopes WHERE app_keys.org_id = excluded.org_id",
        )
        .bind(hash_key(app_key))
        .bind(Uuid::new_v4().to_string())
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

    async fn authenticate_keys(
        &self,
        api_key: &str,
        app_key: &str,
    ) -> Result<Option<Authenticated>, StoreError> {
        if api_key.is_empty() || app_key.is_empty() {
            return Ok(None);
        }
        type Found = (String, Option<String>, String, String, Option<String>, Option<String>);
        let found: Option<Found> = sqlx::query_as(
            "SELECT api.org_id, app.scopes, api.id, app.id, api.expires_at, app.expires_at FROM api_keys api \
             JOIN app_keys app ON app.org_id = api.org_id \
             WHERE api.hash = ?1 AND app.hash = ?2 AND api.revoked_at IS NULL AND app.revoked_at IS NULL \
             AND (api.expires_at IS NULL OR api.expires_at > ?3) AND (app.expires_at IS NULL OR app.expires_at > ?3)",
        )
        .bind(hash_key(api_key))
        .bind(hash_key(app_key))
        .bind(encode_time(now()))
        .fetch_optional(&self.pool)
        .await?;
        let Some((org, scopes, api_id, app_id, api_expiry, app_expiry)) = found else {
            return Ok(None);
        };
        let expiries = [api_expiry, app_expiry].into_iter().flatten().map(|t| decode_time(&t));
        Ok(Some(Authenticated {
            principal: Principal { org_id: decode_id(&org)?, scopes: scopes_from_json(scopes.as_deref())? },
            key_ids: [decode_id(&api_id)?, decode_id(&app_id)?],
            expires_at: expiries.collect::<Result<Vec<_>, _>>()?.into_iter().min(),
        }))
    }

    async fn list_keys(&self, filter: KeyFilter) -> Result<Vec<KeyInfo>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find_keys(&mut conn, filter, None).await
    }

    async fn revoke_key(&self, filter: KeyFilter, id: Uuid) -> Result<Option<KeyInfo>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(key) = find_keys(&mut tx, filter, Some(id)).await?.pop() else {
            return Ok(None);
        };
        let table = key.kind.table();
        sqlx::query(&format!("UPDATE {table} SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?"))
            .bind(encode_time(now()))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let revoked = find_keys(&mut tx, filter, Some(id)).await?.pop();
        tx.commit().await?;
        Ok(revoked)
    }

    async fn rotate_key(
        &self,
        filter: KeyFilter,
        id: Uuid,
        grace: Duration,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<Option<IssuedKey>, StoreError> {
        let now = now();
        let mut tx = self.begin_write().await?;
        let Some(old) = find_keys(&mut tx, filter, Some(id)).await?.pop() else {
            return Ok(None);
        };
        if old.status(now) != "active" {
            return Err(StoreError::Invalid(format!(
                "key {id} is {}; only an active key can be rotated",
                old.status(now)
            )));
        }
        let new_id = Uuid::new_v4();
        let key = match old.kind {
            KeyKind::Api => generate_api_key(),
            KeyKind::App => generate_app_key(),
        };
        let table = old.kind.table();
        let (scopes_column, scopes_value) = match old.kind {
            KeyKind::Api => ("", ""),
            KeyKind::App => (", scopes", ", ?"),
        };
        let sql = format!(
            "INSERT INTO {table} (hash, id, org_id, created_at, expires_at{scopes_column}) VALUES (?, ?, ?, ?, ?{scopes_value})"
        );
        let mut insert = sqlx::query(&sql)
            .bind(hash_key(&key))
            .bind(new_id.to_string())
            .bind(old.org_id.to_string())
            .bind(encode_time(now))
            .bind(expires_at.map(encode_time));
        if old.kind == KeyKind::App {
            insert = insert.bind(old.scopes.as_ref().and_then(scopes_to_json));
        }
        insert.execute(&mut *tx).await?;
        sqlx::query(&format!("UPDATE {table} SET expires_at = ? WHERE id = ?"))
            .bind(encode_time(expiry_after_rotation(old.expires_at, now, grace)))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let info = find_keys(&mut tx, filter, Some(new_id)).await?.pop();
        tx.commit().await?;
        Ok(info.map(|info| IssuedKey { info, key }))
    }

    async fn record_key_use(&self, ids: &[Uuid], at: OffsetDateTime) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for table in ["api_keys", "app_keys"] {
            for id in ids {
                sqlx::query(&format!(
                    "UPDATE {table} SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)"
                ))
                .bind(encode_time(at))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
