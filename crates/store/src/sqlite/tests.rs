//! What only the SQLite backend does; the behaviour both backends share is tested in
//! `crate::tests`.

use std::str::FromStr;
use std::sync::Arc;

use ctxsync_core::{ConfigId, OrgId, Scopes, UserStatus};
use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;
use uuid::Uuid;

use super::SqliteStore;
use crate::tests::key;
use crate::tests::sync::user;
use crate::{ConfigStore, EntityQuery, EntityStore, KeyFilter, KeyStore, Store, StoreError};

#[tokio::test]
async fn connect_creates_the_directory_and_answers_ping() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data").join("ctxsync.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", file.display()), key(1)).await.unwrap();
    store.ping().await.unwrap();
    assert!(file.exists());

    let shared: Arc<dyn Store> = Arc::new(store);
    shared.ping().await.unwrap();
    assert!(shared.list_configs(OrgId::new(), None).await.unwrap().is_empty());
}

/// A database written before identifiers were keyed by entity keeps answering to them after the
/// upgrade, and they still go with their entity.
#[tokio::test]
async fn identifiers_survive_the_upgrade_to_entity_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let (org, config) = (Uuid::new_v4(), Uuid::new_v4());
    let old = SqlitePool::connect_with(SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true))
        .await
        .unwrap();
    let mut before = sqlx::migrate!("./migrations/sqlite");
    before.migrations =
        before.migrations.iter().filter(|m| m.version < 6).cloned().collect::<Vec<_>>().into();
    before.run(&old).await.unwrap();
    let t = "2026-01-01T00:00:00.000000Z";
    sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES (?, 'acme', ?)")
        .bind(org.to_string())
        .bind(t)
        .execute(&old)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO integration_configs VALUES (?, ?, 'okta', 'okta', 'acme.okta.com', 1, 'valid', '{}', ?, ?, x'00', x'00')",
    )
    .bind(config.to_string())
    .bind(org.to_string())
    .bind(t)
    .bind(t)
    .execute(&old)
    .await
    .unwrap();
    let data = serde_json::to_string(&user("u1", "ada@x.com", UserStatus::Active).entity).unwrap();
    sqlx::query(
        "INSERT INTO entities (config_id, kind, source_id, org_id, status, login, data, raw, digest, first_seen_at, updated_at) \
         VALUES ($1, 'user', 'u1', $2, 'active', 'ada@x.com', $3, '{}', x'00', $4, $4)",
    )
    .bind(config.to_string())
    .bind(org.to_string())
    .bind(&data)
    .bind(t)
    .execute(&old)
    .await
    .unwrap();
    for identifier in ["ada@x.com", "u1"] {
        sqlx::query("INSERT INTO entity_identifiers VALUES ($1, $2, $3, 'user', 'u1')")
            .bind(org.to_string())
            .bind(identifier)
            .bind(config.to_string())
            .execute(&old)
            .await
            .unwrap();
    }
    old.close().await;

    let store = SqliteStore::connect(&url, key(1)).await.unwrap();
    let found = store.lookup_entities(OrgId(org), &["ADA@x.com".into(), "u1".into()]).await.unwrap();
    let ids: Vec<(&str, &str)> = found.iter().map(|(i, e)| (i.as_str(), e.entity.source_id())).collect();
    assert_eq!(ids, [("ada@x.com", "u1"), ("u1", "u1")]);
    let q = EntityQuery { identifier: Some("ada@x.com".into()), limit: 10, ..EntityQuery::default() };
    assert_eq!(store.list_entities(OrgId(org), &q).await.unwrap().len(), 1);
    store.delete_config(OrgId(org), ConfigId(config)).await.unwrap();
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM entity_identifiers").fetch_one(&store.pool).await.unwrap();
    assert_eq!(left, 0, "deleting the config deleted its entities' identifiers");
}

/// A time in a form this version never writes is unreadable data, not a database failure.
#[tokio::test]
async fn unreadable_times_are_corrupt_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ctxsync.db").display());
    let store = SqliteStore::connect(&url, key(1)).await.unwrap();
    store.create_key_pair("default", &Scopes::All).await.unwrap();
    sqlx::query("UPDATE api_keys SET created_at = '2026-01-01 00:00:00'")
        .execute(&store.writer)
        .await
        .unwrap();
    let err = store.list_keys(KeyFilter::All).await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("2026-01-01 00:00:00")), "{err}");
}
