//! The fault matrix: every source × every fault × every point of a run, through the worker into
//! a fresh store (SQLite, or PostgreSQL under `scripts/test-postgres`).
//!
//! Each case starts a small fake tenant paged a few items at a time, runs a complete first sync,
//! changes the tenant (users added, suspended and deleted, members added and removed; hosts
//! added, hidden or deleted, contained, logged on to by someone else), injects
//! one fault at one point of the next run, and runs it. The run must end as the fault implies,
//! and the store must hold either the new complete picture (the run survived) or the old one
//! plus some of the new run's upserts and none of its deletions (it failed). Then the fault is
//! cleared and one more run must leave the store equal to the tenant.
//!
//! Points are counted, never timed: a rehearsal of the run (the connector alone, into nothing)
//! counts its requests and each listing's pages, and the fakes hold a fault back for that many
//! requests or pages. Retry waits and the request timeout are shortened through
//! [`SyncTiming`], so a storm or a timeout costs milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctxsync_core::{Config, IntegrationType, Membership, SecretValue, Settings};
use ctxsync_fakes::{
    FakeCrowdStrike, FakeEntra, FakeGoogle, FakeOkta, FakeSentinelOne, FaultKnobs, Lifecycle, Listing,
    Snapshot, TenantSpec,
};
use ctxsync_sources::{Credentials, Endpoints, Page, PageSink, SinkError, Sources, SyncMode, SyncTiming};
use ctxsync_store::testing::TestDatabase;
use ctxsync_store::{EntityQuery, MasterKey, Store};
use ctxsync_sync::{Outcome, RunOptions, SyncSettings, Worker};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Items per page of every listing: ~30 users make eight pages, a group's members a few.
const PAGE_SIZE: usize = 4;
/// Longer than any reply of a local fake takes, even on a busy machine; the delayed reply of
/// the timeout fault takes three times as long.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Okta,
    Google,
    Entra,
    CrowdStrike,
    SentinelOne,
}

impl Source {
    const ALL: [Source; 5] =
        [Source::Okta, Source::Google, Source::Entra, Source::CrowdStrike, Source::SentinelOne];

    /// Whether the source lists groups and their members, or only devices.
    fn has_groups(self) -> bool {
        !matches!(self, Source::CrowdStrike | Source::SentinelOne)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Three 429s in a row, each with the vendor's reset header or reason.
    RateLimitStorm,
    /// Two 503s: within the retries.
    ShortOutage,
    /// 503s past every retry: the run fails.
    LongOutage,
    /// One reply slower than the client's timeout.
    Timeout,
    /// One reply cut short mid-JSON.
    Truncated,
    /// A page whose cursor points back into itself, so items come twice.
    OverlappingPages,
    /// A page whose items come in reverse order.
    ReversedPage,
    /// The credentials revoked: the run fails.
    CredentialsRevoked,
    /// One group's member listing answers 403: the run goes on without it.
    GroupMembersRefused,
}

/// Where in the run the fault meets it: its first request (or page, or group), one in the
/// middle, its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    First,
    Middle,
    Last,
}

impl Point {
    /// The index of the request, page or group hit, of `count`.
    fn of(self, count: u64) -> u64 {
        match self {
            Point::First => 0,
            Point::Middle => count / 2,
            Point::Last => count.saturating_sub(1),
        }
    }
}

/// What a case's run is to end as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Succeeded, and the store equals the new tenant.
    Survived,
    /// Succeeded, and the store equals the new tenant but for the refused group's memberships,
    /// which stay as the last complete run saw them.
    SurvivedWithoutGroup,
    /// Failed; the store holds the old picture and perhaps some of the new run's upserts.
    Failed,
}

impl Fault {
    const ALL: [Fault; 9] = [
        Fault::RateLimitStorm,
        Fault::ShortOutage,
        Fault::LongOutage,
        Fault::Timeout,
        Fault::Truncated,
        Fault::OverlappingPages,
        Fault::ReversedPage,
        Fault::CredentialsRevoked,
        Fault::GroupMembersRefused,
    ];

