//! Building and running the service: open the store, bootstrap keys, bind, serve until told to
//! stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ctxsync_api::{AppState, RateLimits};
use ctxsync_core::Scopes;
use ctxsync_sources::Sources;
use ctxsync_store::Store;
use ctxsync_sync::{Clock, Scheduler, Worker};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::connections::{self, ConnectionLimits};
use crate::exposition::{self, MetricsListener};
use crate::settings::ServeSettings;

/// A bound, ready-to-run service. Tests build one on port 0 and read its address.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    scheduler: Scheduler,
    event_retention: Duration,
    connections: ConnectionLimits,
    metrics: Option<MetricsListener>,
    schedule: ctxsync_core::Schedule,
    /// The sync engine's clock and how often it looks, which push subscriptions' renewal follows.
    clock: Clock,
    tick: Duration,
}

impl Application {
    /// Also raises this process's soft open-file limit to the hard one, for the connections.
    pub async fn build(settings: ServeSettings) -> anyhow::Result<Application> {
        Self::assemble(settings, None).await
    }

    /// As [`Application::build`], serving on a listener bound already: the demo and the tests
    /// learn their own address first, to give it as `CTXSYNC_PUBLIC_URL` to sources that push.
    pub async fn build_on(settings: ServeSettings, listener: TcpListener) -> anyhow::Result<Application> {
        Self::assemble(settings, Some(listener)).await
    }

    async fn assemble(settings: ServeSettings, listener: Option<TcpListener>) -> anyhow::Result<Application> {
        let connections = settings.connections.fitted_to(connections::raise_open_file_limit());
        let store: Arc<dyn Store> = ctxsync_store::connect(&settings.database_url, settings.master_key)
            .await
            .context("could not open the database")?;
        if let Some((api_key, app_key)) = &settings.bootstrap {
            store
                .ensure_key_pair("default", api_key, app_key, &Scopes::All)
                .await
                .context("could not store the bootstrap key pair")?;
        }
        let metrics = match settings.metrics_listen {
            Some(address) => {
                exposition::recorder()?;
                Some(MetricsListener::bind(address).await?)
            }
            None => None,
        };
        let schedule = settings.sync.schedule;
        let (clock, tick) = (settings.sync.clock.clone(), settings.sync.tick);
        let sources = Sources::new(settings.endpoints).context("could not set up the source clients")?;
        let limits = RateLimits::new(settings.rate_limit);
        let state = AppState::new(store.clone(), sources.clone(), limits, settings.public_url);
        let scheduler =
            Scheduler::new(Worker::new(store, sources, settings.sync)).woken_by(state.runs_due.clone());
        let listener = match listener {
            Some(listener) => listener,
            None => TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("could not listen on {} (CTXSYNC_LISTEN)", settings.listen))?,
        };
        Ok(Application {
            listener,
            state,
            scheduler,
            event_retention: settings.event_retention,
            connections,
            metrics,
            schedule,
            clock,
            tick,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsListener::local_addr)
    }

    /// Serves and syncs until `shutdown` completes, then finishes the requests in flight and
    /// stops the runs in progress (their upserts stay; nothing is half-deleted).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let worker = self.scheduler.worker().clone();
        let syncing = tokio::spawn(self.scheduler.run_until_stopped(stop.clone()));
        let limits = self.state.limits.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limits.forget_idle();
            }
        });
        let retention = tokio::spawn(forget_old_events(self.state.store.clone(), self.event_retention));
        let clock = self.clock;
        let subscriptions =
            tokio::spawn(ctxsync_api::keep_subscriptions(self.state.clone(), self.tick, move || clock.now()));
        let metrics = self.metrics.map(|listener| {
            tracing::info!(address = %listener.local_addr(), "serving metrics at /metrics");
            let (store, schedule) = (self.state.store.clone(), self.schedule);
            tokio::spawn(async move {
                if let Err(e) = listener.serve(store, schedule, worker).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            })
        });
        let app = ctxsync_api::router(self.state);
        tracing::info!(
            address = %self.listener.local_addr()?,
            max_connections = self.connections.max_connections,
            "serving"
        );
        connections::serve(self.listener, app, self.connections, shutdown).await;
        sweeper.abort();
        retention.abort();
        subscriptions.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        stop.cancel();
        let _ = syncing.await;
        Ok(())
    }
}

/// Deletes change events older than `retention`, at start and every hour. Every replica does;
/// a deletion another one already made deletes nothing.
async fn forget_old_events(store: Arc<dyn Store>, retention: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let before = ctxsync_core::now() - retention;
        match store.delete_events_before(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "change events past CTXSYNC_EVENT_RETENTION deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete old change events; retrying in an hour"),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
