//! The worker driven run by run against a fake Okta org and a fresh store (SQLite, or PostgreSQL
//! under `scripts/test-postgres`): interrupted
//! runs delete nothing and the next run converges; disabling a config stops its run promptly;
//! a scripted sequence of tenant changes records exactly its change events.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ctxsync_core::{Config, EntityKind, IntegrationType, RunKind, RunStatus, SecretValue, Settings};
use ctxsync_fakes::FaultKnobs;
use ctxsync_fakes::{FakeOkta, TenantSpec};
use ctxsync_sources::{Endpoints, Sources};
use ctxsync_store::testing::TestDatabase;
use ctxsync_store::{EntityQuery, EventQuery, MasterKey, SOURCE_CHANGED, Store};
use ctxsync_sync::{Outcome, RunOptions, SyncSettings, Worker};
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct Rig {
    _db: TestDatabase,
    store: Arc<dyn Store>,
    okta: FakeOkta,
    config: Config,
    worker: Worker,
}

async fn rig(users: usize) -> Rig {
    let okta = FakeOkta::start_with(TenantSpec { users, groups: 4, ..TenantSpec::default() }).await.unwrap();
    let db = TestDatabase::create().await;
    let key = MasterKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    let store = ctxsync_store::connect(&db.url, key).await.unwrap();
    let org = store.ensure_org("default").await.unwrap();
    let config = Config::created(org, IntegrationType::Okta, "okta".into(), okta.domain(), Settings::new());
    store.insert_config(&config, &SecretValue::new(json!({"api_token": okta.api_token()}))).await.unwrap();
    let endpoints = Endpoints::overridden(okta.base_urls());
    let settings = SyncSettings { lease: Duration::from_secs(3), ..SyncSettings::default() };
    let worker = Worker::new(store.clone(), Sources::new(endpoints).unwrap(), settings);
    Rig { _db: db, store, okta, config, worker }
}

impl Rig {
    async fn user_ids(&self) -> BTreeSet<String> {
        let q = EntityQuery { kind: Some(EntityKind::User), limit: 100_000, ..EntityQuery::default() };
        self.store
            .list_entities(self.config.org_id, &q)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.entity.source_id().to_owned())
            .collect()
    }

    fn truth(&self) -> BTreeSet<String> {
        self.okta.snapshot().users.keys().cloned().collect()
    }

    async fn run_full(&self) -> Outcome {
        self.worker
            .run(&self.config, RunOptions { full: true, ..RunOptions::default() }, &CancellationToken::new())
            .await
            .unwrap()
    }

    /// Writes `changed` while a run of the config is listing, and returns how the run ended: ten
    /// pages of users at 400 ms each, so a run that stopped promptly (at the next heartbeat, a
    /// third of the lease, or its next write) is one that did not reach the end of the listing.
    async fn update_during_a_run(&self, changed: &Config) -> Outcome {
        self.okta.slow_pages(Duration::from_millis(400));
        let worker = self.worker.clone();
        let config = self.config.clone();
        let running = tokio::spawn(async move {
            worker.run(&config, RunOptions::default(), &CancellationToken::new()).await
        });
        self.wait_for_users(200).await;
        self.store.update_config(changed, None).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), running).await.expect("the run stops").unwrap().unwrap()
    }

    /// Waits until a run of the config is running, its lease held.
    async fn wait_for_a_running_run(&self) {
        for _ in 0..400 {
            let runs = self.store.list_runs(self.config.org_id, self.config.id, 1).await.unwrap();
            if runs.first().is_some_and(|run| run.status == RunStatus::Running) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no run started");
    }

    /// Waits until the running run has stored at least `n` users.
    async fn wait_for_users(&self, n: usize) {
        for _ in 0..400 {
            if self.user_ids().await.len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the run stored fewer than {n} users");
    }
}

#[tokio::test]
async fn a_run_killed_midway_deletes_nothing_and_the_next_run_converges() {
    let rig = rig(1200).await;
    assert!(matches!(rig.run_full().await, Outcome::Succeeded(_)));
    assert_eq!(rig.user_ids().await, rig.truth());

    // Users vanish from the source; the next full run is killed once it has stored a page.
    let gone: Vec<String> = rig.truth().into_iter().rev().take(5).collect();
    rig.okta.mutate(|t| gone.iter().for_each(|id| t.delete_user(id)));
    rig.okta.slow_pages(Duration::from_millis(40));
    let stored_a_page = Arc::new(tokio::sync::Notify::new());
    let progress: ctxsync_sync::Progress = {
        let stored_a_page = stored_a_page.clone();
        Arc::new(move |_, _| stored_a_page.notify_one())
    };
    let worker = rig.worker.clone();
    let config = rig.config.clone();
    let killed = tokio::spawn(async move {
        let options = RunOptions { full: true, progress: Some(progress), ..RunOptions::default() };
        worker.run(&config, options, &CancellationToken::new()).await
    });
    stored_a_page.notified().await;
    killed.abort();
    let _ = killed.await;
    let stored = rig.user_ids().await;
    assert!(gone.iter().all(|id| stored.contains(id)), "an incomplete run applies no deletion");

    rig.okta.slow_pages(Duration::ZERO);
    let Outcome::Succeeded(run) = rig.run_full().await else { panic!("the rerun completes") };
    assert_eq!(run.counts.by_type["user"].deleted, gone.len() as u64);
    assert_eq!(rig.user_ids().await, rig.truth(), "converged to the exact tenant");
    let runs = rig.store.list_runs(rig.config.org_id, rig.config.id, 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.status).collect::<Vec<_>>(),
        [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Succeeded]
    );
    assert!(runs[1].error.as_deref().unwrap().contains("interrupted"));
}