    fn expect(self) -> Expect {
        match self {
            Fault::LongOutage | Fault::CredentialsRevoked => Expect::Failed,
            Fault::GroupMembersRefused => Expect::SurvivedWithoutGroup,
            _ => Expect::Survived,
        }
    }
}

/// One cell of the matrix, as failure messages name it.
#[derive(Debug, Clone, Copy)]
struct Case {
    source: Source,
    fault: Fault,
    point: Point,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} × {:?} × {:?}", self.source, self.fault, self.point)
    }
}

/// A tenant as the store should hold it: every entity's raw object by (kind, source id), and
/// every membership as (group, member kind, member).
#[derive(Debug, Clone, Default, PartialEq)]
struct Picture {
    entities: BTreeMap<(String, String), Value>,
    memberships: BTreeSet<(String, String, String)>,
}

impl Picture {
    fn from_snapshot(snapshot: &Snapshot) -> Picture {
        let mut picture = Picture::default();
        picture.add_entities("user", &snapshot.users);
        picture.add_entities("group", &snapshot.groups);
        let users = snapshot.user_members.iter().map(|(g, m)| (g, "user", m));
        let groups = snapshot.group_members.iter().map(|(g, m)| (g, "group", m));
        picture.memberships =
            users.chain(groups).map(|(g, kind, m)| (g.clone(), kind.to_string(), m.clone())).collect();
        picture
    }

    fn from_devices(devices: &BTreeMap<String, Value>) -> Picture {
        let mut picture = Picture::default();
        picture.add_entities("device", devices);
        picture
    }

    fn add_entities(&mut self, kind: &str, objects: &BTreeMap<String, Value>) {
        self.entities.extend(objects.iter().map(|(id, raw)| ((kind.to_string(), id.clone()), raw.clone())));
    }

    fn members_of(&self, group: &str) -> impl Iterator<Item = &(String, String, String)> {
        self.memberships.iter().filter(move |(g, _, _)| g == group)
    }

    /// Users (from the end of the list: the first hold the fakes' admins) that are no member of
    /// `group`.
    fn users_outside(&self, group: &str) -> Vec<String> {
        let inside: BTreeSet<&String> = self.members_of(group).map(|(_, _, m)| m).collect();
        self.entities
            .keys()
            .rev()
            .filter(|(kind, id)| kind == "user" && !inside.contains(id))
            .map(|(_, id)| id.clone())
            .collect()
    }

    fn groups(&self) -> Vec<String> {
        self.ids("group")
    }

    fn ids(&self, of_kind: &str) -> Vec<String> {
        self.entities.keys().filter(|(kind, _)| kind == of_kind).map(|(_, id)| id.clone()).collect()
    }
}

/// Whether a stored raw object is the tenant's: every property both name is equal. (Entra ID
/// stores the properties a run selects; the others store the whole object.)
fn agrees(stored: &Value, truth: &Value) -> bool {
    match (stored.as_object(), truth.as_object()) {
        (Some(stored), Some(truth)) => stored.iter().all(|(k, v)| truth.get(k).is_none_or(|t| t == v)),
        _ => stored == truth,
    }
}

/// What differs between the store and `want`, in words; empty when they are equal.
fn differences(stored: &Picture, want: &Picture) -> Vec<String> {
    let mut found = Vec::new();
    for (key, raw) in &stored.entities {
        match want.entities.get(key) {
            None => found.push(format!("{key:?} stored, not in the tenant")),
            Some(truth) if !agrees(raw, truth) => found.push(format!("{key:?} stored as {raw}, is {truth}")),
            Some(_) => {}
        }
    }
    found.extend(
        want.entities.keys().filter(|k| !stored.entities.contains_key(*k)).map(|k| format!("{k:?} missing")),
    );
    found.extend(
        stored
            .memberships
            .difference(&want.memberships)
            .map(|m| format!("membership {m:?} stored, not in the tenant")),
    );
    found.extend(
        want.memberships.difference(&stored.memberships).map(|m| format!("membership {m:?} missing")),
    );
    found
}

