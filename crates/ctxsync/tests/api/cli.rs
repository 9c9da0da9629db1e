//! The `ctxsync` binary as an operator runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = loop {
            if let Some(addr) = log.lock().unwrap().lines().find_map(|l| {
                l.contains("serving").then(|| {
                    l.split("address=").nth(1).map(|a| a.split_whitespace().next().unwrap().to_string())
                })?
            }) {
                break format!("http://{addr}");
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("ctxsync serve exited with {status}: {}", log.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "ctxsync serve did not start: {}", log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        };
        Server { child, address, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
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
}