impl Rig {
    /// Starts a full run and stops it (its task aborted, as a killed process) once it has stored
    /// 300 users: users pages carry marks, so there is a checkpoint to go on from.
    async fn stop_a_full_run(&self) {
        self.okta.slow_pages(Duration::from_millis(40));
        let stored_users = Arc::new(tokio::sync::Notify::new());
        let progress: ctxsync_sync::Progress = {
            let stored_users = stored_users.clone();
            Arc::new(move |counts, _| {
                if counts.by_type.get("user").is_some_and(|c| c.fetched >= 300) {
                    stored_users.notify_one();
                }
            })
        };
        let (worker, config) = (self.worker.clone(), self.config.clone());
        let stopped = tokio::spawn(async move {
            let options = RunOptions { full: true, progress: Some(progress), ..RunOptions::default() };
            worker.run(&config, options, &CancellationToken::new()).await
        });
        stored_users.notified().await;
        stopped.abort();
        let _ = stopped.await;
        self.okta.slow_pages(Duration::ZERO);
    }

    /// The run the scheduler would start now; the same worker takes its lease back at once and
    /// marks a stopped run interrupted.
    async fn next_run(&self) -> ctxsync_core::Run {
        match self.worker.run(&self.config, RunOptions::default(), &CancellationToken::new()).await.unwrap() {
            Outcome::Succeeded(run) => run,
            other => panic!("the next run completes: {other:?}"),
        }
    }
}