/// What breaks "the old picture, none of it deleted, plus some of the new run's upserts".
fn between(stored: &Picture, old: &Picture, new: &Picture) -> Vec<String> {
    let mut found = Vec::new();
    for (key, raw) in &stored.entities {
        let known = [old.entities.get(key), new.entities.get(key)];
        if known.iter().all(Option::is_none) {
            found.push(format!("{key:?} stored, in neither picture"));
        } else if !known.iter().flatten().any(|truth| agrees(raw, truth)) {
            found.push(format!("{key:?} stored as {raw}, in neither picture"));
        }
    }
    found.extend(
        old.entities.keys().filter(|k| !stored.entities.contains_key(*k)).map(|k| format!("{k:?} deleted")),
    );
    found
        .extend(old.memberships.difference(&stored.memberships).map(|m| format!("membership {m:?} deleted")));
    found.extend(
        stored
            .memberships
            .iter()
            .filter(|m| !old.memberships.contains(*m) && !new.memberships.contains(*m))
            .map(|m| format!("membership {m:?} stored, in neither picture")),
    );
    found
}

/// A fake of one source, started for one case.
enum Fake {
    Okta(FakeOkta),
    Google(FakeGoogle),
    Entra(FakeEntra),
    CrowdStrike(FakeCrowdStrike),
    SentinelOne(FakeSentinelOne),
}

impl Fake {
    async fn start(source: Source) -> Fake {
        let spec = TenantSpec { seed: 7, users: 30, groups: 6, devices: 6 };
        let fake = match source {
            Source::Okta => Fake::Okta(FakeOkta::start_with(spec).await.unwrap()),
            Source::Google => Fake::Google(FakeGoogle::start_with(spec).await.unwrap()),
            Source::Entra => Fake::Entra(FakeEntra::start_with(spec).await.unwrap()),
            Source::CrowdStrike => Fake::CrowdStrike(FakeCrowdStrike::start_with(spec).await.unwrap()),
            Source::SentinelOne => Fake::SentinelOne(FakeSentinelOne::start_with(spec).await.unwrap()),
        };
        fake.knobs().limit_page_size(PAGE_SIZE);
        if let Fake::Entra(f) = &fake {
            f.limit_members_per_page(PAGE_SIZE);
        }
        fake
    }

    /// The faults every fake meets the same way.
    fn knobs(&self) -> &dyn FaultKnobs {
        match self {
            Fake::Okta(f) => f,
            Fake::Google(f) => f,
            Fake::Entra(f) => f,
            Fake::CrowdStrike(f) => f,
            Fake::SentinelOne(f) => f,
        }
    }

    fn integration_type(&self) -> IntegrationType {
        match self {
            Fake::Okta(_) => IntegrationType::Okta,
            Fake::Google(_) => IntegrationType::GoogleWorkspace,
            Fake::Entra(_) => IntegrationType::EntraId,
            Fake::CrowdStrike(_) => IntegrationType::CrowdStrike,
            Fake::SentinelOne(_) => IntegrationType::SentinelOne,
        }
    }

    fn domain(&self) -> String {
        match self {
            Fake::Okta(f) => f.domain(),
            Fake::Google(f) => f.domain(),
            Fake::Entra(f) => f.domain(),
            Fake::CrowdStrike(f) => f.domain(),
            Fake::SentinelOne(f) => f.domain(),
        }
    }

    fn secrets(&self) -> Value {
        match self {
            Fake::Okta(f) => json!({"api_token": f.api_token()}),
            Fake::Google(f) => {
                json!({"service_account_json": f.service_account_json(), "admin_email": f.admin_email()})
            }
            Fake::Entra(f) => json!({"client_id": f.client_id(), "client_secret": f.client_secret()}),
            Fake::CrowdStrike(f) => json!({"client_id": f.client_id(), "client_secret": f.client_secret()}),
            Fake::SentinelOne(f) => json!({"api_token": f.api_token()}),
        }
    }

