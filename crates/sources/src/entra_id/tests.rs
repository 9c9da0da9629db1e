//! Sync runs against the fake Graph: a full run must equal the fake tenant, an incremental run
//! after mutations must report exactly the changes, and faults (throttling, server errors, cut
//! bodies, expired tokens, revoked secrets) must be survived or reported as what they are.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ctxsync_core::{
    Config, ConfigId, ConfigState, Entity, EntityKind, IntegrationType, Membership, OrgId, Record,
    SecretValue, Settings, UserStatus,
};
use ctxsync_fakes::{EntraSnapshot, FakeEntra, FaultKnobs, Listing, MemberKind, TenantSpec};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::{
    Checkpoint, Coverage, Credentials, Endpoints, GraphBudget, Outcome, Page, PageSink, Removal, SinkError,
    SourceError, Sources, SyncError, SyncMode,
};

/// What the connector selects, beyond what the snapshot may hold as `null`.
const USER_KEYS: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "otherMails",
    "accountEnabled",
    "jobTitle",
    "department",
    "employeeId",
    "createdDateTime",
    "userType",
    "onPremisesImmutableId",
    "proxyAddresses",
];
const GROUP_KEYS: &[&str] =
    &["id", "displayName", "description", "mail", "mailEnabled", "securityEnabled", "groupTypes"];
const DEVICE_KEYS: &[&str] = &[
    "id",
    "deviceId",
    "displayName",
    "accountEnabled",
    "operatingSystem",
    "operatingSystemVersion",
    "trustType",
    "isCompliant",
    "isManaged",
    "approximateLastSignInDateTime",
    "registrationDateTime",
    "manufacturer",
    "model",
];

/// Everything a run handed over.
#[derive(Debug, Default)]
struct Collected {
    records: Vec<Record>,
    memberships: Vec<Membership>,
    removals: Vec<Removal>,
    pages: usize,
    retries: u32,
}

impl Collected {
    fn ids(&self, kind: EntityKind) -> BTreeSet<String> {
        self.records
            .iter()
            .filter(|r| r.entity.kind() == kind)
            .map(|r| r.entity.source_id().to_string())
            .collect()
    }

    fn count(&self, kind: EntityKind) -> usize {
        self.records.iter().filter(|r| r.entity.kind() == kind).count()
    }

    /// Records handed over by entity kind, as the engine counts them against `expected`.
    fn received(&self) -> BTreeMap<String, u64> {
        EntityKind::ALL.iter().map(|k| (k.as_str().to_string(), self.count(*k) as u64)).collect()
    }

    fn records(&self, kind: EntityKind) -> BTreeMap<String, &Record> {
        self.records
            .iter()
            .filter(|r| r.entity.kind() == kind)
            .map(|r| (r.entity.source_id().to_string(), r))
            .collect()
    }

    fn removed(&self, kind: EntityKind) -> BTreeSet<String> {
        self.removals
            .iter()
            .filter_map(|r| match r {
                Removal::Entity { kind: k, source_id } if *k == kind => Some(source_id.clone()),
                _ => None,
            })
            .collect()
    }

