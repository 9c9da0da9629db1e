//! Push endpoints against a fresh database: the secret is kept as a digest and admits only
//! itself, deliveries count, an event id counts once, and another org cannot touch the endpoint.

use ctxsync_core::ConfigId;

use super::sync::db;
use crate::{Delivery, secret_digest};

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|i| i.to_string()).collect()
}

#[tokio::test]
async fn a_push_secret_is_kept_as_a_digest_and_admits_only_itself() {
    let db = db().await;
    let (org, config) = (db.org, db.config.id);
    let now = ctxsync_core::now();
    assert_eq!(db.store.push_endpoint(config).await.unwrap(), None);
    assert!(db.store.set_push_secret(org, config, &secret_digest("s3cret"), now).await.unwrap());
    let endpoint = db.store.push_endpoint(config).await.unwrap().unwrap();
    assert_ne!(endpoint.secret_digest, "s3cret");
    assert!(endpoint.admits("s3cret") && !endpoint.admits("s3cret ") && !endpoint.admits(""));

    let other = db.store.ensure_org("other").await.unwrap();
    assert!(!db.store.set_push_secret(other, config, &secret_digest("mine"), now).await.unwrap());
    assert!(!db.store.delete_push_secret(other, config).await.unwrap());
    assert!(!db.store.set_push_secret(org, ConfigId::new(), &secret_digest("x"), now).await.unwrap());
    assert!(db.store.push_endpoint(config).await.unwrap().unwrap().admits("s3cret"), "unchanged");

    assert!(db.store.delete_push_secret(org, config).await.unwrap());
    assert_eq!(db.store.push_endpoint(config).await.unwrap(), None);
    assert!(!db.store.delete_push_secret(org, config).await.unwrap());
}

#[tokio::test]
async fn deliveries_count_and_an_event_counts_once() {
    let db = db().await;
    let (org, config) = (db.org, db.config.id);
    let now = ctxsync_core::now();
    db.store.set_push_secret(org, config, &secret_digest("s"), now).await.unwrap();

    let first = db.store.record_delivery(config, Delivery::Accepted(&ids(&["e1", "e2"])), now).await.unwrap();
    assert_eq!(first, ids(&["e1", "e2"]));
    let again = db.store.record_delivery(config, Delivery::Accepted(&ids(&["e2", "e3"])), now).await.unwrap();
    assert_eq!(again, ids(&["e3"]), "e2 was delivered before");
    assert_eq!(
        db.store.record_delivery(config, Delivery::Rejected, now).await.unwrap(),
        Vec::<String>::new()
    );
    let endpoint = db.store.push_endpoint(config).await.unwrap().unwrap();
    assert_eq!((endpoint.deliveries, endpoint.duplicates, endpoint.rejected), (2, 1, 1));
    assert_eq!(endpoint.last_delivery_at, Some(now));

    // Long after, the id is forgotten; a new secret starts the counts afresh.
    let later = now + crate::push::SEEN_FOR + time::Duration::minutes(1);
    let late = db.store.record_delivery(config, Delivery::Accepted(&ids(&["e1"])), later).await.unwrap();
    assert_eq!(late, ids(&["e1"]));
    db.store.set_push_secret(org, config, &secret_digest("t"), later).await.unwrap();
    let endpoint = db.store.push_endpoint(config).await.unwrap().unwrap();
    assert_eq!((endpoint.deliveries, endpoint.duplicates, endpoint.rejected), (0, 0, 0));
    assert!(endpoint.admits("t") && !endpoint.admits("s"));

    // Replaced, the secret changes and the counts stay.
    db.store.record_delivery(config, Delivery::Rejected, later).await.unwrap();
    assert!(db.store.replace_push_secret(config, &secret_digest("u")).await.unwrap());
    let endpoint = db.store.push_endpoint(config).await.unwrap().unwrap();
    assert!(endpoint.admits("u") && !endpoint.admits("t") && endpoint.rejected == 1);

    db.store.delete_config(org, config).await.unwrap();
    assert_eq!(db.store.push_endpoint(config).await.unwrap(), None, "gone with its config");
    assert!(!db.store.replace_push_secret(config, &secret_digest("v")).await.unwrap());
}

