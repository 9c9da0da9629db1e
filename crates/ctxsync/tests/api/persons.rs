//! Identity resolution end to end: the three fakes of one seed describe one organisation (the
//! handle, an address's local part, is the ground truth of who is who, with planted traps); the
//! service syncs all three and every account must resolve to exactly the accounts of its handle
//! that share a key with it: no false links, and the expected true ones.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ctxsync_fakes::TenantSpec;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, errors, spawn_app_with, status_json};

const OWN: &str = "/api/v2/ctxsync";

/// An app whose fakes serve the organisation of `seed`, with Okta, Google and Entra configs
/// synced once.
async fn synced(seed: u64) -> TestApp {
    let tenant = TenantSpec { seed, users: 40, groups: 6, devices: 8 };
    let app = spawn_app_with(Options { tenant, ..Options::default() }).await;
    let mut ids = Vec::new();
    for attributes in [app.okta_attributes(), app.google_attributes(), app.entra_attributes()] {
        ids.push(app.create_ok(attributes).await["id"].as_str().unwrap().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in ids {
        loop {
            let path = format!("{OWN}/integration_configs/{id}/sync_runs");
            let (_, body) = status_json(app.request(Method::GET, &path, None).await).await;
            let runs = body["data"].as_array().cloned().unwrap_or_default();
            if let Some(run) = runs.iter().find(|r| r["attributes"]["status"] != "running") {
                assert_eq!(run["attributes"]["status"], "succeeded", "{run}");
                break;
            }
            assert!(Instant::now() < deadline, "no run finished in time: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    app
}

/// Every user account of the org, from the entity API.
async fn all_users(app: &TestApp) -> Vec<Value> {
    app.list_all(&format!("{OWN}/entities?filter[kind]=user&page[size]=1000")).await
}

/// Who an account really is: the local part of its sign-in name (Entra guests sign in as
/// `handle_fabrikam.com#EXT#@…`).
fn handle(login: &str) -> String {
    let local = login.split('@').next().unwrap();
    local.split("_fabrikam.com#EXT#").next().unwrap().to_lowercase()
}

fn is_guest(login: &str) -> bool {
    login.contains("#EXT#")
}

async fn persons(app: &TestApp, identifiers: &[String]) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    for chunk in identifiers.chunks(100) {
        let (status, body) = status_json(
            app.request(Method::POST, &format!("{OWN}/persons/lookup"), Some(json!({"identifiers": chunk})))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for result in body["data"].as_array().unwrap() {
            let persons = result["persons"].as_array().unwrap().clone();
            out.push((result["identifier"].as_str().unwrap().to_string(), persons));
        }
    }
    out
}

fn accounts(person: &Value) -> Vec<&Value> {
    person["attributes"]["accounts"].as_array().unwrap().iter().collect()
}

fn handles(person: &Value) -> BTreeSet<String> {
    accounts(person).iter().map(|a| handle(a["login"].as_str().unwrap())).collect()
}

fn links(person: &Value) -> Vec<&Value> {
    person["attributes"]["links"].as_array().unwrap().iter().collect()
}

#[tokio::test]
async fn generated_organisations_resolve_with_no_false_links_and_every_expected_one() {
    for seed in [42, 7, 2026] {
        let app = synced(seed).await;
        let users = all_users(&app).await;
        // Expected: the non-guest accounts of a handle are one person (every source shares a key
        // for them: the employee id, or an address, or the sign-in name); guests share none.
        let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for u in &users {
            let login = u["attributes"]["login"].as_str().unwrap();
            if !is_guest(login) {
                expected.entry(handle(login)).or_default().insert(u["id"].as_str().unwrap().to_string());
            }
        }
        let ids: Vec<String> =
            users.iter().map(|u| u["attributes"]["source_id"].as_str().unwrap().to_string()).collect();
        let mut reasons = BTreeSet::new();
        for (u, (source_id, found)) in users.iter().zip(persons(&app, &ids).await) {
            assert_eq!(found.len(), 1, "seed {seed}: {source_id} is one person: {found:#?}");
            let person = &found[0];
            let login = u["attributes"]["login"].as_str().unwrap();
            assert_eq!(
                handles(person),
                BTreeSet::from([handle(login)]),
                "seed {seed}: a false link: {person:#}"
            );
            let got: BTreeSet<String> =
                accounts(person).iter().map(|a| a["id"].as_str().unwrap().to_string()).collect();
            if !is_guest(login) {
                assert_eq!(got, expected[&handle(login)], "seed {seed}: a missed link: {person:#}");
            }
            assert!(links(person).len() + 1 >= got.len(), "every account but one is reached by a link");
            // Devices join their owner's person through `device_owner` links.
            let devices: BTreeSet<String> = person["attributes"]["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_string())
                .collect();
            for link in links(person) {
                let reached = |end: &str| got.contains(end) || devices.contains(end);
                assert!(reached(link["from"].as_str().unwrap()) && reached(link["to"].as_str().unwrap()));
                assert!(
                    !link["why"].as_str().unwrap().is_empty()
                        && !link["evidence"].as_str().unwrap().is_empty()
                );
                reasons.insert(link["reason"].as_str().unwrap().to_string());
            }
        }
        let want = ["same_email", "same_employee_id", "upn_alias"].map(String::from);
        assert!(want.iter().all(|r| reasons.contains(r)), "seed {seed}: {reasons:?}");

        // Traps: the same display name on two people; a shared mailbox; a reused address.
        let mut by_name: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for u in &users {
            let a = &u["attributes"];
            if let Some(name) = a["display_name"].as_str() {
                by_name
                    .entry((a["config_id"].to_string(), name.to_string()))
                    .or_default()
                    .insert(handle(a["login"].as_str().unwrap()));
            }
        }
        assert!(by_name.values().any(|h| h.len() > 1), "seed {seed}: a namesake exists, and was not linked");
        let helpdesk = persons(&app, &["HelpDesk@acme.com".to_string()]).await.remove(0).1;
        assert!(helpdesk.len() >= 3, "seed {seed}: the shared mailbox's holders stay apart: {helpdesk:#?}");
        assert!(helpdesk.iter().flat_map(|p| links(p)).all(|l| l["evidence"] != "helpdesk@acme.com"));
        let former: Vec<String> = users
            .iter()
            .flat_map(|u| u["attributes"]["emails"].as_array().unwrap().iter())
            .filter_map(Value::as_str)
            .filter(|e| e.starts_with("former."))
            .map(String::from)
            .collect();
        let reused = persons(&app, &former[..1]).await.remove(0).1;
        assert_eq!(
            reused.len(),
            2,
            "seed {seed}: old and new holder of {} are two people: {reused:#?}",
            former[0]
        );
    }
}

#[tokio::test]
async fn a_person_carries_groups_roles_and_answers_to_any_identifier() {
    let app = synced(42).await;
    let admin = app.fakes.google.admin_email();
    let (status, body) = status_json(
        app.request(Method::GET, &format!("{OWN}/persons?identifier={}", admin.to_uppercase()), None).await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let person = &body["data"][0];
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(person["type"], "person");
    let types: BTreeSet<&str> =
        accounts(person).iter().map(|a| a["integration_type"].as_str().unwrap()).collect();
    assert_eq!(types, BTreeSet::from(["ENTRA_ID", "GOOGLE_WORKSPACE", "OKTA"]));
    assert!(accounts(person).iter().all(|a| !a["groups"].as_array().unwrap().is_empty()), "{person:#}");
    assert!(accounts(person).iter().all(|a| !a["admin_roles"].as_array().unwrap().is_empty()), "{person:#}");
    assert_eq!(person["attributes"]["truncated"], false);

    let employee_id = accounts(person)[0]["employee_id"].as_str().unwrap().to_string();
    let (_, by_employee_id) =
        status_json(app.request(Method::GET, &format!("{OWN}/persons?identifier={employee_id}"), None).await)
            .await;
    assert_eq!(
        by_employee_id["data"][0]["attributes"], person["attributes"],
        "the same person by employee id"
    );

    let (status, body) = status_json(
        app.request(Method::GET, &format!("{OWN}/persons?identifier=nobody@nowhere.test"), None).await,
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"data": []})));
    let (status, body) = status_json(app.request(Method::GET, &format!("{OWN}/persons"), None).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(errors(&body), ["identifier: is required"]);
    let (status, _) = status_json(
        app.request(Method::POST, &format!("{OWN}/persons/lookup"), Some(json!({"identifiers": []}))).await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let read_only = app.create_keys("default", "integrations_read").await;
    let response = app
        .request_as(
            &read_only.api_key,
            &read_only.app_key,
            Method::GET,
            &format!("{OWN}/persons?identifier={admin}"),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "persons need siem_entities_read");
}

#[tokio::test]
async fn a_person_found_by_an_entra_address_carries_the_devices_entra_says_they_own() {
    let app = synced(42).await;
    let snapshot = app.fakes.entra.snapshot();
    // An owner with a mailbox, and every device Entra names them the registered owner of.
    let (owner, mail) = snapshot
        .device_owners
        .values()
        .find_map(|u| Some((u.clone(), snapshot.users[u]["mail"].as_str()?.to_string())))
        .expect("an owner with a mailbox");
    let owned: BTreeSet<&String> =
        snapshot.device_owners.iter().filter(|(_, u)| **u == owner).map(|(d, _)| d).collect();

    let (status, body) =
        status_json(app.request(Method::GET, &format!("{OWN}/persons?identifier={mail}"), None).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let person = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| accounts(p).iter().any(|a| a["source_id"] == owner.as_str()))
        .unwrap_or_else(|| panic!("{owner} is among the persons of {mail}: {body:#}"));
    let account = accounts(person)
        .into_iter()
        .find(|a| a["source_id"] == owner.as_str() && a["integration_type"] == "ENTRA_ID")
        .unwrap();
    let account_id = account["id"].as_str().unwrap();

    let devices: BTreeMap<&str, &Value> = person["attributes"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["owner"] == account_id)
        .map(|d| (d["source_id"].as_str().unwrap(), d))
        .collect();
    assert_eq!(devices.keys().copied().collect::<BTreeSet<_>>(), owned.iter().map(|d| d.as_str()).collect());
    for (source_id, device) in &devices {
        assert_eq!(device["name"], snapshot.devices[*source_id]["displayName"]);
        let device_id = device["id"].as_str().unwrap();
        let link = links(person)
            .into_iter()
            .find(|l| l["reason"] == "device_owner" && (l["from"] == device_id || l["to"] == device_id))
            .unwrap_or_else(|| panic!("{device_id} is linked as owned: {person:#}"));
        let ends = BTreeSet::from([link["from"].as_str().unwrap(), link["to"].as_str().unwrap()]);
        assert_eq!(ends, BTreeSet::from([device_id, account_id]));
        assert_eq!(link["evidence"], owner.as_str());
    }
}
