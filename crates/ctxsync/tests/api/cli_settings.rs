//! The binary's settings as an operator gets them wrong: errors name the variable or the file's
//! key that holds the bad value, and output cut short by its reader is no error.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ctxsync_fakes::Fakes;
use serde_json::json;

use crate::cli::{BIN, Server};
use crate::helpers::{BASE, MASTER_KEY, envelope, spawn_app};

/// `ctxsync serve ARGS…` with only `envs` in the environment, expected to fail before serving.
fn serve(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("serve")
        .args(args)
        .env_clear()
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_variable_is_named_by_its_variable_and_a_bad_flag_by_its_flag() {
    let out = serve(&[], &[("CTXSYNC_SYNC_INTERVAL", "abc")]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out), "error: CTXSYNC_SYNC_INTERVAL=abc: expected number at 0\n");

    let out = serve(&["--sync-interval", "abc"], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid value 'abc' for '--sync-interval <SYNC_INTERVAL>'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_value_in_the_settings_file_is_named_by_the_file_and_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ctxsync.toml");
    std::fs::write(&file, "sync_interval = \"abc\"\n").unwrap();
    let out = serve(&["--config-file", file.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        format!("error: {}: sync_interval = \"abc\": expected number at 0\n", file.display())
    );

    // The environment overrides the file, so a bad value there is the variable's.
    let out = serve(&[], &[("CTXSYNC_CONFIG", file.to_str().unwrap()), ("CTXSYNC_SYNC_INTERVAL", "xyz")]);
    assert_eq!(stderr(&out), "error: CTXSYNC_SYNC_INTERVAL=xyz: expected number at 0\n");
}

#[test]
fn a_decimal_guard_percent_in_the_settings_file_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ctxsync.toml");
    std::fs::write(&file, "deletion_guard_percent = 12.5\n").unwrap();
    let server = Server::start(&[
        ("CTXSYNC_CONFIG", file.display().to_string()),
        ("CTXSYNC_DATA_DIR", dir.path().join("data").display().to_string()),
    ]);
    assert!(server.terminate().success());
}

#[test]
fn an_unknown_log_level_is_refused_with_the_levels() {
    let out = serve(&[], &[("CTXSYNC_LOG", "infoo")]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "error: CTXSYNC_LOG=infoo: \"infoo\" is not a log level; use trace, debug, info, warn, error or \
         off, or target=level such as ctxsync=debug\n"
    );
}

#[tokio::test]
async fn listen_takes_a_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_args(
        &["--listen", "localhost:0"],
        &[("CTXSYNC_DATA_DIR", dir.path().display().to_string())],
    );
    assert!(server.address.starts_with("http://127.0.0.1:"), "{}", server.address);
    let health = reqwest::get(format!("{}/healthz", server.address)).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(server.terminate().success());

    let out = serve(&[], &[("CTXSYNC_LISTEN", "localhost")]);
    assert_eq!(
        stderr(&out),
        "error: CTXSYNC_LISTEN=localhost: must be host:port, such as 127.0.0.1:8080 or localhost:8080\n"
    );
}

/// Multi-threaded: the fakes answer the server while this thread waits for its log.
#[tokio::test(flavor = "multi_thread")]
async fn a_misspelt_settings_key_is_logged_at_create_and_when_the_config_syncs() {
    let fakes = Fakes::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (api_key, app_key) = ("0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef01234567");
    let server = Server::start(&[
        ("CTXSYNC_DATA_DIR", dir.path().display().to_string()),
        ("CTXSYNC_BOOTSTRAP_API_KEY", api_key.into()),
        ("CTXSYNC_BOOTSTRAP_APP_KEY", app_key.into()),
        ("CTXSYNC_OKTA_BASE_URL", fakes.okta.base_url()),
    ]);
    let created = reqwest::Client::new()
        .post(format!("{}{BASE}", server.address))
        .header("DD-API-KEY", api_key)
        .header("DD-APPLICATION-KEY", app_key)
        .json(&envelope(json!({
            "integration_type": "OKTA",
            "name": "Okta",
            "domain": fakes.okta.domain(),
            "secrets": {"api_token": fakes.okta.api_token()},
            "settings": {"sync_intervall": "5m"},
        })))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    // The config syncs at once; its run logs the typo too.
    let warned = |target: &str| {
        server.log().lines().any(|l| {
            l.contains("WARN")
                && l.contains(target)
                && l.contains("a settings key is not one ctxsync reads")
                && l.contains("key=\"sync_intervall\" suggestion=\"sync_interval\"")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(warned("ctxsync_api") && warned("ctxsync_sync")) {
        assert!(Instant::now() < deadline, "no warning at create and at the run: {}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A reader that stops early (`| head -1`): the rest of the output has nowhere to go, which is
/// no error. The pipe's reading end is closed before the command writes, so every write fails.
fn closed_stdout() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// Multi-threaded: the fakes answer the server's first sync while this thread waits for it.
#[tokio::test(flavor = "multi_thread")]
async fn output_cut_short_by_its_reader_ends_quietly_and_successfully() {
    let app = spawn_app().await;
    let id = app.create_ok(app.okta_attributes()).await["id"].as_str().unwrap().to_string();
    crate::sync::wait_for_runs(&app, &id, 1).await;
    let out = Command::new(BIN)
        .args(["export", "--config", &id])
        .env_clear()
        .env("CTXSYNC_DATABASE_URL", &app.database.url)
        .env("CTXSYNC_MASTER_KEY", MASTER_KEY)
        .stdout(closed_stdout())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", out.status, stderr(&out));
    assert_eq!(stderr(&out), "");

    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["keys", "create", "--json"])
        .env_clear()
        .env("CTXSYNC_DATA_DIR", dir.path())
        .stdout(closed_stdout())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", out.status, stderr(&out));
    assert_eq!(stderr(&out), "");
}