    fn endpoints(&self) -> Endpoints {
        Endpoints::overridden(match self {
            Fake::Okta(f) => f.base_urls(),
            Fake::Google(f) => f.base_urls(),
            Fake::Entra(f) => f.base_urls(),
            Fake::CrowdStrike(f) => f.base_urls(),
            Fake::SentinelOne(f) => f.base_urls(),
        })
    }

    fn picture(&self) -> Picture {
        match self {
            Fake::Okta(f) => Picture::from_snapshot(&f.snapshot()),
            Fake::Google(f) => Picture::from_snapshot(&f.snapshot()),
            Fake::Entra(f) => {
                let snapshot = f.snapshot();
                let mut picture = Picture::default();
                picture.add_entities("user", &snapshot.users);
                picture.add_entities("group", &snapshot.groups);
                picture.add_entities("device", &snapshot.devices);
                picture.memberships = snapshot
                    .memberships
                    .iter()
                    .map(|(g, kind, m)| (g.clone(), kind.as_str().to_string(), m.clone()))
                    .collect();
                picture
            }
            Fake::CrowdStrike(f) => Picture::from_devices(&f.snapshot()),
            Fake::SentinelOne(f) => Picture::from_devices(&f.snapshot()),
        }
    }

    /// The listings a page fault aims at: users, and the one memberships travel in; an EDR's
    /// devices.
    fn listings(&self) -> &'static [Listing] {
        match self {
            Fake::Entra(_) => &[Listing::Users, Listing::Groups],
            Fake::Okta(_) | Fake::Google(_) => &[Listing::Users, Listing::Members],
            Fake::CrowdStrike(_) | Fake::SentinelOne(_) => &[Listing::Devices],
        }
    }

    /// Adds two users to `group`, suspends (disables) one, deletes two from other groups,
    /// removes a member of `group` and adds an outsider to it. An EDR gains two hosts, loses
    /// one (hidden, or deleted and one decommissioned), contains one and sees someone else log
    /// on to one.
    fn change(&self, before: &Picture, group: &str) {
        if matches!(self, Fake::CrowdStrike(_) | Fake::SentinelOne(_)) {
            return self.change_hosts(&before.ids("device"));
        }
        let outside = before.users_outside(group);
        let (deleted, suspended, joining) = (&outside[..2], &outside[2], &outside[3]);
        let leaving = before.members_of(group).find(|(_, kind, _)| kind == "user").map(|(_, _, m)| m.clone());
        // In the terms every fake shares, so each source meets the same change.
        let apply = |t: &mut dyn Lifecycle| {
            for name in ["Ada", "Grace"] {
                let id = t.hire(name, "Matrix").expect("a new address");
                t.join(group, &id);
            }
            t.suspend(suspended);
            deleted.iter().for_each(|id| t.remove(id));
            leaving.iter().for_each(|id| t.leave(group, id));
            t.join(group, joining);
        };
        match self {
            Fake::Okta(f) => f.mutate(|t| apply(t)),
            Fake::Google(f) => f.mutate(|t| apply(t)),
            Fake::Entra(f) => f.mutate(|t| apply(t)),
            Fake::CrowdStrike(_) | Fake::SentinelOne(_) => unreachable!("changed above"),
        }
    }

    fn change_hosts(&self, hosts: &[String]) {
        let [gone, contained, moved, retired, ..] = hosts else { panic!("too few hosts: {hosts:?}") };
        match self {
            Fake::CrowdStrike(f) => f.mutate(|t| {
                let handle = t.handles()[1].clone();
                t.add_host("ACME-LT-9001", &handle);
                t.add_host("ACME-LT-9002", &handle);
                assert!(t.hide_host(gone) && t.contain(contained) && t.set_last_user(moved, &handle));
                assert!(t.set_tags(retired, &["FalconGroupingTags/Retired"]));
            }),
            Fake::SentinelOne(f) => f.mutate(|t| {
                t.add_agent("ACME-LT-9001", "ACME\\ada.matrix");
                t.add_agent("ACME-LT-9002", "");
                t.delete_agent(gone);
                t.quarantine(contained);
                t.set_last_user(moved, "ACME\\grace.matrix");
                t.decommission(retired);
            }),
            _ => unreachable!("only EDR fakes list hosts alone"),
        }
    }

    /// Sets `fault` to meet the run at the request or page `at` counts to, or on `group`.
    fn inject(&self, fault: Fault, at: &Aim, group: &str) {
        let knobs = self.knobs();
        match fault {
            Fault::OverlappingPages | Fault::ReversedPage => {
                for (listing, page) in &at.pages {
                    let page = *page as usize;
                    match fault {
                        Fault::OverlappingPages => knobs.overlap_page(*listing, page),
                        _ => knobs.reverse_page(*listing, page),
                    }
                }
            }
            Fault::GroupMembersRefused => match self {
                Fake::Okta(f) => f.refuse_group_members(group),
                Fake::Google(f) => f.refuse_group_members(group),
                _ => unreachable!("skipped: see `meaningful`"),
            },
            Fault::RateLimitStorm => {
                knobs.hold_faults(at.request);
                let wait = Duration::from_secs(1);
                match self {
                    Fake::Okta(f) => f.rate_limit_next(3, wait),
                    Fake::Google(f) => {
                        f.rate_limit_next(3, ctxsync_fakes::GoogleRateLimit::RateLimitExceeded)
                    }
                    Fake::Entra(f) => f.throttle_next(3, wait.as_secs()),
                    Fake::CrowdStrike(f) => f.rate_limit_next(3, wait),
                    Fake::SentinelOne(f) => f.rate_limit_next(3, wait),
                }
            }
            _ => {
                knobs.hold_faults(at.request);
                match fault {
                    Fault::ShortOutage => knobs.fail_next(2, 503),
                    Fault::LongOutage => knobs.fail_next(1_000, 503),
                    Fault::Timeout => knobs.delay_next(1, REQUEST_TIMEOUT * 3),
                    Fault::Truncated => knobs.truncate_next(1),
                    _ => knobs.revoke_credentials_next(),
                }
            }
        }
    }

    /// Ends whatever of the fault is left: the outage, the refusal, the revocation.
    fn clear(&self, group: &str) {
        self.knobs().fail_next(0, 503);
        match self {
            Fake::Okta(f) => {
                f.allow_group_members(group);
                f.restore_credentials();
            }
            Fake::Google(f) => {
                f.allow_group_members(group);
                f.restore_credentials();
            }
            Fake::Entra(f) => f.restore_credentials(),
            Fake::CrowdStrike(f) => f.restore_credentials(),
            Fake::SentinelOne(f) => f.restore_credentials(),
        }
    }
}

