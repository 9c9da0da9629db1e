use std::time::Duration;

use ctxsync_core::{OrgId, Scopes, now};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Backend, Conn, Store};
use crate::keys::{
    check_given_key, check_org_name, expiry_after_rotation, generate_api_key, generate_app_key, hash_key,
    keys_query, scopes_from_json, scopes_to_json,
};
use crate::rows::KeyRow;
use crate::values::{DbId, DbIds, DbTime};
use crate::{
    Authenticated, IssuedKey, KeyFilter, KeyInfo, KeyKind, KeyPair, KeyStore, Principal, StoreError,
};

/// Keys matching `filter` and `id` (when given), read inside `conn`.
async fn find_keys(conn: &mut Conn, filter: KeyFilter, id: Option<Uuid>) -> Result<Vec<KeyInfo>, StoreError> {
    let condition = match (filter, id) {
        (KeyFilter::All, None) => "1 = 1",
        (KeyFilter::All, Some(_)) => "k.id = $1",
        (KeyFilter::Org(_), None) => "k.org_id = $1",
        (KeyFilter::Org(_), Some(_)) => "k.org_id = $1 AND k.id = $2",
    };
    let query = keys_query(condition);
    let mut rows = sqlx::query_as::<_, KeyRow>(&query);
    if let KeyFilter::Org(org) = filter {
        rows = rows.bind(DbId(org.0));
    }
    if let Some(id) = id {
        rows = rows.bind(DbId(id));
    }
    rows.fetch_all(conn).await?.into_iter().map(KeyInfo::try_from).collect()
}

/// One statement that inserts the org or, when it exists, returns the existing row (the no-op
/// update makes `RETURNING` see it): concurrent callers agree on one org without a second read,
/// and inside a transaction the first statement writes, so SQLite takes its write lock at once.
async fn ensure_org(conn: &mut Conn, name: &str) -> Result<OrgId, StoreError> {
    check_org_name(name)?;
    let id: DbId = sqlx::query_scalar(
        "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
    )
    .bind(DbId(OrgId::new().0))
    .bind(name)
    .bind(DbTime(now()))
    .fetch_one(conn)
    .await?;
    Ok(OrgId(id.0))
}

/// Adds the key pair's hashes to `org`, returning the org and id each hash has afterwards: `org`
/// unless the hash was already registered to another. An existing application key of `org` gets
/// `scopes`; one of another org keeps its own. New keys expire at `expires_at`, if given.
async fn insert_keys(
    conn: &mut Conn,
    org: OrgId,
    (api_key, app_key): (&str, &str),
    scopes: &Scopes,
    created_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
) -> Result<((OrgId, Uuid), (OrgId, Uuid)), StoreError> {
    let (api_owner, api_id): (DbId, DbId) = sqlx::query_as(
        "INSERT INTO api_keys (hash, id, org_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (hash) DO UPDATE SET org_id = api_keys.org_id RETURNING org_id, id",
    )
    .bind(hash_key(api_key))
    .bind(DbId(Uuid::new_v4()))
    .bind(DbId(org.0))
    .bind(DbTime(created_at))
    .bind(expires_at.map(DbTime))
    .fetch_one(&mut *conn)
    .await?;
    let (app_owner, app_id): (DbId, DbId) = sqlx::query_as(
        "INSERT INTO app_keys (hash, id, org_id, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (hash) DO UPDATE SET scopes = CASE WHEN app_keys.org_id = EXCLUDED.org_id \
           THEN EXCLUDED.scopes ELSE app_keys.scopes END RETURNING org_id, id",
    )
    .bind(hash_key(app_key))
    .bind(DbId(Uuid::new_v4()))
    .bind(DbId(org.0))
    .bind(scopes_to_json(scopes))
    .bind(DbTime(created_at))
    .bind(expires_at.map(DbTime))
    .fetch_one(conn)
    .await?;
    Ok(((OrgId(api_owner.0), api_id.0), (OrgId(app_owner.0), app_id.0)))
}

#[async_trait::async_trait]
impl KeyStore for Store {
    async fn ensure_org(&self, name: &str) -> Result<OrgId, StoreError> {
        let mut conn = self.writer().acquire().await?;
        ensure_org(&mut conn, name).await
    }

    async fn org_name(&self, org: OrgId) -> Result<String, StoreError> {
        Ok(sqlx::query_scalar("SELECT name FROM orgs WHERE id = $1")
            .bind(DbId(org.0))
            .fetch_one(self.reader())
            .await?)
    }