    fn removed_memberships(&self) -> BTreeSet<Membership> {
        self.removals
            .iter()
            .filter_map(|r| match r {
                Removal::Membership(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A sink that keeps everything, and lets a test act on the source between pages.
struct Sink<'a> {
    got: Collected,
    on_page: Box<dyn FnMut(usize) + Send + 'a>,
}

#[async_trait::async_trait]
impl PageSink for Sink<'_> {
    async fn accept(&mut self, page: Page) -> Result<(), SinkError> {
        self.got.pages += 1;
        (self.on_page)(self.got.pages);
        self.got.retries += page.retries;
        self.got.records.extend(page.records);
        self.got.memberships.extend(page.memberships);
        self.got.removals.extend(page.removals);
        Ok(())
    }
}

fn config(fake: &FakeEntra) -> Config {
    Config {
        id: ConfigId::new(),
        org_id: OrgId::new(),
        integration_type: IntegrationType::EntraId,
        name: "entra".into(),
        domain: fake.domain(),
        enabled: true,
        state: ConfigState::Valid,
        settings: Settings::new(),
        created_at: ctxsync_core::now(),
        modified_at: ctxsync_core::now(),
    }
}

fn credentials(id: &str, secret: &str) -> Credentials {
    let secrets = SecretValue::new(json!({"client_id": id, "client_secret": secret}));
    Credentials::parse(IntegrationType::EntraId, &secrets).expect("well-formed secrets")
}

fn sources(fake: &FakeEntra) -> Sources {
    Sources::new(Endpoints::overridden(fake.base_urls())).unwrap()
}

async fn sync_with(
    fake: &FakeEntra,
    mode: SyncMode,
    on_page: impl FnMut(usize) + Send,
) -> (Result<Outcome, SyncError>, Collected) {
    let mut sink = Sink { got: Collected::default(), on_page: Box::new(on_page) };
    let creds = credentials(&fake.client_id(), &fake.client_secret());
    let result = sources(fake).sync(&config(fake), &creds, mode, &mut sink).await;
    (result, sink.got)
}

async fn sync(fake: &FakeEntra, mode: SyncMode) -> (Outcome, Collected) {
    let (result, got) = sync_with(fake, mode, |_| {}).await;
    (result.expect("the sync succeeds"), got)
}

fn kind(kind: MemberKind) -> EntityKind {
    EntityKind::parse(kind.as_str()).expect("member kinds are entity kinds")
}

fn memberships(snapshot: &EntraSnapshot) -> BTreeSet<Membership> {
    snapshot
        .memberships
        .iter()
        .map(|(g, k, m)| Membership { group_id: g.clone(), member_kind: kind(*k), member_id: m.clone() })
        .collect()
}

/// The raw object is Graph's: every property it holds equals the tenant's, and every selected
/// property the tenant has set is there.
fn assert_raw(raw: &RawValue, truth: &Value, keys: &[&str], annotations: &[&str]) {
    let raw: Map<String, Value> = serde_json::from_str(raw.get()).expect("raw objects are objects");
    for (key, value) in &raw {
        if annotations.contains(&key.as_str()) {
            continue;
        }
        assert_eq!(Some(value), truth.get(key), "{key} of {}", raw["id"]);
    }
    for key in keys {
        if !truth[*key].is_null() {
            assert!(raw.contains_key(*key), "{key} missing from {}", raw["id"]);
        }
    }
}

/// Asserts a full run brought back exactly the tenant.
fn assert_equals_tenant(got: &Collected, snapshot: &EntraSnapshot) {
    let users = got.records(EntityKind::User);
    assert_eq!(got.count(EntityKind::User), users.len(), "each user is one record");
    assert_eq!(got.ids(EntityKind::User), snapshot.users.keys().cloned().collect());
    for (id, record) in &users {
        let truth = &snapshot.users[id];
        assert_raw(&record.raw, truth, USER_KEYS, &["manager@delta"]);
        let Entity::User(user) = &record.entity else { unreachable!() };
        assert_eq!(user.login, truth["userPrincipalName"]);
        assert_eq!(user.display_name.as_deref(), truth["displayName"].as_str());
        let enabled = truth["accountEnabled"].as_bool().unwrap();
        assert_eq!(user.status, if enabled { UserStatus::Active } else { UserStatus::Suspended });
        if let Some(mail) = truth["mail"].as_str() {
            assert_eq!(user.emails[0], mail.to_lowercase());
        }
        assert!(user.emails.iter().all(|e| *e == e.to_lowercase()));
        assert_eq!(user.emails.len(), user.emails.iter().collect::<BTreeSet<_>>().len());
        assert_eq!(user.manager.as_ref(), snapshot.managers.get(id), "manager of {id}");
        let roles: Vec<String> = snapshot.admin_roles.get(id).into_iter().flatten().cloned().collect();
        assert_eq!(user.admin_roles, roles, "roles of {id}");
        assert_eq!(user.department.as_deref(), truth["department"].as_str());
    }

    let groups = got.records(EntityKind::Group);
    assert_eq!(got.count(EntityKind::Group), groups.len(), "each group is one record, however split");
    assert_eq!(got.ids(EntityKind::Group), snapshot.groups.keys().cloned().collect());
    for (id, record) in &groups {
        let truth = &snapshot.groups[id];
        assert_raw(&record.raw, truth, GROUP_KEYS, &[]);
        let Entity::Group(group) = &record.entity else { unreachable!() };
        assert_eq!(group.name, truth["displayName"]);
        let unified = truth["groupTypes"].as_array().unwrap().iter().any(|t| t == "Unified");
        assert_eq!(group.kind.as_deref(), Some(if unified { "unified" } else { "security" }));
    }

    assert_eq!(got.ids(EntityKind::Device), snapshot.devices.keys().cloned().collect());
    for (id, record) in got.records(EntityKind::Device) {
        let truth = &snapshot.devices[&id];
        assert_raw(&record.raw, truth, DEVICE_KEYS, &["registeredOwners"]);
        let Entity::Device(device) = &record.entity else { unreachable!() };
        assert_eq!(device.owner.as_ref(), snapshot.device_owners.get(&id), "owner of {id}");
        assert_eq!(device.name.as_deref(), truth["displayName"].as_str());
        assert_eq!(device.os.as_deref(), truth["operatingSystem"].as_str());
        assert_eq!(device.managed, truth["isManaged"].as_bool());
        let enabled = truth["accountEnabled"].as_bool().unwrap();
        assert_eq!(device.status.as_deref(), Some(if enabled { "enabled" } else { "disabled" }));
    }

    let got_memberships: BTreeSet<Membership> = got.memberships.iter().cloned().collect();
    assert_eq!(got_memberships, memberships(snapshot));
    assert!(got.removals.is_empty(), "{:?}", got.removals);
}

#[tokio::test]
async fn a_full_sync_equals_the_tenant() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 11, users: 1_500, groups: 24, devices: 300 }).await.unwrap();
    // Small member slices: big groups come back over several pages and must merge.
    fake.limit_members_per_page(40);
    let (outcome, got) = sync(&fake, SyncMode::Full).await;
    let snapshot = fake.snapshot();
    assert_equals_tenant(&got, &snapshot);
    assert!(snapshot.memberships.iter().any(|(_, k, _)| *k == MemberKind::Group));
    assert!(snapshot.memberships.iter().any(|(_, k, _)| *k == MemberKind::Device));
    assert!(got.records.iter().any(|r| matches!(&r.entity, Entity::User(u) if !u.admin_roles.is_empty())));
    assert!(got.pages > 6, "users alone need two pages of 999: {}", got.pages);
    let owned = snapshot.device_owners.len();
    assert!(owned > snapshot.devices.len() / 2 && owned < snapshot.devices.len(), "{owned} owned devices");
    assert_eq!(outcome.coverage, Coverage::Everything);
    // Graph's `$count`s are what the listing handed over; memberships have no total.
    let tenant = BTreeMap::from([
        ("device".to_string(), snapshot.devices.len() as u64),
        ("group".to_string(), snapshot.groups.len() as u64),
        ("user".to_string(), snapshot.users.len() as u64),
    ]);
    assert_eq!(outcome.expected, tenant);
    assert_eq!(got.received(), tenant);
    let cursor = outcome.cursor.expect("a cursor").0;
    for listing in ["users", "groups", "devices"] {
        let link = cursor[listing].as_str().unwrap();
        assert!(
            link.starts_with(&format!("{}/v1.0/{listing}/delta?$deltatoken=", fake.graph_base_url())),
            "{link}"
        );
    }
    assert_eq!(
        cursor["admin_roles"].as_object().unwrap().len(),
        snapshot.admin_roles.len(),
        "the cursor remembers who held roles"
    );
}