/// Where a fault is aimed: the requests to let pass, and for each listing the pages to serve
/// whole first.
struct Aim {
    request: u64,
    pages: Vec<(Listing, u64)>,
}

/// Whether the matrix holds this cell.
fn meaningful(source: Source, fault: Fault) -> bool {
    // Entra ID lists no group's members on their own: they travel inside the groups' delta
    // pages, so there is no member listing to refuse; the EDRs list no groups at all.
    fault != Fault::GroupMembersRefused || (source.has_groups() && source != Source::Entra)
}

/// A sink that keeps nothing: the rehearsal only counts what the fake served.
struct Discard;

#[async_trait::async_trait]
impl PageSink for Discard {
    async fn accept(&mut self, _: Page) -> Result<(), SinkError> {
        Ok(())
    }
}

struct Rig {
    case: Case,
    _db: TestDatabase,
    store: Arc<dyn Store>,
    fake: Fake,
    config: Config,
    sources: Sources,
    worker: Worker,
}

impl Rig {
    async fn new(case: Case) -> Rig {
        let fake = Fake::start(case.source).await;
        let db = TestDatabase::create().await;
        let key = MasterKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let store = ctxsync_store::connect(&db.url, key).await.unwrap();
        let org = store.ensure_org("default").await.unwrap();
        let config =
            Config::created(org, fake.integration_type(), "matrix".into(), fake.domain(), Settings::new());
        store.insert_config(&config, &SecretValue::new(fake.secrets())).await.unwrap();
        let timing = SyncTiming {
            request_timeout: REQUEST_TIMEOUT,
            base_delay: Duration::from_millis(5),
            max_wait: Some(Duration::from_millis(20)),
        };
        let sources = Sources::with_sync_timing(fake.endpoints(), timing).unwrap();
        let settings = SyncSettings { lease: Duration::from_secs(10), ..SyncSettings::default() };
        let worker = Worker::new(store.clone(), sources.clone(), settings);
        Rig { case, _db: db, store, fake, config, sources, worker }
    }

