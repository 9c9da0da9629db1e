//! Scenarios against a fresh database file per test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ctxsync_core::{
    Config, ConfigId, ConfigState, IntegrationType, OrgId, Scope, Scopes, SecretValue, Settings, now,
};
use serde_json::json;
use tempfile::TempDir;
use time::macros::datetime;

use super::SqliteStore;
use crate::{ConfigStore, KeyStore, MasterKey, Store, StoreError};

struct TestDb {
    dir: TempDir,
    store: SqliteStore,
}

impl TestDb {
    async fn new() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::connect(&url(dir.path()), key(1)).await.unwrap();
        TestDb { dir, store }
    }

    /// The database and its write-ahead log, where fresh writes sit until a checkpoint.
    fn raw_bytes(&self) -> Vec<u8> {
        let db = db_path(self.dir.path());
        let mut bytes = std::fs::read(&db).unwrap();
        if let Ok(wal) = std::fs::read(PathBuf::from(format!("{}-wal", db.display()))) {
            bytes.extend(wal);
        }
        bytes
    }

    async fn org(&self, name: &str) -> OrgId {
        self.store.ensure_org(name).await.unwrap()
    }
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join("data").join("ctxsync.db")
}

fn url(dir: &Path) -> String {
    format!("sqlite://{}", db_path(dir).display())
}

fn key(byte: u8) -> MasterKey {
    use base64::Engine;
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32])).unwrap()
}

fn config(org: OrgId, integration_type: IntegrationType, created_at: time::OffsetDateTime) -> Config {
    let mut settings = Settings::new();
    settings.insert("sync_interval".into(), json!("2h"));
    settings.insert("nested".into(), json!({"list": [1, 2.5, "three", null, true]}));
    Config {
        id: ConfigId::new(),
        org_id: org,
        integration_type,
        name: "Acme Okta".into(),
        domain: "acme.okta.com".into(),
        enabled: true,
        state: ConfigState::Valid,
        settings,
        created_at,
        modified_at: created_at,
    }
}