#[tokio::test]
async fn an_incremental_sync_reports_exactly_the_changes() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 3, users: 80, groups: 6, devices: 20 }).await.unwrap();
    let (outcome, _) = sync(&fake, SyncMode::Full).await;
    let before = fake.snapshot();

    let (ids, devices, groups): (Vec<String>, Vec<String>, Vec<String>) = fake.mutate(|t| {
        (
            t.users().map(|(id, _)| id).collect(),
            t.devices().map(|(id, _)| id).collect(),
            t.groups().map(|(id, _)| id).collect(),
        )
    });
    let untouched =
        ids.iter().find(|id| !before.admin_roles.contains_key(*id) && *id != &ids[10]).unwrap().clone();
    let (added_user, added_device) = fake.mutate(|t| {
        let added = t.add_user("Grace", "Hopper");
        t.update_user(&ids[3], |u| u.job_title = Some("Principal Engineer".into()));
        t.disable_user(&ids[4]);
        t.delete_user(&ids[10]);
        t.add_member(&groups[0], &added);
        let member = t.members(&groups[1]).into_iter().find(|(k, _)| *k == MemberKind::User).unwrap().1;
        t.remove_member(&groups[1], &member);
        // Group 5 is nested in group 1: deleting it also takes it out of there.
        t.delete_group(&groups[5]);
        let device = t.add_device("DESKTOP-NEW0001", Some(&added));
        t.add_member(&groups[2], &device);
        t.delete_device(&devices[0]);
        // No delta tracks role assignments: the connector must notice this user on its own.
        t.assign_role(&untouched, "User Administrator");
        (added, device)
    });
    let after = fake.snapshot();

    let (outcome, got) = sync(&fake, SyncMode::Incremental(outcome.cursor.unwrap())).await;
    assert_eq!(outcome.coverage, Coverage::Changes { groups_with_all_members: vec![] });

    // What changed, read off the two snapshots.
    let changed = |b: &BTreeMap<String, Value>, a: &BTreeMap<String, Value>| -> BTreeSet<String> {
        a.iter().filter(|(id, v)| b.get(*id) != Some(*v)).map(|(id, _)| id.clone()).collect()
    };
    let mut users = changed(&before.users, &after.users);
    users
        .extend(after.users.keys().filter(|id| before.managers.get(*id) != after.managers.get(*id)).cloned());
    users.extend(
        after.users.keys().filter(|id| before.admin_roles.get(*id) != after.admin_roles.get(*id)).cloned(),
    );
    assert!(users.contains(&added_user) && users.contains(&untouched) && users.contains(&ids[3]));
    assert_eq!(got.ids(EntityKind::User), users);
    assert_eq!(got.removed(EntityKind::User), BTreeSet::from([ids[10].clone()]));

    // A deleted group's own members go with it; every other membership change is named.
    let before_members = memberships(&before);
    let after_members = memberships(&after);
    let added: BTreeSet<Membership> = after_members.difference(&before_members).cloned().collect();
    let removed: BTreeSet<Membership> =
        before_members.difference(&after_members).filter(|m| m.group_id != groups[5]).cloned().collect();
    assert!(removed.iter().any(|m| m.member_id == groups[5]), "the deleted group left its parent");
    assert_eq!(got.memberships.iter().cloned().collect::<BTreeSet<_>>(), added);
    assert_eq!(got.removed_memberships(), removed);

    let mut groups_changed = changed(&before.groups, &after.groups);
    groups_changed.extend(
        added.iter().chain(&removed).map(|m| m.group_id.clone()).filter(|g| after.groups.contains_key(g)),
    );
    assert_eq!(got.ids(EntityKind::Group), groups_changed);
    assert_eq!(got.removed(EntityKind::Group), BTreeSet::from([groups[5].clone()]));

    assert_eq!(got.ids(EntityKind::Device), BTreeSet::from([added_device.clone()]));
    let Entity::Device(device) = &got.records(EntityKind::Device)[&added_device].entity else {
        unreachable!()
    };
    assert_eq!(device.owner.as_ref(), Some(&added_user));
    assert_eq!(got.removed(EntityKind::Device), BTreeSet::from([devices[0].clone()]));

    for record in &got.records {
        let truth = match &record.entity {
            Entity::User(_) => &after.users,
            Entity::Group(_) => &after.groups,
            Entity::Device(_) => &after.devices,
        };
        assert_raw(
            &record.raw,
            &truth[record.entity.source_id()],
            &[],
            &["manager@delta", "registeredOwners"],
        );
        if let Entity::Device(device) = &record.entity {
            assert_eq!(device.owner.as_ref(), after.device_owners.get(&device.source_id));
        }
        if let Entity::User(user) = &record.entity {
            let roles: Vec<String> =
                after.admin_roles.get(&user.source_id).into_iter().flatten().cloned().collect();
            assert_eq!(user.admin_roles, roles);
        }
    }

    // Nothing changed since: the next run is empty, and states no totals.
    let (quiet_outcome, quiet) = sync(&fake, SyncMode::Incremental(outcome.cursor.unwrap())).await;
    assert!(quiet_outcome.expected.is_empty());
    assert!(
        quiet.records.is_empty() && quiet.memberships.is_empty() && quiet.removals.is_empty(),
        "{quiet:?}"
    );
}

