use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ctxsync_core::{Device, Entity};
use ctxsync_fakes::{FakeSentinelOne, FaultKnobs, Listing, TenantSpec};
use ctxsync_sources::{Coverage, Cursor};
use serde_json::json;
use tokio::time::Instant;

use super::*;

const FLEET: TenantSpec = TenantSpec { seed: 5, users: 40, groups: 2, devices: 40 };

async fn s1_run(fake: &FakeSentinelOne, mode: SyncMode) -> (Result<Outcome, SyncError>, Collected) {
    let sources = sources(Endpoints::overridden(fake.base_urls()));
    let config = config(IntegrationType::SentinelOne, &fake.domain(), Settings::new());
    let credentials = credentials(IntegrationType::SentinelOne, json!({ "api_token": fake.api_token() }));
    run(&sources, &config, &credentials, mode).await
}

/// The devices a run brought, by id, each with its raw object; fails on a device listed twice
/// or on any other kind.
fn devices(got: &Collected) -> BTreeMap<String, (&Device, Value)> {
    let mut devices = BTreeMap::new();
    for record in &got.records {
        let Entity::Device(device) = &record.entity else { panic!("not a device: {record:?}") };
        assert!(
            devices.insert(device.source_id.clone(), (device, raw(record))).is_none(),
            "{device:?} twice"
        );
    }
    devices
}

/// What the run brought equals what the fake serves, object for object.
fn assert_equals_fleet(got: &Collected, fleet: &BTreeMap<String, Value>) {
    let devices = devices(got);
    assert_eq!(devices.keys().collect::<Vec<_>>(), fleet.keys().collect::<Vec<_>>());
    for (id, (device, raw)) in devices {
        let want = &fleet[&id];
        assert_eq!(&raw, want, "raw JSON of {id}");
        assert_eq!(device.name.as_deref(), text(want, "/computerName"));
        assert_eq!(device.serial_number.as_deref(), text(want, "/serialNumber"));
        let last_user = text(want, "/lastLoggedInUserName").filter(|u| !u.is_empty());
        assert_eq!(device.last_user.as_deref(), last_user, "{id}");
        let decommissioned = want["isDecommissioned"] == json!(true);
        assert_eq!(device.status.as_deref() == Some("decommissioned"), decommissioned, "{id}");
        assert_eq!(device.mac_addresses.len(), want["networkInterfaces"].as_array().unwrap().len(), "{id}");
        assert!(device.mac_addresses.iter().all(|m| Device::mac_address(m).as_deref() == Some(m.as_str())));
    }
}

#[tokio::test]
async fn a_full_sync_equals_the_fleet_decommissioned_agents_included() {
    let fake = FakeSentinelOne::start_with(FLEET).await.unwrap();
    let fleet = fake.snapshot();
    assert!(fleet.values().any(|a| a["isDecommissioned"] == json!(true)));
    assert!(fleet.values().any(|a| a["lastLoggedInUserName"] == json!("")));
    assert!(fleet.values().any(|a| a["networkQuarantineEnabled"] == json!(true)));

    let (outcome, got) = s1_run(&fake, SyncMode::Full).await;
    let outcome = outcome.unwrap();
    assert_equals_fleet(&got, &fleet);
    assert_eq!(outcome.coverage, Coverage::Everything);
    assert_eq!(outcome.expected.get("device"), Some(&(fleet.len() as u64)), "the listing's totalItems");
    assert_eq!(got.received().get("device"), Some(&(fleet.len() as u64)));
    assert!(outcome.cursor.is_some());
    let contained =
        devices(&got).values().filter(|(d, _)| d.containment.as_deref() == Some("contained")).count();
    assert_eq!(contained, fleet.values().filter(|a| a["networkQuarantineEnabled"] == json!(true)).count());
}

