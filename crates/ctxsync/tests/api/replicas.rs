//! Several `ctxsync serve` processes on one PostgreSQL database behave as one service, and a
//! replica rides out its database going away. These need PostgreSQL, so they run in the
//! PostgreSQL pass (`scripts/test-postgres`, which CI runs, includes ignored tests); on SQLite they
//! show as ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ctxsync_core::Scopes;
use ctxsync_fakes::{Fakes, TenantSpec};
use ctxsync_store::MasterKey;
use ctxsync_store::testing::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{BIN, Server};
use crate::helpers::{BASE, envelope, status_json};
use ctxsync_fakes::FaultKnobs;

const OWN: &str = "/api/v2/ctxsync";
const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const API_KEY: &str = "0123456789abcdef0123456789abcdef";
const APP_KEY: &str = "0123456789abcdef0123456789abcdef01234567";

/// A fresh PostgreSQL database. These tests are ignored unless asked for, as scripts/test-postgres
/// does, so on SQLite they show as skipped rather than passing without running.
async fn postgres_database() -> TestDatabase {
    let database = TestDatabase::create().await;
    assert!(database.is_postgres(), "needs PostgreSQL: run it with scripts/test-postgres");
    database
}

/// The settings of a replica on `database_url` that syncs from `fakes`, with short leases so a
/// dead replica's work moves on within seconds.
fn replica_env(database_url: &str, fakes: &Fakes) -> Vec<(&'static str, String)> {
    vec![
        ("CTXSYNC_DATABASE_URL", database_url.to_string()),
        ("CTXSYNC_MASTER_KEY", MASTER_KEY.into()),
        ("CTXSYNC_BOOTSTRAP_API_KEY", API_KEY.into()),
        ("CTXSYNC_BOOTSTRAP_APP_KEY", APP_KEY.into()),
        ("CTXSYNC_OKTA_BASE_URL", fakes.okta.base_url()),
        ("CTXSYNC_ENTRA_LOGIN_BASE_URL", fakes.entra.login_base_url()),
        ("CTXSYNC_GRAPH_BASE_URL", fakes.entra.graph_base_url()),
        ("CTXSYNC_SYNC_INTERVAL", "1s".into()),
        ("CTXSYNC_FULL_SYNC_INTERVAL", "1s".into()),
        ("CTXSYNC_SYNC_LEASE", "3s".into()),
        ("CTXSYNC_LOG", "info".into()),
    ]
}

/// Requests to one replica with a key pair.
struct Client {
    http: reqwest::Client,
    address: String,
    keys: (String, String),
}

impl Client {
    fn new(server: &Server) -> Client {
        Client::with_keys(server, API_KEY, APP_KEY)
    }

