//! The EDR sources end to end: CrowdStrike and SentinelOne configs created (so validated) and
//! synced through the API against the fakes, their hosts listed as devices, hosts joining the
//! person their last logged-on user names, and host changes recorded as device events.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, status_json};
use crate::sync::{OWN, create_with, sync_and_wait, wait_for_runs};

pub async fn devices(app: &TestApp, config: &str) -> Vec<Value> {
    app.list_all(&format!("{OWN}/entities?filter[kind]=device&filter[config_id]={config}&page[size]=50"))
        .await
}

pub fn source_ids(entities: &[Value]) -> BTreeSet<String> {
    entities.iter().map(|e| e["attributes"]["source_id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn edr_configs_sync_their_hosts_and_hosts_join_their_last_users() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for attributes in [app.crowdstrike_attributes(), app.sentinelone_attributes(), app.okta_attributes()] {
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

/// `type entity_id field` of each of the config's events, sorted.
async fn events(app: &TestApp, config: &str) -> Vec<String> {
    let body = app.list_all(&format!("{OWN}/events?filter[config_id]={config}&page[size]=50")).await;
    let mut described: Vec<String> = body
        .iter()
        .map(|e| {
            let a = &e["attributes"];
            let field = a["field"].as_str().map(|f| format!(" {f}")).unwrap_or_default();
            format!("{} {}{field}", a["type"].as_str().unwrap(), a["entity_id"].as_str().unwrap())
        })
        .collect();
    described.sort();
    described
}

#[tokio::test]
async fn host_changes_become_device_events_after_the_baseline() {
    let app = spawn_app().await;
    // Every run after the first is full, so deleted agents are found too.
    let settings = json!({"sync_interval": "1h", "full_sync_interval": "1s"});
    let falcon = create_with(&app, app.crowdstrike_attributes(), settings.clone()).await;
    let singularity = create_with(&app, app.sentinelone_attributes(), settings).await;
    for id in [&falcon, &singularity] {
        assert_eq!(wait_for_runs(&app, id, 1).await["attributes"]["baseline"], true);
        assert_eq!(events(&app, id).await, Vec::<String>::new(), "the baseline records no events");
    }

    let hosts: Vec<String> = app.fakes.crowdstrike.snapshot().into_keys().collect();
    let [gone, contained, moved, upgraded, ..] = &hosts[..] else { panic!("a fleet: {hosts:?}") };
    let added = app.fakes.crowdstrike.mutate(|t| {
        let handle = t.handles()[2].clone();
        assert!(t.hide_host(gone) && t.contain(contained) && t.set_last_user(moved, &handle));
        assert!(t.update_os(upgraded, "26100"));
        t.add_host("ACME-LT-7001", &handle)
    });
    let agents: Vec<String> = app.fakes.sentinelone.snapshot().into_keys().collect();
    let [deleted, quarantined, reused, patched, ..] = &agents[..] else { panic!("a fleet: {agents:?}") };
    let installed = app.fakes.sentinelone.mutate(|t| {
        t.delete_agent(deleted);
        t.quarantine(quarantined);
        t.set_last_user(reused, "ACME\\grace.hopper");
        t.update_agent(patched, |a| a.os_revision = "26100".to_string());
        t.add_agent("ACME-DT-7001", "")
    });
    app.clock.advance(Duration::from_secs(1));
    for id in [&falcon, &singularity] {
        let run = sync_and_wait(&app, id).await;
        assert_eq!(run["attributes"]["status"], "succeeded", "{run}");
    }

    let mut want = vec![
        format!("device.created {added}"),
        format!("device.deleted {gone}"),
        format!("device.containment_changed {contained} containment"),
        format!("device.attribute_changed {moved} last_user"),
        format!("device.attribute_changed {upgraded} os_build"),
    ];
    want.sort();
    assert_eq!(events(&app, &falcon).await, want);
    let mut want = vec![
        format!("device.created {installed}"),
        format!("device.deleted {deleted}"),
        format!("device.containment_changed {quarantined} containment"),
        format!("device.attribute_changed {reused} last_user"),
        format!("device.attribute_changed {patched} os_version"),
    ];
    want.sort();
    assert_eq!(events(&app, &singularity).await, want);
}

#[tokio::test]
async fn windows_hosts_join_the_entra_user_their_logon_sid_names() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for attributes in [app.crowdstrike_attributes(), app.entra_attributes()] {
        ids.push(app.create_ok(attributes).await["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        assert_eq!(wait_for_runs(&app, id, 1).await["attributes"]["status"], "succeeded");
    }
    // A Windows host whose last user's AD account Entra ID syncs: ground truth by SID.
    let synced: Vec<(String, String, String)> = app
        .fakes
        .entra
        .snapshot()
        .users
        .iter()
        .filter_map(|(id, u)| {
            let sid = u["onPremisesSecurityIdentifier"].as_str()?;
            Some((id.clone(), sid.to_string(), u["onPremisesSamAccountName"].as_str()?.to_string()))
        })
        .collect();
    let hidden = app.fakes.crowdstrike.hidden();
    let (aid, user, sid, sam) = app
        .fakes
        .crowdstrike
        .snapshot()
        .into_iter()
        .filter(|(aid, _)| !hidden.contains(aid))
        .find_map(|(aid, host)| {
            let sid = host["last_login_user_sid"].as_str()?;
            let (user, _, sam) = synced.iter().find(|(_, s, _)| s == sid)?;
            Some((aid, user.clone(), sid.to_string(), sam.clone()))
        })
        .expect("a host last used by a synced user");

    for identifier in [sid.as_str(), sam.as_str()] {
        let path = format!("{OWN}/persons?identifier={identifier}");
        let (_, body) = status_json(app.request(Method::GET, &path, None).await).await;
        let person = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                p["attributes"]["accounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["source_id"] == user.as_str())
            })
            .unwrap_or_else(|| panic!("{identifier} finds the user: {body}"));
        let link = person["attributes"]["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| {
                let device = format!(":device:{aid}");
                l["reason"] == "last_logon" && l["from"].as_str().is_some_and(|f| f.ends_with(&device))
            })
            .unwrap_or_else(|| panic!("{identifier}: the host {aid} joins by its last logon: {person}"));
        let evidence = link["evidence"].as_str().unwrap();
        assert!(
            evidence.contains(&sid) && evidence.contains(&format!("\\{}", sam.to_lowercase())),
            "{evidence}"
        );
    }
}
