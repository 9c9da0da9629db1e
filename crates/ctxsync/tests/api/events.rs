//! Change events and entity history on the API: the baseline run records none, a later run's
//! changes are listed with filters and cursors, and history answers as of a past time.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cli::BIN;
use crate::helpers::{MASTER_KEY, TestApp, errors, spawn_app, status_json};
use crate::sync::{OWN, create_with, sync_and_wait, wait_for_runs};

async fn get(app: &TestApp, path: &str) -> Value {
    let (status, body) = status_json(app.request(Method::GET, path, None).await).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// `type entity_id related_id` of each event.
fn described(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let a = &e["attributes"];
            let related = a["related_id"].as_str().map(|r| format!(" {r}")).unwrap_or_default();
            format!("{} {}{related}", a["type"].as_str().unwrap(), a["entity_id"].as_str().unwrap())
        })
        .collect()
}

fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()
}

#[tokio::test]
async fn events_and_history_follow_the_tenant_after_the_baseline() {
    let app = spawn_app().await;
    let id =
        create_with(&app, app.okta_attributes(), json!({"sync_interval": "1h", "full_sync_interval": "1s"}))
            .await;
    let first = wait_for_runs(&app, &id, 1).await;
    assert_eq!(first["attributes"]["baseline"], true, "{first}");
    let body = get(&app, &format!("{OWN}/events?filter[config_id]={id}")).await;
    assert_eq!(body["data"], json!([]), "the baseline records no events");

    let truth = app.fakes.okta.snapshot();
    let mut plain = truth.users.keys().rev().filter(|u| !truth.roles.contains_key(*u));
    let (suspended, admin) = (plain.next().unwrap().clone(), plain.next().unwrap().clone());
    let (group, member) = truth.user_members.iter().next().unwrap().clone();
    let before = now();
    app.clock.advance(Duration::from_secs(1));
    app.fakes.okta.mutate(|t| {
        t.suspend_user(&suspended);
        t.assign_role(&admin, "SUPER_ADMIN");
        t.remove_member(&group, &member);
    });
    let run = sync_and_wait(&app, &id).await;
    assert_eq!(run["attributes"]["baseline"], false, "{run}");

    let body = get(&app, &format!("{OWN}/events?filter[config_id]={id}")).await;
    let mut page_events = described(&body)[..2].to_vec();
    page_events.sort();
    let mut expected =
        vec![format!("admin_role.granted {admin} SUPER_ADMIN"), format!("user.status_changed {suspended}")];
    expected.sort();
    assert_eq!(page_events, expected, "{body}");
    assert_eq!(described(&body)[2..], [format!("membership.removed {group} {member}")], "{body}");
    let status =
        body["data"].as_array().unwrap().iter().find(|e| e["attributes"]["type"] == "user.status_changed");
    let status = &status.unwrap()["attributes"];
    assert_eq!((status["old"].clone(), status["new"].clone()), (json!("active"), json!("suspended")));
    assert_eq!(status["run_id"], run["id"]);

    // Filters, and a cursor one event at a time.
    let only = get(&app, &format!("{OWN}/events?filter[type]=user.status_changed,user.deleted")).await;
    assert_eq!(described(&only), [format!("user.status_changed {suspended}")]);
    let about = get(&app, &format!("{OWN}/events?filter[entity_id]={member}")).await;
    assert_eq!(described(&about), [format!("membership.removed {group} {member}")]);
    let later = get(&app, &format!("{OWN}/events?filter[from]={}", now())).await;
    assert_eq!(later["data"], json!([]));
    let mut paged = Vec::new();
    let mut path = format!("{OWN}/events?page[size]=1");
    loop {
        let body = get(&app, &path).await;
        paged.extend(described(&body));
        match body["meta"]["page"]["next_cursor"].as_str() {
            Some(c) => path = format!("{OWN}/events?page[size]=1&page[cursor]={c}"),
            None => break,
        }
    }
    assert_eq!(paged, described(&body));

    // History: the role is open since the run; the membership ended with it.
    let history = |kind: &str, source: &str, as_of: Option<&str>| {
        let query = as_of.map(|t| format!("?as_of={t}")).unwrap_or_default();
        format!("{OWN}/integration_configs/{id}/entities/{kind}/{source}/history{query}")
    };
    let roles = get(&app, &history("user", &admin, None)).await;
    let roles = roles["data"]["attributes"]["admin_roles"].as_array().unwrap().clone();
    assert_eq!(roles.len(), 1);
    assert_eq!((roles[0]["role"].as_str(), roles[0]["valid_to"].is_null()), (Some("SUPER_ADMIN"), true));
    let then = get(&app, &history("user", &admin, Some(&before))).await;
    assert_eq!(then["data"]["attributes"]["admin_roles"], json!([]), "not an admin before the change");
    let members_then = get(&app, &history("group", &group, Some(&before))).await;
    let members_then: Vec<&str> = members_then["data"]["attributes"]["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member_id"].as_str().unwrap())
        .collect();
    assert!(members_then.contains(&member.as_str()), "a member before the change");
    let groups_now = get(&app, &history("user", &member, Some(&now()))).await;
    let groups_now = groups_now["data"]["attributes"]["memberships"].as_array().unwrap().clone();
    assert!(groups_now.iter().all(|m| m["group_id"] != group.as_str()), "no longer a member");
    let all = get(&app, &history("user", &member, None)).await;
    let ended = all["data"]["attributes"]["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["group_id"] == group.as_str())
        .cloned()
        .unwrap();
    assert!(ended["valid_to"].is_string(), "{ended}");

    // The same events from the command line, once and followed.
    let command = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("events")
            .args(["--config", &id])
            .args(args)
            .env_clear()
            .env("CTXSYNC_DATABASE_URL", &app.database.url)
            .env("CTXSYNC_MASTER_KEY", MASTER_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let once = command(&["--since", "1h"]).output().unwrap();
    assert!(once.status.success(), "{}", String::from_utf8_lossy(&once.stderr));
    let lines: Vec<Value> =
        String::from_utf8(once.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    let api_types: Vec<&str> =
        body["data"].as_array().unwrap().iter().map(|e| e["attributes"]["type"].as_str().unwrap()).collect();
    assert_eq!(types, api_types);
    let mut follow = command(&["--follow", "--poll", "100ms"]).spawn().unwrap();
    let mut out = BufReader::new(follow.stdout.take().unwrap()).lines();
    for expected in &lines {
        let line: Value = serde_json::from_str(&out.next().unwrap().unwrap()).unwrap();
        assert_eq!(line["id"], expected["id"]);
    }
    assert!(follow.try_wait().unwrap().is_none(), "--follow keeps running");
    follow.kill().unwrap();
    follow.wait().unwrap();

    // Bad input, the scope, and another org's config.
    let (status, body) =
        status_json(app.request(Method::GET, &format!("{OWN}/events?filter[type]=user.renamed"), None).await)
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors(&body)[0].contains("filter[type]"));
    let read_only = app.create_keys("default", "integrations_read").await;
    let response = app
        .request_as(&read_only.api_key, &read_only.app_key, Method::GET, &format!("{OWN}/events"), None)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "events need siem_entities_read");
    let other = app.create_keys("other", "").await;
    let response = app
        .request_as(&other.api_key, &other.app_key, Method::GET, &history("user", &admin, None), None)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response =
        app.request_as(&other.api_key, &other.app_key, Method::GET, &format!("{OWN}/events"), None).await;
    let (_, body) = status_json(response).await;
    assert_eq!(body["data"], json!([]), "orgs do not see each other's events");
}
