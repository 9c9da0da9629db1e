//! `ctxsync sync --config ID`: one run in the foreground with a progress bar, then its summary.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ctxsync_core::RunCounts;
use ctxsync_sources::Sources;
use ctxsync_sync::{Outcome, RunOptions, Worker};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::settings::SyncCommandArgs;
use crate::{demo_folder, stored, telemetry};

pub async fn run(args: SyncCommandArgs) -> anyhow::Result<()> {
    telemetry::init(&args.log)?;
    let endpoints = args.sources.endpoints();
    demo_folder::require_fakes(args.store.database_folder(), &endpoints)?;
    let (store, config) = stored::config(&args.store, args.config).await?;
    let sources = Sources::new(endpoints).context("could not set up the source clients")?;
    let worker = Worker::new(store, sources, args.sync.settings()?);

    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let progress_bar = bar.clone();
    let progress = Arc::new(move |counts: &RunCounts| {
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let fetched = counts.fetched();
        progress_bar.set_message(format!(
            "{fetched} entities ({:.0}/s), {} pages ({:.1}/s), {} retries",
            fetched as f64 / secs,
            counts.pages,
            counts.pages as f64 / secs,
            counts.retries
        ));
    });
    let stop = CancellationToken::new();
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    println!("syncing {} ({}, {})", config.name, config.integration_type, config.id);
    let outcome =
        worker.run(&config, RunOptions { progress: Some(progress), full: args.full }, &stop).await?;
    bar.finish_and_clear();
    let run = match outcome {
        Outcome::Succeeded(run) | Outcome::Held(run) | Outcome::Failed(run) | Outcome::Cancelled(run) => run,
        Outcome::Busy => bail!("another worker is syncing this config right now; try again when it is done"),
        Outcome::Skipped(reason) => bail!("the config was not synced: {reason}"),
    };
    let took = run.finished_at.map(|f| f - run.started_at).unwrap_or_default();
    println!("{} run {} {} in {:.1}s", run.kind.as_str(), run.id, run.status.as_str(), took.as_seconds_f64());
    println!("{:<12} {:>10} {:>10} {:>10} {:>10}", "", "fetched", "created", "updated", "deleted");
    for (kind, c) in &run.counts.by_type {
        println!("{kind:<12} {:>10} {:>10} {:>10} {:>10}", c.fetched, c.created, c.updated, c.deleted);
    }
    println!("pages {}, retries {}", run.counts.pages, run.counts.retries);
    if let Some(completeness) = &run.completeness {
        for mismatch in completeness.mismatches() {
            println!("completeness: {mismatch}");
        }
    }
    if let Some(hold) = &run.hold {
        println!("deletions held: {}", hold.reason);
        println!(
            "review them: GET /api/v2/ctxsync/integration_configs/{}/sync_runs/{}/held_deletions",
            config.id, run.id
        );
    }
    if let Some(error) = &run.error {
        bail!("the run did not complete: {error}");
    }
    Ok(())
}
