//! The mass-deletion guard and the completeness check on the API: runs that hold their
//! deletions, the review, confirm and discard routes, and the config's health.

use std::collections::BTreeSet;
use std::time::Duration;

use ctxsync_fakes::Listing;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, errors, spawn_app, status_json};
use crate::sync::{OWN, create_with, sync_and_wait, wait_for_runs};
use ctxsync_fakes::FaultKnobs;

async fn call(app: &TestApp, method: Method, path: &str) -> (StatusCode, Value) {
    status_json(app.request(method, path, None).await).await
}

async fn health(app: &TestApp, id: &str) -> Value {
    let (status, body) = call(app, Method::GET, &format!("{OWN}/integration_configs/{id}/health")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["attributes"].clone()
}

async fn stored(app: &TestApp, id: &str, kind: &str) -> BTreeSet<String> {
    app.list_all(&format!("{OWN}/entities?filter[kind]={kind}&filter[config_id]={id}&page[size]=100"))
        .await
        .iter()
        .map(|e| e["attributes"]["source_id"].as_str().unwrap().to_owned())
        .collect()
}

/// An Okta config whose every run is full, after its baseline run.
async fn synced_okta(app: &TestApp) -> String {
    let id = create_with(app, app.okta_attributes(), json!({"full_sync_interval": "1s"})).await;
    let run = wait_for_runs(app, &id, 1).await;
    assert_eq!(run["attributes"]["status"], "succeeded", "{run}");
    app.clock.advance(Duration::from_secs(1));
    id
}

fn run_path(id: &str, run: &Value, action: &str) -> String {
    format!("{OWN}/integration_configs/{id}/sync_runs/{}/{action}", run["id"].as_str().unwrap())
}

#[tokio::test]
async fn a_source_listing_no_groups_is_held_and_discarding_keeps_them() {
    let app = spawn_app().await;
    let id = synced_okta(&app).await;
    let groups = stored(&app, &id, "group").await;
    assert!(!groups.is_empty());
    assert_eq!(health(&app, &id).await["healthy"], true);

    app.fakes.okta.mutate(|t| {
        for group in &groups {
            t.delete_group(group);
        }
    });
    let run = sync_and_wait(&app, &id).await;
    let attrs = &run["attributes"];
    assert_eq!(attrs["status"], "held", "{run}");
    let reason = attrs["hold"]["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("group: all {} would be deleted", groups.len())), "{reason}");
    assert_eq!(attrs["hold"]["deletions"]["group"], groups.len());
    assert_eq!(attrs["hold"]["resolution"], Value::Null);
    assert_eq!(attrs["counts"]["group"]["deleted"].as_u64().unwrap_or(0), 0);
    assert_eq!(stored(&app, &id, "group").await, groups, "held: nothing deleted");

    let review = app.list_all(&format!("{}?page[size]=2", run_path(&id, &run, "held_deletions"))).await;
    let held_groups: BTreeSet<String> = review
        .iter()
        .filter(|d| d["attributes"]["kind"] == "group")
        .map(|d| {
            assert!(d["attributes"]["display_name"].is_string(), "{d}");
            d["attributes"]["source_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(held_groups, groups);
    assert!(
        review
            .iter()
            .any(|d| d["attributes"]["kind"] == "membership" && d["attributes"]["member_id"].is_string())
    );

    let h = health(&app, &id).await;
    assert_eq!(h["healthy"], false);
    assert_eq!(h["held_runs"], json!([run["id"]]));
    assert!(h["problems"][0].as_str().unwrap().contains("holds its deletions"), "{h}");

    let (status, body) = call(&app, Method::POST, &run_path(&id, &run, "discard_deletions")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["attributes"]["hold"]["resolution"], "discarded");
    assert_eq!(stored(&app, &id, "group").await, groups, "discarding keeps the entities");
    assert_eq!(health(&app, &id).await["held_runs"], json!([]));
    let (status, body) = call(&app, Method::POST, &run_path(&id, &run, "confirm_deletions")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(errors(&body), ["the run's held deletions were already discarded"]);
    let (_, body) = call(&app, Method::GET, &run_path(&id, &run, "held_deletions")).await;
    assert_eq!(body["data"], json!([]));
}

#[tokio::test]
async fn a_mass_deletion_waits_for_confirmation_then_is_applied_with_its_events() {
    let app = spawn_app().await;
    let id = synced_okta(&app).await;
    let users = stored(&app, &id, "user").await;
    // From the end of the list: the first users are the admins whose tokens the tests use.
    let gone: Vec<String> = users.iter().rev().take(12).cloned().collect();
    app.fakes.okta.mutate(|t| gone.iter().for_each(|u| t.delete_user(u)));

    let run = sync_and_wait(&app, &id).await;
    assert_eq!(run["attributes"]["status"], "held", "{run}");
    let reason = run["attributes"]["hold"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("mass deletion: "), "{reason}");
    assert!(reason.contains(&format!("user: 12 of {}", users.len())), "{reason}");
    assert_eq!(stored(&app, &id, "user").await, users);

    let (status, body) = call(&app, Method::POST, &run_path(&id, &run, "confirm_deletions")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let attrs = &body["data"]["attributes"];
    assert_eq!(
        (attrs["status"].as_str(), attrs["hold"]["resolution"].as_str()),
        (Some("held"), Some("confirmed"))
    );
    assert_eq!(attrs["counts"]["user"]["deleted"], 12);
    let left = stored(&app, &id, "user").await;
    assert_eq!(left.len(), users.len() - 12);
    assert!(gone.iter().all(|u| !left.contains(u)));
    let events =
        app.list_all(&format!("{OWN}/events?filter[type]=user.deleted&filter[config_id]={id}")).await;
    let deleted: BTreeSet<&str> =
        events.iter().map(|e| e["attributes"]["entity_id"].as_str().unwrap()).collect();
    assert_eq!(deleted, gone.iter().map(String::as_str).collect());

    let (status, _) = call(&app, Method::POST, &run_path(&id, &run, "discard_deletions")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let unknown =
        format!("{OWN}/integration_configs/{id}/sync_runs/{}/confirm_deletions", uuid::Uuid::new_v4());
    assert_eq!(call(&app, Method::POST, &unknown).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_guard_follows_the_config_settings() {
    let app = spawn_app().await;
    let bad = json!({"deletion_guard_percent": 150, "deletion_guard_min": "ten"});
    let mut attrs = app.okta_attributes();
    attrs["settings"] = bad;
    let (status, body) = status_json(app.create(attrs).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(errors(&body).len(), 2, "{body}");

    let id = create_with(
        &app,
        app.okta_attributes(),
        json!({"full_sync_interval": "1s", "deletion_guard_percent": 100}),
    )
    .await;
    wait_for_runs(&app, &id, 1).await;
    app.clock.advance(Duration::from_secs(1));
    let users = stored(&app, &id, "user").await;
    let gone: Vec<String> = users.iter().rev().take(12).cloned().collect();
    app.fakes.okta.mutate(|t| gone.iter().for_each(|u| t.delete_user(u)));
    let run = sync_and_wait(&app, &id).await;
    assert_eq!(run["attributes"]["status"], "succeeded", "the guard is off for this config: {run}");
    assert_eq!(run["attributes"]["counts"]["user"]["deleted"], 12);
}

#[tokio::test]
async fn an_okta_listing_that_silently_lost_a_page_of_members_is_flagged_and_held() {
    let app = spawn_app().await;
    let id = synced_okta(&app).await;
    let baseline = wait_for_runs(&app, &id, 1).await;
    let total = baseline["attributes"]["completeness"]["by_type"]["membership"].clone();
    assert_eq!(total["expected"], total["ingested"], "a whole listing matches Okta's usersCount: {baseline}");
    assert!(total["expected"].as_u64().unwrap() > 0);

    app.fakes.okta.drop_page(Listing::Members, 0);
    let run = sync_and_wait(&app, &id).await;
    let attrs = &run["attributes"];
    let tally = &attrs["completeness"]["by_type"]["membership"];
    assert_eq!(tally["expected"], total["expected"]);
    assert!(tally["ingested"].as_u64().unwrap() < tally["expected"].as_u64().unwrap(), "{run}");
    assert_eq!(attrs["status"], "held", "a short listing's deletions are not trusted: {run}");
    let reason = attrs["hold"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("incomplete listing: membership: the source reported"), "{reason}");

    let h = health(&app, &id).await;
    assert_eq!(h["healthy"], false);
    let problems: Vec<&str> = h["problems"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(problems.iter().any(|p| p.contains("does not match the source's totals")), "{problems:?}");
    assert_eq!(h["completeness"]["membership"], *tally);

    // The next full run lists everything again: it supersedes the hold, and all is well.
    app.clock.advance(Duration::from_secs(1));
    let next = sync_and_wait(&app, &id).await;
    assert_eq!(next["attributes"]["status"], "succeeded", "{next}");
    let (_, held) = call(
        &app,
        Method::GET,
        &format!("{OWN}/integration_configs/{id}/sync_runs/{}", run["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(held["data"]["attributes"]["hold"]["resolution"], "superseded");
    let h = health(&app, &id).await;
    assert_eq!(h["healthy"], true, "{h}");
}

#[tokio::test]
async fn an_entra_listing_that_silently_lost_its_users_page_is_flagged_against_graph_count() {
    let app = spawn_app().await;
    let id = create_with(&app, app.entra_attributes(), json!({"full_sync_interval": "1s"})).await;
    let baseline = wait_for_runs(&app, &id, 1).await;
    let users = app.fakes.entra.snapshot().users.len();
    assert_eq!(
        baseline["attributes"]["completeness"]["by_type"]["user"],
        json!({"expected": users, "ingested": users})
    );
    app.clock.advance(Duration::from_secs(1));

    app.fakes.entra.drop_page(Listing::Users, 0);
    let run = sync_and_wait(&app, &id).await;
    let attrs = &run["attributes"];
    assert_eq!(attrs["kind"], "full");
    let tally = &attrs["completeness"]["by_type"]["user"];
    assert_eq!(tally["expected"], users);
    assert!(tally["ingested"].as_u64().unwrap() < users as u64, "{run}");
    assert_eq!(attrs["status"], "held", "{run}");
    assert_eq!(stored(&app, &id, "user").await.len(), users, "no user deleted on a short listing");
}

#[tokio::test]
async fn a_misspelt_settings_key_is_accepted_and_named_in_the_health() {
    let app = spawn_app().await;
    let id =
        create_with(&app, app.okta_attributes(), json!({"sync_intervall": "5m", "owner": "secops"})).await;
    let h = health(&app, &id).await;
    assert_eq!(h["healthy"], false, "{h}");
    assert_eq!(
        h["problems"],
        json!(["settings.sync_intervall is not a setting ctxsync reads, so it has no effect; did you mean \
             sync_interval?"]),
        "a free-form key far from every known one (owner) is no problem"
    );

    let (status, body) = status_json(
        app.patch(&id, json!({"integration_type": "OKTA", "settings": {"sync_interval": "5m"}})).await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(health(&app, &id).await["problems"], json!([]));
}

/// A run whose worker died shows as interrupted, before and after another worker takes its lease.
#[tokio::test]
async fn health_says_when_a_run_lost_its_worker() {
    let app = spawn_app().await;
    let id = create_with(&app, app.okta_attributes(), json!({})).await;
    wait_for_runs(&app, &id, 1).await;
    let store = app.store().await;
    let config: ctxsync_core::ConfigId = id.parse().unwrap();
    // The worker lets go of the lease just after it records the run's end.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.lease(config).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "the worker kept its lease");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let expired = ctxsync_core::now() - time::Duration::seconds(1);
    store.acquire_lease(config, "gone", expired, None).await.unwrap().unwrap();
    let run = store.start_run(config, ctxsync_core::RunKind::Full, "gone").await.unwrap();

    let h = health(&app, &id).await;
    assert_eq!(h["healthy"], false);
    let problems = h["problems"].to_string();
    assert!(problems.contains(&format!("run {} was interrupted", run.id)), "{problems}");

    let later = ctxsync_core::now() + time::Duration::minutes(1);
    store.acquire_lease(config, "successor", later, None).await.unwrap().unwrap();
    store.release_lease(config, "successor").await.unwrap();
    let h = health(&app, &id).await;
    assert_eq!(h["last_run"]["id"], run.id.to_string());
    assert_eq!(h["last_run"]["attributes"]["status"], "failed");
    assert!(h["problems"][0].as_str().unwrap().starts_with("the last run failed: interrupted"), "{h}");
}