fn secrets(token: &str) -> SecretValue {
    SecretValue::new(json!({"api_token": token, "extra": {"kept": [1, 2]}}))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn config_round_trips_with_settings_and_timestamps() {
    let db = TestDb::new().await;
    let org = db.org("default").await;
    let mut c = config(org, IntegrationType::Okta, now());
    c.modified_at = datetime!(2026-01-31 09:15:00.123456 +02:00);
    db.store.insert_config(&c, &secrets("t0")).await.unwrap();

    let read = db.store.get_config(org, c.id).await.unwrap().unwrap();
    assert_eq!(read, c);
    assert_eq!(read.created_at, c.created_at);
    assert_eq!(read.modified_at, datetime!(2026-01-31 07:15:00.123456 UTC));
    assert_eq!(db.store.load_secrets(org, c.id).await.unwrap(), Some(secrets("t0")));
    assert_eq!(db.store.get_config(org, ConfigId::new()).await.unwrap(), None);
    assert_eq!(db.store.load_secrets(org, ConfigId::new()).await.unwrap(), None);
}

#[tokio::test]
async fn update_writes_every_field_and_replaces_secrets_only_when_given() {
    let db = TestDb::new().await;
    let org = db.org("default").await;
    let mut c = config(org, IntegrationType::Okta, now());
    db.store.insert_config(&c, &secrets("first")).await.unwrap();

    c.integration_type = IntegrationType::EntraId;
    c.name = "Contoso".into();
    c.domain = "contoso.com".into();
    c.enabled = false;
    c.state = ConfigState::Initializing;
    c.settings = Settings::from_iter([("tenant_id".to_owned(), json!("t-1"))]);
    c.modified_at = now();
    assert!(db.store.update_config(&c, None).await.unwrap());
    assert_eq!(db.store.get_config(org, c.id).await.unwrap().unwrap(), c);
    assert_eq!(db.store.load_secrets(org, c.id).await.unwrap(), Some(secrets("first")));

    assert!(db.store.update_config(&c, Some(&secrets("second"))).await.unwrap());
    assert_eq!(db.store.load_secrets(org, c.id).await.unwrap(), Some(secrets("second")));

    let missing = config(org, IntegrationType::Okta, now());
    assert!(!db.store.update_config(&missing, Some(&secrets("x"))).await.unwrap());
    assert_eq!(db.store.get_config(org, missing.id).await.unwrap(), None);
}

#[tokio::test]
async fn set_state_keeps_modified_at() {
    let db = TestDb::new().await;
    let org = db.org("default").await;
    let c = config(org, IntegrationType::Okta, datetime!(2026-01-01 0:00 UTC));
    db.store.insert_config(&c, &secrets("t")).await.unwrap();

    assert!(db.store.set_state(org, c.id, ConfigState::Invalid).await.unwrap());
    let read = db.store.get_config(org, c.id).await.unwrap().unwrap();
    assert_eq!(read.state, ConfigState::Invalid);
    assert_eq!(read.modified_at, c.modified_at);
    assert!(!db.store.set_state(org, ConfigId::new(), ConfigState::Valid).await.unwrap());
}

#[tokio::test]
async fn delete_removes_config_and_secrets() {
    let db = TestDb::new().await;
    let org = db.org("default").await;
    let c = config(org, IntegrationType::Okta, now());
    db.store.insert_config(&c, &secrets("t")).await.unwrap();

    assert!(db.store.delete_config(org, c.id).await.unwrap());
    assert_eq!(db.store.get_config(org, c.id).await.unwrap(), None);
    assert_eq!(db.store.load_secrets(org, c.id).await.unwrap(), None);
    assert!(!db.store.delete_config(org, c.id).await.unwrap());
}

#[tokio::test]
async fn another_org_cannot_see_or_touch_a_config() {
    let db = TestDb::new().await;
    let (a, b) = (db.org("a").await, db.org("b").await);
    let c = config(a, IntegrationType::Okta, now());
    db.store.insert_config(&c, &secrets("a-token")).await.unwrap();

    assert_eq!(db.store.get_config(b, c.id).await.unwrap(), None);
    assert_eq!(db.store.load_secrets(b, c.id).await.unwrap(), None);
    assert!(db.store.list_configs(b, None).await.unwrap().is_empty());
    let mut hijack = c.clone();
    hijack.org_id = b;
    hijack.name = "hijacked".into();
    assert!(!db.store.update_config(&hijack, Some(&secrets("b-token"))).await.unwrap());
    assert!(!db.store.set_state(b, c.id, ConfigState::Invalid).await.unwrap());
    assert!(!db.store.delete_config(b, c.id).await.unwrap());

    assert_eq!(db.store.get_config(a, c.id).await.unwrap().unwrap(), c);
    assert_eq!(db.store.load_secrets(a, c.id).await.unwrap(), Some(secrets("a-token")));
}

#[tokio::test]
async fn list_is_ordered_by_creation_then_id_and_filters_by_type() {
    let db = TestDb::new().await;
    let org = db.org("default").await;
    let other_org = db.org("other").await;
    let late = config(org, IntegrationType::Okta, datetime!(2026-03-01 0:00:00.000002 UTC));
    let early = config(org, IntegrationType::EntraId, datetime!(2026-03-01 0:00:00.000001 UTC));
    let mut same_a = config(org, IntegrationType::Okta, datetime!(2025-12-31 23:59 UTC));
    let mut same_b = same_a.clone();
    same_a.id = ConfigId("00000000-0000-4000-8000-000000000001".parse().unwrap());
    same_b.id = ConfigId("00000000-0000-4000-8000-000000000002".parse().unwrap());
    for c in [&late, &same_b, &early, &same_a] {
        db.store.insert_config(c, &secrets("t")).await.unwrap();
    }
    let foreign = config(other_org, IntegrationType::Okta, now());
    db.store.insert_config(&foreign, &secrets("t")).await.unwrap();

    let all = db.store.list_configs(org, None).await.unwrap();
    assert_eq!(all, vec![same_a.clone(), same_b.clone(), early.clone(), late.clone()]);
    let okta = db.store.list_configs(org, Some(IntegrationType::Okta)).await.unwrap();
    assert_eq!(okta, vec![same_a, same_b, late]);
    let google = db.store.list_configs(org, Some(IntegrationType::GoogleWorkspace)).await.unwrap();
    assert!(google.is_empty());
}

#[tokio::test]
async fn secret_plaintext_never_reaches_the_database_file() {
    let db = TestDb::new().await;
    let org = db.org("default").await;
    let mut c = config(org, IntegrationType::Okta, now());
    c.settings.insert("marker".into(), json!("visible-setting-7d1e"));
    db.store.insert_config(&c, &secrets("first-secret-9f3a")).await.unwrap();
    db.store.update_config(&c, Some(&secrets("second-secret-2b8c"))).await.unwrap();

    let bytes = db.raw_bytes();
    assert!(contains(&bytes, "visible-setting-7d1e"), "the scan must see what was written");
    assert!(!contains(&bytes, "first-secret-9f3a"));
    assert!(!contains(&bytes, "second-secret-2b8c"));
}

#[tokio::test]
async fn ciphertext_copied_to_another_row_does_not_decrypt() {
    let db = TestDb::new().await;
    let (a, b) = (db.org("a").await, db.org("b").await);
    let source = config(a, IntegrationType::Okta, now());
    let same_org = config(a, IntegrationType::Okta, now());
    let other_org = config(b, IntegrationType::Okta, now());
    db.store.insert_config(&source, &secrets("a-secret")).await.unwrap();
    for target in [&same_org, &other_org] {
        db.store.insert_config(target, &secrets("unrelated")).await.unwrap();
        sqlx::query(
            "UPDATE integration_configs SET \
             secrets_nonce = (SELECT secrets_nonce FROM integration_configs WHERE id = ?1), \
             secrets_ciphertext = (SELECT secrets_ciphertext FROM integration_configs WHERE id = ?1) \
             WHERE id = ?2",
        )
        .bind(source.id.to_string())
        .bind(target.id.to_string())
        .execute(&db.store.pool)
        .await
        .unwrap();

        let err = db.store.load_secrets(target.org_id, target.id).await.unwrap_err();
        assert!(matches!(err, StoreError::SecretsUndecryptable { config } if config == target.id), "{err}");
    }
    assert_eq!(db.store.load_secrets(a, source.id).await.unwrap(), Some(secrets("a-secret")));
}

#[tokio::test]
async fn wrong_master_key_is_refused_at_connect() {
    let db = TestDb::new().await;
    let org = db.org("default").await;
    db.store.insert_config(&config(org, IntegrationType::Okta, now()), &secrets("t")).await.unwrap();

    let err = SqliteStore::connect(&url(db.dir.path()), key(2)).await.unwrap_err();
    assert!(matches!(err, StoreError::MasterKeyMismatch), "{err}");
    assert!(err.to_string().contains("master key does not match"), "{err}");
    assert!(SqliteStore::connect(&url(db.dir.path()), key(1)).await.is_ok());
}

#[tokio::test]
async fn wrong_master_key_on_a_row_is_a_clear_error() {
    let db = TestDb::new().await;
    let org = db.org("default").await;
    let c = config(org, IntegrationType::Okta, now());
    db.store.insert_config(&c, &secrets("t")).await.unwrap();
    // Without the start-up check, the row itself must still refuse the other key.
    sqlx::query("DELETE FROM store_meta").execute(&db.store.pool).await.unwrap();

    let other = SqliteStore::connect(&url(db.dir.path()), key(2)).await.unwrap();
    let err = other.load_secrets(org, c.id).await.unwrap_err();
    assert!(matches!(err, StoreError::SecretsUndecryptable { .. }), "{err}");
    assert!(err.to_string().contains("master key does not match"), "{err}");
}

#[tokio::test]
async fn connect_creates_the_directory_and_answers_ping() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!db_path(dir.path()).parent().unwrap().exists());
    let store = SqliteStore::connect(&url(dir.path()), key(1)).await.unwrap();
    store.ping().await.unwrap();
    assert!(db_path(dir.path()).exists());

    let shared: Arc<dyn Store> = Arc::new(store);
    shared.ping().await.unwrap();
    assert!(shared.list_configs(OrgId::new(), None).await.unwrap().is_empty());
}

