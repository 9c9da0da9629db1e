//! The EDR sources end to end: CrowdStrike and SentinelOne configs created (so validated) and
//! synced through the API against the fakes, their hosts listed as devices, and hosts joining the
//! person their last logged-on user names.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, status_json};
use crate::sync::{OWN, wait_for_runs};

fn crowdstrike(app: &TestApp) -> Value {
    json!({
        "integration_type": "CROWDSTRIKE",
        "name": "Falcon",
        "domain": app.fakes.crowdstrike.domain(),
        "secrets": {"client_id": app.fakes.crowdstrike.client_id(), "client_secret": app.fakes.crowdstrike.client_secret()},
    })
}

fn sentinelone(app: &TestApp) -> Value {
    json!({
        "integration_type": "SENTINELONE",
        "name": "Singularity",
        "domain": app.fakes.sentinelone.domain(),
        "secrets": {"api_token": app.fakes.sentinelone.api_token()},
    })
}

async fn devices(app: &TestApp, config: &str) -> Vec<Value> {
    app.list_all(&format!("{OWN}/entities?filter[kind]=device&filter[config_id]={config}&page[size]=50"))
        .await
}

fn source_ids(entities: &[Value]) -> BTreeSet<String> {
    entities.iter().map(|e| e["attributes"]["source_id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn edr_configs_sync_their_hosts_and_hosts_join_their_last_users() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for attributes in [crowdstrike(&app), sentinelone(&app), app.okta_attributes()] {
        ids.push(app.create_ok(attributes).await["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let run = wait_for_runs(&app, id, 1).await;
        assert_eq!(run["attributes"]["status"], "succeeded", "{run}");
    }

    let hidden = app.fakes.crowdstrike.hidden();
    let listed: BTreeSet<String> =
        app.fakes.crowdstrike.snapshot().into_keys().filter(|aid| !hidden.contains(aid)).collect();
    let hosts = devices(&app, &ids[0]).await;
    assert_eq!(source_ids(&hosts), listed, "every host the cloud lists, none it hides");
    let agents = devices(&app, &ids[1]).await;
    assert_eq!(source_ids(&agents), app.fakes.sentinelone.snapshot().into_keys().collect());

    // Hosts whose last user is an Okta sign-in name join that user's person, and no other.
    let mut joined = 0;
    for host in &hosts {
        let Some(user) = host["attributes"]["last_user"].as_str().filter(|u| u.ends_with("@acme.com")) else {
            continue;
        };
        let aid = host["attributes"]["source_id"].as_str().unwrap();
        let path = format!("{OWN}/persons?identifier={user}");
        let (_, body) = status_json(app.request(Method::GET, &path, None).await).await;
        for person in body["data"].as_array().unwrap() {
            let attributes = &person["attributes"];
            let has_host = attributes["devices"].as_array().unwrap().iter().any(|d| d["source_id"] == aid);
            if !has_host {
                continue;
            }
            let logins: Vec<&str> = attributes["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|a| a["login"].as_str())
                .collect();
            assert!(
                logins.iter().any(|l| l.eq_ignore_ascii_case(user)),
                "{aid} joined {logins:?} for {user}"
            );
            let reasons: Vec<&str> =
                attributes["links"].as_array().unwrap().iter().filter_map(|l| l["reason"].as_str()).collect();
            assert!(reasons.contains(&"last_logon"), "{reasons:?}");
            joined += 1;
        }
    }
    assert!(joined > 0, "no host joined the person its last user names");
}