#[tokio::test]
async fn an_expired_delta_token_asks_for_a_full_sync() {
    let fake = FakeEntra::start().await.unwrap();
    let (outcome, _) = sync(&fake, SyncMode::Full).await;
    fake.expire_delta_tokens();
    let (result, _) = sync_with(&fake, SyncMode::Incremental(outcome.cursor.unwrap()), |_| {}).await;
    assert_eq!(result.unwrap_err(), SyncError::CursorExpired);

    let unreadable = crate::Cursor(json!({"users": 1}));
    let (result, _) = sync_with(&fake, SyncMode::Incremental(unreadable), |_| {}).await;
    assert_eq!(result.unwrap_err(), SyncError::CursorExpired);
}

#[tokio::test(start_paused = true)]
async fn throttling_is_waited_out_as_graph_asks() {
    let fake = FakeEntra::start().await.unwrap();
    let started = tokio::time::Instant::now();
    let (result, got) = sync_with(&fake, SyncMode::Full, |page| {
        if page == 1 {
            fake.throttle_next(3, 7);
        }
    })
    .await;
    result.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(21) && waited < Duration::from_secs(22), "{waited:?}");
    assert_eq!(got.retries, 3);
    assert_equals_tenant(&got, &fake.snapshot());

    // Throttling from the first request on, role assignments included.
    fake.throttle_next(5, 2);
    let started = tokio::time::Instant::now();
    let (_, got) = sync(&fake, SyncMode::Full).await;
    assert!(started.elapsed() >= Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(got.retries, 5, "the retries of requests that bring no page are reported too");
    assert_equals_tenant(&got, &fake.snapshot());
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_cut_bodies_are_retried() {
    let fake = FakeEntra::start().await.unwrap();
    fake.fail_next(2, 503);
    let (_, got) = sync(&fake, SyncMode::Full).await;
    assert_equals_tenant(&got, &fake.snapshot());
    assert_eq!(got.retries, 2);

    let (result, got) = sync_with(&fake, SyncMode::Full, |page| {
        if page == 1 {
            fake.truncate_next(2);
        }
    })
    .await;
    result.unwrap();
    assert_equals_tenant(&got, &fake.snapshot());
    assert_eq!(got.retries, 2);

    // A source that never sends a whole page is unreachable, said plainly.
    fake.truncate_next(100);
    let (result, _) = sync_with(&fake, SyncMode::Full, |_| {}).await;
    let Err(SyncError::Source(SourceError::Unreachable(message))) = result else { panic!("{result:?}") };
    assert!(message.contains("could not be read"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn an_expiring_token_is_renewed_mid_run() {
    let fake = FakeEntra::start().await.unwrap();
    fake.set_token_lifetime(Duration::from_secs(60));
    fake.slow_pages(Duration::from_secs(25));
    let (_, got) = sync(&fake, SyncMode::Full).await;
    assert_equals_tenant(&got, &fake.snapshot());
    assert!(fake.tokens_issued() >= 2, "{}", fake.tokens_issued());

    // A token Graph stops accepting mid-run is replaced too.
    fake.slow_pages(Duration::ZERO);
    fake.set_token_lifetime(Duration::from_secs(3599));
    let issued = fake.tokens_issued();
    let (result, got) = sync_with(&fake, SyncMode::Full, |page| {
        if page == 1 {
            fake.expire_access_tokens();
        }
    })
    .await;
    result.unwrap();
    assert_equals_tenant(&got, &fake.snapshot());
    assert_eq!(fake.tokens_issued(), issued + 2);
}

#[tokio::test]
async fn a_secret_revoked_mid_run_is_rejected() {
    let fake = FakeEntra::start().await.unwrap();
    let (result, got) = sync_with(&fake, SyncMode::Full, |page| {
        if page == 1 {
            fake.revoke_secret();
            fake.expire_access_tokens();
        }
    })
    .await;
    assert_eq!(got.pages, 1);
    let Err(SyncError::Source(SourceError::Rejected(message))) = result else { panic!("{result:?}") };
    assert!(message.contains("AADSTS7000215") && message.contains("invalid_client"), "{message}");
    assert!(!message.contains(&fake.client_secret()), "{message}");
}

#[tokio::test]
async fn admin_roles_are_optional_but_devices_are_not() {
    let fake = FakeEntra::start().await.unwrap();
    fake.withdraw_permission("RoleManagement.Read.Directory");
    let (outcome, got) = sync(&fake, SyncMode::Full).await;
    assert!(got.records.iter().all(|r| !matches!(&r.entity, Entity::User(u) if !u.admin_roles.is_empty())));
    assert_eq!(got.ids(EntityKind::User).len(), fake.snapshot().users.len());
    assert_eq!(outcome.cursor.unwrap().0["admin_roles"], Value::Null);

    fake.withdraw_permission("Device.Read.All");
    let (result, _) = sync_with(&fake, SyncMode::Full, |_| {}).await;
    let Err(SyncError::Source(SourceError::Rejected(message))) = result else { panic!("{result:?}") };
    assert!(message.contains("refused to list devices") && message.contains("Device.Read.All"), "{message}");
}

/// An app that loses the permission to read role assignments, after runs that read them: the
/// runs it makes keep every admin's last roles (the incremental one for the users it lists, the
/// scheduled full one, given the last cursor, for all) rather than revoking them. A role
/// assigned meanwhile is read once the app may again.
#[tokio::test]
async fn an_app_that_may_no_longer_read_roles_keeps_those_the_last_run_read() {
    let fake = FakeEntra::start_with(TenantSpec { seed: 3, users: 60, groups: 4, devices: 5 }).await.unwrap();
    let (plain, promoted) = {
        let tenant = fake.snapshot();
        let mut plain = tenant.users.keys().filter(|id| !tenant.admin_roles.contains_key(*id)).cloned();
        (plain.next().unwrap(), plain.next().unwrap())
    };
    // Two admins at least, so that reading every admin again would show.
    fake.mutate(|t| t.assign_role(&plain, "Helpdesk Administrator"));
    let (outcome, _) = sync(&fake, SyncMode::Full).await;
    let read = fake.snapshot();
    let roles_of =
        |id: &str| -> Vec<String> { read.admin_roles.get(id).into_iter().flatten().cloned().collect() };
    assert!(read.admin_roles.len() >= 2, "{:?}", read.admin_roles);
    let admin = read.admin_roles.keys().next().unwrap().clone();

    fake.withdraw_permission("RoleManagement.Read.Directory");
    fake.mutate(|t| {
        t.update_user(&admin, |u| u.job_title = Some("Principal Engineer".into()));
        t.assign_role(&promoted, "User Administrator");
    });
    let (outcome, got) = sync(&fake, SyncMode::Incremental(outcome.cursor.unwrap())).await;
    let Entity::User(listed) = &got.records(EntityKind::User)[&admin].entity else { unreachable!() };
    assert_eq!(listed.title.as_deref(), Some("Principal Engineer"));
    assert_eq!(listed.admin_roles, roles_of(&admin), "the listed admin keeps its roles");

    let (outcome, got) = sync(&fake, SyncMode::FullAfter(outcome.cursor.unwrap())).await;
    let users = got.records(EntityKind::User);
    assert_eq!(users.len(), fake.snapshot().users.len());
    for (id, record) in &users {
        let Entity::User(user) = &record.entity else { unreachable!() };
        assert_eq!(user.admin_roles, roles_of(id), "roles of {id} as last read");
    }

    let (_, got) = sync(&fake, SyncMode::Resume(Checkpoint::default(), outcome.cursor.clone())).await;
    let users = got.records(EntityKind::User);
    assert!(
        users.iter().all(|(id, r)| matches!(&r.entity, Entity::User(u) if u.admin_roles == roles_of(id)))
    );

    // Allowed again, the run reads the user whose roles changed, and no other: the cursor kept
    // the roles last read to compare with.
    fake.grant_permission("RoleManagement.Read.Directory");
    let (_, got) = sync(&fake, SyncMode::Incremental(outcome.cursor.unwrap())).await;
    assert_eq!(got.ids(EntityKind::User), BTreeSet::from([promoted.clone()]));
    let Entity::User(user) = &got.records(EntityKind::User)[&promoted].entity else { unreachable!() };
    assert_eq!(user.admin_roles, ["User Administrator"]);
}

#[tokio::test(start_paused = true)]
async fn a_total_graph_will_not_give_is_left_out() {
    let fake = FakeEntra::start_with(TenantSpec { seed: 4, users: 50, groups: 3, devices: 5 }).await.unwrap();
    fake.refuse_counts();
    let (result, got) = sync_with(&fake, SyncMode::Full, |_| {}).await;
    let outcome = result.expect("the listing is complete without totals");
    assert!(outcome.expected.is_empty(), "{:?}", outcome.expected);
    assert_equals_tenant(&got, &fake.snapshot());
}

#[tokio::test]
async fn an_empty_page_with_a_next_link_is_followed() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 2, users: 2_100, groups: 3, devices: 4 }).await.unwrap();
    // The second of three pages of users comes back empty, its next link intact.
    fake.drop_page(Listing::Users, 1);
    let (outcome, got) = sync(&fake, SyncMode::Full).await;
    let snapshot = fake.snapshot();
    assert_eq!(got.ids(EntityKind::User).len(), snapshot.users.len() - 999);
    assert_eq!(got.ids(EntityKind::Group).len(), snapshot.groups.len());
    assert_eq!(got.ids(EntityKind::Device).len(), snapshot.devices.len());
    assert!(outcome.cursor.is_some());
    // Graph's count shows the loss the listing could not see.
    let received = got.received();
    assert_eq!(outcome.expected["user"], snapshot.users.len() as u64);
    assert_eq!(received["user"], outcome.expected["user"] - 999);
    assert_eq!(received["group"], outcome.expected["group"]);
    assert_eq!(received["device"], outcome.expected["device"]);
}

#[tokio::test]
async fn incremental_runs_read_the_owners_of_changed_devices() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 8, users: 120, groups: 4, devices: 40 }).await.unwrap();
    let (outcome, _) = sync(&fake, SyncMode::Full).await;
    let before = fake.snapshot();
    let owned: Vec<(String, String)> = before.device_owners.clone().into_iter().collect();
    let unowned = before.devices.keys().find(|d| !before.device_owners.contains_key(*d)).unwrap().clone();
    let (reregistered, replaced, released) = (&owned[0].0, &owned[1].0, &owned[2].0);
    let new_owner = owned.iter().map(|(_, user)| user).find(|u| *u != &owned[0].1).unwrap().clone();
    fake.mutate(|t| {
        // Re-registered to someone else: the device changes, its owner with it.
        t.update_device(reregistered, |d| {
            d.owner = Some(new_owner.clone());
            d.registered += time::Duration::days(1);
        });
        t.update_device(&unowned, |d| {
            d.owner = Some(new_owner.clone());
            d.display_name = "Handed over".into();
        });
        t.update_device(released, |d| {
            d.owner = None;
            d.account_enabled = !d.account_enabled;
        });
        // The owner alone: no delta reports it.
        t.set_device_owner(replaced, Some(&new_owner));
    });
    let after = fake.snapshot();

    let (_, got) = sync(&fake, SyncMode::Incremental(outcome.cursor.unwrap())).await;
    let owners: BTreeMap<String, Option<String>> = got
        .records(EntityKind::Device)
        .into_iter()
        .map(|(id, r)| match &r.entity {
            Entity::Device(d) => (id, d.owner.clone()),
            _ => unreachable!(),
        })
        .collect();
    let expected: BTreeMap<String, Option<String>> = [reregistered, &unowned, released]
        .into_iter()
        .map(|id| (id.clone(), after.device_owners.get(id).cloned()))
        .collect();
    assert_eq!(owners, expected);
    assert_eq!(owners[reregistered].as_ref(), Some(&new_owner));
    assert_eq!(owners[released], None);

    // The next full run sees the owner replaced alone, and starts the delta afresh.
    let (full_outcome, got) = sync(&fake, SyncMode::Full).await;
    assert_equals_tenant(&got, &after);
    let (_, quiet) = sync(&fake, SyncMode::Incremental(full_outcome.cursor.unwrap())).await;
    assert!(quiet.records.is_empty(), "{:?}", quiet.records);
}

