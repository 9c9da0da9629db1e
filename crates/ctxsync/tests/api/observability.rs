use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::Server;
use crate::helpers::{BASE, Options, envelope, spawn_app_with};
use crate::sync::wait_for_runs;

/// One sample of the text exposition: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the Prometheus text format as a scraper would; panics on a line it cannot read.
fn parse(exposition: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in exposition.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = body
                    .split("\",")
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
        };
        assert!(name.starts_with("ctxsync_"), "every metric has the ctxsync_ prefix: {line}");
        samples.push((name, labels, value));
    }
    samples
}

/// The value of the one sample named `name` whose labels include `with`.
fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(n, labels, _)| {
            n == name && with.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert!(found.len() <= 1, "{name} {with:?} matches {} samples", found.len());
    found.first().copied()
}

/// After a sync, the exposition counts the requests, the run, what it fetched and wrote and the
/// source calls, and shows the config's last success; no label holds a tenant's identifier, a
/// secret or a path a caller chose.
#[tokio::test]
async fn metrics_after_a_sync_count_what_happened_and_hold_no_identifier() {
    let app = spawn_app_with(Options { metrics: true, ..Options::default() }).await;
    let metrics = app.metrics_address.clone().unwrap();
    let (_, created) = crate::helpers::status_json(app.create(app.okta_attributes()).await).await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let run = wait_for_runs(&app, &id, 1).await;
    assert_eq!(run["attributes"]["status"], "succeeded", "{run}");
    let snapshot = app.fakes.okta.snapshot();
    // Paths and a method a caller chose, which must not become labels.
    let first_email =
        snapshot.users.values().next().unwrap()["profile"]["email"].as_str().unwrap().to_owned();
    app.request(Method::GET, &format!("/api/v2/nowhere/{first_email}"), None).await;
    app.request(Method::from_bytes(b"BREW").unwrap(), BASE, None).await;
    app.request(Method::GET, &format!("{BASE}/{id}"), None).await;

    let exposition = reqwest::get(format!("{metrics}/metrics")).await.unwrap().text().await.unwrap();
    let samples = parse(&exposition);
    let created_route = [("route", BASE), ("method", "POST"), ("status", "200")];
    assert!(value(&samples, "ctxsync_http_requests_total", &created_route) >= Some(1.0), "{exposition}");
    let by_id = format!("{BASE}/{{integration_config_id}}");
    let get = [("route", by_id.as_str()), ("method", "GET"), ("status", "200")];
    assert!(value(&samples, "ctxsync_http_requests_total", &get) >= Some(1.0));
    let latency = [("route", by_id.as_str()), ("method", "GET"), ("le", "+Inf")];
    assert!(value(&samples, "ctxsync_http_request_duration_seconds_bucket", &latency) >= Some(1.0));
    let unmatched = [("route", "unmatched"), ("method", "GET"), ("status", "404")];
    assert!(value(&samples, "ctxsync_http_requests_total", &unmatched) >= Some(1.0));
    assert!(samples.iter().any(|(_, l, _)| l.get("method").map(String::as_str) == Some("other")));

    let runs = [("integration_type", "OKTA"), ("outcome", "succeeded")];
    assert!(value(&samples, "ctxsync_sync_runs_total", &runs) >= Some(1.0));
    assert!(
        value(&samples, "ctxsync_sync_run_duration_seconds_count", &[("integration_type", "OKTA")])
            >= Some(1.0)
    );
    let users = snapshot.users.len() as f64;
    let fetched = [("integration_type", "OKTA"), ("kind", "user")];
    assert!(value(&samples, "ctxsync_entities_fetched_total", &fetched) >= Some(users));
    let written = [("integration_type", "OKTA"), ("kind", "user"), ("change", "created")];
    assert!(value(&samples, "ctxsync_entities_written_total", &written) >= Some(users));
    assert!(
        value(&samples, "ctxsync_source_requests_total", &[("source", "okta"), ("status", "2xx")])
            >= Some(1.0)
    );
    // The first request to each endpoint goes alone, so the next groups' members waited.
    assert!(
        value(&samples, "ctxsync_source_pacing_wait_seconds_count", &[("source", "okta")]) >= Some(1.0),
        "{exposition}"
    );

    let finished = time::OffsetDateTime::parse(
        run["attributes"]["finished_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let last =
        value(&samples, "ctxsync_config_last_success_timestamp_seconds", &[("config_id", &id)]).unwrap();
    assert!((last - finished.unix_timestamp_nanos() as f64 / 1e9).abs() < 0.001, "{last} vs {finished}");
    assert_eq!(value(&samples, "ctxsync_config_held_runs", &[("config_id", &id)]), Some(0.0));
    assert_eq!(value(&samples, "ctxsync_config_valid", &[("config_id", &id)]), Some(1.0));
    assert_eq!(value(&samples, "ctxsync_config_sync_interval_seconds", &[("config_id", &id)]), Some(3600.0));
    assert!(samples.iter().any(|(n, l, _)| n == "ctxsync_store_pool_connections" && l.contains_key("pool")));
    assert!(exposition.contains("# TYPE ctxsync_http_requests_total counter"));
    assert!(exposition.contains("# HELP ctxsync_sync_runs_total "));

    // Nothing the tenant or a caller chose is a label value: every one is a fixed word, a
    // number, a route template or a server-made id.
    let identifiers: Vec<String> = snapshot
        .users
        .iter()
        .flat_map(|(id, user)| [id.clone(), user["profile"]["email"].as_str().unwrap().to_owned()])
        .chain(snapshot.groups.iter().flat_map(|(id, g)| [id.clone(), g["profile"]["name"].to_string()]))
        .chain([app.fakes.okta.api_token(), app.api_key.clone(), app.app_key.clone()])
        .collect();
    for needle in &identifiers {
        assert!(!exposition.contains(needle.as_str()), "{needle} appears in the exposition");
    }
    for (name, labels, _) in &samples {
        for (key, label) in labels {
            let plain = label.chars().all(|c| c.is_ascii_alphanumeric() || "_-.+{}/".contains(c));
            assert!(plain, "{name} {key}={label:?}");
        }
    }
}

/// The processes syncing each config's tenant, which split its share of the source's limits, as
/// the store's leases show them: two workers of another process, one on each of the org's two
/// configs, count once for both; a third process makes two; none is left once they let go.
#[tokio::test]
async fn metrics_count_the_processes_syncing_each_configs_tenant() {
    let app = spawn_app_with(Options { metrics: true, ..Options::default() }).await;
    let metrics = app.metrics_address.clone().unwrap();
    let mut ids = Vec::new();
    for name in ["Okta", "Okta again"] {
        let mut attributes = app.okta_attributes();
        attributes["name"] = json!(name);
        let (_, created) = crate::helpers::status_json(app.create(attributes).await).await;
        let id = created["data"]["id"].as_str().unwrap().to_owned();
        wait_for_runs(&app, &id, 1).await;
        ids.push(id);
    }
    let store = app.store().await;
    let configs: Vec<ctxsync_core::ConfigId> = ids.iter().map(|id| id.parse().unwrap()).collect();
    for &config in &configs {
        // The worker lets go of the lease just after it records the run's end.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while store.lease(config).await.unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "the worker kept its lease");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let scrape = || async {
        let exposition = reqwest::get(format!("{metrics}/metrics")).await.unwrap().text().await.unwrap();
        let samples = parse(&exposition);
        ids.iter()
            .map(|id| value(&samples, "ctxsync_config_tenant_processes", &[("config_id", id)]))
            .collect::<Vec<_>>()
    };
    assert_eq!(scrape().await, [Some(0.0), Some(0.0)], "nothing syncs the org");

    let until = ctxsync_core::now() + time::Duration::minutes(1);
    let elsewhere = "host=elsewhere;space=1;pid=7;started=1;";
    store.acquire_lease(configs[1], &format!("{elsewhere}a"), until, None).await.unwrap().unwrap();
    assert_eq!(scrape().await, [Some(1.0), Some(1.0)], "one process syncs the org");
    store.acquire_lease(configs[0], &format!("{elsewhere}b"), until, None).await.unwrap().unwrap();
    assert_eq!(scrape().await, [Some(1.0), Some(1.0)], "two workers of one process count once");
    store.release_lease(configs[0], &format!("{elsewhere}b")).await.unwrap();
    let third = "host=third;space=1;pid=8;started=1;c";
    store.acquire_lease(configs[0], third, until, None).await.unwrap().unwrap();
    assert_eq!(scrape().await, [Some(2.0), Some(2.0)], "two processes sync the org");

    store.release_lease(configs[0], third).await.unwrap();
    store.release_lease(configs[1], &format!("{elsewhere}a")).await.unwrap();
    assert_eq!(scrape().await, [Some(0.0), Some(0.0)], "both let go");
}

/// Every response carries an X-Request-Id: a plain one the caller sent, else a new one.
#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app_with(Options::default()).await;
    let with_id = |id: &'static str| {
        app.client
            .get(format!("{}{BASE}", app.address))
            .header("DD-API-KEY", &app.api_key)
            .header("DD-APPLICATION-KEY", &app.app_key)
            .header("X-Request-Id", id)
            .send()
    };
    let echoed = with_id("lb-7f3a.42").await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "lb-7f3a.42");
    let replaced = with_id("has spaces\tand tabs").await.unwrap();
    let new = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(new).is_ok(), "{new}");
    for path in ["/healthz", "/api/v2/nowhere", BASE] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert!(response.headers().contains_key("x-request-id"), "{path}");
    }
}

