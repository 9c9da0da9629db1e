use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ctxsync_core::{Device, Entity};
use ctxsync_fakes::{FakeCrowdStrike, FaultKnobs, Listing, TenantSpec};
use ctxsync_sources::{Coverage, Cursor};
use serde_json::json;

use super::*;

const SPEC: TenantSpec = TenantSpec { seed: 11, users: 40, groups: 3, devices: 30 };

fn cs_config(fake: &FakeCrowdStrike) -> Config {
    config(IntegrationType::CrowdStrike, &fake.domain(), Settings::new())
}

fn cs_credentials(fake: &FakeCrowdStrike) -> Credentials {
    credentials(
        IntegrationType::CrowdStrike,
        json!({ "client_id": fake.client_id(), "client_secret": fake.client_secret() }),
    )
}

async fn cs_run(fake: &FakeCrowdStrike, mode: SyncMode) -> (Outcome, Collected) {
    let sources = sources(Endpoints::overridden(fake.base_urls()));
    let (outcome, got) = run(&sources, &cs_config(fake), &cs_credentials(fake), mode).await;
    (outcome.expect("the run succeeds"), got)
}

/// The devices a run brought, by AID, with their raw JSON.
fn devices(got: &Collected) -> BTreeMap<String, (Device, Value)> {
    got.records
        .iter()
        .map(|r| match &r.entity {
            Entity::Device(d) => (d.source_id.clone(), (d.clone(), raw(r))),
            other => panic!("CrowdStrike gives only devices, got {other:?}"),
        })
        .collect()
}

/// The run brought exactly the fake's hosts `ids`, each as served and mapped from what it says.
fn assert_hosts(got: &Collected, fake: &FakeCrowdStrike, ids: &BTreeSet<String>) {
    let snapshot = fake.snapshot();
    let devices = devices(got);
    assert_eq!(devices.len(), got.records.len(), "each host once");
    assert_eq!(devices.keys().cloned().collect::<BTreeSet<_>>(), *ids);
    for (id, (device, raw)) in devices {
        let want = &snapshot[&id];
        assert_eq!(&raw, want, "raw JSON of {id}");
        assert_eq!(device.name.as_deref(), text(want, "/hostname"));
        assert_eq!(device.os.as_deref(), text(want, "/platform_name"));
        assert_eq!(device.serial_number.as_deref(), text(want, "/serial_number"));
        assert_eq!(device.last_user.as_deref(), text(want, "/last_login_user"));
        assert_eq!(device.containment.as_deref(), text(want, "/status"));
        assert_eq!(device.site.as_deref(), text(want, "/site_name"));
        let mac = Device::mac_address(text(want, "/mac_address").unwrap());
        assert_eq!(device.mac_addresses.first(), mac.as_ref(), "{id}");
    }
}

fn all(fake: &FakeCrowdStrike) -> BTreeSet<String> {
    fake.snapshot().into_keys().collect()
}

