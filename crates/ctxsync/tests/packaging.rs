//! The commands packages and images rely on, run as the binary: `healthcheck` against a real
//! `serve`, the completion scripts and the manual pages.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clap::CommandFactory;

const BIN: &str = env!("CARGO_BIN_EXE_ctxsync");

fn ctxsync(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(BIN).args(args).env_clear().envs(envs.iter().copied()).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The subcommands' names, from the definition the binary parses.
fn subcommands() -> Vec<String> {
    ctxsync::Cli::command().get_subcommands().map(|c| c.get_name().to_owned()).collect()
}

#[test]
fn healthcheck_passes_while_serve_is_ready_and_fails_once_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("CTXSYNC_DATA_DIR", dir.path())
        .env("CTXSYNC_LISTEN", "127.0.0.1:0")
        .env("CTXSYNC_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = BufReader::new(serve.stderr.take().unwrap());
    let (sender, addresses) = mpsc::channel();
    // Reads the log to its end, so the service never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in log.lines().map_while(Result::ok) {
            let Ok(line) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if line["message"] == "serving" {
                let _ = sender.send(line["address"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let address =
        addresses.recv_timeout(Duration::from_secs(30)).expect("serve logs the address it serves on");
    let port = address.rsplit_once(':').unwrap().1;

    // As the image runs it: CTXSYNC_LISTEN is the wildcard address serve binds.
    let ready = ctxsync(&["healthcheck"], &[("CTXSYNC_LISTEN", &format!("0.0.0.0:{port}"))]);
    assert!(ready.status.success(), "{}", stderr(&ready));
    assert!(ready.stdout.is_empty() && ready.stderr.is_empty());
    let alive = ctxsync(&["healthcheck", "--url", &format!("http://{address}/healthz")], &[]);
    assert!(alive.status.success(), "{}", stderr(&alive));
    let missing = ctxsync(&["healthcheck", "--url", &format!("http://{address}/no-such-page")], &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stderr(&missing), format!("error: http://{address}/no-such-page answered 404 Not Found\n"));

    serve.kill().unwrap();
    serve.wait().unwrap();
    let gone = ctxsync(&["healthcheck", "--listen", &address], &[]);
    assert_eq!(gone.status.code(), Some(1));
    let expected = format!("error: could not connect to http://{address}/readyz: ");
    assert!(stderr(&gone).starts_with(&expected), "{}", stderr(&gone));
}

#[test]
fn bash_completion_offers_every_subcommand() {
    let output = ctxsync(&["completions", "bash"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(script.contains("complete -F _ctxsync"), "{script}");
    for name in subcommands() {
        assert!(script.contains(&name), "the bash completion lacks {name}");
    }
}

#[test]
fn manual_pages_cover_every_subcommand_and_variable() {
    let output = ctxsync(&["man"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(page.contains("\n.TH ctxsync 1 "), "{page}");
    for name in subcommands() {
        // roff writes a hyphen as `\-`.
        assert!(page.contains(&name.replace('-', "\\-")), "the manual page lacks {name}");
    }

    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("man1");
    let output = ctxsync(&["man", "--dir", dir.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    for name in subcommands() {
        let path = dir.join(format!("ctxsync-{name}.1"));
        let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(page.contains(&format!("\n.TH ctxsync-{name} 1 ")), "{page}");
    }
    let serve = std::fs::read_to_string(dir.join("ctxsync-serve.1")).unwrap();
    for variable in ["CTXSYNC_LISTEN", "CTXSYNC_DATABASE_URL", "CTXSYNC_METRICS_LISTEN"] {
        assert!(serve.contains(variable), "ctxsync-serve.1 does not name {variable}");
    }
    assert!(dir.join("ctxsync.1").exists());
}
