//! `ctxsync demo` and the commands a second terminal runs beside it, as the README tells a
//! newcomer to: every child process gets exactly the `export` lines the demo printed, nothing
//! else from this environment.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctxsync::demo_folder::MARKER;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{BIN, Server};
use crate::helpers::{BASE, MASTER_KEY, envelope, spawn_app, status_json};

/// A running `ctxsync demo` and what its banner said.
struct Demo {
    child: Child,
    banner: Vec<String>,
    /// `(name, value)` of every `export` line, in order.
    exports: Vec<(String, String)>,
}

impl Demo {
    /// Starts the demo on port 0 with a small tenant and waits for its banner.
    fn start(data_dir: &Path) -> Demo {
        let mut child = Command::new(BIN)
            .args(["demo", "--listen", "127.0.0.1:0", "--users", "60", "--churn", "off", "--data-dir"])
            .arg(data_dir)
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            stdout.lines().map_while(Result::ok).for_each(|l| sink.lock().unwrap().push(l))
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while !lines.lock().unwrap().iter().any(|l| l.starts_with("OpenAPI document:")) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("ctxsync demo exited with {status}: {:?}", lines.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "no banner in time: {:?}", lines.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
        let banner = lines.lock().unwrap().clone();
        let exports = banner.iter().filter_map(|l| l.strip_prefix("export ")).map(parse_assignment).collect();
        Demo { child, banner, exports }
    }

    fn export(&self, name: &str) -> String {
        let found = self.exports.iter().find(|(n, _)| n == name);
        found.unwrap_or_else(|| panic!("no export of {name}: {:?}", self.banner)).1.clone()
    }

    /// The word after `label` on a banner line (`api_token 00…`).
    fn printed(&self, label: &str) -> String {
        let line = self.banner.iter().find(|l| l.contains(label)).unwrap();
        line.split(label).nth(1).unwrap().split_whitespace().next().unwrap().to_string()
    }

    fn address(&self) -> String {
        self.printed("running on ").trim_end_matches(',').to_string()
    }

    /// `ctxsync <args>` with only the printed exports as its environment.
    fn command(&self, args: &[&str]) -> Output {
        self.command_without(args, &[])
    }

    /// As [`Demo::command`], leaving out the exports named in `left_out`.
    fn command_without(&self, args: &[&str], left_out: &[&str]) -> Output {
        let exports = self.exports.iter().filter(|(n, _)| !left_out.contains(&n.as_str()));
        Command::new(BIN).args(args).env_clear().envs(exports.map(|(n, v)| (n, v))).output().unwrap()
    }

    async fn request(&self, method: Method, path: &str, body: Option<Value>) -> (reqwest::StatusCode, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.address()))
            .header("DD-API-KEY", self.export("DD_API_KEY"))
            .header("DD-APPLICATION-KEY", self.export("DD_APP_KEY"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        status_json(request.send().await.unwrap()).await
    }

    /// Creates an Okta config with the printed credentials, which the demo syncs once at once
    /// and then hourly, so the commands below never find its lease taken; waits for that run.
    async fn create_okta_config(&self) -> String {
        let attributes = json!({
            "integration_type": "OKTA",
            "name": "Demo Okta",
            "domain": self.printed("domain "),
            "secrets": {"api_token": self.printed("api_token ")},
            "settings": {"sync_interval": "1h"},
        });
        let (status, body) = self.request(Method::POST, BASE, Some(envelope(attributes))).await;
        assert_eq!(status, 200, "{body}");
        let id = body["data"]["id"].as_str().unwrap().to_string();
        assert_eq!(self.runs(&id).await, 1);
        id
    }

    /// How many runs the config has, once the first has finished.
    async fn runs(&self, id: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let path = format!("/api/v2/ctxsync/integration_configs/{id}/sync_runs");
            let (_, body) = self.request(Method::GET, &path, None).await;
            let runs = body["data"].as_array().cloned().unwrap_or_default();
            if runs.iter().any(|r| r["attributes"]["status"] != "running") {
                return runs.len();
            }
            assert!(Instant::now() < deadline, "the demo did not sync the new config: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// `NAME=value` or `NAME='value'`, as a shell reads it.
fn parse_assignment(assignment: &str) -> (String, String) {
    let (name, value) = assignment.split_once('=').unwrap();
    let value = match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(quoted) => quoted.replace(r"'\''", "'"),
        None => value.to_string(),
    };
    (name.to_string(), value)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

/// Every user id the fake Okta org serves (its default listing hides deprovisioned users).
async fn okta_user_ids(demo: &Demo) -> std::collections::BTreeSet<String> {
    let base = demo.export("CTXSYNC_OKTA_BASE_URL");
    let token = demo.printed("api_token ");
    let mut ids = std::collections::BTreeSet::new();
    for filter in [None, Some("status eq \"DEPROVISIONED\"")] {
        let mut request = reqwest::Client::new()
            .get(format!("{base}/api/v1/users"))
            .query(&[("limit", "200")])
            .header("Authorization", format!("SSWS {token}"));
        if let Some(filter) = filter {
            request = request.query(&[("filter", filter)]);
        }
        let users: Value = request.send().await.unwrap().json().await.unwrap();
        ids.extend(users.as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()));
    }
    ids
}

/// Multi-threaded: the test waits on child processes while the runtime keeps the client going.
#[tokio::test(flavor = "multi_thread")]
async fn the_printed_exports_run_sync_and_export_in_another_process_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ctxsync-demo");
    let demo = Demo::start(&folder);
    let names: Vec<&str> = demo.exports.iter().map(|(n, _)| n.as_str()).collect();
    for name in [
        "CTXSYNC_DATA_DIR",
        "CTXSYNC_OKTA_BASE_URL",
        "CTXSYNC_GOOGLE_TOKEN_URL",
        "CTXSYNC_GOOGLE_DIRECTORY_BASE_URL",
        "CTXSYNC_ENTRA_LOGIN_BASE_URL",
        "CTXSYNC_GRAPH_BASE_URL",
        "DD_API_KEY",
        "DD_APP_KEY",
    ] {
        assert!(names.contains(&name), "{name} is exported: {names:?}");
    }
    assert_eq!(Path::new(&demo.export("CTXSYNC_DATA_DIR")), folder);
    assert_eq!(mode(&folder), 0o700);
    for file in [MARKER, "master.key", "ctxsync.db", "google-service-account.json"] {
        assert_eq!(mode(&folder.join(file)), 0o600, "{file}");
    }

    let id = demo.create_okta_config().await;
    let synced = demo.command(&["sync", "--config", &id]);
    let summary = text(&synced.stdout);
    assert!(synced.status.success(), "{summary}{}", text(&synced.stderr));
    assert!(summary.contains("succeeded"), "{summary}");

    let exported = demo.command(&["export", "--config", &id]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let lines: Vec<Value> =
        text(&exported.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let users: std::collections::BTreeSet<String> = lines
        .iter()
        .filter(|l| l["type"] == "entity" && l["entity"]["kind"] == "user")
        .map(|l| l["entity"]["source_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users, okta_user_ids(&demo).await, "every user the fake serves is exported");
    assert!(lines.iter().any(|l| l["type"] == "membership"));

    let printed = (demo.export("DD_API_KEY"), demo.printed("api_token "));
    assert!(demo.stop().success(), "the demo stops cleanly on SIGTERM");
    let again = Demo::start(&folder);
    assert_eq!(
        (again.export("DD_API_KEY"), again.printed("api_token ")),
        printed,
        "same keys and credentials"
    );
    let synced = again.command(&["sync", "--config", &id, "--full"]);
    assert!(synced.status.success(), "{}{}", text(&synced.stdout), text(&synced.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demo_folder_refuses_sync_and_serve_without_the_fakes() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(&dir.path().join("demo"));
    let id = demo.create_okta_config().await;

    let refused = demo.command_without(&["sync", "--config", &id], &["CTXSYNC_OKTA_BASE_URL"]);
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert!(message.contains("is the data folder of `ctxsync demo`"), "{message}");
    assert!(message.contains("CTXSYNC_OKTA_BASE_URL does not point at them"), "{message}");
    let okta = format!("export CTXSYNC_OKTA_BASE_URL={}", demo.export("CTXSYNC_OKTA_BASE_URL"));
    assert!(message.contains(&okta), "the message shows the lines to paste: {message}");
    assert_eq!(demo.runs(&id).await, 1, "no run was started");

    let graph = &["CTXSYNC_GRAPH_BASE_URL", "CTXSYNC_ENTRA_LOGIN_BASE_URL"];
    let serve = demo.command_without(&["serve", "--listen", "127.0.0.1:0"], graph);
    assert!(!serve.status.success());
    assert!(
        text(&serve.stderr)
            .contains("CTXSYNC_ENTRA_LOGIN_BASE_URL, CTXSYNC_GRAPH_BASE_URL do not point at them")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_that_read_create_nothing_and_name_the_database_and_its_configs() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("nowhere");
    let unknown = "00000000-0000-4000-8000-000000000042";
    for args in [
        vec!["export", "--config", unknown],
        vec!["events", "--config", unknown],
        vec!["sync", "--config", unknown],
    ] {
        let out = Command::new(BIN).args(&args).env_clear().env("CTXSYNC_DATA_DIR", &fresh).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let message = text(&out.stderr);
        assert!(message.contains(&format!("there is no config {unknown}")), "{message}");
        assert!(message.contains(&fresh.join("ctxsync.db").display().to_string()), "{message}");
        assert!(!fresh.exists(), "{args:?} created the data folder");
    }

    let app = spawn_app().await;
    let config = app.create_ok(app.okta_attributes()).await;
    let database = app.database.url.clone();
    for command in ["export", "events", "sync"] {
        let out = Command::new(BIN)
            .args([command, "--config", unknown])
            .env_clear()
            .env("CTXSYNC_DATA_DIR", &fresh)
            .env("CTXSYNC_DATABASE_URL", &database)
            .env("CTXSYNC_MASTER_KEY", MASTER_KEY)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let message = text(&out.stderr);
        let named = database.split('?').next().unwrap().trim_start_matches("sqlite://");
        let named = named.rsplit('@').next().unwrap();
        assert!(message.contains(named), "{command} names the database {named}: {message}");
        let listed = format!("{}  OKTA  Okta", config["id"].as_str().unwrap());
        assert!(message.contains(&listed), "{command} lists the configs there: {message}");
    }
    assert!(!fresh.exists());

    // The same folder, served once: now it exists, and serve was the one to create it.
    drop(Server::start(&[("CTXSYNC_DATA_DIR", fresh.display().to_string())]));
    assert!(fresh.join("ctxsync.db").exists() && fresh.join("master.key").exists());
}
