//! Several stores on one database, as several replicas of the service have: a config's lease
//! goes to exactly one of them, and an expired lease to exactly one successor.

use std::sync::Arc;

use ctxsync_core::{Config, ConfigId, Coverage, IntegrationType, RunKind, RunStatus, SecretValue};
use serde_json::json;
use time::Duration;

use super::key;
use super::sync::db;
use crate::{RunEnd, Store, StoreError};

/// The owners that took the lease when `attempts` owners named after `round` asked at once,
/// spread over `replicas`.
async fn winners(replicas: &[Arc<dyn Store>], config: ConfigId, round: &str, attempts: usize) -> Vec<String> {
    let until = ctxsync_core::now() + Duration::minutes(1);
    let tasks: Vec<_> = (0..attempts)
        .map(|i| {
            let store = replicas[i % replicas.len()].clone();
            let owner = format!("{round}-{i}");
            tokio::spawn(async move {
                let taken = store.acquire_lease(config, &owner, until, None).await.unwrap().is_some();
                taken.then_some(owner)
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        won.extend(task.await.unwrap());
    }
    won
}

#[tokio::test]
async fn a_lease_goes_to_one_replica_and_an_expired_one_to_one_successor() {
    let db = db().await;
    let mut replicas = vec![db.store.clone()];
    for _ in 0..3 {
        replicas.push(db.test.reopen(key(1)).await.unwrap());
    }
    let first = winners(&replicas, db.config.id, "first", 16).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        winners(&replicas, db.config.id, "again", 16).await,
        Vec::<String>::new(),
        "a live lease is not taken"
    );

    // The holder dies mid-run, and its lease runs out.
    let run = db.store.start_run(db.config.id, RunKind::Full, &first[0]).await.unwrap();
    let expired = ctxsync_core::now() - Duration::seconds(1);
    assert!(db.store.renew_lease(db.config.id, &first[0], expired).await.unwrap());

    let second = winners(&replicas, db.config.id, "second", 16).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(!db.store.renew_lease(db.config.id, &first[0], expired).await.unwrap(), "the lease was lost");
    let stored = db.store.get_run(db.org, db.config.id, run.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Failed);

    // The old holder wakes up and completes its listing: too late, nothing is applied.
    let end = RunEnd::Succeeded {
        coverage: Coverage::Everything,
        cursor: None,
        next_run_at: ctxsync_core::now(),
        guard: ctxsync_core::DeletionGuard::DEFAULT,
        expected: ctxsync_core::Expected::new(),
    };
    let err = db.store.finish_run(&run, end).await.unwrap_err();
    assert!(matches!(err, StoreError::RunTakenOver(id) if id == run.id), "{err}");
    let stored = db.store.get_run(db.org, db.config.id, run.id).await.unwrap().unwrap();
    assert_eq!(stored.status, RunStatus::Failed);

    // Nor may it start another run beside the new holder's, from any replica.
    for replica in &replicas {
        let err = replica.start_run(db.config.id, RunKind::Full, &first[0]).await.unwrap_err();
        assert!(matches!(err, StoreError::LeaseLost { config } if config == db.config.id), "{err}");
    }
    let mine = db.store.start_run(db.config.id, RunKind::Full, &second[0]).await.unwrap();
    let runs = db.store.list_runs(db.org, db.config.id, 10).await.unwrap();
    let running: Vec<_> = runs.iter().filter(|r| r.status == RunStatus::Running).map(|r| r.id).collect();
    assert_eq!(running, [mine.id], "the new holder's run is the only one running");
}

/// Who syncs which tenant of a source right now, as every replica sees it: the live leases on
/// configs of that source, whichever replica took them, and none that expired or was released.
#[tokio::test]
async fn every_replica_sees_who_syncs_each_tenant_of_a_source() {
    let db = db().await;
    let other = db.test.reopen(key(1)).await.unwrap();
    let config = |kind, domain: &str| {
        Config::created(db.org, kind, domain.into(), domain.into(), ctxsync_core::Settings::new())
    };
    let secrets = SecretValue::new(json!({"api_token": "t"}));
    let (second, globex, expired, released, entra) = (
        config(IntegrationType::Okta, "acme.okta.com"),
        config(IntegrationType::Okta, "globex.okta.com"),
        config(IntegrationType::Okta, "initech.okta.com"),
        config(IntegrationType::Okta, "umbrella.okta.com"),
        config(IntegrationType::EntraId, "acme.onmicrosoft.com"),
    );
    for c in [&second, &globex, &expired, &released, &entra] {
        db.store.insert_config(c, &secrets).await.unwrap();
    }
    let until = ctxsync_core::now() + Duration::minutes(1);
    for (store, config, owner) in [
        (&db.store, &db.config, "a"),
        (&other, &second, "b"),
        (&db.store, &globex, "a"),
        (&other, &expired, "c"),
        (&db.store, &released, "d"),
        (&other, &entra, "e"),
    ] {
        assert!(store.acquire_lease(config.id, owner, until, None).await.unwrap().is_some());
    }
    assert!(other.renew_lease(expired.id, "c", ctxsync_core::now() - Duration::seconds(1)).await.unwrap());
    db.store.release_lease(released.id, "d").await.unwrap();

    for store in [&db.store, &other] {
        let mut leased = store.leased_domains(IntegrationType::Okta, ctxsync_core::now()).await.unwrap();
        leased.sort();
        let expected = [("acme.okta.com", "a"), ("acme.okta.com", "b"), ("globex.okta.com", "a")]
            .map(|(domain, owner)| (domain.to_owned(), owner.to_owned()));
        assert_eq!(leased, expected);
    }
}