#[tokio::test]
async fn devices_sync_without_owners_graph_will_not_expand() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 9, users: 60, groups: 3, devices: 250 }).await.unwrap();
    fake.refuse_device_owners();
    let (outcome, got) = sync(&fake, SyncMode::Full).await;
    let snapshot = fake.snapshot();
    assert_eq!(got.ids(EntityKind::Device), snapshot.devices.keys().cloned().collect());
    assert!(got.records.iter().all(|r| !matches!(&r.entity, Entity::Device(d) if d.owner.is_some())));
    assert_eq!(outcome.expected["device"], snapshot.devices.len() as u64);

    let device = snapshot.devices.keys().next().unwrap().clone();
    fake.mutate(|t| t.update_device(&device, |d| d.display_name = "Renamed".into()));
    let (_, got) = sync(&fake, SyncMode::Incremental(outcome.cursor.unwrap())).await;
    let Entity::Device(renamed) = &got.records(EntityKind::Device)[&device].entity else { unreachable!() };
    assert_eq!((renamed.name.as_deref(), renamed.owner.as_ref()), (Some("Renamed"), None));
}

#[tokio::test]
async fn a_full_run_lists_devices_through_delta_when_graph_will_not_sync_from_now() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 9, users: 60, groups: 3, devices: 40 }).await.unwrap();
    fake.refuse_latest_delta();
    let (outcome, got) = sync(&fake, SyncMode::Full).await;
    let snapshot = fake.snapshot();
    let devices = got.records(EntityKind::Device);
    assert_eq!(devices.len(), snapshot.devices.len());
    for (id, record) in &devices {
        let Entity::Device(device) = &record.entity else { unreachable!() };
        assert_eq!(device.owner.as_ref(), snapshot.device_owners.get(id), "owner of {id}");
    }
    assert!(!snapshot.device_owners.is_empty());

    // The delta link that round ended with carries the next run.
    let device = snapshot.devices.keys().next().unwrap().clone();
    fake.mutate(|t| t.update_device(&device, |d| d.display_name = "Renamed".into()));
    let (_, got) = sync(&fake, SyncMode::Incremental(outcome.cursor.unwrap())).await;
    assert_eq!(got.ids(EntityKind::Device), [device].into());
}