/// A stopped full run is gone on with by the next run, even one that would have been
/// incremental; not once it stopped over an hour ago, nor after the config changed, nor when the
/// operator asks to start over.
#[tokio::test]
async fn a_stopped_full_run_is_resumed_unless_it_is_stale_or_the_config_changed() {
    let mut rig = rig(1200).await;
    let clock = ctxsync_sync::Clock::adjustable();
    let settings = SyncSettings { clock: clock.clone(), ..rig.worker.settings().clone() };
    let sources = Sources::new(Endpoints::overridden(rig.okta.base_urls())).unwrap();
    rig.worker = Worker::new(rig.store.clone(), sources, settings);
    rig.okta.limit_page_size(100);
    assert!(matches!(rig.run_full().await, Outcome::Succeeded(_)));

    rig.stop_a_full_run().await;
    let run = rig.next_run().await;
    assert_eq!((run.kind, run.resumed_from.is_some()), (RunKind::Full, true), "{run:?}");
    assert_eq!(run.counts.by_type["user"].fetched, rig.truth().len() as u64);
    assert_eq!(rig.user_ids().await, rig.truth());

    rig.stop_a_full_run().await;
    let mut renamed = rig.config.clone();
    renamed.name = "renamed".into();
    renamed.modified_at = ctxsync_core::now();
    assert!(rig.store.update_config(&renamed, None).await.unwrap());
    rig.config = renamed;
    let run = rig.next_run().await;
    assert_eq!(run.resumed_from, None, "the config changed: {run:?}");
    assert_eq!(rig.user_ids().await, rig.truth());

    rig.stop_a_full_run().await;
    clock.advance(Duration::from_secs(61 * 60));
    let run = rig.next_run().await;
    assert_eq!((run.kind, run.resumed_from), (RunKind::Incremental, None), "stale: {run:?}");

    // An operator who asks for a fresh listing gets one, and the stopped run's point is dropped.
    rig.stop_a_full_run().await;
    let restart = RunOptions { restart: true, ..RunOptions::default() };
    let Outcome::Succeeded(run) =
        rig.worker.run(&rig.config, restart, &CancellationToken::new()).await.unwrap()
    else {
        panic!("the restarted run completes")
    };
    assert_eq!((run.kind, run.resumed_from), (RunKind::Full, None), "restarted: {run:?}");
    assert_eq!(run.counts.by_type["user"].fetched, rig.truth().len() as u64);
    assert_eq!(rig.user_ids().await, rig.truth());
    assert!(rig.store.resume_point(rig.config.id).await.unwrap().is_none(), "nothing left to resume");
}

/// Okta's group `usersCount`s reach the progress callback as the run goes, so a progress bar can
/// show how far the memberships are.
#[tokio::test]
async fn progress_sees_the_totals_the_source_announces() {
    let rig = rig(300).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let progress: ctxsync_sync::Progress = Arc::new(move |counts, announced| {
        log.lock().unwrap().push((counts.fetched(), announced.get("membership").copied()));
    });
    let options = RunOptions { full: true, progress: Some(progress), ..RunOptions::default() };
    let outcome = rig.worker.run(&rig.config, options, &CancellationToken::new()).await.unwrap();
    assert!(matches!(outcome, Outcome::Succeeded(_)), "{outcome:?}");
    let truth = rig.okta.snapshot();
    let memberships = (truth.user_members.len() + truth.group_members.len()) as u64;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.last().unwrap().1, Some(memberships), "every group's count announced: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "counts and totals only grow: {seen:?}");
}

#[tokio::test]
async fn disabling_a_config_stops_its_run_promptly() {
    let rig = rig(2000).await;
    let disabled = Config { enabled: false, ..rig.config.clone() };
    let outcome = rig.update_during_a_run(&disabled).await;
    let Outcome::Cancelled(run) = outcome else { panic!("cancelled, got {outcome:?}") };
    assert_eq!(run.error.as_deref(), Some("the config was disabled"));
    assert!(rig.user_ids().await.len() < 2000, "the listing did not run to the end");
}

