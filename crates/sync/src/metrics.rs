//! What the engine reports to the metrics recorder (a no-op unless `CTXSYNC_METRICS_LISTEN` set
//! one up). Labels are integration types, entity kinds, run outcomes and changes: fixed sets, so
//! no tenant's identifier or caller's string ever becomes a label.

use ctxsync_core::{IntegrationType, Run};
use metrics::{counter, describe_counter, describe_histogram, histogram};

pub const RUNS: &str = "ctxsync_sync_runs_total";
pub const RUN_DURATION: &str = "ctxsync_sync_run_duration_seconds";
pub const FETCHED: &str = "ctxsync_entities_fetched_total";
pub const WRITTEN: &str = "ctxsync_entities_written_total";
pub const LEASE_TAKEOVERS: &str = "ctxsync_lease_takeovers_total";

/// Gives each of the engine's metrics its help text.
pub fn describe() {
    describe_counter!(
        RUNS,
        "Finished sync runs, by integration_type and outcome (succeeded, held, failed, cancelled)."
    );
    describe_histogram!(
        RUN_DURATION,
        metrics::Unit::Seconds,
        "Duration of finished sync runs, by integration_type."
    );
    describe_counter!(FETCHED, "Entities read from sources, by integration_type and kind.");
    describe_counter!(
        WRITTEN,
        "Entities changed in the store, by integration_type, kind and change (created, updated, deleted)."
    );
    describe_counter!(
        LEASE_TAKEOVERS,
        "Config leases taken over from a process of this host that no longer runs."
    );
}

/// Counts a finished run: its outcome, duration and what it fetched and wrote.
pub(crate) fn record_run(integration_type: IntegrationType, run: &Run) {
    let source = integration_type.as_str();
    counter!(RUNS, "integration_type" => source, "outcome" => run.status.as_str()).increment(1);
    if let Some(finished) = run.finished_at {
        let seconds = (finished - run.started_at).as_seconds_f64().max(0.0);
        histogram!(RUN_DURATION, "integration_type" => source).record(seconds);
    }
    for (kind, counts) in &run.counts.by_type {
        let kind = kind.clone();
        counter!(FETCHED, "integration_type" => source, "kind" => kind.clone()).increment(counts.fetched);
        for (change, n) in
            [("created", counts.created), ("updated", counts.updated), ("deleted", counts.deleted)]
        {
            let labels = [
                ("integration_type", source.to_owned()),
                ("kind", kind.clone()),
                ("change", change.to_owned()),
            ];
            counter!(WRITTEN, &labels).increment(n);
        }
    }
}

pub(crate) fn record_takeover() {
    counter!(LEASE_TAKEOVERS).increment(1);
}
