//! `ctxsync sync --config ID`: one run in the foreground with a progress bar, then its summary.
//! The exit status tells a script how it ended: [`SUCCEEDED`], [`HELD`] or [`FAILED`].

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ctxsync_core::{Config, Expected, Run, RunCounts, RunStatus};
use ctxsync_sources::Sources;
use ctxsync_sync::{Outcome, RunOptions, Worker};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::settings::SyncCommandArgs;
use crate::{demo_folder, stored, telemetry};

/// The run completed and everything it found was applied.
pub const SUCCEEDED: u8 = 0;
/// The run failed, was interrupted, or could not start.
pub const FAILED: u8 = 1;
/// The run completed but its deletions wait for a decision (`ctxsync holds`).
pub const HELD: u8 = 3;

/// How often a sync waiting for another worker's lease asks again.
const WAIT_POLL: Duration = Duration::from_secs(1);

pub async fn run(args: SyncCommandArgs) -> anyhow::Result<ExitCode> {
    let bar = ProgressBar::new_spinner();
    telemetry::init_with(&args.log, args.log_format, ProgressWriter(bar.clone()))?;
    let endpoints = args.sources.endpoints();
    demo_folder::require_fakes(args.store.database_folder(), &endpoints)?;
    let (store, config) = stored::config(&args.store, args.config).await?;
    let sources = Sources::new(endpoints).context("could not set up the source clients")?;
    let worker = Worker::new(store, sources, args.sync.settings()?);
    let stop = CancellationToken::new();
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });

    let mut out = std::io::stdout().lock();
    writeln!(out, "syncing {} ({}, {})", config.name, config.integration_type, config.id)?;
    drop(out);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let options =
        RunOptions { progress: Some(progress(bar.clone())), full: args.full, restart: args.restart };
    let outcome = run_when_free(&worker, &config, options, &stop, args.no_wait, &bar).await;
    bar.finish_and_clear();
    let run = match outcome? {
        Outcome::Succeeded(run) | Outcome::Held(run) | Outcome::Failed(run) | Outcome::Cancelled(run) => run,
        Outcome::Busy { holder } => {
            bail!(
                "{holder} is syncing this config right now; run again when it is done, or without --no-wait"
            )
        }
        Outcome::Skipped(reason) => bail!("the config was not synced: {reason}"),
    };
    summarize(&config, &run)?;
    if let Some(error) = &run.error {
        eprintln!("error: the run did not complete: {error}");
    }
    Ok(ExitCode::from(match run.status {
        RunStatus::Succeeded => SUCCEEDED,
        RunStatus::Held => HELD,
        RunStatus::Running | RunStatus::Failed | RunStatus::Cancelled => FAILED,
    }))
}

/// Runs the sync, first waiting for a live worker that holds the config's lease to finish unless
/// `no_wait` (the lease of a process of this host that no longer exists is taken over at once).
async fn run_when_free(
    worker: &Worker,
    config: &Config,
    options: RunOptions,
    stop: &CancellationToken,
    no_wait: bool,
    bar: &ProgressBar,
) -> anyhow::Result<Outcome> {
    let mut told = false;
    loop {
        let outcome = worker.run(config, options.clone(), stop).await?;
        let Outcome::Busy { holder } = &outcome else { return Ok(outcome) };
        if no_wait {
            return Ok(outcome);
        }
        if !told {
            bar.suspend(|| {
                eprintln!("waiting for {holder}, which is syncing this config (--no-wait fails instead)")
            });
            bar.set_message("waiting for the other worker to finish");
            told = true;
        }
        tokio::select! {
            () = stop.cancelled() => bail!("stopped while waiting for {holder} to finish"),
            () = tokio::time::sleep(WAIT_POLL) => {}
        }
    }
}

/// A spinner with rates, or a bar with percentage and ETA once the source announces how many of
/// a kind it will list (Graph's `$count`s, Okta's group `usersCount`s).
fn progress(bar: ProgressBar) -> ctxsync_sync::Progress {
    let started = std::time::Instant::now();
    Arc::new(move |counts: &RunCounts, announced: &Expected| {
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let fetched = counts.fetched();
        let rates = format!(
            "{fetched} entities ({:.0}/s), {} pages ({:.1}/s), {} retries",
            fetched as f64 / secs,
            counts.pages,
            counts.pages as f64 / secs,
            counts.retries
        );
        let total: u64 = announced.values().sum();
        if total == 0 {
            bar.set_message(rates);
            return;
        }
        let done: u64 =
            announced.iter().map(|(kind, &n)| counts.by_type.get(kind).map_or(0, |c| c.fetched.min(n))).sum();
        if bar.length().is_none() {
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{wide_bar}] {percent}% of {len} {prefix} (ETA {eta})\n{msg}",
                )
                .expect("a valid template"),
            );
            bar.set_prefix(announced.keys().map(String::as_str).collect::<Vec<_>>().join(", "));
        }
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(rates);
    })
}

fn summarize(config: &Config, run: &Run) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let took = run.finished_at.map(|f| f - run.started_at).unwrap_or_default();
    writeln!(
        out,
        "{} run {} {} in {:.1}s",
        run.kind.as_str(),
        run.id,
        run.status.as_str(),
        took.as_seconds_f64()
    )?;
    writeln!(out, "{:<12} {:>10} {:>10} {:>10} {:>10}", "", "fetched", "created", "updated", "deleted")?;
    for (kind, c) in &run.counts.by_type {
        writeln!(out, "{kind:<12} {:>10} {:>10} {:>10} {:>10}", c.fetched, c.created, c.updated, c.deleted)?;
    }
    writeln!(out, "pages {}, retries {}", run.counts.pages, run.counts.retries)?;
    if let Some(completeness) = &run.completeness {
        for mismatch in completeness.mismatches() {
            writeln!(out, "completeness: {mismatch}")?;
        }
    }
    if let Some(hold) = &run.hold {
        writeln!(out, "deletions held: {}", hold.reason)?;
        writeln!(out, "review them: ctxsync holds show --config {} --run {}", config.id, run.id)?;
        writeln!(out, "then:        ctxsync holds confirm|discard --config {} --run {}", config.id, run.id)?;
    }
    Ok(())
}

/// Log lines written around the progress bar, so a warning does not tear it.
#[derive(Clone)]
struct ProgressWriter(ProgressBar);

impl Write for ProgressWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ProgressWriter {
    type Writer = ProgressWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use ctxsync_core::Counts;

    use super::*;

    fn counts(users: u64, memberships: u64) -> RunCounts {
        let mut counts = RunCounts { pages: 3, ..RunCounts::default() };
        counts.by_type.insert("user".into(), Counts { fetched: users, ..Counts::default() });
        counts.by_type.insert("membership".into(), Counts { fetched: memberships, ..Counts::default() });
        counts
    }

    #[test]
    fn rates_until_the_source_announces_a_total_then_a_bar() {
        let bar = ProgressBar::hidden();
        let report = progress(bar.clone());
        report(&counts(10, 0), &Expected::new());
        assert_eq!(bar.length(), None, "no total known: a spinner");
        assert!(bar.message().starts_with("10 entities ("), "{}", bar.message());
        report(&counts(20, 30), &Expected::from([("membership".to_string(), 120)]));
        assert_eq!(
            (bar.length(), bar.position()),
            (Some(120), 30),
            "memberships counted against their total"
        );
        report(&counts(40, 60), &Expected::from([("membership".to_string(), 120), ("user".to_string(), 40)]));
        assert_eq!((bar.length(), bar.position()), (Some(160), 100));
        assert!(bar.message().starts_with("100 entities ("), "{}", bar.message());
    }
}