fn removed(got: &Collected) -> BTreeSet<String> {
    got.removals
        .iter()
        .map(|r| match r {
            Removal::Entity { kind: EntityKind::Device, source_id } => source_id.clone(),
            other => panic!("only devices are removed, got {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_full_run_is_the_fleet() {
    let fake = FakeCrowdStrike::start_with(SPEC).await.unwrap();
    let (outcome, got) = cs_run(&fake, SyncMode::Full).await;
    assert_hosts(&got, &fake, &all(&fake));
    assert_eq!(fake.snapshot().len(), 32, "30 machines and 2 kiosks; the replaced laptop is hidden");
    assert_eq!(outcome.coverage, Coverage::Everything);
    assert_eq!(outcome.expected.get("device"), Some(&32));
    assert!(got.removals.is_empty());
    assert!(got.users().is_empty() && got.groups().is_empty() && got.memberships.is_empty());
}

#[tokio::test]
async fn a_full_run_pages_through_the_fleet() {
    let fake = FakeCrowdStrike::start_with(SPEC).await.unwrap();
    fake.limit_page_size(7);
    let (_, got) = cs_run(&fake, SyncMode::Full).await;
    assert_hosts(&got, &fake, &all(&fake));
    assert_eq!(got.pages, 5, "32 hosts, 7 a page");
    assert_eq!(fake.pages_served(Listing::Devices), 5);
}

/// After hosts change, an incremental run brings exactly them, and the hidden ones as removals.
async fn changes_come_incrementally(fake: &FakeCrowdStrike) {
    let (outcome, _) = cs_run(fake, SyncMode::Full).await;
    let ids: Vec<String> = fake.snapshot().into_keys().collect();
    let (contained, relogged, hidden) = (ids[3].clone(), ids[8].clone(), ids[12].clone());
    let added = fake.mutate(|t| {
        assert!(t.contain(&contained));
        let someone = t.handles()[5].clone();
        assert!(t.set_last_user(&relogged, &someone));
        assert!(t.hide_host(&hidden));
        t.add_host("ACME-LT-9001", &someone)
    });
    let (next, got) = cs_run(fake, SyncMode::Incremental(outcome.cursor.expect("a cursor"))).await;
    assert_hosts(&got, fake, &[contained.clone(), relogged, added].into_iter().collect());
    assert_eq!(removed(&got), BTreeSet::from([hidden]));
    assert_eq!(next.coverage, Coverage::Changes { groups_with_all_members: Vec::new() });
    let contained_device = &devices(&got)[&contained].0;
    assert_eq!(contained_device.containment.as_deref(), Some("contained"));
    assert!(next.cursor.is_some());
}

#[tokio::test]
async fn an_incremental_run_brings_exactly_the_changes() {
    let fake = FakeCrowdStrike::start_with(SPEC).await.unwrap();
    changes_come_incrementally(&fake).await;
}

#[tokio::test]
async fn a_cloud_without_the_combined_endpoint_gives_the_same_runs() {
    let fake = FakeCrowdStrike::start_with(SPEC).await.unwrap();
    let (_, combined) = cs_run(&fake, SyncMode::Full).await;
    fake.refuse_combined(true);
    fake.limit_page_size(10);
    let (outcome, scrolled) = cs_run(&fake, SyncMode::Full).await;
    assert_hosts(&scrolled, &fake, &all(&fake));
    assert_eq!(devices(&scrolled), devices(&combined));
    assert_eq!(outcome.expected.get("device"), Some(&32));
    changes_come_incrementally(&fake).await;
}

#[tokio::test(start_paused = true)]
async fn rate_limits_mid_run_are_waited_out() {
    let fake = FakeCrowdStrike::start_with(SPEC).await.unwrap();
    fake.limit_page_size(10);
    fake.hold_faults(2);
    fake.rate_limit_next(2, Duration::from_secs(3));
    let started = tokio::time::Instant::now();
    let (_, got) = cs_run(&fake, SyncMode::Full).await;
    assert_hosts(&got, &fake, &all(&fake));
    assert_eq!(got.retries, 2);
    assert_eq!(started.elapsed(), Duration::from_secs(6), "two waits until X-RateLimit-RetryAfter");
}

#[tokio::test]
async fn an_expired_token_is_renewed_once() {
    let fake = FakeCrowdStrike::start_with(SPEC).await.unwrap();
    fake.limit_page_size(10);
    let sources = sources(Endpoints::overridden(fake.base_urls()));
    let (config, creds) = (cs_config(&fake), cs_credentials(&fake));
    let fake_ref = &fake;
    let mut sink = Hooked::new(1, || async move { fake_ref.expire_tokens() });
    sources.sync(&config, &creds, SyncMode::Full, &mut sink).await.expect("the run succeeds");
    assert_hosts(&sink.collected, &fake, &all(&fake));
}

#[tokio::test]
async fn a_foreign_cursor_means_a_full_run() {
    let fake = FakeCrowdStrike::start_with(SPEC).await.unwrap();
    let sources = sources(Endpoints::overridden(fake.base_urls()));
    let mode = SyncMode::Incremental(Cursor(json!({"deltaLink": "x"})));
    let (outcome, _) = run(&sources, &cs_config(&fake), &cs_credentials(&fake), mode).await;
    assert_eq!(outcome.unwrap_err(), SyncError::CursorExpired);
}
