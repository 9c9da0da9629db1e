//! What the engine reports to the metrics recorder (a no-op unless `CTXSYNC_METRICS_LISTEN` set
//! one up). Labels are integration types, entity kinds, run outcomes and changes: fixed sets, so
//! no tenant's identifier or caller's string ever becomes a label.

use ctxsync_core::{Counts, IntegrationType, Run, RunCounts};
use metrics::{counter, describe_counter, describe_histogram, histogram};

pub const RUNS: &str = "ctxsync_sync_runs_total";
pub const RUN_DURATION: &str = "ctxsync_sync_run_duration_seconds";
pub const FETCHED: &str = "ctxsync_entities_fetched_total";
pub const WRITTEN: &str = "ctxsync_entities_written_total";
pub const LEASE_TAKEOVERS: &str = "ctxsync_lease_takeovers_total";
pub const RESUMED: &str = "ctxsync_sync_runs_resumed_total";

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
        RESUMED,
        "Full runs that went on from a stopped one instead of listing everything again, by integration_type."
    );
    describe_counter!(
        LEASE_TAKEOVERS,
        "Config leases taken over from a process of this host that no longer runs."
    );
}

/// Counts a finished run: its outcome, duration and what it fetched and wrote, less what it
/// `carried` over from the stopped run it resumed (counted when that one ended).
pub(crate) fn record_run(integration_type: IntegrationType, run: &Run, carried: &RunCounts) {
    let source = integration_type.as_str();
    counter!(RUNS, "integration_type" => source, "outcome" => run.status.as_str()).increment(1);
    if run.resumed_from.is_some() {
        counter!(RESUMED, "integration_type" => source).increment(1);
    }
    if let Some(finished) = run.finished_at {
        let seconds = (finished - run.started_at).as_seconds_f64().max(0.0);
        histogram!(RUN_DURATION, "integration_type" => source).record(seconds);
    }
    for (kind, counts) in &run.counts.by_type {
        let before = carried.by_type.get(kind).copied().unwrap_or_default();
        let counts = Counts {
            fetched: counts.fetched.saturating_sub(before.fetched),
            created: counts.created.saturating_sub(before.created),
            updated: counts.updated.saturating_sub(before.updated),
            deleted: counts.deleted.saturating_sub(before.deleted),
        };
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use ctxsync_core::{ConfigId, RunKind, RunStatus};
    use metrics::{
        Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::*;

    /// Sums counters by name and labels.
    #[derive(Default)]
    struct Sums(Arc<Mutex<BTreeMap<String, u64>>>);

    struct Sum(Arc<Mutex<BTreeMap<String, u64>>>, String);

    impl CounterFn for Sum {
        fn increment(&self, value: u64) {
            *self.0.lock().unwrap().entry(self.1.clone()).or_default() += value;
        }

        fn absolute(&self, value: u64) {
            self.0.lock().unwrap().insert(self.1.clone(), value);
        }
    }

    impl Recorder for Sums {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            Counter::from_arc(Arc::new(Sum(self.0.clone(), format!("{} {}", key.name(), labels.join(",")))))
        }

        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }

        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// A resumed run's counts include the stopped run's, which were counted when it ended: the
    /// metrics take only what the resumed run fetched and wrote itself.
    #[test]
    fn a_resumed_run_counts_only_what_it_did_itself() {
        let mut run = resumed_run();
        run.counts.entry("user").fetched = 100;
        run.counts.entry("user").created = 100;
        let mut carried = RunCounts::default();
        carried.entry("user").fetched = 60;
        carried.entry("user").created = 60;
        let sums = Sums::default();
        let seen = sums.0.clone();
        metrics::with_local_recorder(&sums, || record_run(IntegrationType::Okta, &run, &carried));
        let seen = seen.lock().unwrap();
        assert_eq!(seen["ctxsync_entities_fetched_total integration_type=OKTA,kind=user"], 40);
        assert_eq!(seen["ctxsync_entities_written_total integration_type=OKTA,kind=user,change=created"], 40);
        assert_eq!(seen["ctxsync_sync_runs_resumed_total integration_type=OKTA"], 1);
    }

    fn resumed_run() -> Run {
        Run {
            id: uuid::Uuid::new_v4(),
            config_id: ConfigId::new(),
            kind: RunKind::Full,
            status: RunStatus::Succeeded,
            started_at: ctxsync_core::now(),
            finished_at: Some(ctxsync_core::now()),
            counts: RunCounts::default(),
            error: None,
            baseline: false,
            hold: None,
            completeness: None,
            resumed_from: Some(uuid::Uuid::new_v4()),
        }
    }
}
