//! The sync engine end to end: configs created through the API are synced by the scheduler from
//! the fakes into the entity API, and keep up with the tenant.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, errors, spawn_app, status_json};
use ctxsync_fakes::FaultKnobs;

pub(crate) const OWN: &str = "/api/v2/ctxsync";

/// Asks for a sync now and follows the run it answers with until it ends; returns it.
pub(crate) async fn sync_and_wait(app: &TestApp, id: &str) -> Value {
    let response = app.request(Method::POST, &format!("{OWN}/integration_configs/{id}/sync"), None).await;
    let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_string());
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run_id = body["data"]["id"].as_str().unwrap();
    assert_eq!(location, Some(format!("{OWN}/integration_configs/{id}/sync_runs/{run_id}")));
    wait_for_run(app, &location.unwrap()).await
}

/// Follows a run's `Location` until the run has started and ended; returns it.
pub(crate) async fn wait_for_run(app: &TestApp, location: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = status_json(app.request(Method::GET, location, None).await).await;
        if status == StatusCode::OK && body["data"]["attributes"]["status"] != "running" {
            return body["data"].clone();
        }
        assert!(Instant::now() < deadline, "the run did not end in time: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the config has `count` finished runs and returns the newest.
pub(crate) async fn wait_for_runs(app: &TestApp, id: &str, count: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = status_json(
            app.request(Method::GET, &format!("{OWN}/integration_configs/{id}/sync_runs"), None).await,
        )
        .await;
        let runs = body["data"].as_array().cloned().unwrap_or_default();
        let finished: Vec<&Value> = runs.iter().filter(|r| r["attributes"]["status"] != "running").collect();
        if finished.len() >= count {
            return finished[0].clone();
        }
        assert!(Instant::now() < deadline, "no run finished in time: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every entity of a kind the API lists for the config, following the cursor.
async fn all_entities(app: &TestApp, config: &str, kind: &str) -> Vec<Value> {
    app.list_all(&format!("{OWN}/entities?filter[kind]={kind}&filter[config_id]={config}&page[size]=7")).await
}

fn source_ids(entities: &[Value]) -> BTreeSet<String> {
    entities.iter().map(|e| e["attributes"]["source_id"].as_str().unwrap().to_string()).collect()
}

async fn members_of(app: &TestApp, group: &str) -> BTreeSet<String> {
    let (_, body) = status_json(
        app.request(Method::GET, &format!("{OWN}/entities?filter[member_of]={group}&page[size]=1000"), None)
            .await,
    )
    .await;
    source_ids(body["data"].as_array().unwrap())
}

pub(crate) async fn create_with(app: &TestApp, mut attrs: Value, settings: Value) -> String {
    attrs["settings"] = settings;
    app.create_ok(attrs).await["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_okta_config_syncs_the_tenant_exactly_and_follows_its_changes() {
    let app = spawn_app().await;
    let id =
        create_with(&app, app.okta_attributes(), json!({"sync_interval": "1h", "full_sync_interval": "1s"}))
            .await;
    let run = wait_for_runs(&app, &id, 1).await;
    assert_eq!(run["attributes"]["status"], "succeeded", "{run}");
    assert_eq!(run["attributes"]["kind"], "full");

    let truth = app.fakes.okta.snapshot();
    let users = all_entities(&app, &id, "user").await;
    assert_eq!(source_ids(&users), truth.users.keys().cloned().collect());
    for user in &users {
        let raw = &truth.users[user["attributes"]["source_id"].as_str().unwrap()];
        assert_eq!(user["attributes"]["raw"], *raw, "the raw object is kept as the source served it");
        assert_eq!(user["attributes"]["login"], raw["profile"]["login"]);
    }
    assert_eq!(source_ids(&all_entities(&app, &id, "group").await), truth.groups.keys().cloned().collect());
    let group = truth.groups.keys().next().unwrap();
    let expected: BTreeSet<String> =
        truth.user_members.iter().filter(|(g, _)| g == group).map(|(_, u)| u.clone()).collect();
    assert_eq!(members_of(&app, group).await, expected);
    assert_eq!(run["attributes"]["counts"]["user"]["created"], truth.users.len());

    // Change the tenant: one new, one suspended, one deleted user, one membership removed.
    let (victim, suspended) = {
        // From the end of the list: the first users are the admins whose tokens the tests use.
        let mut ids = truth.users.keys().rev();
        (ids.nth(3).unwrap().clone(), ids.nth(2).unwrap().clone())
    };
    let member = expected.iter().next().unwrap().clone();
    let added = app.fakes.okta.mutate(|t| {
        let added = t.add_user("Zed", "Newcomer");
        t.suspend_user(&suspended);
        t.delete_user(&victim);
        t.remove_member(group, &member);
        added
    });
    // Past the full_sync_interval: the next run is full, so it finds the deletion.
    app.clock.advance(Duration::from_secs(1));
    let run = sync_and_wait(&app, &id).await;
    assert_eq!(run["attributes"]["status"], "succeeded", "{run}");
    let users = source_ids(&all_entities(&app, &id, "user").await);
    assert!(users.contains(&added) && !users.contains(&victim));
    let (_, got) = status_json(
        app.request(Method::GET, &format!("{OWN}/integration_configs/{id}/entities/user/{suspended}"), None)
            .await,
    )
    .await;
    assert_eq!(got["data"]["attributes"]["status"], "suspended");
    assert!(!members_of(&app, group).await.contains(&member));
    assert_eq!(run["attributes"]["counts"]["user"]["deleted"], 1);
    assert_eq!(run["attributes"]["counts"]["user"]["created"], 1);
}

#[tokio::test]
async fn google_and_entra_configs_sync_their_tenants_exactly() {
    let app = spawn_app().await;
    let google = create_with(&app, app.google_attributes(), json!({})).await;
    let entra = create_with(&app, app.entra_attributes(), json!({})).await;
    for id in [&google, &entra] {
        let run = wait_for_runs(&app, id, 1).await;
        assert_eq!(run["attributes"]["status"], "succeeded", "{run}");
    }
    let truth = app.fakes.google.snapshot();
    assert_eq!(source_ids(&all_entities(&app, &google, "user").await), truth.users.keys().cloned().collect());
    assert_eq!(
        source_ids(&all_entities(&app, &google, "group").await),
        truth.groups.keys().cloned().collect()
    );
    let truth = app.fakes.entra.snapshot();
    assert_eq!(source_ids(&all_entities(&app, &entra, "user").await), truth.users.keys().cloned().collect());
    assert_eq!(
        source_ids(&all_entities(&app, &entra, "device").await),
        truth.devices.keys().cloned().collect()
    );
}

#[tokio::test]
async fn sync_now_names_its_run_and_refuses_while_one_is_in_progress() {
    let app = spawn_app().await;
    let id = create_with(&app, app.okta_attributes(), json!({})).await;
    wait_for_runs(&app, &id, 1).await;
    app.fakes.okta.slow_pages(Duration::from_millis(200));
    let response = app.request(Method::POST, &format!("{OWN}/integration_configs/{id}/sync"), None).await;
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["data"]["attributes"]["status"], "queued");
    let run_id = body["data"]["id"].as_str().unwrap().to_string();

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, run) = status_json(app.request(Method::GET, &location, None).await).await;
        if status == StatusCode::OK {
            assert_eq!(run["data"]["attributes"]["status"], "running", "{run}");
            break;
        }
        assert_eq!(status, StatusCode::NOT_FOUND, "until a worker starts it");
        assert!(Instant::now() < deadline, "the requested run did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) =
        status_json(app.request(Method::POST, &format!("{OWN}/integration_configs/{id}/sync"), None).await)
            .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(errors(&body)[0].contains(&run_id) && errors(&body)[0].contains(&location), "{body}");

    let run = wait_for_run(&app, &location).await;
    assert_eq!(
        (run["id"].as_str(), run["attributes"]["status"].as_str()),
        (Some(&*run_id), Some("succeeded"))
    );
}

/// A group whose member listing Okta refuses (403) is synced without its members: the run
/// succeeds, keeps the memberships it stored, and the rest converges.
#[tokio::test]
async fn a_group_whose_members_are_refused_keeps_its_memberships() {
    let app = spawn_app().await;
    let id = create_with(&app, app.okta_attributes(), json!({"full_sync_interval": "1s"})).await;
    wait_for_runs(&app, &id, 1).await;
    let truth = app.fakes.okta.snapshot();
    let refused = truth.groups.keys().next().unwrap().clone();
    let kept = members_of(&app, &refused).await;
    assert!(!kept.is_empty());
    app.fakes.okta.refuse_group_members(&refused);
    let other = truth.groups.keys().nth(1).unwrap().clone();
    let leaving = members_of(&app, &other).await.into_iter().next().unwrap();
    app.fakes.okta.mutate(|t| t.remove_member(&other, &leaving));
    app.clock.advance(Duration::from_secs(1));

    let run = sync_and_wait(&app, &id).await;
    assert_eq!(run["attributes"]["kind"], "full");
    assert_eq!(run["attributes"]["status"], "succeeded", "{run}");
    assert_eq!(members_of(&app, &refused).await, kept, "not seeing them says nothing");
    assert!(!members_of(&app, &other).await.contains(&leaving), "the rest converges");
}

#[tokio::test]
async fn rejected_credentials_mid_life_make_the_config_invalid_and_stop_its_syncs() {
    let app = spawn_app().await;
    let id = create_with(&app, app.okta_attributes(), json!({})).await;
    wait_for_runs(&app, &id, 1).await;
    app.fakes.okta.revoke_all_tokens();
    let run = sync_and_wait(&app, &id).await;
    assert_eq!(run["attributes"]["status"], "failed");
    assert!(run["attributes"]["error"].as_str().unwrap().contains("E0000011"), "{run}");
    let (_, config) = status_json(app.get(&id).await).await;
    assert_eq!(config["data"]["attributes"]["state"], "invalid");
    let (status, body) =
        status_json(app.request(Method::POST, &format!("{OWN}/integration_configs/{id}/sync"), None).await)
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors(&body)[0].contains("update its secrets"));
}

#[tokio::test]
async fn deleting_a_config_deletes_its_entities_and_runs() {
    let app = spawn_app().await;
    let id = create_with(&app, app.okta_attributes(), json!({})).await;
    wait_for_runs(&app, &id, 1).await;
    assert!(!all_entities(&app, &id, "user").await.is_empty());
    app.request(Method::DELETE, &format!("{}/{id}", crate::helpers::BASE), None).await;
    assert!(all_entities(&app, &id, "user").await.is_empty());
    let (status, _) = status_json(
        app.request(Method::GET, &format!("{OWN}/integration_configs/{id}/sync_runs"), None).await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lookup_finds_people_by_email_across_configs() {
    let app = spawn_app().await;
    let id = create_with(&app, app.okta_attributes(), json!({})).await;
    wait_for_runs(&app, &id, 1).await;
    let truth = app.fakes.okta.snapshot();
    let (uid, user) = truth.users.iter().next().unwrap();
    let email = user["profile"]["email"].as_str().unwrap().to_uppercase();
    let (status, body) = status_json(
        app.request(
            Method::POST,
            &format!("{OWN}/entities/lookup"),
            Some(json!({"identifiers": [email, "nobody@nowhere.test"]})),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["entities"][0]["attributes"]["source_id"], uid.as_str());
    assert_eq!(body["data"][1]["entities"], json!([]));
    let read_only = app.create_keys("default", "integrations_read").await;
    let response = app
        .request_as(&read_only.api_key, &read_only.app_key, Method::GET, &format!("{OWN}/entities"), None)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "entity reads need siem_entities_read");
}

#[tokio::test]
async fn an_entra_config_follows_changes_incrementally_through_delta_links() {
    let app = spawn_app().await;
    let id = create_with(&app, app.entra_attributes(), json!({})).await;
    assert_eq!(wait_for_runs(&app, &id, 1).await["attributes"]["kind"], "full");
    let truth = app.fakes.entra.snapshot();
    let mut users = truth.users.keys().rev();
    let (gone, disabled) = (users.next().unwrap().clone(), users.next().unwrap().clone());
    let (group, _, member) = truth.memberships.iter().next().unwrap().clone();
    let added = app.fakes.entra.mutate(|t| {
        t.delete_user(&gone);
        t.disable_user(&disabled);
        t.remove_member(&group, &member);
        t.add_user("Ada", "Newcomer")
    });

    let run = sync_and_wait(&app, &id).await;
    assert_eq!(run["attributes"]["kind"], "incremental", "{run}");
    assert_eq!(run["attributes"]["status"], "succeeded", "{run}");
    assert_eq!(run["attributes"]["counts"]["user"]["deleted"], 1);
    let stored = source_ids(&all_entities(&app, &id, "user").await);
    assert_eq!(
        stored,
        app.fakes.entra.snapshot().users.keys().cloned().collect(),
        "exactly the tenant again"
    );
    assert!(stored.contains(&added) && !stored.contains(&gone));
    let (_, user) = status_json(
        app.request(Method::GET, &format!("{OWN}/integration_configs/{id}/entities/user/{disabled}"), None)
            .await,
    )
    .await;
    assert_eq!(user["data"]["attributes"]["status"], "suspended");
    assert!(!members_of(&app, &group).await.contains(&member));
}
