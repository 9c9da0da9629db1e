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

/// Keys as operators manage them: listed by org without the key, revoked, rotated with a grace
/// period, expired, and their last use recorded.
#[tokio::test]
async fn keys_are_listed_revoked_rotated_and_expire() {
    use std::time::Duration;

    use crate::{KeyFilter, KeyKind};

    let db = TestStore::new().await;
    let scoped = Scopes::Only(vec![Scope::ManageKeys]);
    let pair = db.store.create_key_pair("acme", &scoped).await.unwrap();
    let other = db.store.create_key_pair("other", &Scopes::All).await.unwrap();
    let auth = |api: String, app: String| {
        let store = db.store.clone();
        async move { store.authenticate(&api, &app).await.unwrap().is_some() }
    };

    let listed = db.store.list_keys(KeyFilter::Org(pair.org_id)).await.unwrap();
    assert_eq!(
        listed.iter().map(|k| (k.id, k.kind)).collect::<Vec<_>>(),
        [(pair.api_key_id, KeyKind::Api), (pair.app_key_id, KeyKind::App)]
    );
    assert_eq!(listed[1].scopes, Some(scoped.clone()));
    assert_eq!(listed[0].scopes, None);
    assert!(listed.iter().all(|k| k.org_name == "acme" && k.status(ctxsync_core::now()) == "active"));
    assert_eq!(db.store.list_keys(KeyFilter::All).await.unwrap().len(), 4);

    // Another org cannot touch acme's keys.
    let other_org = KeyFilter::Org(other.org_id);
    assert_eq!(db.store.revoke_key(other_org, pair.app_key_id).await.unwrap(), None);
    let grace = Duration::from_secs(3600);
    assert!(db.store.rotate_key(other_org, pair.app_key_id, grace, None).await.unwrap().is_none());

    // Rotation: the new application key works at once, the old one until its grace ends.
    let rotated = db
        .store
        .rotate_key(KeyFilter::Org(pair.org_id), pair.app_key_id, grace, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rotated.info.kind, rotated.info.scopes.clone()), (KeyKind::App, Some(scoped.clone())));
    assert_eq!(rotated.key.len(), 40);
    assert!(auth(pair.api_key.clone(), rotated.key.clone()).await);
    assert!(auth(pair.api_key.clone(), pair.app_key.clone()).await, "the old key works during the grace");
    let old = db
        .store
        .list_keys(KeyFilter::All)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.id == pair.app_key_id)
        .unwrap();
    let until = old.expires_at.unwrap() - ctxsync_core::now();
    assert!(until > time::Duration::minutes(59) && until <= time::Duration::hours(1), "{until}");

    // Rotating with no grace stops the old API key now; the new one works with the new app key.
    let api =
        db.store.rotate_key(KeyFilter::All, pair.api_key_id, Duration::ZERO, None).await.unwrap().unwrap();
    assert!(!auth(pair.api_key.clone(), rotated.key.clone()).await, "the old API key expired");
    assert!(auth(api.key.clone(), rotated.key.clone()).await);
    let expired = db.store.rotate_key(KeyFilter::All, pair.api_key_id, grace, None).await.unwrap_err();
    assert!(expired.to_string().contains("expired"), "{expired}");

    // Revocation stops a key at once and keeps its first time.
    let revoked = db.store.revoke_key(KeyFilter::All, rotated.info.id).await.unwrap().unwrap();
    assert_eq!(revoked.status(ctxsync_core::now()), "revoked");
    assert!(!auth(api.key.clone(), rotated.key.clone()).await);
    let again = db.store.revoke_key(KeyFilter::All, rotated.info.id).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, revoked.revoked_at);

    // An expiry at creation.
    let soon = ctxsync_core::now() + time::Duration::hours(2);
    let expiring = db.store.issue_key_pair("acme", &Scopes::All, Some(soon)).await.unwrap();
    let found = db.store.authenticate_keys(&expiring.api_key, &expiring.app_key).await.unwrap().unwrap();
    assert_eq!(found.expires_at, Some(soon));
    assert_eq!(found.key_ids, [expiring.api_key_id, expiring.app_key_id]);
    let past = ctxsync_core::now() - time::Duration::seconds(1);
    let dead = db.store.issue_key_pair("acme", &Scopes::All, Some(past)).await.unwrap();
    assert!(!auth(dead.api_key.clone(), dead.app_key.clone()).await);

    // Last use: a later time replaces an earlier one, never the other way round.
    let t1 = ctxsync_core::now();
    let t0 = t1 - time::Duration::minutes(5);
    db.store.record_key_use(&[expiring.api_key_id], t1).await.unwrap();
    db.store.record_key_use(&[expiring.api_key_id], t0).await.unwrap();
    let used =
        db.store.list_keys(KeyFilter::All).await.unwrap().into_iter().find(|k| k.id == expiring.api_key_id);
    assert_eq!(used.unwrap().last_used_at, Some(t1));
}