#[tokio::test]
async fn ensure_org_is_idempotent() {
    let db = TestDb::new().await;
    let a = db.org("default").await;
    assert_eq!(db.org("default").await, a);
    assert_ne!(db.org("other").await, a);
    assert!(matches!(db.store.ensure_org(" ").await, Err(StoreError::Invalid(_))));
}

#[tokio::test]
async fn keys_are_stored_hashed_and_authenticate() {
    let db = TestDb::new().await;
    let read_only = Scopes::Only(vec![Scope::IntegrationsRead]);
    let pair = db.store.create_key_pair("default", &read_only).await.unwrap();
    assert_eq!(pair.org_id, db.org("default").await);
    assert_eq!((pair.api_key.len(), pair.app_key.len()), (32, 40));

    let bytes = db.raw_bytes();
    assert!(!contains(&bytes, &pair.api_key) && !contains(&bytes, &pair.app_key));
    let api_hash: Vec<u8> =
        sqlx::query_scalar("SELECT hash FROM api_keys").fetch_one(&db.store.pool).await.unwrap();
    assert_eq!(api_hash, crate::keys::hash_key(&pair.api_key));

    let principal = db.store.authenticate(&pair.api_key, &pair.app_key).await.unwrap().unwrap();
    assert_eq!(principal.org_id, pair.org_id);
    assert_eq!(principal.scopes, read_only);
}