/// A sink that keeps the checkpoint as the engine does and refuses every page after `take`.
struct Stopping {
    got: Collected,
    checkpoint: crate::Checkpoint,
    take: usize,
}

#[async_trait::async_trait]
impl PageSink for Stopping {
    async fn accept(&mut self, page: Page) -> Result<(), SinkError> {
        if self.got.pages == self.take {
            return Err(SinkError("stopped".into()));
        }
        if let Some(crate::Mark { listing, at: Some(at) }) = &page.mark {
            self.checkpoint.set(listing, at.clone());
        }
        self.got.pages += 1;
        self.got.records.extend(page.records);
        self.got.memberships.extend(page.memberships);
        Ok(())
    }
}

#[tokio::test]
async fn a_stopped_full_run_resumes_from_its_marks_and_completes_the_rounds() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 12, users: 900, groups: 30, devices: 200 }).await.unwrap();
    fake.limit_page_size(40);
    fake.limit_members_per_page(40);
    let snapshot = fake.snapshot();
    let (full, whole) = sync(&fake, SyncMode::Full).await;
    let full_requests = fake.requests();
    let creds = credentials(&fake.client_id(), &fake.client_secret());

    for take in [whole.pages / 3, whole.pages * 2 / 3] {
        let before = fake.requests();
        let mut first = Stopping { got: Collected::default(), checkpoint: Default::default(), take };
        let stopped = sources(&fake).sync(&config(&fake), &creds, SyncMode::Full, &mut first).await;
        assert!(matches!(stopped, Err(SyncError::Sink(_))), "{stopped:?}");
        let middle = fake.requests();
        let (outcome, rest) = sync(&fake, SyncMode::Resume(first.checkpoint.clone(), None)).await;
        let (stopped, resumed) = (middle - before, fake.requests() - middle);

        let ids = |kind| first.got.ids(kind).union(&rest.ids(kind)).cloned().collect::<BTreeSet<_>>();
        assert_eq!(ids(EntityKind::User), snapshot.users.keys().cloned().collect());
        assert_eq!(ids(EntityKind::Group), snapshot.groups.keys().cloned().collect());
        assert_eq!(ids(EntityKind::Device), snapshot.devices.keys().cloned().collect());
        let members: BTreeSet<Membership> =
            first.got.memberships.iter().chain(&rest.memberships).cloned().collect();
        assert_eq!(members, memberships(&snapshot));
        assert_eq!((outcome.coverage, &outcome.expected), (Coverage::Everything, &full.expected));
        let cursor = outcome.cursor.expect("a cursor").0;
        assert!(
            ["users", "groups", "devices"]
                .iter()
                .all(|l| cursor[l].as_str().unwrap().contains("$deltatoken="))
        );
        // The roles the stopped part's users carry are the cursor's, for the next run to compare.
        assert_eq!(cursor["admin_roles"], first.checkpoint.0["roles"]);
        // Again: the totals (three requests), and the pages in flight.
        let extra = (stopped + resumed).saturating_sub(full_requests);
        assert!(
            extra * 10 <= full_requests,
            "{extra} more than a full run's {full_requests} (stopped after {stopped}, resumed with {resumed})"
        );
    }
}