/// A run of a config pointed at another org meanwhile stops too: what it lists is the old org's,
/// and its cursor, kept, would start the new org's incremental runs. So does one whose lease
/// outlasts the run (no heartbeat in between), and the next run does not go on from either.
#[tokio::test]
async fn pointing_a_config_at_another_org_stops_its_run() {
    let rig = rig(2000).await;
    let moved = Config { domain: "other.okta.com".into(), ..rig.config.clone() };
    assert_eq!(rig.update_during_a_run(&moved).await, Outcome::Skipped(SOURCE_CHANGED.into()));
    let stopped = rig.store.list_runs(rig.config.org_id, rig.config.id, 1).await.unwrap().remove(0);
    assert_eq!((stopped.status, stopped.error.as_deref()), (RunStatus::Cancelled, Some(SOURCE_CHANGED)));
    assert!(rig.user_ids().await.len() < 2000, "the listing did not run to the end");
    let state = rig.store.sync_state(rig.config.id).await.unwrap();
    assert_eq!((state.cursor, state.last_full_at), (None, None));

    // `modified_at` kept as it was: only the update's own doing keeps the next run from going on
    // from the stopped one.
    let settings = SyncSettings { lease: Duration::from_secs(600), ..SyncSettings::default() };
    let endpoints = Endpoints::overridden(rig.okta.base_urls());
    let worker = Worker::new(rig.store.clone(), Sources::new(endpoints).unwrap(), settings);
    rig.okta.slow_pages(Duration::from_millis(100));
    let running = tokio::spawn(async move {
        let options = RunOptions { full: true, ..RunOptions::default() };
        worker.run(&moved, options, &CancellationToken::new()).await
    });
    rig.wait_for_a_running_run().await;
    rig.store.update_config(&rig.config, None).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), running).await.unwrap().unwrap().unwrap();
    assert_eq!(outcome, Outcome::Skipped(SOURCE_CHANGED.into()));
    let second = rig.store.list_runs(rig.config.org_id, rig.config.id, 1).await.unwrap().remove(0);
    assert_ne!(second.id, stopped.id);
    assert_eq!((second.status, second.resumed_from), (RunStatus::Cancelled, None));
    let state = rig.store.sync_state(rig.config.id).await.unwrap();
    assert_eq!((state.cursor, state.last_full_at), (None, None));

    // A run begun from the config as read before an update (as the scheduler read it) is
    // cancelled at once: the update found no run to cancel.
    rig.okta.slow_pages(Duration::ZERO);
    let stale = Config { domain: "other.okta.com".into(), ..rig.config.clone() };
    let outcome = rig.worker.run(&stale, RunOptions::default(), &CancellationToken::new()).await.unwrap();
    assert_eq!(outcome, Outcome::Skipped(SOURCE_CHANGED.into()));
    let third = rig.store.list_runs(rig.config.org_id, rig.config.id, 1).await.unwrap().remove(0);
    assert_ne!(third.id, second.id);
    assert_eq!((third.status, third.error.as_deref()), (RunStatus::Cancelled, Some(SOURCE_CHANGED)));
    assert_eq!(rig.store.sync_state(rig.config.id).await.unwrap().cursor, None);
}

#[tokio::test]
async fn one_worker_at_a_time_per_config() {
    let rig = rig(600).await;
    rig.okta.slow_pages(Duration::from_millis(30));
    let a = rig.worker.clone();
    let other = Worker::new(
        rig.store.clone(),
        Sources::new(Endpoints::overridden(rig.okta.base_urls())).unwrap(),
        SyncSettings::default(),
    );
    let config = rig.config.clone();
    let first =
        tokio::spawn(async move { a.run(&config, RunOptions::default(), &CancellationToken::new()).await });
    rig.wait_for_a_running_run().await;
    let busy = other.run(&rig.config, RunOptions::default(), &CancellationToken::new()).await.unwrap();
    let Outcome::Busy { holder } = busy else { panic!("{busy:?}") };
    assert!(holder.starts_with(&format!("pid {} on host ", std::process::id())), "{holder}");
    assert!(matches!(first.await.unwrap().unwrap(), Outcome::Succeeded(_)));
}

/// The owner name of a lease held by a worker of another process.
const ELSEWHERE: &str = "host=elsewhere;space=1;pid=7;started=1;w";

