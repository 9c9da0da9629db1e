//! Configs and their secrets.

use ctxsync_core::{Config, ConfigId, ConfigState, IntegrationType, OrgId, SecretValue, Settings, now};
use serde_json::json;
use time::macros::datetime;

use super::{TestStore, contains, key};
use crate::StoreError;

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

#[tokio::test]
async fn config_round_trips_with_settings_and_timestamps() {
    let db = TestStore::new().await;
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
    let db = TestStore::new().await;
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
async fn set_state_keeps_modified_at_and_a_runs_verdict_holds_for_its_source() {
    let db = TestStore::new().await;
    let org = db.org("default").await;
    let c = config(org, IntegrationType::Okta, datetime!(2026-01-01 0:00 UTC));
    db.store.insert_config(&c, &secrets("t")).await.unwrap();

    assert!(db.store.set_state(org, c.id, ConfigState::Invalid).await.unwrap());
    let read = db.store.get_config(org, c.id).await.unwrap().unwrap();
    assert_eq!(read.state, ConfigState::Invalid);
    assert_eq!(read.modified_at, c.modified_at);
    assert!(!db.store.set_state(org, ConfigId::new(), ConfigState::Valid).await.unwrap());

    // A run's verdict holds only for the source it listed.
    assert!(db.store.set_state_for(&c, ConfigState::Valid).await.unwrap());
    assert_eq!(db.store.get_config(org, c.id).await.unwrap().unwrap().state, ConfigState::Valid);
    let moved = Config { domain: "other.okta.com".into(), ..c.clone() };
    db.store.update_config(&moved, None).await.unwrap();
    assert!(!db.store.set_state_for(&c, ConfigState::Invalid).await.unwrap());
    assert_eq!(db.store.get_config(org, c.id).await.unwrap().unwrap().state, ConfigState::Valid);
    assert!(db.store.set_state_for(&moved, ConfigState::Invalid).await.unwrap());
    assert_eq!(db.store.get_config(org, c.id).await.unwrap().unwrap().state, ConfigState::Invalid);
}

#[tokio::test]
async fn delete_removes_config_and_secrets() {
    let db = TestStore::new().await;
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
    let db = TestStore::new().await;
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
async fn list_is_ordered_by_creation_then_id_and_filters_by_type_or_spans_every_org() {
    let db = TestStore::new().await;
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
    let everywhere = db.store.list_all_configs().await.unwrap();
    assert_eq!(everywhere, vec![same_a.clone(), same_b.clone(), early, late.clone(), foreign]);
    let okta = db.store.list_configs(org, Some(IntegrationType::Okta)).await.unwrap();
    assert_eq!(okta, vec![same_a, same_b, late]);
    let google = db.store.list_configs(org, Some(IntegrationType::GoogleWorkspace)).await.unwrap();
    assert!(google.is_empty());
}

#[tokio::test]
async fn secret_plaintext_never_reaches_the_database() {
    let db = TestStore::new().await;
    let org = db.org("default").await;
    let mut c = config(org, IntegrationType::Okta, now());
    c.settings.insert("marker".into(), json!("visible-setting-7d1e"));
    db.store.insert_config(&c, &secrets("first-secret-9f3a")).await.unwrap();
    db.store.update_config(&c, Some(&secrets("second-secret-2b8c"))).await.unwrap();

    let bytes = db.db.raw_contents().await;
    assert!(contains(&bytes, "visible-setting-7d1e"), "the scan must see what was written");
    assert!(!contains(&bytes, "first-secret-9f3a"));
    assert!(!contains(&bytes, "second-secret-2b8c"));
}

#[tokio::test]
async fn ciphertext_copied_to_another_row_does_not_decrypt() {
    let db = TestStore::new().await;
    let (a, b) = (db.org("a").await, db.org("b").await);
    let source = config(a, IntegrationType::Okta, now());
    let same_org = config(a, IntegrationType::Okta, now());
    let other_org = config(b, IntegrationType::Okta, now());
    db.store.insert_config(&source, &secrets("a-secret")).await.unwrap();
    for target in [&same_org, &other_org] {
        db.store.insert_config(target, &secrets("unrelated")).await.unwrap();
        db.execute(
            "UPDATE integration_configs SET \
             secrets_nonce = (SELECT secrets_nonce FROM integration_configs WHERE CAST(id AS TEXT) = $1), \
             secrets_ciphertext = (SELECT secrets_ciphertext FROM integration_configs WHERE CAST(id AS TEXT) = $1) \
             WHERE CAST(id AS TEXT) = $2",
            &[&source.id.to_string(), &target.id.to_string()],
        )
        .await;

        let err = db.store.load_secrets(target.org_id, target.id).await.unwrap_err();
        assert!(matches!(err, StoreError::SecretsUndecryptable { config } if config == target.id), "{err}");
    }
    assert_eq!(db.store.load_secrets(a, source.id).await.unwrap(), Some(secrets("a-secret")));
}

#[tokio::test]
async fn wrong_master_key_is_refused_at_connect() {
    let db = TestStore::new().await;
    let org = db.org("default").await;
    db.store.insert_config(&config(org, IntegrationType::Okta, now()), &secrets("t")).await.unwrap();

    let err = db.reopen(key(2)).await.err().expect("another key is refused");
    assert!(matches!(err, StoreError::MasterKeyMismatch), "{err}");
    assert!(err.to_string().contains("master key does not match"), "{err}");
    assert!(db.reopen(key(1)).await.is_ok());
}

#[tokio::test]
async fn wrong_master_key_on_a_row_is_a_clear_error() {
    let db = TestStore::new().await;
    let org = db.org("default").await;
    let c = config(org, IntegrationType::Okta, now());
    db.store.insert_config(&c, &secrets("t")).await.unwrap();
    // Without the start-up check, the row itself must still refuse the other key.
    db.execute("DELETE FROM store_meta", &[]).await;

    let other = db.reopen(key(2)).await.unwrap();
    let err = other.load_secrets(org, c.id).await.unwrap_err();
    assert!(matches!(err, StoreError::SecretsUndecryptable { .. }), "{err}");
    assert!(err.to_string().contains("master key does not match"), "{err}");
}

#[tokio::test]
async fn a_fresh_store_answers_ping_and_lists_nothing() {
    let db = TestStore::new().await;
    db.store.ping().await.unwrap();
    assert!(db.store.list_configs(OrgId::new(), None).await.unwrap().is_empty());
}

/// A master-key rotation: with the old key as previous, every config reads; the rotation
/// re-encrypts each once (a rerun finds nothing to do); afterwards the new key alone reads
/// everything and the old key alone is refused.
#[tokio::test]
async fn a_rotation_moves_every_secret_to_the_new_key() {
    let db = TestStore::new().await;
    let org = db.org("default").await;
    let mut configs = Vec::new();
    for i in 0..5 {
        let config = config(org, IntegrationType::Okta, now());
        db.store.insert_config(&config, &secrets(&format!("token-{i}"))).await.unwrap();
        configs.push(config);
    }
    let both = crate::MasterKeys { current: key(2), previous: vec![key(1)] };
    let during = db.reopen(both.clone()).await.unwrap();
    for (i, c) in configs.iter().enumerate() {
        assert_eq!(during.load_secrets(org, c.id).await.unwrap(), Some(secrets(&format!("token-{i}"))));
    }
    // A write during the rotation is sealed with the new key already.
    during.update_config(&configs[0], Some(&secrets("token-0"))).await.unwrap();

    let seen = std::sync::Mutex::new(Vec::new());
    let done = during.reencrypt_secrets(&|n, total| seen.lock().unwrap().push((n, total))).await.unwrap();
    assert_eq!(done, crate::Reencrypted { rewritten: 4, already: 1 });
    assert_eq!(*seen.lock().unwrap(), (1..=5).map(|n| (n, 5)).collect::<Vec<_>>());
    let again = during.reencrypt_secrets(&|_, _| {}).await.unwrap();
    assert_eq!(again, crate::Reencrypted { rewritten: 0, already: 5 });

    let err = db.reopen(key(1)).await.err().expect("the old key alone is refused");
    assert!(matches!(err, StoreError::MasterKeyMismatch), "{err}");
    let after = db.reopen(key(2)).await.unwrap();
    for (i, c) in configs.iter().enumerate() {
        assert_eq!(after.load_secrets(org, c.id).await.unwrap(), Some(secrets(&format!("token-{i}"))));
    }
}