/// A full run's users, groups and devices rounds go on at the same time: against a Graph that
/// takes a second for every reply, the run takes about as long as its longest round, not as long
/// as all its requests one after another. A token that falls due meanwhile is minted once for
/// all three.
#[tokio::test(start_paused = true)]
async fn the_three_rounds_of_a_full_run_go_on_at_once() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 34, users: 100, groups: 100, devices: 100 }).await.unwrap();
    fake.limit_page_size(10);
    let reply = Duration::from_secs(1);
    fake.slow_pages(reply);
    // Renewed a tenth of its life early: at 9 s, once.
    fake.set_token_lifetime(Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    let (_, got) = sync(&fake, SyncMode::Full).await;
    let took = started.elapsed();
    assert_equals_tenant(&got, &fake.snapshot());
    let one_at_a_time = reply * fake.requests() as u32;
    let users = reply * fake.pages_served(Listing::Users) as u32;
    assert!(
        took < one_at_a_time.mul_f64(0.75),
        "took {took:?}; one request at a time takes {one_at_a_time:?}"
    );
    assert!(took >= users, "the users round alone takes {users:?}");
    assert!(took < Duration::from_secs(18), "took {took:?}: a third token would be due");
    assert_eq!(fake.tokens_issued(), 2, "the first token and one renewal");
}

/// A tenant whose Graph lets each app spend `units` resource units a one-second window, served
/// ten objects a page so a run takes many requests.
async fn limited_tenant(seed: u64, users: usize, units: u32) -> FakeEntra {
    let fake = FakeEntra::start_with(TenantSpec { seed, users, groups: 6, devices: 30 }).await.unwrap();
    fake.limit_page_size(10);
    fake.set_resource_unit_budget(units, Duration::from_secs(1));
    fake
}

/// Sources that know the fake's scaled-down budget, through `graph_base` (a spelling of the
/// fake's address: another one is another process's pacer).
fn budgeted_sources(fake: &FakeEntra, graph_base: &str, units: u32) -> Sources {
    let urls = fake.base_urls().into_iter().map(|(name, _)| (name, graph_base.to_string()));
    let budget = GraphBudget { units, window: Duration::from_secs(1) };
    Sources::new(Endpoints::overridden(urls).with_graph_budget(budget)).unwrap()
}

fn with_share(fake: &FakeEntra, percent: u8) -> Config {
    Config { settings: serde_json::from_value(json!({"rate_limit_share": percent})).unwrap(), ..config(fake) }
}

/// Runs two full syncs at once, each of which must list the whole tenant without meeting a 429;
/// returns how long they took together.
async fn two_at_once(fake: &FakeEntra, one: (&Sources, &Config), two: (&Sources, &Config)) -> Duration {
    let creds = credentials(&fake.client_id(), &fake.client_secret());
    let sink = || Sink { got: Collected::default(), on_page: Box::new(|_| {}) };
    let (mut first, mut second) = (sink(), sink());
    let started = tokio::time::Instant::now();
    let (a, b) = tokio::join!(
        one.0.sync(one.1, &creds, SyncMode::Full, &mut first),
        two.0.sync(two.1, &creds, SyncMode::Full, &mut second),
    );
    let took = started.elapsed();
    a.unwrap();
    b.unwrap();
    let snapshot = fake.snapshot();
    assert_equals_tenant(&first.got, &snapshot);
    assert_equals_tenant(&second.got, &snapshot);
    assert_eq!(fake.rate_limited(), 0, "no request met a full window");
    took
}

/// Two configs of one tenant and app syncing at once share one pacer: together they keep to
/// their share of Graph's resource units, never meet a 429, and take about the least time the
/// share allows.
#[tokio::test(start_paused = true)]
async fn two_configs_of_one_tenant_keep_to_their_share_of_the_graph_budget() {
    let fake = limited_tenant(31, 240, 20).await;
    let sources = budgeted_sources(&fake, &fake.graph_base_url(), 20);
    let (one, two) = (with_share(&fake, 50), with_share(&fake, 50));
    let took = two_at_once(&fake, (&sources, &one), (&sources, &two)).await;
    let busiest = fake.busiest_window();
    assert!((5..=10).contains(&busiest), "{busiest} units in one window, half of 20 is 10");
    let least = Duration::from_secs(fake.resource_units_charged().div_ceil(10) - 1);
    assert!(
        took <= least.mul_f64(1.15) + Duration::from_secs(1),
        "took {took:?}, the share allows {least:?}"
    );
}

