//! The configuration API's GET by id, measured beside a bare hyper server that answers "hello".
//!
//! `cargo bench -p ctxsync --bench config_get` (`-- --rounds N`, 5 by default; `--seconds N` per
//! measurement, 3 by default). The real service runs on SQLite with one Okta config (validated
//! against the fake Okta), its rate limit raised out of the way (the headers are still computed
//! and sent). In each round the same client — [`CONNECTIONS`] keep-alive connections, each
//! sending its next request as soon as the last is answered — first loads the hello server, then
//! the service, and the round's ratio is the service's requests/s over hello's. Then the service
//! is loaded at half its own throughput, paced, and the 99th percentile of its latency printed.
//! Targets (GUIDE §5): GET by id at least 50% of the hello server's requests/s, p99 under 5 ms at
//! half that load. Client and servers share the machine's cores, as they would in any run of
//! this on one machine, so both sides pay the same client.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ctxsync_fakes::{Fakes, TenantSpec};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

/// Keep-alive connections the client drives at once.
const CONNECTIONS: usize = 32;

const BASE: &str = "/api/v2/security_monitoring/configuration/integration_config";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = flag(&args, "--rounds").unwrap_or(5).max(1);
    let window = Duration::from_secs(flag(&args, "--seconds").unwrap_or(3).max(1) as u64);

    let hello = format!("http://{}/", serve_hello().await);
    let (service, _dir, fakes) = serve_ctxsync().await;
    let client = Arc::new(Client::new());
    let config = create_config(&client, &service, &fakes).await;
    let get = format!("{service}{BASE}/{config}");
    assert_eq!(client.get(&get).await, 200, "GET by id answers 200");

    let mut ratios = Vec::new();
    let mut ours_best = 0f64;
    for round in 1..=rounds {
        let theirs = client.saturate(&hello, window).await;
        let ours = client.saturate(&get, window).await;
        println!(
            "round {round}: hello {theirs:.0} requests/s, GET by id {ours:.0} requests/s: {:.0}%",
            100.0 * ours / theirs
        );
        ratios.push(ours / theirs);
        ours_best = ours_best.max(ours);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "ratio:   over {rounds} rounds GET by id reaches {:.0}% of the hello server's requests/s at the median \
         ({:.0}–{:.0}%) (target >= 50%)",
        100.0 * ratios[ratios.len() / 2],
        100.0 * ratios[0],
        100.0 * ratios[ratios.len() - 1]
    );
    let rate = ours_best / 2.0;
    let mut latencies = client.paced(&get, rate, window).await;
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "latency: {} requests paced at {rate:.0}/s (half the fastest round): p50 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms (target p99 < 5 ms)",
        latencies.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
}

/// A bare hyper HTTP/1 server answering every request with "hello".
async fn serve_hello() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let hello = service_fn(|_| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("hello"))))
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), hello).await;
            });
        }
    });
    address
}

/// The service on SQLite in a temporary directory, with the fake sources to validate against.
async fn serve_ctxsync() -> (String, tempfile::TempDir, Fakes) {
    let fakes = Fakes::start_with(TenantSpec::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let address = common::serve(&fakes, &dir).await;
    (address, dir, fakes)
}

/// Creates an Okta config (validated against the fake Okta) and returns its id.
async fn create_config(client: &Client, service: &str, fakes: &Fakes) -> String {
    let body = json!({"data": {"type": "integration_config", "attributes": {
        "integration_type": "OKTA",
        "name": "bench",
        "domain": fakes.okta.domain(),
        "secrets": {"api_token": fakes.okta.api_token()},
    }}});
    let created: serde_json::Value = client
        .http
        .post(format!("{service}{BASE}"))
        .headers(client.auth.clone())
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["data"]["id"].as_str().unwrap_or_else(|| panic!("the config is created: {created}")).to_string()
}

/// The load generator: one pool of keep-alive connections, authenticated as the service wants.
struct Client {
    http: reqwest::Client,
    auth: reqwest::header::HeaderMap,
}

impl Client {
    fn new() -> Client {
        Client { http: reqwest::Client::new(), auth: common::auth() }
    }

    /// One request, read to the end; its status.
    async fn get(&self, url: &str) -> u16 {
        let response = self.http.get(url).headers(self.auth.clone()).send().await.unwrap();
        let status = response.status().as_u16();
        response.bytes().await.unwrap();
        status
    }

    /// Requests/s with [`CONNECTIONS`] requests always in flight, counted over `window` after a
    /// short warm-up (connections opened, caches filled). Every answer must be a 200.
    async fn saturate(self: &Arc<Self>, url: &str, window: Duration) -> f64 {
        let (counting, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let done = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (client, url) = (self.clone(), url.to_string());
                let (counting, stop, done) = (counting.clone(), stop.clone(), done.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        assert_eq!(client.get(&url).await, 200, "{url} answers 200 under load");
                        if counting.load(Ordering::Relaxed) {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        counting.store(true, Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(window).await;
        let counted = done.load(Ordering::Relaxed);
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.await.unwrap();
        }
        counted as f64 / elapsed.as_secs_f64()
    }

    /// The latency of each request sent at `rate` requests/s in all, spread over the connections,
    /// for `window`.
    async fn paced(self: &Arc<Self>, url: &str, rate: f64, window: Duration) -> Vec<Duration> {
        let every = Duration::from_secs_f64(CONNECTIONS as f64 / rate);
        let until = Instant::now() + window;
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|n| {
                let (client, url) = (self.clone(), url.to_string());
                tokio::spawn(async move {
                    // Staggered, so the connections do not send in step.
                    tokio::time::sleep(every.mul_f64(n as f64 / CONNECTIONS as f64)).await;
                    let mut ticks = tokio::time::interval(every);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    let mut latencies = Vec::new();
                    while Instant::now() < until {
                        ticks.tick().await;
                        let sent = Instant::now();
                        assert_eq!(client.get(&url).await, 200, "{url} answers 200 under load");
                        latencies.push(sent.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.await.unwrap());
        }
        all
    }
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}
