//! A full sync of a rate-limited Okta org, Entra ID tenant or Google Workspace account, measured against the least time the
//! source's limits allow at the config's share of them.
//!
//! Okta: `cargo bench -p ctxsync-sources --bench rate_budget` (`-- --users N`, 20,000 by default, a
//! group for every 20; `--share P`, 50; `--window S`, 10; `--latency MS`, 0, each reply that
//! late, as a source's are, for every source). The fake Okta limits each endpoint in
//! windows of S seconds (Okta's are a minute: scaled down, with the limits, so the run takes
//! seconds, not hours), with factors and roles on. Okta reports a window's reset to the second,
//! so a client may lose up to a second at each reset: short windows overstate that loss, and
//! Okta's minute makes it under 2%. The least time is computed from what the run asked of each endpoint: a bucket that
//! allows `a` requests a window at the share and was asked `n` needs `ceil(n / a) - 1` full
//! windows of waiting. Endpoints are listed side by side, so the bound is the largest of them;
//! the sum over endpoints, a looser bound (issue 17's), is printed too. Targets: at most 1.15
//! times the bound, and no 429 (the fake also refuses requests past 35 in flight, as Okta's
//! smallest current plan does).
//!
//! Entra ID: `-- --source entra` (`--users N`, 20,000 by default, a group for every 20 and a
//! device for every 10; `--share P`, 50; `--window S`, 1; `--units U`, 8). Graph lets an app
//! spend 3,500 to 8,000 resource units a 10-second window in a tenant; the fake lets it spend U a
//! window of S seconds, sliding, and the connector is told so (Graph never reports its limit).
//! Graph's pages are large (999 users), so a run asks for few units: the limit is scaled down
//! until waiting for it, not serving pages, sets the time. The least time: the run's units, as
//! the fake charged them, at the share's units a window, `ceil(units / a) - 1` windows.
//!
//! Google Workspace: `-- --source google` (`--users N`, 5,000 by default, a group for every 20;
//! `--share P`, 50; `--window S`, 1; `--queries Q`, 40). The Directory API allows 2,400 queries a
//! minute per admin per project; the fake allows Q a window of S seconds, sliding, and the
//! connector is told so (Google never reports its quota). A run asks for pages of users, pages
//! of groups and each group's members, four groups' first member pages at a time. The least time: the run's requests,
//! as the fake served them, at the share's queries a window, `ceil(requests / a) - 1` windows.

use std::time::{Duration, Instant};

use ctxsync_core::{Config, IntegrationType, OrgId, RateLimitShare, SecretValue, Settings};
use ctxsync_fakes::{FakeEntra, FakeGoogle, FakeOkta, FaultKnobs, TenantSpec};
use ctxsync_sources::{
    Credentials, Endpoints, GoogleQuota, GraphBudget, Page, PageSink, SinkError, Sources, SyncMode,
};
use serde_json::json;

/// Requests each endpoint allows a second of its window: a plan's per-minute figures, in
/// proportion.
const LIMITS: [(&str, u32); 6] = [
    ("/api/v1/users", 60),
    ("/api/v1/users/{id}/roles", 60),
    ("/api/v1/users/{id}/factors", 1_200),
    ("/api/v1/groups", 60),
    ("/api/v1/groups/{id}/users", 200),
    ("/api/v1/iam/assignees/users", 60),
];

/// Okta's smallest limit on an org's requests in flight at once on its current plans.
const OKTA_CONCURRENCY: u32 = 35;

/// Counts what it is handed, nothing more.
#[derive(Default)]
struct Count(u64);

#[async_trait::async_trait]
impl PageSink for Count {
    async fn accept(&mut self, page: Page) -> Result<(), SinkError> {
        self.0 += (page.records.len() + page.memberships.len()) as u64;
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--source").and_then(|i| args.get(i + 1)).map(String::as_str) {
        None | Some("okta") => okta(&args).await,
        Some("entra") => entra(&args).await,
        Some("google") => google(&args).await,
        Some(other) => panic!("--source takes okta, entra or google, not {other}"),
    }
}

