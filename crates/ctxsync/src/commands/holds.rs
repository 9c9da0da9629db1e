//! `ctxsync holds list|show|confirm|discard`: runs whose deletions wait for a decision, read and
//! decided through the same store calls as the API's held-deletion routes, so a script (or an
//! operator without API keys at hand) can review a mass deletion and settle it.

use std::io::Write;

use anyhow::bail;
use ctxsync_api::entities::{HeldDeletionData, RunData};
use ctxsync_core::{HoldResolution, Run};
use ctxsync_store::{Decided, HeldCursor};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::settings::{HoldsArgs, HoldsCommand, HoldsRunArgs, StoreArgs};
use crate::stored;

/// Held deletions read from the store at a time.
const PAGE: u32 = 1000;

pub async fn run(args: HoldsArgs) -> anyhow::Result<()> {
    match args.command {
        HoldsCommand::List(a) => list(&a.store, a.config, a.json).await,
        HoldsCommand::Show(a) => show(a).await,
        HoldsCommand::Confirm(a) => decide(a, HoldResolution::Confirmed).await,
        HoldsCommand::Discard(a) => decide(a, HoldResolution::Discarded).await,
    }
}

async fn list(store: &StoreArgs, config: ctxsync_core::ConfigId, as_json: bool) -> anyhow::Result<()> {
    let (store, config) = stored::config(store, config).await?;
    let held = store.pending_holds(config.org_id, config.id).await?;
    let mut out = std::io::stdout().lock();
    if as_json {
        for run in held {
            writeln!(out, "{}", serde_json::to_string(&RunData::from(run))?)?;
        }
    } else if held.is_empty() {
        writeln!(out, "no held deletions for {} ({})", config.name, config.id)?;
    } else {
        for run in &held {
            describe(&mut out, run)?;
        }
    }
    Ok(())
}

async fn show(args: HoldsRunArgs) -> anyhow::Result<()> {
    let (store, config) = stored::config(&args.store, args.config).await?;
    let not_found = || anyhow::anyhow!("config {} has no run {}", config.id, args.run);
    let run = store.get_run(config.org_id, config.id, args.run).await?.ok_or_else(not_found)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", json!({"run": RunData::from(run.clone())}))?;
    } else {
        describe(&mut out, &run)?;
    }
    let mut after: Option<HeldCursor> = None;
    loop {
        let rows = store
            .held_deletions(config.org_id, config.id, run.id, after.as_ref(), PAGE)
            .await?
            .ok_or_else(not_found)?;
        after = rows.last().map(|r| r.cursor());
        let full = rows.len() as u32 == PAGE;
        for row in rows {
            if args.json {
                writeln!(out, "{}", json!({"held_deletion": HeldDeletionData::from(row).attributes}))?;
            } else if row.kind == "membership" {
                writeln!(
                    out,
                    "  membership  group {} member {} {}",
                    row.source_id, row.member_kind, row.member_id
                )?;
            } else {
                let who = row.login.or(row.display_name).unwrap_or_default();
                writeln!(out, "  {:<10}  {}  {who}", row.kind, row.source_id)?;
            }
        }
        if !full {
            return Ok(());
        }
    }
}

async fn decide(args: HoldsRunArgs, decision: HoldResolution) -> anyhow::Result<()> {
    let (store, config) = stored::config(&args.store, args.config).await?;
    let run = match store.decide_hold(config.org_id, config.id, args.run, decision).await? {
        Decided::Resolved(run) => run,
        Decided::NotHeld(run) => match run.hold.and_then(|h| h.resolution) {
            Some(resolution) => bail!("the run's held deletions were already {}", resolution.as_str()),
            None => bail!("the run is {}, not held: it has no deletions waiting", run.status.as_str()),
        },
        Decided::NotFound => bail!("config {} has no run {}", config.id, args.run),
    };
    tracing::info!(config_id = %config.id, run_id = %run.id, decision = decision.as_str(), "held deletions decided");
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&RunData::from(run))?)?;
    } else {
        let deleted: u64 = run.counts.by_type.values().map(|c| c.deleted).sum();
        writeln!(out, "run {}: held deletions {} ({deleted} deleted)", run.id, decision.as_str())?;
    }
    Ok(())
}

fn describe(out: &mut impl Write, run: &Run) -> std::io::Result<()> {
    let hold = run.hold.as_ref();
    let started = run.started_at.format(&Rfc3339).unwrap_or_default();
    writeln!(out, "run {}  {}  started {started}", run.id, run.status.as_str())?;
    if let Some(hold) = hold {
        let waiting: Vec<String> = hold.deletions.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        writeln!(out, "  waiting: {}", waiting.join(", "))?;
        writeln!(out, "  reason:  {}", hold.reason)?;
        if let Some(resolution) = hold.resolution {
            writeln!(out, "  decided: {}", resolution.as_str())?;
        }
    }
    Ok(())
}