#[tokio::test]
async fn refresh_targets_wait_for_a_run_and_one_named_again_stays() {
    let db = db().await;
    let config = db.config.id;
    let user = ctxsync_core::EntityKind::User;
    let t0 = ctxsync_core::now();
    db.store.add_refresh_targets(config, user, &ids(&["u1", "u2"]), t0).await.unwrap();
    let later = t0 + time::Duration::seconds(1);
    db.store.add_refresh_targets(config, user, &ids(&["u3"]), later).await.unwrap();
    let taken = db.store.refresh_targets(config, user, t0).await.unwrap();
    assert_eq!(taken, ids(&["u1", "u2"]), "those named before the run started");
    assert_eq!(
        db.store.refresh_targets(config, ctxsync_core::EntityKind::Group, later).await.unwrap(),
        Vec::<String>::new()
    );

    // u1 is named again while the run goes on: the run's end leaves it for the next.
    db.store.add_refresh_targets(config, user, &ids(&["u1"]), later).await.unwrap();
    db.store.clear_refresh_targets(config, user, &taken, t0).await.unwrap();
    assert_eq!(db.store.refresh_targets(config, user, later).await.unwrap(), ids(&["u1", "u3"]));
}

#[tokio::test]
async fn a_due_subscription_is_claimed_once_until_it_is_renewed() {
    let db = db().await;
    let config = db.config.id;
    let t0 = ctxsync_core::now();
    let (hour, day) = (time::Duration::hours(1), time::Duration::days(1));
    let subscription = |resource: &str, id: &str, renew_at| crate::SourceSubscription {
        config_id: config,
        resource: resource.into(),
        id: id.into(),
        // Google's channels carry a resourceId too; Graph's subscriptions none.
        resource_id: resource.starts_with("users?").then(|| format!("r-{id}")),
        expires_at: t0 + 29 * day,
        renew_at,
    };
    let (users, groups) =
        (subscription("/users", "s-u", t0 + hour), subscription("/groups", "s-g", t0 + 2 * hour));
    db.store.set_subscriptions(config, &[users.clone(), groups.clone()]).await.unwrap();
    assert_eq!(db.store.subscriptions(config).await.unwrap(), vec![groups.clone(), users.clone()]);

    let claim = |now| db.store.claim_due_subscriptions(now, now + time::Duration::minutes(10));
    assert_eq!(claim(t0).await.unwrap(), vec![], "none is due yet");
    let due = t0 + hour;
    assert_eq!(claim(due).await.unwrap(), vec![users.clone()]);
    assert_eq!(claim(due).await.unwrap(), vec![], "claimed already");
    let after_claim = due + time::Duration::minutes(11);
    assert_eq!(claim(after_claim).await.unwrap(), vec![users.clone()], "a lapsed claim");

    let renewed = crate::SourceSubscription { expires_at: t0 + 30 * day, renew_at: t0 + 3 * hour, ..users };
    db.store.renew_subscription(&renewed).await.unwrap();
    let later = after_claim + time::Duration::minutes(11);
    assert_eq!(claim(later).await.unwrap(), vec![], "renewed, so no longer due");
    assert_eq!(db.store.subscriptions(config).await.unwrap(), vec![groups, renewed]);

    let channel = subscription("users?event=update", "c-1", t0 + hour);
    db.store.set_subscriptions(config, std::slice::from_ref(&channel)).await.unwrap();
    assert_eq!(db.store.subscriptions(config).await.unwrap(), vec![channel]);

    db.store.set_subscriptions(config, &[]).await.unwrap();
    assert_eq!(db.store.subscriptions(config).await.unwrap(), vec![]);
}