#[tokio::test]
async fn authentication_needs_both_keys_of_one_org() {
    let db = TestDb::new().await;
    let a = db.store.create_key_pair("a", &Scopes::All).await.unwrap();
    let a2 = db.store.create_key_pair("a", &Scopes::All).await.unwrap();
    let b = db.store.create_key_pair("b", &Scopes::All).await.unwrap();

    let auth = |api: String, app: String| {
        let store = db.store.clone();
        async move { store.authenticate(&api, &app).await.unwrap() }
    };
    assert!(auth(a.api_key.clone(), a2.app_key.clone()).await.is_some(), "keys of one org mix");
    assert!(auth(a.api_key.clone(), "0".repeat(40)).await.is_none());
    assert!(auth(a.app_key.clone(), a.api_key.clone()).await.is_none(), "the kinds do not swap");
    assert!(auth(a.api_key.clone(), b.app_key.clone()).await.is_none());
    assert!(auth(b.api_key.clone(), a.app_key.clone()).await.is_none());
    assert!(auth(String::new(), a.app_key.clone()).await.is_none());
    assert!(auth(a.api_key.clone(), String::new()).await.is_none());
    assert!(auth(String::new(), String::new()).await.is_none());
}

#[tokio::test]
async fn scopes_round_trip() {
    let db = TestDb::new().await;
    for scopes in [
        Scopes::All,
        Scopes::Only(vec![]),
        Scopes::Only(vec![Scope::ManageIntegrations]),
        Scopes::Only(vec![Scope::IntegrationsRead, Scope::ManageIntegrations]),
    ] {
        let pair = db.store.create_key_pair("default", &scopes).await.unwrap();
        assert_eq!(pair.scopes, scopes);
        let principal = db.store.authenticate(&pair.api_key, &pair.app_key).await.unwrap().unwrap();
        assert_eq!(principal.scopes, scopes);
    }
}

#[tokio::test]
async fn ensure_key_pair_is_idempotent_and_sets_scopes() {
    let db = TestDb::new().await;
    let (api, app) = ("bootstrap-api-key", "bootstrap-app-key");
    db.store.ensure_key_pair("default", api, app, &Scopes::All).await.unwrap();
    db.store.ensure_key_pair("default", api, app, &Scopes::All).await.unwrap();
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orgs), (SELECT count(*) FROM api_keys), (SELECT count(*) FROM app_keys)",
    )
    .fetch_one(&db.store.pool)
    .await
    .unwrap();
    assert_eq!(counts, (1, 1, 1));
    let principal = db.store.authenticate(api, app).await.unwrap().unwrap();
    assert_eq!(principal, crate::Principal { org_id: db.org("default").await, scopes: Scopes::All });

    let read_only = Scopes::Only(vec![Scope::IntegrationsRead]);
    db.store.ensure_key_pair("default", api, app, &read_only).await.unwrap();
    assert_eq!(db.store.authenticate(api, app).await.unwrap().unwrap().scopes, read_only);
    assert!(!contains(&db.raw_bytes(), api) && !contains(&db.raw_bytes(), app));
}

#[tokio::test]
async fn ensure_key_pair_refuses_bad_or_foreign_keys() {
    let db = TestDb::new().await;
    let other = db.store.create_key_pair("other", &Scopes::All).await.unwrap();

    let err =
        db.store.ensure_key_pair("default", &other.api_key, "fresh-app", &Scopes::All).await.unwrap_err();
    assert!(matches!(err, StoreError::KeyInOtherOrg { kind: "API key", .. }), "{err}");
    let err =
        db.store.ensure_key_pair("default", "fresh-api", &other.app_key, &Scopes::All).await.unwrap_err();
    assert!(matches!(err, StoreError::KeyInOtherOrg { kind: "application key", .. }), "{err}");
    assert!(!err.to_string().contains(&other.app_key), "{err}");
    let api_keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_keys").fetch_one(&db.store.pool).await.unwrap();
    assert_eq!(api_keys, 1, "a refused pair writes nothing");
    assert_eq!(
        db.store.authenticate(&other.api_key, &other.app_key).await.unwrap().unwrap().scopes,
        Scopes::All
    );

    for (api, app) in [("", "app"), ("api", ""), ("api\n", "app")] {
        let err = db.store.ensure_key_pair("default", api, app, &Scopes::All).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }
}
