//! Orgs, key pairs and authentication.

use ctxsync_core::{Scope, Scopes};

use super::{TestStore, contains};
use crate::{Principal, StoreError};

#[tokio::test]
async fn ensure_org_is_idempotent() {
    let db = TestStore::new().await;
    let a = db.org("default").await;
    assert_eq!(db.org("default").await, a);
    assert_ne!(db.org("other").await, a);
    assert!(matches!(db.store.ensure_org(" ").await, Err(StoreError::Invalid(_))));
}

#[tokio::test]
async fn keys_are_stored_hashed_and_authenticate() {
    let db = TestStore::new().await;
    let read_only = Scopes::Only(vec![Scope::IntegrationsRead]);
    let pair = db.store.create_key_pair("default", &read_only).await.unwrap();
    assert_eq!(pair.org_id, db.org("default").await);
    assert_eq!((pair.api_key.len(), pair.app_key.len()), (32, 40));

    let bytes = db.db.raw_contents().await;
    assert!(!contains(&bytes, &pair.api_key) && !contains(&bytes, &pair.app_key));
    assert_eq!(db.bytes("SELECT hash FROM api_keys").await, crate::keys::hash_key(&pair.api_key));

    let principal = db.store.authenticate(&pair.api_key, &pair.app_key).await.unwrap().unwrap();
    assert_eq!(principal.org_id, pair.org_id);
    assert_eq!(principal.scopes, read_only);
}

#[tokio::test]
async fn authentication_needs_both_keys_of_one_org() {
    let db = TestStore::new().await;
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
    let db = TestStore::new().await;
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
    let db = TestStore::new().await;
    let (api, app) = ("bootstrap-api-key", "bootstrap-app-key");
    db.store.ensure_key_pair("default", api, app, &Scopes::All).await.unwrap();
    db.store.ensure_key_pair("default", api, app, &Scopes::All).await.unwrap();
    let counts = (db.count("orgs").await, db.count("api_keys").await, db.count("app_keys").await);
    assert_eq!(counts, (1, 1, 1));
    let principal = db.store.authenticate(api, app).await.unwrap().unwrap();
    assert_eq!(principal, Principal { org_id: db.org("default").await, scopes: Scopes::All });

    let read_only = Scopes::Only(vec![Scope::IntegrationsRead]);
    db.store.ensure_key_pair("default", api, app, &read_only).await.unwrap();
    assert_eq!(db.store.authenticate(api, app).await.unwrap().unwrap().scopes, read_only);
    let bytes = db.db.raw_contents().await;
    assert!(!contains(&bytes, api) && !contains(&bytes, app));
}

#[tokio::test]
async fn ensure_key_pair_refuses_bad_or_foreign_keys() {
    let db = TestStore::new().await;
    let other = db.store.create_key_pair("other", &Scopes::All).await.unwrap();

    let err =
        db.store.ensure_key_pair("default", &other.api_key, "fresh-app", &Scopes::All).await.unwrap_err();
    assert!(matches!(err, StoreError::KeyInOtherOrg { kind: "API key", .. }), "{err}");
    let err =
        db.store.ensure_key_pair("default", "fresh-api", &other.app_key, &Scopes::All).await.unwrap_err();
    assert!(matches!(err, StoreError::KeyInOtherOrg { kind: "application key", .. }), "{err}");
    assert!(!err.to_string().contains(&other.app_key), "{err}");
    assert_eq!(db.count("api_keys").await, 1, "a refused pair writes nothing");
    assert_eq!(
        db.store.authenticate(&other.api_key, &other.app_key).await.unwrap().unwrap().scopes,
        Scopes::All
    );

    for (api, app) in [("", "app"), ("api", ""), ("api\n", "app")] {
        let err = db.store.ensure_key_pair("default", api, app, &Scopes::All).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }
}