/// What a run takes from the command line beside its source's own limit: the tenant's size
/// (`--users`), the config's share (`--share`, percent), the limit's window (`--window`,
/// seconds) and how late each reply comes (`--latency`, ms).
#[derive(Clone, Copy)]
struct Scale {
    users: usize,
    percent: usize,
    window: Duration,
    /// The source's own reply time, which a local fake has not: the share sets a run's pace only
    /// if enough requests are in flight to cover it.
    latency: Duration,
}

impl Scale {
    fn read(args: &[String], users: usize, window_seconds: usize) -> Scale {
        Scale {
            users: flag(args, "--users").unwrap_or(users).max(100),
            percent: flag(args, "--share").unwrap_or(50).clamp(1, 100),
            window: Duration::from_secs(flag(args, "--window").unwrap_or(window_seconds).max(1) as u64),
            latency: Duration::from_millis(flag(args, "--latency").unwrap_or(0) as u64),
        }
    }

    /// The config of a `source` tenant at `domain` taking this share, with `more` settings.
    fn config(
        &self,
        source: IntegrationType,
        domain: String,
        more: serde_json::Value,
    ) -> (Config, RateLimitShare) {
        let mut settings = json!({"rate_limit_share": self.percent});
        settings.as_object_mut().unwrap().extend(more.as_object().cloned().unwrap_or_default());
        let settings: Settings = serde_json::from_value(settings).unwrap();
        let share = RateLimitShare::for_settings(&settings).unwrap();
        (Config::created(OrgId::new(), source, "bench".into(), domain, settings), share)
    }
}

async fn okta(args: &[String]) {
    let scale = Scale::read(args, 20_000, 10);
    let Scale { users, percent, window, latency } = scale;
    let seconds = window.as_secs() as u32;
    let groups = users / 20;
    let fake = FakeOkta::start_with(TenantSpec { seed: 17, users, groups, devices: 0 }).await.unwrap();
    fake.set_rate_window(window);
    fake.slow_pages(latency);
    fake.set_concurrency_limit(OKTA_CONCURRENCY);
    for (bucket, per_second) in LIMITS {
        fake.set_bucket_limit(bucket, per_second * seconds);
    }
    let more = json!({"okta_include_factors": true});
    let (config, share) = scale.config(IntegrationType::Okta, fake.domain(), more);
    let credentials =
        Credentials::parse(IntegrationType::Okta, &SecretValue::new(json!({"api_token": fake.api_token()})))
            .unwrap();
    let sources = Sources::new(Endpoints::overridden(fake.base_urls())).unwrap();
    println!(
        "org: {users} users, {groups} groups, factors and roles on; share {percent}% of each endpoint's \
         {seconds} s window; each reply {latency:?} late"
    );

    let (took, records) = timed_sync(&sources, &config, &credentials).await;
    let mut largest = Duration::ZERO;
    let mut sum = Duration::ZERO;
    for (bucket, per_second) in LIMITS {
        let asked = fake.requests_in(bucket);
        let allowed = u64::from(share.of(per_second * seconds));
        let least = least_time(window, asked, allowed);
        println!("  {bucket}: {asked} requests at {allowed} a window: at least {least:?}");
        largest = largest.max(least);
        sum += least;
    }
    println!(
        "full sync: {:.1} s for {} records; the bound {:.1} s: {:.2}x (target <= 1.15); the sum of the \
         endpoints' bounds {:.1} s: {:.2}x; 429s met: {} of the windows, {} of the {OKTA_CONCURRENCY} \
         requests in flight Okta allows at once (target 0)",
        took.as_secs_f64(),
        records,
        largest.as_secs_f64(),
        took.as_secs_f64() / largest.as_secs_f64(),
        sum.as_secs_f64(),
        took.as_secs_f64() / sum.as_secs_f64(),
        fake.rate_limited(),
        fake.concurrency_refused()
    );
}