    async fn run(&self) -> Outcome {
        let options = RunOptions { full: true, ..RunOptions::default() };
        let run = self.worker.run(&self.config, options, &CancellationToken::new()).await;
        run.unwrap_or_else(|e| panic!("{}: the worker could not run: {e}", self.case))
    }

    /// The requests and pages of each listing that a run of the tenant as it is takes.
    async fn rehearse(&self) -> (u64, Vec<(Listing, u64)>) {
        let listings = self.fake.listings();
        let knobs = self.fake.knobs();
        let pages_before: Vec<u64> = listings.iter().map(|l| knobs.pages_served(*l)).collect();
        let requests_before = knobs.requests();
        let credentials =
            Credentials::parse(self.config.integration_type, &SecretValue::new(self.fake.secrets())).unwrap();
        let rehearsal = self.sources.sync(&self.config, &credentials, SyncMode::Full, &mut Discard).await;
        rehearsal.unwrap_or_else(|e| panic!("{}: the rehearsal failed: {e}", self.case));
        let pages =
            listings.iter().zip(pages_before).map(|(l, before)| (*l, knobs.pages_served(*l) - before));
        (knobs.requests() - requests_before, pages.collect())
    }

    async fn stored(&self) -> Picture {
        let (org, config) = (self.config.org_id, self.config.id);
        let query = EntityQuery { config: Some(config), limit: 100_000, ..EntityQuery::default() };
        let entities = self.store.list_entities(org, &query).await.unwrap();
        let entities = entities
            .into_iter()
            .map(|e| ((e.entity.kind().as_str().to_string(), e.entity.source_id().to_string()), e.raw))
            .collect();
        let mut memberships = BTreeSet::new();
        let mut after: Option<Membership> = None;
        loop {
            let page = self.store.list_memberships(org, config, after.as_ref(), 1_000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.membership.clone());
            memberships.extend(page.into_iter().map(|m| {
                let m = m.membership;
                (m.group_id, m.member_kind.as_str().to_string(), m.member_id)
            }));
        }
        Picture { entities, memberships }
    }
}

/// Checks that a run that survived its fault met it: the replies it had to ask again for, or
/// the items it was served twice.
fn assert_met(case: Case, extra_requests: u64, run: &ctxsync_core::Run, new: &Picture) {
    let faulted_replies = match case.fault {
        Fault::RateLimitStorm => 3,
        Fault::ShortOutage => 2,
        Fault::Timeout | Fault::Truncated => 1,
        _ => 0,
    };
    assert!(extra_requests >= faulted_replies, "{case}: {extra_requests} requests beyond the rehearsal's");
    assert!(
        run.counts.retries >= faulted_replies,
        "{case}: the run reports {} retries, the fake refused {faulted_replies} replies",
        run.counts.retries
    );
    if case.fault == Fault::OverlappingPages {
        // The listings a page fault aims at carry these.
        let kinds = ["user", "membership", "device"];
        let fetched: u64 = kinds.iter().filter_map(|k| run.counts.by_type.get(*k)).map(|c| c.fetched).sum();
        let entities = new.entities.keys().filter(|(kind, _)| kinds.contains(&kind.as_str())).count();
        let distinct = (entities + new.memberships.len()) as u64;
        assert!(
            fetched > distinct,
            "{case}: {fetched} users, devices and memberships fetched, {distinct} distinct: nothing came twice"
        );
    }
}