/// `CTXSYNC_LOG_FORMAT=json`: every line is a JSON object; each request leaves an access line
/// with its method, route template, status, duration, org and request id; a JSON key with a
/// newline in a rejected body stays inside its line, at debug level too.
#[tokio::test]
async fn json_logs_have_an_access_line_per_request_and_no_forged_line() {
    let dir = tempfile::tempdir().unwrap();
    let (api, app_key) = ("c".repeat(32), "d".repeat(40));
    let server = Server::start(&[
        ("CTXSYNC_DATA_DIR", dir.path().display().to_string()),
        ("CTXSYNC_LOG", "debug".into()),
        ("CTXSYNC_LOG_FORMAT", "json".into()),
        ("CTXSYNC_BOOTSTRAP_API_KEY", api.clone()),
        ("CTXSYNC_BOOTSTRAP_APP_KEY", app_key.clone()),
    ]);
    let client = reqwest::Client::new();
    let forged = "x\n{\"level\":\"ERROR\",\"message\":\"forged\"}\nINFO forged";
    let response = client
        .post(format!("{}{BASE}", server.address))
        .header("DD-API-KEY", &api)
        .header("DD-APPLICATION-KEY", &app_key)
        .header("X-Request-Id", "req-forge-1")
        .json(&json!({"data": {"type": "integration_config", "attributes": {forged: 1}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let listed = client
        .get(format!("{}{BASE}", server.address))
        .header("DD-API-KEY", &api)
        .header("DD-APPLICATION-KEY", &app_key)
        .header("X-Request-Id", "req-list-1")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let lines: Vec<Value> = loop {
        let log = server.log();
        let lines: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON line: {l}")))
            .collect();
        if lines.iter().filter(|l| l["target"] == "ctxsync::access").count() >= 2 {
            break lines;
        }
        assert!(std::time::Instant::now() < deadline, "no access lines: {log}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    for line in &lines {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string() && line["target"].is_string(),
            "{line}"
        );
        assert_ne!(line["message"], "forged", "a caller forged a log line");
    }
    let access = |id: &str| {
        lines.iter().find(|l| l["target"] == "ctxsync::access" && l["request_id"] == id).cloned().unwrap()
    };
    let list = access("req-list-1");
    assert_eq!((list["level"].as_str(), list["message"].as_str()), (Some("INFO"), Some("request")));
    assert_eq!(
        (list["method"].as_str(), list["route"].as_str(), list["status"].as_u64()),
        (Some("GET"), Some(BASE), Some(200))
    );
    assert!(list["duration_ms"].as_f64().is_some(), "{list}");
    assert!(uuid::Uuid::parse_str(list["org_id"].as_str().unwrap()).is_ok(), "{list}");
    assert_eq!(access("req-forge-1")["status"], 400);
    let rejected = lines.iter().find(|l| l["message"] == "request rejected").expect("the debug line");
    assert_eq!(rejected["span"]["request_id"], "req-forge-1");
    assert!(rejected["error"].as_str().unwrap().contains(forged), "{rejected}");
}

/// The same in text: the rejected key's newline is escaped, so every line starts with a time.
#[tokio::test]
async fn text_logs_escape_what_a_caller_chose() {
    let dir = tempfile::tempdir().unwrap();
    let (api, app_key) = ("e".repeat(32), "f".repeat(40));
    let server = Server::start(&[
        ("CTXSYNC_DATA_DIR", dir.path().display().to_string()),
        ("CTXSYNC_LOG", "debug".into()),
        ("CTXSYNC_BOOTSTRAP_API_KEY", api.clone()),
        ("CTXSYNC_BOOTSTRAP_APP_KEY", app_key.clone()),
    ]);
    let response = reqwest::Client::new()
        .post(format!("{}{BASE}", server.address))
        .header("DD-API-KEY", &api)
        .header("DD-APPLICATION-KEY", &app_key)
        .json(&envelope(json!({"x\n2026-01-01T00:00:00Z ERROR forged": 1})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log().contains("request rejected") {
        assert!(std::time::Instant::now() < deadline, "no rejection line: {}", server.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = server.log();
    assert!(log.contains(r"x\n2026-01-01T00:00:00Z ERROR forged"), "{log}");
    for line in log.lines() {
        assert!(
            line.as_bytes().first().is_some_and(u8::is_ascii_digit),
            "a line that is no log entry: {line}"
        );
    }
}