    async fn issue_key_pair(
        &self,
        org_name: &str,
        scopes: &Scopes,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<KeyPair, StoreError> {
        let (api_key, app_key) = (generate_api_key(), generate_app_key());
        let mut tx = self.begin_write().await?;
        let org_id = ensure_org(&mut tx, org_name).await?;
        let ((api_owner, api_key_id), (app_owner, app_key_id)) =
            insert_keys(&mut tx, org_id, (&api_key, &app_key), scopes, now(), expires_at).await?;
        // Fresh random keys: a collision with a stored hash would be a broken random source.
        if (api_owner, app_owner) != (org_id, org_id) {
            return Err(StoreError::Invalid("a generated key collided with a stored one; retry".into()));
        }
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
        let mut tx = self.begin_write().await?;
        let org_id = ensure_org(&mut tx, org_name).await?;
        let ((api_owner, _), (app_owner, _)) =
            insert_keys(&mut tx, org_id, (api_key, app_key), scopes, now(), None).await?;
        if api_owner != org_id {
            return Err(StoreError::KeyInOtherOrg { kind: "API key", org: org_name.to_owned() });
        }
        if app_owner != org_id {
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
        type Found = (DbId, Option<String>, DbId, DbId, Option<DbTime>, Option<DbTime>);
        let found: Option<Found> = sqlx::query_as(
            "SELECT api.org_id, app.scopes, api.id, app.id, api.expires_at, app.expires_at FROM api_keys api \
             JOIN app_keys app ON app.org_id = api.org_id \
             WHERE api.hash = $1 AND app.hash = $2 AND api.revoked_at IS NULL AND app.revoked_at IS NULL \
             AND (api.expires_at IS NULL OR api.expires_at > $3) AND (app.expires_at IS NULL OR app.expires_at > $3)",
        )
        .bind(hash_key(api_key))
        .bind(hash_key(app_key))
        .bind(DbTime(now()))
        .fetch_optional(self.reader())
        .await?;
        let Some((org, scopes, api_id, app_id, api_expiry, app_expiry)) = found else {
            return Ok(None);
        };
        Ok(Some(Authenticated {
            principal: Principal { org_id: OrgId(org.0), scopes: scopes_from_json(scopes.as_deref())? },
            key_ids: [api_id.0, app_id.0],
            expires_at: [api_expiry, app_expiry].into_iter().flatten().map(|t| t.0).min(),
        }))
    }

    async fn list_keys(&self, filter: KeyFilter) -> Result<Vec<KeyInfo>, StoreError> {
        let mut conn = self.reader().acquire().await?;
        find_keys(&mut conn, filter, None).await
    }

    async fn revoke_key(&self, filter: KeyFilter, id: Uuid) -> Result<Option<KeyInfo>, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(key) = find_keys(&mut tx, filter, Some(id)).await?.pop() else {
            return Ok(None);
        };
        let table = key.kind.table();
        sqlx::query(&format!("UPDATE {table} SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2"))
            .bind(DbTime(now()))
            .bind(DbId(id))
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
        // Locks the old key's row, so two rotations of one key do not both go through.
        sqlx::query(&format!("UPDATE {table} SET expires_at = $1 WHERE id = $2"))
            .bind(DbTime(expiry_after_rotation(old.expires_at, now, grace)))
            .bind(DbId(id))
            .execute(&mut *tx)
            .await?;
        let (scopes_column, scopes_value) = match old.kind {
            KeyKind::Api => ("", ""),
            KeyKind::App => (", scopes", ", $6"),
        };
        let sql = format!(
            "INSERT INTO {table} (hash, id, org_id, created_at, expires_at{scopes_column}) VALUES ($1, $2, $3, $4, $5{scopes_value})"
        );
        let mut insert = sqlx::query(&sql)
            .bind(hash_key(&key))
            .bind(DbId(new_id))
            .bind(DbId(old.org_id.0))
            .bind(DbTime(now))
            .bind(expires_at.map(DbTime));
        if old.kind == KeyKind::App {
            insert = insert.bind(old.scopes.as_ref().and_then(scopes_to_json));
        }
        insert.execute(&mut *tx).await?;
        let info = find_keys(&mut tx, filter, Some(new_id)).await?.pop();
        tx.commit().await?;
        Ok(info.map(|info| IssuedKey { info, key }))
    }

    async fn record_key_use(&self, ids: &[Uuid], at: OffsetDateTime) -> Result<(), StoreError> {
        let listed = Self::any_id("id", "$2");
        for table in ["api_keys", "app_keys"] {
            sqlx::query(&format!(
                "UPDATE {table} SET last_used_at = $1 WHERE {listed} AND (last_used_at IS NULL OR last_used_at < $1)"
            ))
            .bind(DbTime(at))
            .bind(DbIds(ids))
            .execute(self.writer())
            .await?;
        }
        Ok(())
    }
}