/// A tenant whose app may spend 20 units a second, two replicas of it (another host name for each,
/// so another pacer), and a config taking half.
async fn two_replicas() -> (FakeEntra, [Sources; 2], Config) {
    let fake = limited_tenant(32, 600, 20).await;
    let elsewhere = fake.graph_base_url().replace("127.0.0.1", "localhost");
    let replicas =
        [budgeted_sources(&fake, &fake.graph_base_url(), 20), budgeted_sources(&fake, &elsewhere, 20)];
    let config = with_share(&fake, 50);
    (fake, replicas, config)
}

/// Two replicas syncing one tenant at once each pace their own requests, unaware of the other's:
/// they see each other only when Graph says the window is over 0.8 full, and then split the
/// share, so together they stay below the limit and near the share on average.
#[tokio::test(start_paused = true)]
async fn two_replicas_keep_together_to_about_their_share_without_sharing_state() {
    let (fake, [here, there], config) = two_replicas().await;
    let took = two_at_once(&fake, (&here, &config), (&there, &config)).await;
    // Each keeps its own account within its share, so the window never goes over the limit
    // (`two_at_once` found no 429); how close to it they come before a reading shows the other
    // depends on how many of each one's three rounds are in flight then.
    let per_window = fake.resource_units_charged() as f64 / took.as_secs_f64();
    assert!(
        (8.0..=14.0).contains(&per_window),
        "{per_window:.1} units a window on average, half of 20 is 10"
    );
}

/// Two replicas told that two processes sync the domain (as the sync engine tells them from the
/// store's leases) each keep to half of the share, so together they keep to the share in every
/// window, not only on average.
#[tokio::test(start_paused = true)]
async fn two_replicas_told_of_each_other_keep_together_to_their_share() {
    let (fake, [here, there], config) = two_replicas().await;
    let split = |processes| {
        for replica in [&here, &there] {
            let key = replica.shared_limit(IntegrationType::EntraId, &config.domain).unwrap();
            replica.split_limit(&key, processes);
        }
    };
    split(2);
    two_at_once(&fake, (&here, &config), (&there, &config)).await;
    // The splits outlive the fake, whose port a later test's may take.
    split(1);
    let busiest = fake.busiest_window();
    assert!((6..=10).contains(&busiest), "{busiest} units in one window, half of 20 is 10");
}

/// Validating credentials, which an API caller waits on, does not wait for a share that is
/// full: its requests go at once and are booked, so the next sync waits for them instead.
#[tokio::test(start_paused = true)]
async fn validation_goes_at_once_and_the_next_sync_waits_for_it() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 33, users: 20, groups: 2, devices: 3 }).await.unwrap();
    let window = Duration::from_secs(600);
    fake.set_resource_unit_budget(12, window);
    let urls = fake.base_urls();
    let sources =
        Sources::new(Endpoints::overridden(urls).with_graph_budget(GraphBudget { units: 12, window }))
            .unwrap();
    let config = with_share(&fake, 50);
    let creds = credentials(&fake.client_id(), &fake.client_secret());
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        sources.validate(&config.domain, &config.settings, &creds).await.unwrap();
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "nine units went at once, over a share of six");
    let mut sink = Sink { got: Collected::default(), on_page: Box::new(|_| {}) };
    sources.sync(&config, &creds, SyncMode::Full, &mut sink).await.unwrap();
    assert_equals_tenant(&sink.got, &fake.snapshot());
    assert!(started.elapsed() >= window, "the sync waited for the validations to slide out");
    assert_eq!(fake.rate_limited(), 0, "nine of twelve, then the sync within its share");
}

/// Past the budget Graph's 429 says when to come back, why, and for whom, in its error body.
#[tokio::test]
async fn graph_answers_over_the_budget_with_429_and_retry_after() {
    let fake = FakeEntra::start().await.unwrap();
    fake.set_resource_unit_budget(3, Duration::from_secs(60));
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/{}/oauth2/v2.0/token", fake.login_base_url(), fake.tenant_id()))
        .form(&[
            ("client_id", fake.client_id().as_str()),
            ("client_secret", fake.client_secret().as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let get = |query: &'static str| {
        http.get(format!("{}/v1.0/users{query}", fake.graph_base_url())).bearer_auth(&token).send()
    };
    let header =
        |r: &reqwest::Response, name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_string());

    let users = get("").await.unwrap();
    assert_eq!(users.status(), 200);
    assert_eq!(header(&users, "x-ms-resource-unit").as_deref(), Some("2"), "GET users costs 2");
    assert_eq!(header(&users, "x-ms-throttle-limit-percentage"), None, "only above 0.8 of the limit");
    let selected = get("?$select=id").await.unwrap();
    assert_eq!(header(&selected, "x-ms-resource-unit").as_deref(), Some("1"), "$select takes one off");
    assert_eq!(header(&selected, "x-ms-throttle-limit-percentage").as_deref(), Some("1.00"));

    let refused = get("?$select=id").await.unwrap();
    assert_eq!(refused.status(), 429);
    let wait: f64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!(wait > 59.0 && wait <= 60.0, "until the first request slides out of the window: {wait}");
    assert_eq!(
        header(&refused, "x-ms-throttle-scope").unwrap(),
        format!("Tenant_Application/ReadWrite/{}/{}", fake.client_id(), fake.tenant_id())
    );
    assert_eq!(header(&refused, "x-ms-throttle-information").as_deref(), Some("ResourceUnitLimitExceeded"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(body["error"]["message"], "Please retry again later.");
    assert_eq!(body["error"]["innerError"]["status"], "429");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    assert_eq!(fake.rate_limited(), 1);
}
