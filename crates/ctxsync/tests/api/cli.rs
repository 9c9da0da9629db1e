//! The `ctxsync` binary as an operator runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ctxsync_fakes::FaultKnobs;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ctxsync");

/// A `ctxsync serve` process whose stderr (the log) is collected.
pub struct Server {
    child: Child,
    pub address: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(envs: &[(&str, String)]) -> Server {
        Server::start_with_args(&[], envs)
    }

    /// `ctxsync serve ARGS…`, the environment cleared but for `envs`.
    pub fn start_with_args(args: &[&str], envs: &[(&str, String)]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .env_clear()
            .env("CTXSYNC_LISTEN", "127.0.0.1:0")
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let reader = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Server { child, address: String::new(), log };
        server.address = server.logged_address("serving");
        server
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `http://…` of the `address` field of the first log line whose message is `message`, in
    /// text or JSON lines; waits for it up to 30 s.
    pub fn logged_address(&mut self, message: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(address) = self.log().lines().find_map(|line| logged_field(line, message, "address"))
            {
                return format!("http://{address}");
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ctxsync serve exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "no {message:?} line in the log: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    /// SIGKILL: the process gets no chance to clean up, like a crashed or evicted replica.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The value of `field` in a log line whose message is `message`, as text (`message field=value`)
/// or as a JSON line.
fn logged_field(line: &str, message: &str, field: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<Value>(line) {
        return (json["message"] == message).then(|| json[field].as_str().map(str::to_owned))?;
    }
    let rest = line.split_once(&format!(": {message} "))?.1;
    // A longer message that starts with this one goes on with words, not fields.
    if !rest.split_whitespace().next()?.contains('=') {
        return None;
    }
    let value = rest.split(&format!("{field}=")).nth(1)?;
    Some(value.split_whitespace().next()?.to_owned())
}

fn keys_create(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["keys", "create"])
        .args(args)
        .env_clear()
        .env("CTXSYNC_DATA_DIR", data_dir)
        .output()
        .unwrap()
}

#[tokio::test]
async fn keys_create_prints_a_working_pair_and_serve_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = keys_create(dir.path(), &["--org", "acme", "--scopes", "integrations_read", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pair: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(pair["org"], "acme");
    assert_eq!(pair["scopes"], serde_json::json!(["integrations_read"]));
    assert_eq!(pair["api_key"].as_str().unwrap().len(), 32);
    assert_eq!(pair["app_key"].as_str().unwrap().len(), 40);

    let key_file = dir.path().join("master.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key_file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the generated master key is private");

    let server = Server::start(&[("CTXSYNC_DATA_DIR", dir.path().display().to_string())]);
    let client = reqwest::Client::new();
    let list = |app: &str| {
        client
            .get(format!("{}/api/v2/security_monitoring/configuration/integration_config", server.address))
            .header("DD-API-KEY", pair["api_key"].as_str().unwrap())
            .header("DD-APPLICATION-KEY", app.to_string())
            .send()
    };
    assert_eq!(list(pair["app_key"].as_str().unwrap()).await.unwrap().status(), 200);
    assert_eq!(list("wrong").await.unwrap().status(), 403);
    let status = server.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status}");
}

#[test]
fn bad_settings_fail_fast_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = keys_create(dir.path(), &["--scopes", "write_everything"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scope \"write_everything\""));

    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("CTXSYNC_DATA_DIR", dir.path())
        .env("CTXSYNC_MASTER_KEY", "too-short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CTXSYNC_MASTER_KEY"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let config = dir.path().join("ctxsync.toml");
    std::fs::write(&config, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(BIN).args(["serve", "--config-file"]).arg(&config).env_clear().output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown setting \"lisen\""));
}

/// Multi-threaded: the fakes answer the child process while this thread waits for it.
#[tokio::test(flavor = "multi_thread")]
async fn sync_and_export_a_config_from_the_command_line() {
    let app = crate::helpers::spawn_app().await;
    let id = app.create_ok(app.okta_attributes()).await["id"].as_str().unwrap().to_string();
    // The server's own first run, so the command's run does not find the lease taken.
    crate::sync::wait_for_runs(&app, &id, 1).await;
    let run = |command: &str, extra: &[&str]| {
        Command::new(BIN)
            .args([command, "--config", &id])
            .args(extra)
            .env_clear()
            .env("CTXSYNC_DATABASE_URL", &app.database.url)
            .env("CTXSYNC_MASTER_KEY", crate::helpers::MASTER_KEY)
            .env("CTXSYNC_OKTA_BASE_URL", app.fakes.okta.base_url())
            .output()
            .unwrap()
    };
    let synced = run("sync", &["--full"]);
    let summary = String::from_utf8_lossy(&synced.stdout);
    assert!(synced.status.success(), "{summary}{}", String::from_utf8_lossy(&synced.stderr));
    assert!(summary.contains("full run") && summary.contains("succeeded"), "{summary}");

    let exported = run("export", &[]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let lines: Vec<Value> = String::from_utf8(exported.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let truth = app.fakes.okta.snapshot();
    let count = |t: &str, kind: &str| {
        lines.iter().filter(|l| l["type"] == t && (kind.is_empty() || l["entity"]["kind"] == kind)).count()
    };
    assert_eq!(count("entity", "user"), truth.users.len());
    assert_eq!(count("entity", "group"), truth.groups.len());
    assert_eq!(count("membership", ""), truth.user_members.len() + truth.group_members.len());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("entities.ndjson");
    let written = run("export", &["--output", file.to_str().unwrap()]);
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), lines.len());
    assert_eq!(mode(&file), 0o600, "an export holds the tenant's people");
}

fn mode(path: &std::path::Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions()) & 0o777
}

/// The database and its journal files are private even in a folder other users can read, which
/// the service points out at start.
#[test]
fn files_are_private_in_a_folder_open_to_others() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = Server::start(&[("CTXSYNC_DATA_DIR", dir.path().display().to_string())]);
    let elsewhere = dir.path().join("elsewhere.db");
    let explicit = Server::start(&[
        ("CTXSYNC_DATA_DIR", dir.path().display().to_string()),
        ("CTXSYNC_DATABASE_URL", format!("sqlite://{}", elsewhere.display())),
    ]);
    for db in ["ctxsync.db", "elsewhere.db"] {
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.path().join(format!("{db}{suffix}"));
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert_eq!(mode(&dir.path().join("master.key")), 0o600);
    for log in [server.log(), explicit.log()] {
        assert!(log.contains("readable by other users") && log.contains("mode=\"755\""), "{log}");
    }
}

/// A `ctxsync` command run on a test app's database with its sources routed to the fakes.
fn ctxsync(app: &crate::helpers::TestApp, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("CTXSYNC_DATABASE_URL", &app.database.url)
        .env("CTXSYNC_MASTER_KEY", crate::helpers::MASTER_KEY)
        .env("CTXSYNC_OKTA_BASE_URL", app.fakes.okta.base_url());
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Scripts read how a sync ended from its exit status (0 succeeded, 3 held, 1 failed), and review
/// and decide a held run with `ctxsync holds`.
#[tokio::test(flavor = "multi_thread")]
async fn sync_exit_status_and_held_deletions_from_the_command_line() {
    let app = crate::helpers::spawn_app().await;
    let id = app.create_ok(app.okta_attributes()).await["id"].as_str().unwrap().to_string();
    crate::sync::wait_for_runs(&app, &id, 1).await;
    let groups: Vec<String> = app.fakes.okta.snapshot().groups.keys().cloned().collect();
    app.fakes.okta.mutate(|t| groups.iter().for_each(|g| t.delete_group(g)));

    let held = ctxsync(&app, &["sync", "--config", &id, "--full"]).output().unwrap();
    let summary = text(&held.stdout);
    assert_eq!(held.status.code(), Some(3), "{summary}{}", text(&held.stderr));
    assert!(summary.contains("deletions held") && summary.contains("ctxsync holds show"), "{summary}");

    let listed = ctxsync(&app, &["holds", "list", "--config", &id, "--json"]).output().unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let runs: Vec<Value> = text(&listed.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["attributes"]["status"], "held");
    let run = runs[0]["id"].as_str().unwrap().to_string();

    let shown = ctxsync(&app, &["holds", "show", "--config", &id, "--run", &run, "--json"]).output().unwrap();
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let lines: Vec<Value> = text(&shown.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["run"]["id"], run.as_str());
    let mut held_groups: Vec<String> = lines
        .iter()
        .filter(|l| l["held_deletion"]["kind"] == "group")
        .map(|l| l["held_deletion"]["source_id"].as_str().unwrap().to_string())
        .collect();
    held_groups.sort();
    let mut expected = groups.clone();
    expected.sort();
    assert_eq!(held_groups, expected, "every group the run would delete");

    let confirmed = ctxsync(&app, &["holds", "confirm", "--config", &id, "--run", &run]).output().unwrap();
    assert!(confirmed.status.success(), "{}", text(&confirmed.stderr));
    assert!(text(&confirmed.stdout).contains("confirmed"), "{}", text(&confirmed.stdout));
    let (_, after) = crate::helpers::status_json(
        app.request(
            reqwest::Method::GET,
            &format!("/api/v2/ctxsync/entities?filter[kind]=group&filter[config_id]={id}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(after["data"], serde_json::json!([]), "the groups are gone");
    let again = ctxsync(&app, &["holds", "discard", "--config", &id, "--run", &run]).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already confirmed"), "{}", text(&again.stderr));
    let none = ctxsync(&app, &["holds", "list", "--config", &id]).output().unwrap();
    assert!(text(&none.stdout).contains("no held deletions"), "{}", text(&none.stdout));

    app.fakes.okta.revoke_all_tokens();
    let failed = ctxsync(&app, &["sync", "--config", &id]).output().unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stdout));
    assert!(text(&failed.stderr).contains("E0000011"), "{}", text(&failed.stderr));
}

/// A child process whose stderr is collected while it runs.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn spawn(mut command: Command) -> Running {
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let reader = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Running { child, stderr }
    }

    fn wait_for_stderr(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.stderr.lock().unwrap().contains(needle) {
            assert!(self.child.try_wait().unwrap().is_none(), "exited: {}", self.stderr.lock().unwrap());
            assert!(Instant::now() < deadline, "never printed {needle:?}: {}", self.stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), self.stderr.lock().unwrap().clone());
            }
            assert!(Instant::now() < deadline, "still running: {}", self.stderr.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits until the config has a run in progress that has written a page; returns its id.
async fn running_run(
    store: &dyn ctxsync_store::Store,
    org: ctxsync_core::OrgId,
    config: ctxsync_core::ConfigId,
) -> uuid::Uuid {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = store.list_runs(org, config, 1).await.unwrap();
        if let Some(run) =
            runs.into_iter().find(|r| r.status == ctxsync_core::RunStatus::Running && r.counts.pages > 0)
        {
            return run.id;
        }
        assert!(Instant::now() < deadline, "no run got under way");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A second `sync` waits for a live one (or fails at once with `--no-wait`), and a `sync` killed
/// with -9 leaves no lease behind that a rerun must wait out.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_waits_for_a_live_holder_and_takes_over_from_a_killed_one() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        tenant: ctxsync_fakes::TenantSpec { users: 1000, groups: 20, ..Default::default() },
        ..Default::default()
    })
    .await;
    let created = app.create_ok(app.okta_attributes()).await;
    let id = created["id"].as_str().unwrap().to_string();
    crate::sync::wait_for_runs(&app, &id, 1).await;
    let store = app.store().await;
    let config = store.config_by_id(id.parse().unwrap()).await.unwrap().unwrap();

    app.fakes.okta.slow_pages(Duration::from_millis(400));
    let first = Running::spawn(ctxsync(&app, &["sync", "--config", &id, "--full"]));
    let first_run = running_run(store.as_ref(), config.org_id, config.id).await;
    let holder = format!("pid {} on host", first.child.id());

    let refused = ctxsync(&app, &["sync", "--config", &id, "--no-wait"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains(&holder), "names the holder: {}", text(&refused.stderr));

    let mut waiting = Running::spawn(ctxsync(&app, &["sync", "--config", &id, "--full"]));
    waiting.wait_for_stderr(&format!("waiting for {holder}"));
    let mut first = first;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    app.fakes.okta.slow_pages(Duration::ZERO);
    let (code, stderr) = waiting.finish();
    assert_eq!(code, Some(0), "the waiting sync took over from the killed one: {stderr}");
    let killed = store.get_run(config.org_id, config.id, first_run).await.unwrap().unwrap();
    assert_eq!(killed.status, ctxsync_core::RunStatus::Failed);
    assert!(killed.error.unwrap().contains("interrupted"));

    app.fakes.okta.slow_pages(Duration::from_millis(400));
    let mut again = Running::spawn(ctxsync(&app, &["sync", "--config", &id, "--full"]));
    running_run(store.as_ref(), config.org_id, config.id).await;
    again.child.kill().unwrap();
    again.child.wait().unwrap();
    app.fakes.okta.slow_pages(Duration::ZERO);
    let rerun = ctxsync(&app, &["sync", "--config", &id, "--no-wait"]).output().unwrap();
    assert_eq!(rerun.status.code(), Some(0), "rerun at once: {}", text(&rerun.stderr));
}

/// Two `ctxsync sync` processes syncing configs of one Okta org at once keep together within
/// the org's limit on requests in flight, which Okta counts across every client: at a share of
/// 60% each alone takes 21 of the 35, together 42, so each must keep to its part.
#[tokio::test(flavor = "multi_thread")]
async fn two_processes_syncing_one_org_keep_together_within_its_requests_in_flight() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        tenant: ctxsync_fakes::TenantSpec { users: 1200, groups: 10, ..Default::default() },
        ..Default::default()
    })
    .await;
    let mut ids = Vec::new();
    for name in ["Okta a", "Okta b"] {
        let mut attributes = app.okta_attributes();
        attributes["name"] = name.into();
        attributes["settings"] = serde_json::json!({"rate_limit_share": 60, "okta_include_factors": true});
        ids.push(app.create_ok(attributes).await["id"].as_str().unwrap().to_string());
    }
    // The server's own first runs, so the commands' runs do not find the leases taken.
    for id in &ids {
        crate::sync::wait_for_runs(&app, id, 1).await;
    }
    app.fakes.okta.set_concurrency_limit(35);
    app.fakes.okta.slow_pages(Duration::from_millis(30));
    let syncs: Vec<Running> = ids
        .iter()
        .map(|id| {
            let mut command = ctxsync(&app, &["sync", "--config", id, "--full"]);
            command.env("CTXSYNC_SYNC_LEASE", "3s").env("CTXSYNC_LOG", "info");
            Running::spawn(command)
        })
        .collect();
    let mut logs = String::new();
    for sync in syncs {
        let (code, stderr) = sync.finish();
        assert_eq!(code, Some(0), "{stderr}");
        logs.push_str(&stderr);
    }
    assert_eq!(app.fakes.okta.concurrency_refused(), 0);
    // At least the second to start counted the first, and said so.
    assert!(logs.contains("the processes syncing this config's tenant changed"), "{logs}");
    assert!(logs.contains("processes=2"), "{logs}");

    let store = app.store().await;
    let mut spans = Vec::new();
    for id in &ids {
        let config = store.config_by_id(id.parse().unwrap()).await.unwrap().unwrap();
        let run = store.list_runs(config.org_id, config.id, 1).await.unwrap().remove(0);
        spans.push((run.started_at, run.finished_at.unwrap()));
    }
    assert!(spans[0].0 < spans[1].1 && spans[1].0 < spans[0].1, "the two runs overlapped: {spans:?}");
}
