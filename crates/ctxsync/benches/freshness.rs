//! Freshness: seconds from a change in the fake Okta, Entra ID or Google Workspace tenant to the
//! store, with push (an Event Hook delivering to the config's push endpoint; Graph change
//! notifications; Directory `users.watch` channels) and, for comparison, without (a schedule
//! only).
//!
//! `cargo bench -p ctxsync --bench freshness` (`-- --changes N`, 200 by default, for each source
//! with push; `--poll-changes N`, 20, and `--poll-interval S`, 10 seconds, for the comparison).
//! The service runs on SQLite with its production scheduler settings (a 5 s tick) and one config
//! of each fake org; push is set up as an operator would: turned on through the API, and for
//! Okta the hook created and verified through the fake Okta's Event Hooks API (Entra ID's
//! subscriptions and Google's channels are made by ctxsync itself). Each change suspends or reactivates a user in the
//! fake, and its time is measured until the entity API shows it. The target (issue 17): p95
//! under 5 s with push.

mod common;

use std::time::{Duration, Instant};

use ctxsync_fakes::{Fakes, TenantSpec};
use serde_json::{Value, json};

const BASE: &str = "/api/v2/security_monitoring/configuration/integration_config";
const OWN: &str = "/api/v2/ctxsync";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let changes = flag(&args, "--changes").unwrap_or(200).max(1);
    let poll_changes = flag(&args, "--poll-changes").unwrap_or(20);
    let poll_interval = flag(&args, "--poll-interval").unwrap_or(10).max(1);

    let fakes =
        Fakes::start_with(TenantSpec { users: 1_000, groups: 50, ..TenantSpec::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let service = common::serve(&fakes, &dir).await;
    let api = Api::new(&service);

    let okta_users: Vec<String> = fakes
        .okta
        .snapshot()
        .users
        .iter()
        .rev()
        .filter(|(_, u)| u["status"] == "ACTIVE")
        .map(|(id, _)| id.clone())
        .take(50)
        .collect();
    let okta = |user: &str, suspend: bool| {
        fakes.okta.mutate(|t| if suspend { t.suspend_user(user) } else { t.unsuspend_user(user) })
    };

    let pushed = api.config(okta_attributes(&fakes), "1h").await;
    let (url, secret) = api.enable_push(&pushed).await;
    let events = ["user.lifecycle.suspend", "user.lifecycle.unsuspend"];
    fakes.okta.register_event_hook(&url, secret.as_deref().unwrap(), &events).await;
    let took = measure(&api, &pushed, &okta_users, changes, Duration::ZERO, okta).await;
    report("Okta, push", &took);

    let entra_users: Vec<String> = fakes
        .entra
        .mutate(|t| t.users().filter(|(_, u)| u.account_enabled).map(|(id, _)| id).take(50).collect());
    let entra = |user: &str, suspend: bool| {
        fakes.entra.mutate(|t| if suspend { t.disable_user(user) } else { t.enable_user(user) })
    };
    let subscribed = api.config(entra_attributes(&fakes), "1h").await;
    api.enable_push(&subscribed).await;
    let took = measure(&api, &subscribed, &entra_users, changes, Duration::ZERO, entra).await;
    report("Entra ID, push (Graph change notifications)", &took);

    let admin = fakes.google.admin_email();
    let google_users: Vec<String> = fakes.google.mutate(|t| {
        let plain = t.users().filter(|u| !u.suspended && !u.archived && u.primary_email != admin);
        plain.map(|u| u.id().to_string()).take(50).collect()
    });
    let google = |user: &str, suspend: bool| {
        fakes.google.mutate(|t| if suspend { t.suspend_user(user) } else { t.unsuspend_user(user) })
    };
    let watched = api.config(google_attributes(&fakes), "1h").await;
    api.enable_push(&watched).await;
    let took = measure(&api, &watched, &google_users, changes, Duration::ZERO, google).await;
    report("Google Workspace, push (users.watch channels)", &took);

    if poll_changes > 0 {
        api.disable(&pushed).await;
        let polled = api.config(okta_attributes(&fakes), &format!("{poll_interval}s")).await;
        let spread = Duration::from_secs(poll_interval as u64);
        let took = measure(&api, &polled, &okta_users, poll_changes, spread, okta).await;
        report(&format!("Okta, a {poll_interval}s schedule, no push"), &took);
    }
}

fn okta_attributes(fakes: &Fakes) -> Value {
    json!({
        "integration_type": "OKTA",
        "domain": fakes.okta.domain(),
        "secrets": {"api_token": fakes.okta.api_token()},
    })
}

fn entra_attributes(fakes: &Fakes) -> Value {
    json!({
        "integration_type": "ENTRA_ID",
        "domain": fakes.entra.domain(),
        "secrets": {"client_id": fakes.entra.client_id(), "client_secret": fakes.entra.client_secret()},
    })
}

fn google_attributes(fakes: &Fakes) -> Value {
    json!({
        "integration_type": "GOOGLE_WORKSPACE",
        "domain": fakes.google.domain(),
        "secrets": {
            "service_account_json": fakes.google.service_account_json(),
            "admin_email": fakes.google.admin_email(),
        },
    })
}

/// Suspends or reactivates (`change(user, suspend)`) `changes` of `users` one after another,
/// timing each until the entity API shows it. Each change waits first for a moment spread evenly
/// over `spread`, so that changes meet a schedule at every point of its interval, as real ones do.
async fn measure(
    api: &Api,
    config: &str,
    users: &[String],
    changes: usize,
    spread: Duration,
    change: impl Fn(&str, bool),
) -> Vec<Duration> {
    let mut took = Vec::with_capacity(changes);
    for i in 0..changes {
        let user = &users[i % users.len()];
        tokio::time::sleep(spread.mul_f64((i * 7 % 10) as f64 / 10.0)).await;
        let suspend = api.status(config, user).await == "active";
        let changed = Instant::now();
        change(user, suspend);
        let want = if suspend { "suspended" } else { "active" };
        while api.status(config, user).await != want {
            assert!(changed.elapsed() < Duration::from_secs(600), "change {i} never arrived");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        took.push(changed.elapsed());
    }
    took
}

fn report(how: &str, took: &[Duration]) {
    let mut sorted = took.to_vec();
    sorted.sort();
    let p = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64();
    println!(
        "{how}: {} changes, change to store p50 {:.2} s, p95 {:.2} s, max {:.2} s (target with push: p95 <= 5 s)",
        sorted.len(),
        p(0.5),
        p(0.95),
        p(1.0)
    );
}

struct Api {
    service: String,
    http: reqwest::Client,
}

impl Api {
    fn new(service: &str) -> Api {
        let http = reqwest::Client::builder().default_headers(common::auth()).build().unwrap();
        Api { service: service.to_string(), http }
    }

    /// A config with `attributes` syncing every `interval`, once its first run is done.
    async fn config(&self, mut attributes: Value, interval: &str) -> String {
        attributes["name"] = json!(format!("every {interval}"));
        attributes["settings"] = json!({"sync_interval": interval});
        let body = json!({"data": {"type": "integration_config", "attributes": attributes}});
        let created: Value = self
            .http
            .post(format!("{}{BASE}", self.service))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["data"]["id"].as_str().unwrap_or_else(|| panic!("created: {created}")).to_string();
        let runs = format!("{}{OWN}/integration_configs/{id}/sync_runs", self.service);
        loop {
            let body: Value = self.http.get(&runs).send().await.unwrap().json().await.unwrap();
            if body["data"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["attributes"]["status"] == "succeeded"))
            {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Turns push on: where the source delivers, and the secret when it is shown (Okta's).
    async fn enable_push(&self, config: &str) -> (String, Option<String>) {
        let url = format!("{}{OWN}/integration_configs/{config}/push", self.service);
        let body: Value = self.http.put(url).send().await.unwrap().json().await.unwrap();
        let attributes = &body["data"]["attributes"];
        let url = attributes["url"].as_str().unwrap_or_else(|| panic!("push: {body}")).to_string();
        (url, attributes["secret"].as_str().map(str::to_string))
    }

    async fn disable(&self, config: &str) {
        let body = json!({"data": {"type": "integration_config", "attributes": {"enabled": false}}});
        let response =
            self.http.patch(format!("{}{BASE}/{config}", self.service)).json(&body).send().await.unwrap();
        assert!(response.status().is_success());
    }

    async fn status(&self, config: &str, user: &str) -> String {
        let url = format!("{}{OWN}/integration_configs/{config}/entities/user/{user}", self.service);
        let body: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
        body["data"]["attributes"]["status"].as_str().unwrap_or_default().to_string()
    }
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}