/// Two configs of the rig's org that read factors (a request per user, 16 at a time: enough to
/// fill the org's share of requests in flight), stored.
async fn two_configs_with_factors(rig: &Rig) -> [Config; 2] {
    let config = |name: &str| {
        let settings = serde_json::from_value(json!({"okta_include_factors": true})).unwrap();
        Config::created(rig.config.org_id, IntegrationType::Okta, name.into(), rig.okta.domain(), settings)
    };
    let configs = [config("okta a"), config("okta b")];
    let secrets = SecretValue::new(json!({"api_token": rig.okta.api_token()}));
    for config in &configs {
        rig.store.insert_config(config, &secrets).await.unwrap();
    }
    configs
}

/// While another process holds the lease on a config of the same Okta org, a run keeps to half
/// the share of the org's requests in flight (Okta counts both processes' together); once the
/// other is done, the next run takes all of it again.
#[tokio::test]
async fn a_run_splits_the_orgs_requests_in_flight_with_another_process_syncing_it() {
    let rig = rig(600).await;
    rig.okta.slow_pages(Duration::from_millis(20));
    let configs = two_configs_with_factors(&rig).await;
    let until = ctxsync_core::now() + time::Duration::minutes(1);
    assert!(rig.store.acquire_lease(configs[1].id, ELSEWHERE, until, None).await.unwrap().is_some());
    let full = || RunOptions { full: true, ..RunOptions::default() };
    let stop = CancellationToken::new();

    let outcome = rig.worker.run(&configs[0], full(), &stop).await.unwrap();
    assert!(matches!(outcome, Outcome::Succeeded(_)), "{outcome:?}");
    let share = ctxsync_core::RateLimitShare::DEFAULT.of(35);
    assert_eq!(rig.okta.most_in_flight(), share / 2);

    rig.store.release_lease(configs[1].id, ELSEWHERE).await.unwrap();
    let outcome = rig.worker.run(&configs[0], full(), &stop).await.unwrap();
    assert!(matches!(outcome, Outcome::Succeeded(_)), "{outcome:?}");
    assert_eq!(rig.okta.most_in_flight(), share);
}

/// A process that syncs an org alone takes the whole share of its requests in flight, and gives
/// half of it up at its next renewal of the lease once another process syncs the same org.
#[tokio::test]
async fn a_running_sync_gives_way_at_its_next_renewal_when_another_process_starts() {
    let rig = rig(1200).await;
    rig.okta.slow_pages(Duration::from_millis(50));
    let configs = two_configs_with_factors(&rig).await;
    let stop = CancellationToken::new();
    let (worker, config, cancel) = (rig.worker.clone(), configs[0].clone(), stop.clone());
    let run = tokio::spawn(async move { worker.run(&config, RunOptions::default(), &cancel).await });
    let share = ctxsync_core::RateLimitShare::DEFAULT.of(35);
    wait_until("the run has the whole share in flight", || async { rig.okta.most_in_flight() == share })
        .await;

    let until = ctxsync_core::now() + time::Duration::minutes(1);
    assert!(rig.store.acquire_lease(configs[1].id, ELSEWHERE, until, None).await.unwrap().is_some());
    // The heartbeat splits after it renews: once the next renewal shows, the split is made.
    for _ in 0..2 {
        let renewed = lease_until(&rig.store, &configs[0]).await;
        wait_until("the lease is renewed", || async { lease_until(&rig.store, &configs[0]).await > renewed })
            .await;
    }
    // Past the requests let through before the split.
    let served = rig.okta.requests();
    wait_until("more requests are served", || async { rig.okta.requests() >= served + u64::from(share) })
        .await;
    rig.okta.take_most_in_flight();
    let served = rig.okta.requests();
    wait_until("a hundred more requests are served", || async { rig.okta.requests() >= served + 100 }).await;
    assert_eq!(rig.okta.take_most_in_flight(), share / 2);
    let running = rig.store.list_runs(configs[0].org_id, configs[0].id, 1).await.unwrap();
    assert_eq!(running[0].status, RunStatus::Running, "the run was still going");
    stop.cancel();
    assert!(matches!(run.await.unwrap().unwrap(), Outcome::Cancelled(_)));
}

