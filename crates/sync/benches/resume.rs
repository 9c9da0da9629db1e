//! Resuming a full sync: a full run of a fake Okta org is stopped once it has stored a share of
//! the users (25%, 50%, 75%), the next full run goes on from its checkpoint, and the requests both
//! made are set beside one uninterrupted full run's. The extra requests are what the stopped run
//! had fetched but not yet marked (pages in flight, the groups page whose members were being
//! listed) and the admin roles, read again before any user.
//!
//! `cargo bench -p ctxsync-sync --bench resume` (`-- --users N`, 20,000 by default). Each run
//! syncs into a fresh SQLite store; the fake runs in this process and counts every request.

use std::sync::Arc;
use std::time::Instant;

use ctxsync_core::{Config, IntegrationType, SecretValue, Settings};
use ctxsync_fakes::{FakeOkta, FaultKnobs, TenantSpec};
use ctxsync_sources::{Endpoints, Sources};
use ctxsync_store::{MasterKey, SqliteStore, Store};
use ctxsync_sync::{Outcome, Progress, RunOptions, SyncSettings, Worker};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users = args
        .iter()
        .position(|a| a == "--users")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let groups = (users / 20).max(5);
    let fake = FakeOkta::start_with(TenantSpec { users, groups, ..TenantSpec::default() }).await.unwrap();
    println!("tenant: {users} users, {groups} groups, Okta's page sizes (200)");

    let (full, _dir) = Bench::new(&fake).await;
    let before = fake.requests();
    let started = Instant::now();
    let Outcome::Succeeded(_) = full.run(None).await else { panic!("the full run completes") };
    let full_requests = fake.requests() - before;
    println!("full run: {full_requests} requests, {:.2} s", started.elapsed().as_secs_f64());

    for percent in [25, 50, 75] {
        let (bench, _dir) = Bench::new(&fake).await;
        let before = fake.requests();
        let (stop, stopped_at) = (Arc::new(tokio::sync::Notify::new()), users * percent / 100);
        let progress: Progress = {
            let stop = stop.clone();
            Arc::new(move |counts, _| {
                if counts.by_type.get("user").is_some_and(|c| c.fetched as usize >= stopped_at) {
                    stop.notify_one();
                }
            })
        };
        let stopped = tokio::spawn({
            let bench = bench.clone();
            async move { bench.run(Some(progress)).await }
        });
        stop.notified().await;
        stopped.abort();
        let _ = stopped.await;
        let first = fake.requests() - before;
        let started = Instant::now();
        let Outcome::Succeeded(run) = bench.run(None).await else { panic!("the resumed run completes") };
        let second = fake.requests() - before - first;
        assert!(run.resumed_from.is_some(), "the run went on from the stopped one");
        assert_eq!(run.counts.by_type["user"].fetched as usize, users, "every user counted once");
        let extra = (first + second) as f64 - full_requests as f64;
        println!(
            "stopped at {percent}% of the users: {first} + {second} requests (resumed in {:.2} s); \
             {extra:.0} more than the full run, {:.1}% of it (target ≤ 10%)",
            started.elapsed().as_secs_f64(),
            100.0 * extra / full_requests as f64,
        );
    }
}

#[derive(Clone)]
struct Bench {
    worker: Worker,
    config: Config,
}

impl Bench {
    async fn new(fake: &FakeOkta) -> (Bench, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/bench.db", dir.path().display());
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::connect(&url, MasterKey::load_or_generate(dir.path()).unwrap()).await.unwrap(),
        );
        let org = store.ensure_org("bench").await.unwrap();
        let config =
            Config::created(org, IntegrationType::Okta, "bench".into(), fake.domain(), Settings::new());
        store
            .insert_config(&config, &SecretValue::new(json!({"api_token": fake.api_token()})))
            .await
            .unwrap();
        let sources = Sources::new(Endpoints::overridden(fake.base_urls())).unwrap();
        (Bench { worker: Worker::new(store, sources, SyncSettings::default()), config }, dir)
    }

    async fn run(&self, progress: Option<Progress>) -> Outcome {
        let options = RunOptions { full: true, progress, ..RunOptions::default() };
        self.worker.run(&self.config, options, &CancellationToken::new()).await.unwrap()
    }
}
