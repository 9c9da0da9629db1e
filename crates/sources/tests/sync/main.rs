//! Sync runs through `Sources::sync` against the Okta, Google and SentinelOne fakes: a full run
//! must equal the fake tenant, an incremental run after changes must report exactly them, and
//! faults (rate limits, server errors, cut bodies, expired or revoked credentials) must be
//! survived or reported as what they are. Backoff tests pause tokio's clock and check the time
//! waited.
//!
//! One module per source; the collecting sink and config helpers shared by them live here.

mod crowdstrike;
mod google;
mod okta;
mod sentinelone;

use std::collections::{BTreeMap, BTreeSet};

use ctxsync_core::{
    Config, EntityKind, Group, IntegrationType, Membership, OrgId, Record, SecretValue, Settings, User,
};
use ctxsync_sources::{
    Checkpoint, Credentials, Endpoints, Named, Outcome, Page, PageSink, Removal, SinkError, Sources,
    SyncError, SyncMode,
};
use serde_json::Value;

/// A record's raw object, to compare with the fake's.
fn raw(record: &Record) -> Value {
    serde_json::from_str(record.raw.get()).expect("raw objects are JSON")
}

/// Everything a run handed over.
#[derive(Debug, Default)]
struct Collected {
    records: Vec<Record>,
    memberships: Vec<Membership>,
    /// Each group a page said it named whole, with how many of its members that page named.
    whole_groups: BTreeMap<String, usize>,
    removals: Vec<Removal>,
    pages: usize,
    retries: u32,
}

impl Collected {
    fn users(&self) -> BTreeMap<String, (&User, Value)> {
        self.records
            .iter()
            .filter_map(|r| match &r.entity {
                ctxsync_core::Entity::User(u) => Some((u.source_id.clone(), (u, raw(r)))),
                _ => None,
            })
            .collect()
    }

    fn groups(&self) -> BTreeMap<String, (&Group, Value)> {
        self.records
            .iter()
            .filter_map(|r| match &r.entity {
                ctxsync_core::Entity::Group(g) => Some((g.source_id.clone(), (g, raw(r)))),
                _ => None,
            })
            .collect()
    }

    /// How many records of each entity kind, and memberships, the run handed over: what the
    /// engine holds against the outcome's `expected`, by the same keys.
    fn received(&self) -> BTreeMap<String, u64> {
        let mut received = BTreeMap::new();
        for record in &self.records {
            *received.entry(record.entity.kind().as_str().to_string()).or_default() += 1;
        }
        received.insert("membership".to_string(), self.memberships.len() as u64);
        received
    }

    /// `(group, member)` pairs of members of `kind`.
    fn members(&self, kind: EntityKind) -> BTreeSet<(String, String)> {
        self.memberships
            .iter()
            .filter(|m| m.member_kind == kind)
            .map(|m| (m.group_id.clone(), m.member_id.clone()))
            .collect()
    }
}

#[async_trait::async_trait]
impl PageSink for Collected {
    async fn accept(&mut self, page: Page) -> Result<(), SinkError> {
        self.pages += 1;
        self.retries += page.retries;
        for group in page.whole_groups {
            let named = page.memberships.iter().filter(|m| m.group_id == group).count();
            assert!(self.whole_groups.insert(group, named).is_none(), "a group was named whole twice");
        }
        self.records.extend(page.records);
        self.memberships.extend(page.memberships);
        self.removals.extend(page.removals);
        Ok(())
    }
}

/// A sink that collects, and once `when` comes runs `hook` once (revoking credentials, moving
/// the clock, changing the tenant) while the run goes on.
struct Hooked<F> {
    collected: Collected,
    when: When,
    hook: Option<F>,
}

enum When {
    AfterPages(usize),
    /// After the first page that lists groups: a connector that lists several things at once
    /// hands their pages over in no fixed order.
    GroupsListed,
}

impl<F> Hooked<F> {
    fn new(after_pages: usize, hook: F) -> Self {
        Self { collected: Collected::default(), when: When::AfterPages(after_pages), hook: Some(hook) }
    }

    fn after_groups(hook: F) -> Self {
        Self { collected: Collected::default(), when: When::GroupsListed, hook: Some(hook) }
    }
}

#[async_trait::async_trait]
impl<F, Fut> PageSink for Hooked<F>
where
    F: FnOnce() -> Fut + Send,
    Fut: std::future::Future<Output = ()> + Send,
{
    async fn accept(&mut self, page: Page) -> Result<(), SinkError> {
        let now = match self.when {
            When::AfterPages(n) => self.collected.pages + 1 == n,
            When::GroupsListed => page.records.iter().any(|r| r.entity.kind() == EntityKind::Group),
        };
        self.collected.accept(page).await?;
        if now && let Some(hook) = self.hook.take() {
            hook().await;
        }
        Ok(())
    }
}

/// A sink that keeps a full run's checkpoint as the engine does (the last mark of each listing
/// among the pages it took) and refuses every page after `take`, as a run killed there would.
struct Stopping {
    collected: Collected,
    checkpoint: ctxsync_sources::Checkpoint,
    take: usize,
}

#[async_trait::async_trait]
impl PageSink for Stopping {
    async fn accept(&mut self, page: Page) -> Result<(), SinkError> {
        if self.collected.pages == self.take {
            return Err(SinkError("stopped".into()));
        }
        if let Some(ctxsync_sources::Mark { listing, at: Some(at) }) = &page.mark {
            self.checkpoint.set(listing, at.clone());
        }
        self.collected.accept(page).await
    }
}

impl Stopping {
    fn after(take: usize) -> Self {
        Stopping { collected: Collected::default(), checkpoint: Default::default(), take }
    }
}

fn sources(endpoints: Endpoints) -> Sources {
    Sources::new(endpoints).expect("sources build")
}

fn config(integration_type: IntegrationType, domain: &str, settings: Settings) -> Config {
    Config::created(OrgId::new(), integration_type, "test".into(), domain.into(), settings)
}

fn credentials(integration_type: IntegrationType, secrets: Value) -> Credentials {
    Credentials::parse(integration_type, &SecretValue::new(secrets)).expect("well-formed secrets")
}

async fn run(
    sources: &Sources,
    config: &Config,
    credentials: &Credentials,
    mode: SyncMode,
) -> (Result<Outcome, SyncError>, Collected) {
    let mut sink = Collected::default();
    let outcome = sources.sync(config, credentials, mode, &mut sink).await;
    (outcome, sink)
}

/// Lowercase, each once, in order.
fn addresses<'a>(candidates: impl IntoIterator<Item = Option<&'a str>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for address in candidates.into_iter().flatten().map(str::to_lowercase) {
        if !address.is_empty() && !out.contains(&address) {
            out.push(address);
        }
    }
    out
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}