/// Until when the running run holds the config's lease.
async fn lease_until(store: &Arc<dyn Store>, config: &Config) -> time::OffsetDateTime {
    store.lease(config.id).await.unwrap().expect("the run holds its lease").until
}

/// Polls `check` until it holds, for at most ten seconds.
async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

/// `type entity_id related_id` of every event after `after`, oldest first.
async fn events_after(
    store: &Arc<dyn Store>,
    org: ctxsync_core::OrgId,
    after: Option<i64>,
) -> Vec<(i64, String)> {
    let q = EventQuery { after, limit: 1000, ..EventQuery::default() };
    store
        .list_events(Some(org), &q)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let related = e.related_id.map(|r| format!(" {r}")).unwrap_or_default();
            (e.id, format!("{} {}{related}", e.change_type.as_str(), e.entity_id))
        })
        .collect()
}

/// Checks one run's events: those of its pages in any order (the connector lists users beside
/// groups), then those of its end (deletions, then removed memberships) in exactly this order.
fn assert_run_events(got: &[(i64, String)], pages: &[String], end: &[String]) {
    let got: Vec<&str> = got.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(got.len(), pages.len() + end.len(), "{got:#?}");
    let mut page_events = got[..pages.len()].to_vec();
    page_events.sort();
    let mut expected: Vec<&str> = pages.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(page_events, expected, "{got:#?}");
    assert_eq!(got[pages.len()..], end.iter().map(String::as_str).collect::<Vec<_>>(), "{got:#?}");
}

#[tokio::test]
async fn a_scripted_sequence_of_tenant_changes_produces_exactly_its_events() {
    let mut rig = rig(40).await;
    rig.config.settings.insert("okta_include_factors".into(), json!(true));
    let org = rig.config.org_id;
    let Outcome::Succeeded(baseline) = rig.run_full().await else { panic!("the first run completes") };
    assert!(baseline.baseline);
    assert!(events_after(&rig.store, org, None).await.is_empty(), "the baseline records no events");

    let truth = rig.okta.snapshot();
    // From the end of the list: the first users hold the tokens the tests use.
    let plain: Vec<&String> = truth.users.keys().rev().filter(|id| !truth.roles.contains_key(*id)).collect();
    let (x, y, w, d) = (plain[0].clone(), plain[1].clone(), plain[2].clone(), plain[3].clone());
    let v = truth.factors.keys().next().expect("someone has factors").clone();
    let (group, z) = truth.user_members.iter().find(|(_, u)| *u != d).cloned().unwrap();
    let groups_of_d: Vec<String> =
        truth.user_members.iter().filter(|(_, u)| *u == d).map(|(g, _)| g.clone()).collect();
    let new = rig.okta.mutate(|t| {
        let new = t.add_user("Ada", "Events");
        t.suspend_user(&x);
        t.update_user(&y, |u| u.profile.title = Some("CISO".into()));
        t.assign_role(&w, "SUPER_ADMIN");
        t.enroll_factor(&v, "token:hardware");
        t.add_member(&group, &new);
        t.remove_member(&group, &z);
        t.delete_user(&d);
        new
    });
    let Outcome::Succeeded(run) = rig.run_full().await else { panic!("the second run completes") };
    assert!(!run.baseline);
    let got = events_after(&rig.store, org, None).await;
    let mut end = vec![format!("user.deleted {d}")];
    let mut removed: Vec<(String, String)> = groups_of_d.iter().map(|g| (g.clone(), d.clone())).collect();
    removed.push((group.clone(), z.clone()));
    removed.sort();
    end.extend(removed.iter().map(|(g, u)| format!("membership.removed {g} {u}")));
    assert_run_events(
        &got,
        &[
            format!("user.created {new}"),
            format!("user.status_changed {x}"),
            format!("user.attribute_changed {y}"),
            format!("admin_role.granted {w} SUPER_ADMIN"),
            format!("mfa_factor.enrolled {v} token:hardware/yubico"),
            format!("membership.added {group} {new}"),
        ],
        &end,
    );

    rig.okta.mutate(|t| {
        t.unassign_roles(&w);
        t.add_member(&group, &z);
        t.deprovision_user(&x);
    });
    let Outcome::Succeeded(_) = rig.run_full().await else { panic!("the third run completes") };
    let later = events_after(&rig.store, org, got.last().map(|(id, _)| *id)).await;
    assert_run_events(
        &later,
        &[
            format!("admin_role.revoked {w} SUPER_ADMIN"),
            format!("membership.added {group} {z}"),
            format!("user.status_changed {x}"),
        ],
        &[],
    );
    let Outcome::Succeeded(_) = rig.run_full().await else { panic!("the fourth run completes") };
    let last = later.last().map(|(id, _)| *id);
    assert!(events_after(&rig.store, org, last).await.is_empty(), "nothing changed, nothing recorded");
}

