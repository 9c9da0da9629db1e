//! Credential validation against the fakes, through the operator overrides.
//!
//! One module per source (`okta`, `google`, `entra`, `sentinelone`); `guard` holds the SSRF and
//! reachability cases that no fake is needed for. Helpers shared by all of them live here.
//!
//! Tests whose requests are retried run under tokio's paused clock (`start_paused`): a retry's
//! wait then returns at once and moves that clock by exactly its length, so no test waits for
//! real and the time that passes is the sum of the waits asked for.

mod crowdstrike;
mod entra;
mod google;
mod guard;
mod okta;
mod sentinelone;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ctxsync_core::{IntegrationType, SecretValue, Settings};
use ctxsync_sources::{Credentials, Endpoints, SourceError, Sources};
use serde_json::{Value, json};

fn sources(endpoints: Endpoints) -> Sources {
    Sources::new(endpoints).expect("sources build")
}

fn credentials(integration_type: IntegrationType, secrets: Value) -> Credentials {
    Credentials::parse(integration_type, &SecretValue::new(secrets)).expect("well-formed secrets")
}

fn no_settings() -> Settings {
    Settings::new()
}

/// The message of a `Rejected`, failing the test on anything else.
fn rejected(result: Result<(), SourceError>) -> String {
    match result {
        Err(SourceError::Rejected(message)) => message,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

/// Fails when any secret (or a long enough piece of one) appears in `message`.
fn assert_no_secret(message: &str, secrets: &[&str]) {
    for secret in secrets {
        let probe: String = secret.chars().filter(|c| c.is_ascii_alphanumeric()).take(24).collect();
        assert!(!message.contains(secret), "secret in message: {message}");
        assert!(probe.len() < 8 || !message.contains(&probe), "part of a secret in message: {message}");
    }
}

/// A port with nothing listening on it.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A listener that only counts the connections made to it.
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, hits)
}

fn hits(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::SeqCst)
}

fn okta_secrets(token: &str) -> Value {
    json!({ "api_token": token })
}