#[tokio::test]
async fn a_full_sync_follows_the_cursor_across_pages() {
    let fake = FakeSentinelOne::start_with(FLEET).await.unwrap();
    fake.limit_page_size(7);
    let fleet = fake.snapshot();
    let (outcome, got) = s1_run(&fake, SyncMode::Full).await;
    outcome.unwrap();
    assert_equals_fleet(&got, &fleet);
    let pages = fleet.len().div_ceil(7);
    assert!(pages > 3, "{pages}");
    assert_eq!(got.pages, pages);
    assert_eq!(fake.pages_served(Listing::Devices), pages as u64);
}

#[tokio::test]
async fn an_incremental_sync_brings_exactly_the_changes() {
    let fake = FakeSentinelOne::start_with(FLEET).await.unwrap();
    let (outcome, _) = s1_run(&fake, SyncMode::Full).await;
    let cursor = outcome.unwrap().cursor.expect("a cursor");

    let live: Vec<String> = fake.mutate(|t| {
        t.agents().filter(|a| !a.is_decommissioned).map(|a| a.id().to_string()).take(5).collect()
    });
    let added = fake.mutate(|t| {
        t.decommission(&live[0]);
        t.set_last_user(&live[1], "");
        t.quarantine(&live[2]);
        t.tag(&live[3], "env", "prod");
        t.delete_agent(&live[4]);
        t.add_agent("ACME-LT-9001", "ACME\\ada.lovelace")
    });
    fake.limit_page_size(2);
    let (outcome, got) = s1_run(&fake, SyncMode::Incremental(cursor)).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.coverage, Coverage::Changes { groups_with_all_members: Vec::new() });
    assert!(outcome.expected.is_empty(), "totals are for full listings");

    let fleet = fake.snapshot();
    let changed: BTreeSet<&String> = [&live[0], &live[1], &live[2], &live[3], &added].into_iter().collect();
    let devices = devices(&got);
    assert_eq!(devices.keys().collect::<BTreeSet<_>>(), changed);
    for (id, (_, raw)) in &devices {
        assert_eq!(raw, &fleet[id], "{id}");
    }
    assert_eq!(devices[&live[0]].0.status.as_deref(), Some("decommissioned"));
    assert_eq!(devices[&live[1]].0.last_user, None);
    assert_eq!(devices[&live[2]].0.containment.as_deref(), Some("contained"));
    assert!(devices[&live[3]].0.tags.contains(&"env:prod".to_string()));
    assert_eq!(devices[&added].0.last_user.as_deref(), Some("ACME\\ada.lovelace"));
    assert_eq!(devices[&added].0.mac_addresses.len(), 1);
}

#[tokio::test]
async fn a_foreign_cursor_means_a_full_run() {
    let fake = FakeSentinelOne::start().await.unwrap();
    let (outcome, got) = s1_run(&fake, SyncMode::Incremental(Cursor(json!({"deltaLink": "x"})))).await;
    assert_eq!(outcome.unwrap_err(), SyncError::CursorExpired);
    assert!(got.records.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_page_is_retried_after_the_wait_asked_for() {
    let fake = FakeSentinelOne::start_with(FLEET).await.unwrap();
    fake.limit_page_size(20);
    fake.hold_faults(1);
    fake.rate_limit_next(2, Duration::from_secs(4));
    let started = Instant::now();
    let (outcome, got) = s1_run(&fake, SyncMode::Full).await;
    outcome.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(8), "two waits of the Retry-After sent");
    assert_equals_fleet(&got, &fake.snapshot());
    assert_eq!(got.retries, 2);
}

#[tokio::test]
async fn a_site_scoped_token_stops_the_run() {
    let fake = FakeSentinelOne::start().await.unwrap();
    let sources = sources(Endpoints::overridden(fake.base_urls()));
    let config = config(IntegrationType::SentinelOne, &fake.domain(), Settings::new());
    let token = fake.add_token(ctxsync_fakes::SentinelOneScope::Site);
    let credentials = credentials(IntegrationType::SentinelOne, json!({ "api_token": token }));
    match run(&sources, &config, &credentials, SyncMode::Full).await.0 {
        Err(SyncError::Source(ctxsync_sources::SourceError::Rejected(message))) => {
            assert!(message.contains("scoped to a site"), "{message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}
