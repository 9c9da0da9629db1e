//! Plaintext secrets never leave the service: not in the database file, the log at debug level,
//! a response, or a `Debug` print.

use ctxsync_core::{IntegrationType, SecretValue};
use ctxsync_sources::Credentials;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::Server;
use crate::helpers::{BASE, envelope, spawn_app, status_json};

/// The distinctive parts of the fakes' credentials that must never show up.
fn needles(app: &crate::helpers::TestApp) -> Vec<String> {
    let key = app.fakes.google.service_account_json()["private_key"].as_str().unwrap().to_string();
    let key_line = key.lines().nth(2).unwrap().to_string();
    let wrong = app.fakes.google.service_account_with_wrong_key()["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .nth(2)
        .unwrap()
        .to_string();
    vec![app.fakes.okta.api_token(), app.fakes.entra.client_secret(), key_line, wrong]
}

fn assert_clean(haystack: &str, needles: &[String], what: &str) {
    for n in needles {
        assert!(!haystack.contains(n.as_str()), "a secret appears in {what}");
    }
}

#[tokio::test]
async fn secrets_stay_out_of_responses_the_database_and_debug_prints() {
    let app = spawn_app().await;
    let needles = needles(&app);
    let mut bodies = String::new();
    for attrs in [app.okta_attributes(), app.google_attributes(), app.entra_attributes()] {
        let (_, created) = status_json(app.create(attrs.clone()).await).await;
        let id = created["data"]["id"].as_str().unwrap().to_string();
        bodies.push_str(&created.to_string());
        let mut patch = attrs.clone();
        patch["name"] = json!("renamed");
        bodies.push_str(&status_json(app.patch(&id, patch).await).await.1.to_string());
        bodies.push_str(&status_json(app.get(&id).await).await.1.to_string());

        let t = IntegrationType::parse(attrs["integration_type"].as_str().unwrap()).unwrap();
        let secrets = SecretValue::new(attrs["secrets"].clone());
        let printed = format!("{:?} {:?}", secrets, Credentials::parse(t, &secrets).unwrap());
        assert_clean(&printed, &needles, "a Debug print");
    }
    let mut bad = app.okta_attributes();
    bad["secrets"] =
        json!({"api_token": app.fakes.okta.api_token(), "oops": app.fakes.entra.client_secret()});
    bodies.push_str(&status_json(app.create(bad).await).await.1.to_string());
    bodies.push_str(&status_json(app.request(Method::GET, BASE, None).await).await.1.to_string());
    assert_clean(&bodies, &needles, "a response");

    let db = app.database.raw_contents().await;
    assert!(db.len() > 4096, "read the database");
    assert_clean(&String::from_utf8_lossy(&db), &needles, "the database file");
    assert_clean(
        &String::from_utf8_lossy(&db),
        &[app.api_key.clone(), app.app_key.clone()],
        "the database file (keys)",
    );
}

/// The leak scan of a whole session at the most verbose level: creates, validations and the syncs
/// of three sources, every response, the OpenAPI document and the metrics exposition.
#[tokio::test]
async fn secrets_stay_out_of_the_trace_log_and_every_response() {
    let probe = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let (api, app_key) = ("a".repeat(32), "b".repeat(40));
    let mut server = Server::start(&[
        ("CTXSYNC_DATA_DIR", dir.path().display().to_string()),
        ("CTXSYNC_LOG", "trace".into()),
        ("CTXSYNC_METRICS_LISTEN", "127.0.0.1:0".into()),
        ("CTXSYNC_BOOTSTRAP_API_KEY", api.clone()),
        ("CTXSYNC_BOOTSTRAP_APP_KEY", app_key.clone()),
        ("CTXSYNC_OKTA_BASE_URL", probe.fakes.okta.base_url()),
        ("CTXSYNC_GOOGLE_TOKEN_URL", probe.fakes.google.token_url()),
        ("CTXSYNC_GOOGLE_DIRECTORY_BASE_URL", probe.fakes.google.directory_base_url()),
        ("CTXSYNC_ENTRA_LOGIN_BASE_URL", probe.fakes.entra.login_base_url()),
        ("CTXSYNC_GRAPH_BASE_URL", probe.fakes.entra.graph_base_url()),
    ]);
    let client = reqwest::Client::new();
    let send = |method: Method, path: String, body: Option<Value>| {
        let mut req = client
            .request(method, format!("{}{path}", server.address))
            .header("DD-API-KEY", &api)
            .header("DD-APPLICATION-KEY", &app_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let mut wrong = probe.google_attributes();
    wrong["secrets"]["service_account_json"] = probe.fakes.google.service_account_with_wrong_key();
    let mut responses = String::new();
    let mut created_ids = Vec::new();
    for attrs in [probe.okta_attributes(), probe.google_attributes(), probe.entra_attributes(), wrong] {
        let created = send(Method::POST, BASE.into(), Some(envelope(attrs))).await.unwrap();
        let body: Value = created.json().await.unwrap();
        responses.push_str(&body.to_string());
        if let Some(id) = body["data"]["id"].as_str() {
            let validated = send(Method::POST, format!("{BASE}/{id}/validate"), None).await.unwrap();
            responses.push_str(&validated.text().await.unwrap());
            created_ids.push(id.to_string());
        }
    }
    // A new config syncs at once: wait for each one's first run to end, so the log holds them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.log().matches("sync run finished").count() < created_ids.len() {
        assert!(std::time::Instant::now() < deadline, "the syncs did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for id in &created_ids {
        for path in [format!("{BASE}/{id}"), format!("/api/v2/ctxsync/integration_configs/{id}/sync_runs")] {
            responses.push_str(&send(Method::GET, path, None).await.unwrap().text().await.unwrap());
        }
    }
    responses.push_str(&send(Method::GET, BASE.into(), None).await.unwrap().text().await.unwrap());
    let openapi = send(Method::GET, "/api/v2/openapi.json".into(), None).await.unwrap().text().await.unwrap();
    assert!(openapi.contains("SecurityMonitoringIntegrationConfigOktaSecrets"));
    responses.push_str(&openapi);
    assert_clean(&responses, &needles(&probe), "a response or the OpenAPI document");
    let log = server.log();
    assert!(log.contains("TRACE"), "the log is at trace level");
    assert!(log.contains("config created"));
    assert_clean(&log, &needles(&probe), "the trace log");
    assert_clean(&log, &[api.clone(), app_key.clone()], "the trace log (keys)");

    let metrics = server.logged_address("serving metrics at /metrics");
    let exposition = client.get(format!("{metrics}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(exposition.contains("ctxsync_sync_runs_total"), "{exposition}");
    assert_clean(&exposition, &needles(&probe), "the metrics exposition");
    assert_clean(&exposition, &[api, app_key], "the metrics exposition (keys)");
}