async fn entra(args: &[String]) {
    let scale = Scale::read(args, 20_000, 1);
    let Scale { users, percent, window, latency } = scale;
    let units = flag(args, "--units").unwrap_or(8).max(1) as u32;
    let (groups, devices) = (users / 20, users / 10);
    let fake = FakeEntra::start_with(TenantSpec { seed: 17, users, groups, devices }).await.unwrap();
    fake.set_resource_unit_budget(units, window);
    fake.slow_pages(latency);
    let (config, share) = scale.config(IntegrationType::EntraId, fake.domain(), json!({}));
    let secrets = json!({"client_id": fake.client_id(), "client_secret": fake.client_secret()});
    let credentials = Credentials::parse(IntegrationType::EntraId, &SecretValue::new(secrets)).unwrap();
    let endpoints = Endpoints::overridden(fake.base_urls()).with_graph_budget(GraphBudget { units, window });
    let sources = Sources::new(endpoints).unwrap();
    println!(
        "tenant: {users} users, {groups} groups, {devices} devices; share {percent}% of {units} resource units \
         a {window:?} window; each reply {latency:?} late"
    );

    let run = timed_sync(&sources, &config, &credentials).await;
    let spent =
        Spent { what: "resource units", spent: fake.resource_units_charged(), allowed: share.of(units) };
    report(run, window, spent, fake.busiest_window(), ("429s", fake.rate_limited()));
}

async fn google(args: &[String]) {
    let scale = Scale::read(args, 5_000, 1);
    let Scale { users, percent, window, latency } = scale;
    let queries = flag(args, "--queries").unwrap_or(40).max(1) as u32;
    let groups = users / 20;
    let fake = FakeGoogle::start_with(TenantSpec { seed: 17, users, groups, devices: 0 }).await.unwrap();
    fake.set_directory_quota(queries, window);
    fake.slow_pages(latency);
    let (config, share) = scale.config(IntegrationType::GoogleWorkspace, fake.domain(), json!({}));
    let secrets =
        json!({"service_account_json": fake.service_account_json(), "admin_email": fake.admin_email()});
    let credentials =
        Credentials::parse(IntegrationType::GoogleWorkspace, &SecretValue::new(secrets)).unwrap();
    let endpoints =
        Endpoints::overridden(fake.base_urls()).with_google_quota(GoogleQuota { queries, window });
    let sources = Sources::new(endpoints).unwrap();
    println!(
        "account: {users} users, {groups} groups; share {percent}% of {queries} queries a {window:?} window per \
         admin and project; each reply {latency:?} late"
    );

    let run = timed_sync(&sources, &config, &credentials).await;
    let spent = Spent { what: "requests", spent: fake.queries_served(), allowed: share.of(queries) };
    report(run, window, spent, fake.busiest_window(), ("refusals", fake.rate_limited()));
}

/// What a run spent of a source's single budget, in `what`, and what the share allows a window.
struct Spent {
    what: &'static str,
    spent: u64,
    allowed: u32,
}

/// Prints a run (its time and records) against the least time its `spent` allows, with the
/// busiest window the fake saw and the refusals it answered, by their name.
fn report(
    (took, records): (Duration, u64),
    window: Duration,
    spent: Spent,
    busiest: u32,
    refused: (&str, u64),
) {
    let Spent { what, spent, allowed } = spent;
    let least = least_time(window, spent, u64::from(allowed));
    println!(
        "full sync: {:.1} s for {records} records, {spent} {what} at {allowed} a window; the bound {:.1} s: \
         {:.2}x (target <= 1.15); busiest window {busiest} {what}; {} met: {} (target 0)",
        took.as_secs_f64(),
        least.as_secs_f64(),
        took.as_secs_f64() / least.as_secs_f64(),
        refused.0,
        refused.1
    );
}

/// A full sync of `config` into a sink that only counts: how long it took, and what it handed over.
async fn timed_sync(sources: &Sources, config: &Config, credentials: &Credentials) -> (Duration, u64) {
    let started = Instant::now();
    let mut sink = Count::default();
    sources.sync(config, credentials, SyncMode::Full, &mut sink).await.expect("the sync completes");
    (started.elapsed(), sink.0)
}

/// The least time windows that let `allowed` through each let `spent` go: the first window's
/// worth at once, each further one a `window` later.
fn least_time(window: Duration, spent: u64, allowed: u64) -> Duration {
    window * (spent.div_ceil(allowed).saturating_sub(1) as u32)
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}