fn assert_none(case: Case, what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{case}: {what}: {} problems, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(8)]
    );
}

async fn run_case(case: Case) {
    let rig = Rig::new(case).await;
    let Outcome::Succeeded(_) = rig.run().await else { panic!("{case}: the first run completes") };
    let old = rig.fake.picture();
    assert_none(case, "after the first run", &differences(&rig.stored().await, &old));

    let groups = old.groups();
    // The group whose members change, and whose member listing is refused in that fault's
    // cases: the first, a middle or the last group a run lists (none for an EDR).
    let group = groups.get(case.point.of(groups.len() as u64) as usize).cloned().unwrap_or_default();
    rig.fake.change(&old, &group);
    let new = rig.fake.picture();
    assert_ne!(old, new, "{case}: the tenant changed");

    let (requests, pages) = rig.rehearse().await;
    let aim = Aim {
        request: case.point.of(requests),
        // Of the pages another page follows: a listing's very last page may hold a single
        // item, which can neither overlap nor be out of order.
        pages: pages.iter().map(|(listing, n)| (*listing, case.point.of(n - 1))).collect(),
    };
    rig.fake.inject(case.fault, &aim, &group);
    let before = rig.fake.knobs().requests();
    let outcome = rig.run().await;
    let served = rig.fake.knobs().requests() - before;
    let stored = rig.stored().await;
    if let Outcome::Succeeded(run) = &outcome {
        assert_met(case, served.saturating_sub(requests), run, &new);
    }
    match (case.fault.expect(), &outcome) {
        (Expect::Survived, Outcome::Succeeded(_)) => {
            assert_none(
                case,
                "the run survived, the store is not the new tenant",
                &differences(&stored, &new),
            );
        }
        (Expect::SurvivedWithoutGroup, Outcome::Succeeded(_)) => {
            let mut want = new.clone();
            want.memberships.retain(|(g, _, _)| *g != group);
            want.memberships.extend(old.members_of(&group).cloned());
            assert_ne!(want, new, "{case}: the refused group's members changed");
            assert_none(
                case,
                "the store is not the new tenant with the refused group as it was",
                &differences(&stored, &want),
            );
        }
        (Expect::Failed, Outcome::Failed(run)) => {
            assert!(run.error.is_some(), "{case}: a failed run says why");
            assert_none(case, "the failed run left more than its upserts", &between(&stored, &old, &new));
        }
        (expected, outcome) => panic!("{case}: expected {expected:?}, the run ended {outcome:?}"),
    }

    rig.fake.clear(&group);
    let Outcome::Succeeded(_) = rig.run().await else { panic!("{case}: the run after the fault completes") };
    assert_none(
        case,
        "after the fault, the store is not the tenant",
        &differences(&rig.stored().await, &new),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_every_point_of_every_source_loses_nothing() {
    let started = Instant::now();
    let mut cases = Vec::new();
    for source in Source::ALL {
        for fault in Fault::ALL {
            if !meaningful(source, fault) {
                continue;
            }
            for point in [Point::First, Point::Middle, Point::Last] {
                cases.push(Case { source, fault, point });
            }
        }
    }
    // Entra ID and the two EDRs have no member listing to refuse.
    assert_eq!(cases.len(), 5 * 9 * 3 - 3 * 3);
    for case in &cases {
        run_case(*case).await;
    }
    println!("{} cases in {:.1?}", cases.len(), started.elapsed());
}
