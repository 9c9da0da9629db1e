//! The Prometheus `/metrics` listener (`CTXSYNC_METRICS_LISTEN`), on an address of its own so
//! that it can stay inside the network the scraper lives in while the API faces callers.
//!
//! Counters and histograms are recorded where things happen (requests, runs, source calls, store
//! errors); what describes each config (its last success, held runs, state) is read from the
//! store at each scrape, so every replica reports the same and a restart forgets nothing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ctxsync_core::{ConfigState, Schedule};
use ctxsync_store::Store;
use ctxsync_sync::Worker;
use metrics::{describe_gauge, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tokio::net::TcpListener;

const LAST_SUCCESS: &str = "ctxsync_config_last_success_timestamp_seconds";
const INTERVAL: &str = "ctxsync_config_sync_interval_seconds";
const HELD_RUNS: &str = "ctxsync_config_held_runs";
const CONFIG_VALID: &str = "ctxsync_config_valid";
const CONFIG_ENABLED: &str = "ctxsync_config_enabled";
const TENANT_PROCESSES: &str = "ctxsync_config_tenant_processes";
const POOL_CONNECTIONS: &str = "ctxsync_store_pool_connections";
const POOL_MAX: &str = "ctxsync_store_pool_max_connections";
const SCRAPE_ERRORS: &str = "ctxsync_metrics_store_read_errors_total";

/// Gauges are set at each scrape; one not set for this long belongs to a deleted config.
const GAUGE_IDLE: Duration = Duration::from_secs(30);

/// Buckets of every `_seconds` histogram: from a fast API answer to an hour-long full sync.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
];

/// The process's recorder, installed on first use: the metrics macros everywhere record into it.
/// One per process, as the `metrics` facade allows; several services in one test process share it.
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    // A lock, not a once-cell: two services starting together must not both try to install.
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut installed = HANDLE.lock().expect("metrics recorder lock");
    if let Some(handle) = &*installed {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .context("the histogram buckets")?
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
        .install_recorder()
        .context("could not install the metrics recorder")?;
    describe();
    *installed = Some(handle.clone());
    Ok(handle)
}

fn describe() {
    ctxsync_api::observe::describe();
    ctxsync_api::push::describe_metrics();
    ctxsync_sync::metrics::describe();
    ctxsync_sources::describe_metrics();
    metrics::describe_counter!(
        ctxsync_store::QUERY_ERRORS,
        "Failed database queries, by cause (pool_timeout, connection, database, other)."
    );
    describe_gauge!(
        LAST_SUCCESS,
        metrics::Unit::Seconds,
        "Unix time at which the config's newest succeeded run finished, by config_id."
    );
    describe_gauge!(INTERVAL, metrics::Unit::Seconds, "Time between the config's syncs, by config_id.");
    describe_gauge!(
        HELD_RUNS,
        "Runs of the config whose deletions wait for a decision (confirm or discard), by config_id."
    );
    describe_gauge!(
        CONFIG_VALID,
        "1 when the config's credentials last worked, 0 when the source refused them, by config_id."
    );
    describe_gauge!(CONFIG_ENABLED, "1 when the config is enabled, by config_id.");
    describe_gauge!(
        TENANT_PROCESSES,
        "Processes syncing the config's tenant now (one Okta org, one Google Workspace or Entra ID domain), \
         each keeping to an equal part of its share of the source's limits, by config_id; 0 when none does."
    );
    describe_gauge!(POOL_CONNECTIONS, "Database connections open, by pool and state (busy, idle).");
    describe_gauge!(POOL_MAX, "Most database connections a pool opens, by pool.");
    metrics::describe_counter!(
        SCRAPE_ERRORS,
        "Scrapes whose read of the configs' state from the store failed."
    );
}

/// A bound `/metrics` listener.
pub struct MetricsListener {
    listener: TcpListener,
}

impl MetricsListener {
    pub async fn bind(address: SocketAddr) -> anyhow::Result<MetricsListener> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("could not listen on {address} (CTXSYNC_METRICS_LISTEN)"))?;
        Ok(MetricsListener { listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves `/metrics` until the task is dropped.
    pub async fn serve(
        self,
        store: Arc<dyn Store>,
        schedule: Schedule,
        worker: Worker,
    ) -> anyhow::Result<()> {
        let scrape = Scrape { store, schedule, worker, handle: recorder()? };
        let app = Router::new().route("/metrics", get(render)).with_state(Arc::new(scrape));
        axum::serve(self.listener, app).await.context("the metrics listener stopped")
    }
}

struct Scrape {
    store: Arc<dyn Store>,
    /// The service's default schedule, for configs whose settings set none.
    schedule: Schedule,
    /// Counts the processes syncing each config's tenant, as the sync engine does.
    worker: Worker,
    handle: PrometheusHandle,
}

async fn render(State(scrape): State<Arc<Scrape>>) -> Response {
    if let Err(e) = scrape.read_store().await {
        tracing::warn!(error = %e, "could not read the configs' state for a metrics scrape");
        metrics::counter!(SCRAPE_ERRORS).increment(1);
    }
    scrape.handle.run_upkeep();
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], scrape.handle.render()).into_response()
}

impl Scrape {
    async fn read_store(&self) -> Result<(), ctxsync_store::StoreError> {
        for pool in self.store.pools() {
            let busy = pool.open - pool.idle;
            gauge!(POOL_CONNECTIONS, "pool" => pool.pool, "state" => "busy").set(f64::from(busy));
            gauge!(POOL_CONNECTIONS, "pool" => pool.pool, "state" => "idle").set(f64::from(pool.idle));
            gauge!(POOL_MAX, "pool" => pool.pool).set(f64::from(pool.max));
        }
        let configs = self.store.list_all_configs().await?;
        let summaries = self.store.run_summaries().await?;
        for config in &configs {
            let id = config.id.to_string();
            let interval =
                Schedule::for_settings(&config.settings, self.schedule).unwrap_or(self.schedule).interval;
            gauge!(INTERVAL, "config_id" => id.clone()).set(interval.as_secs_f64());
            gauge!(CONFIG_ENABLED, "config_id" => id.clone()).set(f64::from(u8::from(config.enabled)));
            let valid = match config.state {
                ConfigState::Valid => Some(1.0),
                ConfigState::Invalid => Some(0.0),
                ConfigState::Initializing => None,
            };
            if let Some(valid) = valid {
                gauge!(CONFIG_VALID, "config_id" => id).set(valid);
            }
        }
        for summary in summaries {
            let id = summary.config.to_string();
            gauge!(HELD_RUNS, "config_id" => id.clone()).set(summary.held_runs as f64);
            if let Some(at) = summary.last_success {
                gauge!(LAST_SUCCESS, "config_id" => id).set(at.unix_timestamp_nanos() as f64 / 1e9);
            }
        }
        for (config, processes) in self.worker.tenant_processes(&configs).await? {
            gauge!(TENANT_PROCESSES, "config_id" => config.to_string()).set(f64::from(processes));
        }
        Ok(())
    }
}