/// A token whose admin loses the role that may view admin roles: neither the full run (given the
/// last run's cursor) nor the incremental one revokes anyone's roles in the store, where each
/// revocation would be an event a detection may act on. Once the token may again, a real
/// revocation is recorded as ever.
#[tokio::test]
async fn a_token_that_may_no_longer_read_roles_revokes_no_ones_roles() {
    let rig = rig(40).await;
    let org = rig.config.org_id;
    let Outcome::Succeeded(_) = rig.run_full().await else { panic!("the first run completes") };
    let truth = rig.okta.snapshot();
    let (admin, roles) = truth.roles.iter().find(|(_, roles)| !roles.is_empty()).expect("an admin");
    let mut revoked: Vec<String> =
        roles.iter().map(|r| format!("admin_role.revoked {admin} {}", r["type"].as_str().unwrap())).collect();
    revoked.sort();

    rig.okta.refuse_admins_after(0);
    let Outcome::Succeeded(_) = rig.run_full().await else { panic!("the refused full run completes") };
    assert!(events_after(&rig.store, org, None).await.is_empty(), "no role revoked");
    rig.okta.mutate(|t| t.update_user(admin, |u| u.profile.title = Some("CISO".into())));
    let incremental = RunOptions::default();
    let Outcome::Succeeded(run) =
        rig.worker.run(&rig.config, incremental, &CancellationToken::new()).await.unwrap()
    else {
        panic!("the refused incremental run completes")
    };
    assert_eq!(run.kind, RunKind::Incremental);
    let got = events_after(&rig.store, org, None).await;
    assert_run_events(&got, &[format!("user.attribute_changed {admin}")], &[]);
    // Nor does reading again an admin an event hook named.
    let named = [admin.clone()];
    rig.store
        .add_refresh_targets(rig.config.id, EntityKind::User, &named, ctxsync_core::now())
        .await
        .unwrap();
    let Outcome::Succeeded(run) =
        rig.worker.run(&rig.config, RunOptions::default(), &CancellationToken::new()).await.unwrap()
    else {
        panic!("the refused incremental run completes")
    };
    assert_eq!(run.kind, RunKind::Incremental, "only an incremental run reads named users");
    assert!(
        rig.store
            .refresh_targets(rig.config.id, EntityKind::User, ctxsync_core::now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(events_after(&rig.store, org, got.last().map(|(id, _)| *id)).await, []);

    rig.okta.allow_admins();
    rig.okta.mutate(|t| t.unassign_roles(admin));
    let Outcome::Succeeded(_) = rig.run_full().await else { panic!("the allowed run completes") };
    let later = events_after(&rig.store, org, got.last().map(|(id, _)| *id)).await;
    assert_run_events(&later, &revoked, &[]);
}