    fn with_keys(server: &Server, api: &str, app: &str) -> Client {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Client { http, address: server.address.clone(), keys: (api.into(), app.into()) }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.address))
            .header("DD-API-KEY", &self.keys.0)
            .header("DD-APPLICATION-KEY", &self.keys.1);
        if let Some(body) = body {
            req = req.json(&body);
        }
        status_json(req.send().await.expect("the replica answers")).await
    }

    async fn runs(&self, config: &str) -> Vec<Value> {
        let (status, body) =
            self.send(Method::GET, &format!("{OWN}/integration_configs/{config}/sync_runs"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    async fn user_ids(&self, config: &str) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        let mut cursor = String::new();
        loop {
            let path =
                format!("{OWN}/entities?filter[kind]=user&filter[config_id]={config}&page[size]=500{cursor}");
            let (status, body) = self.send(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            for e in body["data"].as_array().unwrap() {
                assert!(
                    ids.insert(e["attributes"]["source_id"].as_str().unwrap().to_string()),
                    "listed twice"
                );
            }
            match body["meta"]["page"]["next_cursor"].as_str() {
                Some(c) => cursor = format!("&page[cursor]={c}"),
                None => return ids,
            }
        }
    }
}

fn okta(fakes: &Fakes, name: &str) -> Value {
    json!({
        "integration_type": "OKTA",
        "name": name,
        "domain": fakes.okta.domain(),
        "secrets": {"api_token": fakes.okta.api_token()},
    })
}

fn entra(fakes: &Fakes, name: &str) -> Value {
    json!({
        "integration_type": "ENTRA_ID",
        "name": name,
        "domain": fakes.entra.domain(),
        "secrets": {"client_id": fakes.entra.client_id(), "client_secret": fakes.entra.client_secret()},
    })
}

fn time(run: &Value, field: &str) -> Option<OffsetDateTime> {
    run["attributes"][field].as_str().map(|t| OffsetDateTime::parse(t, &Rfc3339).unwrap())
}

/// Which replica started each run, from the `sync run started` lines of their logs.
fn run_owners(replicas: &[&Server]) -> BTreeMap<String, Vec<usize>> {
    let mut owners: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, replica) in replicas.iter().enumerate() {
        for line in replica.log().lines().filter(|l| l.contains("sync run started")) {
            let run = line.split("run_id=").nth(1).unwrap().split_whitespace().next().unwrap();
            owners.entry(run.to_string()).or_default().push(i);
        }
    }
    owners
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: scripts/test-postgres runs it"]
async fn replicas_share_configs_and_keys_and_sync_each_config_one_at_a_time() {
    let database = postgres_database().await;
    let fakes =
        Fakes::start_with(TenantSpec { seed: 11, users: 400, groups: 20, devices: 40 }).await.unwrap();
    // Runs long enough to overlap if two replicas ever took the same config.
    fakes.okta.slow_pages(Duration::from_millis(20));
    let env = replica_env(&database.url, &fakes);
    let replicas: Vec<Server> = (0..3).map(|_| Server::start(&env)).collect();
    let clients: Vec<Client> = replicas.iter().map(Client::new).collect();

    let mut configs = Vec::new();
    for i in 0..6 {
        let attrs = if i % 3 == 2 {
            entra(&fakes, &format!("entra {i}"))
        } else {
            okta(&fakes, &format!("okta {i}"))
        };
        let (status, body) = clients[i % 3].send(Method::POST, BASE, Some(envelope(attrs))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        configs.push(body["data"]["id"].as_str().unwrap().to_string());
    }
    for client in &clients {
        let (_, listed) = client.send(Method::GET, BASE, None).await;
        let ids: BTreeSet<&str> =
            listed["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, configs.iter().map(String::as_str).collect(), "every replica sees every config");
    }

    // A key created behind the replicas' backs works on all of them at once, and so does a change
    // made through one replica.
    let store =
        ctxsync_store::connect(&database.url, MasterKey::from_base64(MASTER_KEY).unwrap()).await.unwrap();
    let pair = store.create_key_pair("acme", &Scopes::All).await.unwrap();
    for replica in &replicas {
        let acme = Client::with_keys(replica, &pair.api_key, &pair.app_key);
        let (status, body) = acme.send(Method::GET, BASE, None).await;
        assert_eq!((status, body["data"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{body}");
    }
    let renamed = json!({"data": {"type": "integration_config", "attributes": {"integration_type": "OKTA", "name": "renamed"}}});
    let (status, _) = clients[0].send(Method::PATCH, &format!("{BASE}/{}", configs[0]), Some(renamed)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, got) = clients[2].send(Method::GET, &format!("{BASE}/{}", configs[0]), None).await;
    assert_eq!(got["data"]["attributes"]["name"], "renamed");

    // Every config syncs repeatedly; no two runs of one config ever overlap, and each run was
    // started by exactly one replica.
    for config in &configs {
        wait_until("every config has synced three times", Duration::from_secs(120), || async {
            clients[1].runs(config).await.iter().filter(|r| r["attributes"]["status"] == "succeeded").count()
                >= 3
        })
        .await;
    }
    let owners = run_owners(&replicas.iter().collect::<Vec<_>>());
    let mut busy = BTreeSet::new();
    for config in &configs {
        let mut runs = clients[0].runs(config).await;
        runs.reverse();
        for pair in runs.windows(2) {
            let ended = time(&pair[0], "finished_at").expect("an earlier run has ended");
            assert!(ended <= time(&pair[1], "started_at").unwrap(), "runs overlap: {pair:?}");
        }
        for run in &runs {
            let starters = &owners[run["id"].as_str().unwrap()];
            assert_eq!(starters.len(), 1, "one replica per run");
            busy.insert(starters[0]);
        }
        let truth: BTreeSet<String> = if config_is_entra(&clients[0], config).await {
            fakes.entra.snapshot().users.keys().cloned().collect()
        } else {
            fakes.okta.snapshot().users.keys().cloned().collect()
        };
        assert_eq!(clients[2].user_ids(config).await, truth);
    }
    assert!(busy.len() >= 2, "the work is shared: {busy:?}");
}

async fn config_is_entra(client: &Client, config: &str) -> bool {
    let (_, got) = client.send(Method::GET, &format!("{BASE}/{config}"), None).await;
    got["data"]["attributes"]["integration_type"] == "ENTRA_ID"
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: scripts/test-postgres runs it"]
async fn a_replica_killed_mid_run_leaves_its_config_to_another() {
    let database = postgres_database().await;
    let fakes = Fakes::start_with(TenantSpec { seed: 5, users: 1500, groups: 40, devices: 0 }).await.unwrap();
    let mut env = replica_env(&database.url, &fakes);
    // Runs only when asked, and every run a full listing (so the deletion below is found).
    env.retain(|(k, _)| *k != "CTXSYNC_SYNC_INTERVAL");
    env.push(("CTXSYNC_SYNC_INTERVAL", "1h".into()));
    let mut replicas: Vec<Option<Server>> = (0..2).map(|_| Some(Server::start(&env))).collect();
    let client = Client::new(replicas[0].as_ref().unwrap());
    let (status, body) = client.send(Method::POST, BASE, Some(envelope(okta(&fakes, "okta")))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let config = body["data"]["id"].as_str().unwrap().to_string();
    wait_until("the first run succeeds", Duration::from_secs(60), || async {
        client.runs(&config).await.iter().any(|r| r["attributes"]["status"] == "succeeded")
    })
    .await;

    // A run asked for starts at once: only once the full interval (1 s) has passed since the
    // first run is the next one full again.
    let first =
        client.runs(&config).await.into_iter().find(|r| r["attributes"]["status"] == "succeeded").unwrap();
    let full_again = time(&first, "finished_at").unwrap() + time::Duration::milliseconds(1_100);
    let wait = full_again - OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;

    // The tenant changes, and the next run is slow enough to kill in the middle.
    let truth_before = fakes.okta.snapshot();
    let victim = truth_before.users.keys().last().unwrap().clone();
    let added = fakes.okta.mutate(|t| {
        t.delete_user(&victim);
        t.add_user("Late", "Arrival")
    });
    fakes.okta.slow_pages(Duration::from_millis(300));
    let (status, _) =
        client.send(Method::POST, &format!("{OWN}/integration_configs/{config}/sync"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(30);
    let running = loop {
        let runs = client.runs(&config).await;
        let found = runs.into_iter().find(|r| r["attributes"]["status"] == "running");
        if let Some(run) = found.filter(|r| r["attributes"]["pages"].as_u64() > Some(1)) {
            break run;
        }
        assert!(Instant::now() < deadline, "no run got under way");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let run_id = running["id"].as_str().unwrap();
    let live: Vec<&Server> = replicas.iter().flatten().collect();
    let owner = run_owners(&live)[run_id][0];
    replicas[owner].take().unwrap().kill();
    let survivor = Client::new(replicas[1 - owner].as_ref().unwrap());
    fakes.okta.slow_pages(Duration::ZERO);

    // The other replica takes the config over once the lease runs out, marks the dead run
    // failed, and its own run brings the store to exactly the tenant.
    wait_until("another replica finishes the work", Duration::from_secs(90), || async {
        let runs = survivor.runs(&config).await;
        runs.iter().any(|r| {
            r["attributes"]["status"] == "succeeded" && time(r, "started_at") > time(&running, "started_at")
        })
    })
    .await;
    let runs = survivor.runs(&config).await;
    let dead = runs.iter().find(|r| r["id"] == run_id).unwrap();
    assert_eq!(dead["attributes"]["status"], "failed", "{dead}");
    let truth: BTreeSet<String> = fakes.okta.snapshot().users.keys().cloned().collect();
    assert!(truth.contains(&added) && !truth.contains(&victim));
    assert_eq!(survivor.user_ids(&config).await, truth, "nothing lost, nothing left over");
}

/// A PostgreSQL server of a test's own, which the test may stop and start again.
struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// PostgreSQL refuses to run as root; as root the server runs as this user.
    run_as: Option<&'static str>,
}

impl PgServer {
    /// Needs the server programs that `scripts/test-postgres` names in `CTXSYNC_TEST_PG_BIN`.
    fn start() -> PgServer {
        let bin = PathBuf::from(std::env::var("CTXSYNC_TEST_PG_BIN").expect(
            "CTXSYNC_TEST_PG_BIN names PostgreSQL's server programs; run the tests with scripts/test-postgres",
        ));
        let dir = tempfile::tempdir().unwrap();
        let root =
            String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap().trim() == "0";
        let run_as = root.then_some("postgres");
        if let Some(user) = run_as {
            assert!(Command::new("chown").arg(user).arg(dir.path()).status().unwrap().success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = PgServer { bin, dir, port, run_as };
        let data = server.data_dir();
        server.run("initdb", &["-D", &data, "-U", "ctxsync", "--auth=trust", "--no-sync"]);
        server.resume();
        server
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://ctxsync@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        let out = command.args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data_dir(), "-m", "fast", "-w", "stop"]);
    }

    fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data_dir(), "-l", &log, "-o", &options, "-w", "start"]);
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        let program = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = match self.run_as {
            Some(user) => Command::new("runuser").args(["-u", user, "--"]).arg(program).args(args).output(),
            None => Command::new(program).args(args).output(),
        };
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL: scripts/test-postgres runs it"]
async fn a_replica_answers_503_while_its_database_is_down_and_recovers_by_itself() {
    postgres_database().await;
    let pg = PgServer::start();
    let fakes = Fakes::start().await.unwrap();
    let replica = Server::start(&replica_env(&pg.url(), &fakes));
    let client = Client::new(&replica);
    let (status, body) = client.send(Method::POST, BASE, Some(envelope(okta(&fakes, "okta")))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_string();

    pg.stop();
    for path in [format!("{BASE}/{id}"), BASE.to_string()] {
        let (status, body) = client.send(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert!(body["errors"][0].as_str().unwrap().contains("unavailable"), "{body}");
    }
    let ready = reqwest::get(format!("{}/readyz", replica.address)).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    pg.resume();
    wait_until("the replica serves again", Duration::from_secs(30), || async {
        client.send(Method::GET, &format!("{BASE}/{id}"), None).await.0 == StatusCode::OK
    })
    .await;
    let (status, body) = client.send(Method::POST, BASE, Some(envelope(okta(&fakes, "second")))).await;
    assert_eq!(status, StatusCode::OK, "writes work again: {body}");
    assert!(!replica.log().contains("panicked"), "{}", replica.log());
}

#[test]
fn an_unreachable_database_at_start_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("CTXSYNC_LISTEN", "127.0.0.1:0")
        .env("CTXSYNC_DATABASE_URL", format!("postgres://ctxsync:hunter2secret@127.0.0.1:{port}/ctxsync"))
        .env("CTXSYNC_MASTER_KEY", MASTER_KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("could not open the database"), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port} (database ctxsync, user ctxsync): connection refused")),
        "the server and the cause are named: {stderr}"
    );
    assert!(!stderr.contains("hunter2secret"), "the password stays out of the message: {stderr}");

    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("CTXSYNC_DATABASE_URL", format!("postgres://ctxsync@127.0.0.1:{port}/ctxsync"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("same master key"));
}

/// A key revoked through one replica stops working on the other within five seconds, although
/// each remembers the authentications it made.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-postgres runs it"]
async fn a_key_revoked_through_one_replica_stops_on_the_other_within_five_seconds() {
    let database = postgres_database().await;
    let fakes = Fakes::start_with(TenantSpec::default()).await.unwrap();
    let env = replica_env(&database.url, &fakes);
    let replicas = [Server::start(&env), Server::start(&env)];
    let store =
        ctxsync_store::connect(&database.url, MasterKey::from_base64(MASTER_KEY).unwrap()).await.unwrap();
    let admin = store.create_key_pair("acme", &Scopes::parse_list("manage_keys").unwrap()).await.unwrap();
    let user = store.create_key_pair("acme", &Scopes::All).await.unwrap();
    let on = |i: usize| Client::with_keys(&replicas[i], &user.api_key, &user.app_key);
    for i in 0..2 {
        assert_eq!(
            on(i).send(Method::GET, BASE, None).await.0,
            StatusCode::OK,
            "replica {i} remembers the pair"
        );
    }
    let admin_on_0 = Client::with_keys(&replicas[0], &admin.api_key, &admin.app_key);
    let (status, body) =
        admin_on_0.send(Method::POST, &format!("{OWN}/keys/{}/revoke", user.app_key_id), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        on(0).send(Method::GET, BASE, None).await.0,
        StatusCode::FORBIDDEN,
        "at once where it was revoked"
    );
    let started = Instant::now();
    while on(1).send(Method::GET, BASE, None).await.0 != StatusCode::FORBIDDEN {
        assert!(started.elapsed() < Duration::from_secs(5), "the other replica still accepts the key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The online master-key rotation: a replica restarted with the new key and the old one as
/// previous reads every secret, `ctxsync master-key rotate` runs while it serves, and afterwards
/// a replica with the old key alone refuses to start.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-postgres runs it"]
async fn the_master_key_is_rotated_while_a_replica_serves() {
    let database = postgres_database().await;
    let fakes = Fakes::start_with(TenantSpec::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (old_file, new_file) = (dir.path().join("old.key"), dir.path().join("new.key"));
    std::fs::write(&old_file, MASTER_KEY).unwrap();
    std::fs::write(&new_file, "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=").unwrap();
    let old_env = replica_env(&database.url, &fakes);
    let first = Server::start(&old_env);
    let (status, body) =
        Client::new(&first).send(Method::POST, BASE, Some(envelope(okta(&fakes, "okta")))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    first.terminate();

    let mut both = old_env.clone();
    both.retain(|(name, _)| *name != "CTXSYNC_MASTER_KEY");
    both.push(("CTXSYNC_MASTER_KEY_FILE", new_file.display().to_string()));
    both.push(("CTXSYNC_PREVIOUS_MASTER_KEY_FILE", old_file.display().to_string()));
    let replica = Server::start(&both);
    let client = Client::new(&replica);
    let validate = format!("{BASE}/{id}/validate");
    assert_eq!(
        client.send(Method::POST, &validate, None).await.0,
        StatusCode::OK,
        "the old key's secrets read"
    );

    let rotated = Command::new(BIN)
        .args(["master-key", "rotate", "--new-key-file"])
        .arg(&new_file)
        .env_clear()
        .env("CTXSYNC_DATABASE_URL", &database.url)
        .env("CTXSYNC_MASTER_KEY_FILE", &old_file)
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    assert_eq!(
        client.send(Method::POST, &validate, None).await.0,
        StatusCode::OK,
        "still read while serving"
    );

    let refused = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .envs(old_env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("CTXSYNC_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("master key does not match"));
}
