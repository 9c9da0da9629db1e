//! The crash loop: `ctxsync sync` killed with SIGKILL at arbitrary moments of a multi-page full
//! listing, again and again, each time rerun at once. Afterwards the database is intact, every
//! config still decrypts and validates, and one more run converges on the tenant.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use reqwest::{Method, StatusCode};

use crate::cli::BIN;
use crate::helpers::{Options, TestApp, spawn_app_with, status_json};
use ctxsync_fakes::FaultKnobs;

/// Kills per test run, two per config: each costs up to [`LONGEST`] and a restart.
const KILLS: usize = 8;
/// The longest a killed run lives.
const LONGEST: u64 = 1500;

fn sync(app: &TestApp, id: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["sync", "--config", id, "--full", "--no-wait"])
        .env_clear()
        .env("CTXSYNC_DATABASE_URL", &app.database.url)
        .env("CTXSYNC_MASTER_KEY", crate::helpers::MASTER_KEY)
        .env("CTXSYNC_OKTA_BASE_URL", app.fakes.okta.base_url())
        .env("CTXSYNC_GOOGLE_TOKEN_URL", app.fakes.google.token_url())
        .env("CTXSYNC_GOOGLE_DIRECTORY_BASE_URL", app.fakes.google.directory_base_url())
        .env("CTXSYNC_ENTRA_LOGIN_BASE_URL", app.fakes.entra.login_base_url())
        .env("CTXSYNC_GRAPH_BASE_URL", app.fakes.entra.graph_base_url())
        .env("CTXSYNC_CROWDSTRIKE_BASE_URL", app.fakes.crowdstrike.base_url())
        .env("CTXSYNC_SENTINELONE_BASE_URL", app.fakes.sentinelone.base_url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// A small linear congruential generator: the kill moments vary from run to run, and the seed in
/// a failure's message replays them.
struct Moments(u64);

impl Moments {
    fn next_millis(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        50 + (self.0 >> 33) % LONGEST
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn syncs_killed_again_and_again_leave_an_intact_store_that_converges() {
    let app = spawn_app_with(Options {
        tenant: ctxsync_fakes::TenantSpec { users: 1500, groups: 30, devices: 100, ..Default::default() },
        ..Options::default()
    })
    .await;
    // Users the tenant will let go after the first runs (not the ones the credentials act as).
    let temps: Vec<String> =
        app.fakes.okta.mutate(|t| (0..40).map(|i| t.add_user("Temp", &format!("Staff{i}"))).collect());
    let mut ids = Vec::new();
    for attrs in [
        app.okta_attributes(),
        app.entra_attributes(),
        app.crowdstrike_attributes(),
        app.sentinelone_attributes(),
    ] {
        ids.push(app.create_ok(attrs).await["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        crate::sync::wait_for_runs(&app, id, 1).await;
    }
    // The tenants move on, so the runs being killed have something to write.
    app.fakes.okta.mutate(|t| {
        temps.iter().for_each(|u| t.delete_user(u));
        (0..25).for_each(|i| drop(t.add_user("Late", &format!("Hire{i}"))));
    });
    let hosts: Vec<String> = app.fakes.crowdstrike.snapshot().into_keys().take(10).collect();
    app.fakes.crowdstrike.mutate(|t| {
        hosts.iter().for_each(|h| assert!(t.hide_host(h)));
        (0..10).for_each(|i| drop(t.add_host(&format!("ACME-LT-{:04}", 8000 + i), "ada")));
    });
    let agents: Vec<String> = app.fakes.sentinelone.snapshot().into_keys().take(10).collect();
    app.fakes.sentinelone.mutate(|t| {
        agents.iter().for_each(|a| t.delete_agent(a));
        (0..10).for_each(|i| drop(t.add_agent(&format!("ACME-DT-{:04}", 8000 + i), "")));
    });

    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut moments = Moments(seed);
    // Slow enough that a full run outlives the longest wait: every kill lands mid-run.
    let knobs: [&dyn FaultKnobs; 4] =
        [&app.fakes.okta, &app.fakes.entra, &app.fakes.crowdstrike, &app.fakes.sentinelone];
    // The EDRs' fleets are a page or two at the real page sizes.
    app.fakes.crowdstrike.limit_page_size(10);
    app.fakes.sentinelone.limit_page_size(10);
    knobs.iter().for_each(|k| k.slow_pages(Duration::from_millis(150)));
    for kill in 0..KILLS {
        let id = &ids[kill % ids.len()];
        let mut child = sync(&app, id).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_millis(moments.next_millis());
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        child.wait().unwrap();
    }
    knobs.iter().for_each(|k| k.slow_pages(Duration::ZERO));

    if let Some(findings) = app.database.sqlite_integrity_check().await {
        assert_eq!(findings, ["ok"], "seed {seed}");
    }
    let store = app.store().await;
    for id in &ids {
        let config = store.config_by_id(id.parse().unwrap()).await.unwrap().unwrap();
        assert!(store.load_secrets(config.org_id, config.id).await.unwrap().is_some(), "seed {seed}");
        let (status, body) = status_json(
            app.request(Method::POST, &format!("{}/{id}/validate", crate::helpers::BASE), None).await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "seed {seed}: {body}");
        let last = sync(&app, id).status().unwrap();
        assert_eq!(last.code(), Some(0), "seed {seed}: the run after the kills succeeds");
    }

    let mut interrupted = 0;
    for id in &ids {
        let runs = store.list_runs(app_org(&store, id).await, id.parse().unwrap(), 50).await.unwrap();
        interrupted +=
            runs.iter().filter(|r| r.error.as_deref().is_some_and(|e| e.contains("interrupted"))).count();
    }
    assert!(interrupted >= KILLS / 2, "seed {seed}: the kills landed mid-run ({interrupted} interrupted)");

    let okta = app.fakes.okta.snapshot();
    let entra = app.fakes.entra.snapshot();
    for (id, users) in [(&ids[0], okta.users.len()), (&ids[1], entra.users.len())] {
        let runs = store.list_runs(app_org(&store, id).await, id.parse().unwrap(), 1).await.unwrap();
        let run = &runs[0];
        assert_eq!(run.counts.by_type["user"].fetched, users as u64, "seed {seed}");
        let stored = app
            .list_all(&format!(
                "/api/v2/ctxsync/entities?filter[kind]=user&filter[config_id]={id}&page[size]=1000"
            ))
            .await;
        assert_eq!(stored.len(), users, "seed {seed}: the store equals the tenant");
    }
    let okta_ids: std::collections::BTreeSet<String> = app
        .list_all(&format!(
            "/api/v2/ctxsync/entities?filter[kind]=user&filter[config_id]={}&page[size]=1000",
            ids[0]
        ))
        .await
        .iter()
        .map(|e| e["attributes"]["source_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(okta_ids, okta.users.keys().cloned().collect(), "seed {seed}");
    for (id, fleet) in
        [(&ids[2], app.fakes.crowdstrike.snapshot()), (&ids[3], app.fakes.sentinelone.snapshot())]
    {
        let stored = crate::edr::devices(&app, id).await;
        assert_eq!(crate::edr::source_ids(&stored), fleet.into_keys().collect(), "seed {seed}");
    }
}

async fn app_org(store: &std::sync::Arc<dyn ctxsync_store::Store>, id: &str) -> ctxsync_core::OrgId {
    store.config_by_id(id.parse().unwrap()).await.unwrap().unwrap().org_id
}

/// A full sync killed halfway through resumes where it stopped: the next run lists only the
/// rest, counts every user once, deletes what left the org before the run, and the store equals
/// the org.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_sync_killed_halfway_resumes_where_it_stopped_and_converges() {
    let app = spawn_app_with(Options {
        tenant: ctxsync_fakes::TenantSpec { users: 1200, groups: 300, ..Default::default() },
        ..Options::default()
    })
    .await;
    let leaving: Vec<String> =
        app.fakes.okta.mutate(|t| (0..30).map(|i| t.add_user("Temp", &format!("Staff{i}"))).collect());
    let id = app.create_ok(app.okta_attributes()).await["id"].as_str().unwrap().to_string();
    crate::sync::wait_for_runs(&app, &id, 1).await;
    app.fakes.okta.mutate(|t| {
        leaving.iter().for_each(|u| t.delete_user(u));
        (0..20).for_each(|i| drop(t.add_user("Late", &format!("Hire{i}"))));
    });
    let store = app.store().await;
    let org = app_org(&store, &id).await;
    let users = app.fakes.okta.snapshot().users.len() as u64;

    app.fakes.okta.limit_page_size(10);
    app.fakes.okta.slow_pages(Duration::from_millis(10));
    let started = app.fakes.okta.requests();
    let mut child = sync(&app, &id).spawn().unwrap();
    // Killed once the checkpoint holds about half the users.
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed = loop {
        let runs = store.list_runs(org, id.parse().unwrap(), 1).await.unwrap();
        let run = &runs[0];
        let fetched = run.counts.by_type.get("user").map_or(0, |c| c.fetched);
        if run.status == ctxsync_core::RunStatus::Running && fetched >= users / 2 {
            break run.id;
        }
        assert!(Instant::now() < deadline, "the run never got halfway: {run:?}");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it got halfway");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let stopped = app.fakes.okta.requests() - started;

    app.fakes.okta.slow_pages(Duration::ZERO);
    let before = app.fakes.okta.requests();
    assert_eq!(sync(&app, &id).status().unwrap().code(), Some(0));
    let resumed_requests = app.fakes.okta.requests() - before;
    let runs = store.list_runs(org, id.parse().unwrap(), 2).await.unwrap();
    let (resumed, interrupted) = (&runs[0], &runs[1]);
    assert_eq!(interrupted.id, killed);
    assert!(interrupted.error.as_deref().unwrap().contains("interrupted"), "{interrupted:?}");
    assert_eq!(resumed.resumed_from, Some(killed));
    assert_eq!(resumed.status, ctxsync_core::RunStatus::Succeeded, "{resumed:?}");
    assert_eq!(resumed.counts.by_type["user"].fetched, users, "every user counted once over both runs");
    assert_eq!(resumed.counts.by_type["user"].deleted, leaving.len() as u64);
    let completeness = resumed.completeness.as_ref().expect("Okta counts its groups' members");
    assert!(completeness.mismatches().is_empty(), "{completeness:?}");

    let stored: std::collections::BTreeSet<String> = app
        .list_all(&format!(
            "/api/v2/ctxsync/entities?filter[kind]=user&filter[config_id]={id}&page[size]=1000"
        ))
        .await
        .iter()
        .map(|e| e["attributes"]["source_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, app.fakes.okta.snapshot().users.keys().cloned().collect(), "the store equals the org");

    // One full run for comparison: the two parts asked for about as much.
    let before = app.fakes.okta.requests();
    assert_eq!(sync(&app, &id).status().unwrap().code(), Some(0));
    let full = app.fakes.okta.requests() - before;
    assert!(
        resumed_requests < full * 3 / 4 && stopped + resumed_requests <= full + full / 10,
        "stopped after {stopped} requests, resumed with {resumed_requests}; a full run makes {full}"
    );
}
