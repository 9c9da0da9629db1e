//! Full sync of a large fake Okta org, measured beside a raw fetch of the same pages, then an
//! incremental run after 1% of the org changed, measured beside the full run.
//!
//! `cargo bench -p ctxsync-sync --bench full_sync` (add `-- --users 1000000` for the big one).
//! The fake runs in a child process so the peak RSS printed is the sync's own; the bench changes
//! the org through the child's standard input. The raw fetch downloads and discards exactly the
//! pages a full run asks for (admin assignees and each one's roles, users, deprovisioned users,
//! groups, every group's members) with the connector's concurrency: as many requests in flight
//! per listing, the next page asked for while the last is handled. Raw fetch and full sync alternate for
//! `--rounds` rounds (5 by default), each sync into a fresh store. Two ratios are printed: the
//! median of the rounds' own ratios (a pair measured seconds apart shares most of a shared
//! machine's drift), and the fastest sync against the fastest raw fetch (noise only ever adds
//! time, so each side's fastest round is the closest to its own cost).
//!
//! The line `roles:` times reading the admins' roles alone after the incremental run: every
//! incremental run reads them, since Okta reports no change to them.
//!
//! Last, a second full run over the same store measures what a scheduled full run costs once the
//! org is stored: nothing new to insert, but every entity's digest to compare and every entity
//! and membership marked as seen by the run.
//!
//! A source answers from machines of its own, so the fake runs on the first half of the cores this
//! process may use and the sync (and the raw fetch) on the rest: sharing them, every cycle the
//! sync spends is one the fake cannot serve with, and the rate ratio would compare the two sides'
//! CPU, which the CPU a user printed beside it already does. `--shared-cores` lets them share, as
//! until 2026-12-06.
//! The two cores of a virtual machine may still share one physical core, so the sync's work
//! slows the fake where the raw fetch's does not: the line `source:` prints how busy the fake was
//! on each side, which says whether the sync kept it as busy as the raw fetch did.
//!
//! The line `floor:` adds to the raw fetch's CPU what reading the pages costs at the least (each
//! member's id, each user's JSON split out), measured on samples: what any sync of this org spends
//! before it stores anything, beside the CPU target. The line `storing:` adds what SQLite spends
//! at the least to write the rows the runs stored, with the store's schema and settings and
//! nothing else done (see `storing_cost`).
//!
//! `--latency MS` makes every reply of the fake that late, as a real source's are: the two sides
//! then wait for the source more than for the CPU.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctxsync_core::{Config, IntegrationType, Run, RunKind, SecretValue, Settings};
use ctxsync_fakes::{FakeOkta, FaultKnobs, OktaTenant, TenantSpec};
use ctxsync_sources::{Endpoints, Sources};
use ctxsync_store::{MasterKey, SqliteStore, Store};
use ctxsync_sync::{Outcome, RunOptions, SyncSettings, Worker};
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users = flag(&args, "--users").unwrap_or(100_000);
    let latency = flag(&args, "--latency").unwrap_or(0);
    // Each side is pinned before its runtime starts, so every thread it (and SQLite) starts
    // inherits the cores.
    let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if args.iter().any(|a| a == "--serve-fake") {
        if let Some(cores) = args.iter().position(|a| a == "--cores").and_then(|i| args.get(i + 1)) {
            pin_to(&cores.split(',').map(|c| c.parse().expect("a core number")).collect::<Vec<_>>());
        }
        return runtime().block_on(serve_fake(users, Duration::from_millis(latency as u64)));
    }
    let cores = if args.iter().any(|a| a == "--shared-cores") { Cores::Shared } else { Cores::split() };
    runtime().block_on(bench(&args, users, latency, cores));
}

async fn bench(args: &[String], users: usize, latency: usize, cores: Cores) {
    let mut fake_args = vec!["--serve-fake".to_string(), "--users".into(), users.to_string()];
    fake_args.extend(["--latency".into(), latency.to_string()]);
    if let Cores::Split { fake, .. } = &cores {
        fake_args.extend(["--cores".into(), list(fake)]);
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(fake_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the fake starts");
    let mut fake_in = child.stdin.take().unwrap();
    let mut fake_out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    fake_out.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (base_url, domain, token) = (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
    );
    println!(
        "tenant: {users} users, {} groups (fake Okta in a child process, each reply {latency} ms late; {cores})",
        groups_for(users)
    );

    let fake_pid = child.id();
    let rounds = flag(args, "--rounds").unwrap_or(5).max(1);
    let endpoints = Endpoints::overridden([("CTXSYNC_OKTA_BASE_URL", base_url.clone())]);
    let mut ratios = Vec::new();
    // The CPU this process spent a user, in µs: the raw fetch's is what receiving the pages alone costs.
    let (mut raw_cpu, mut sync_cpu) = (Vec::new(), Vec::new());
    // The share of each side's wall time the fake was busy: near 1 on both, the sync kept the
    // source as busy as the raw fetch did, and what is left of the gap is the fake's own pace.
    let (mut raw_busy, mut sync_busy) = (Vec::new(), Vec::new());
    let (mut fastest_raw, mut fastest_sync) = (Duration::MAX, Duration::MAX);
    let mut peak = 0f64;
    let mut last: Option<(BenchStore, Worker, Duration)> = None;
    for round in 1..=rounds {
        let cpu = Cpu::start(fake_pid);
        let raw = raw_fetch(&base_url, &token).await;
        raw_cpu.push(cpu.here() / users as f64 * 1e6);
        raw_busy.push(cpu.fake() / raw.elapsed.as_secs_f64());
        println!(
            "round {round}: raw fetch:  {} pages, {} items, {:.2} s ({}; {:.1} µs a user)",
            raw.pages,
            raw.items,
            raw.elapsed.as_secs_f64(),
            cpu.spent(),
            raw_cpu[raw_cpu.len() - 1]
        );
        // The last round's store goes first, so its page cache does not count in this one's RSS.
        if let Some((bench, _, _)) = last.take() {
            bench.sqlite.close().await;
        }
        release_freed_memory();
        let bench = BenchStore::new(&domain, &token).await;
        let worker = Worker::new(
            bench.store.clone(),
            Sources::new(endpoints.clone()).unwrap(),
            SyncSettings::default(),
        );
        reset_peak_rss();
        let cpu = Cpu::start(fake_pid);
        let (run, elapsed) = full_run(&worker, &bench.config).await;
        let entities = run.counts.fetched();
        let round_peak = peak_rss_mb();
        peak = peak.max(round_peak);
        let ratio = raw.elapsed.as_secs_f64() / elapsed.as_secs_f64();
        sync_cpu.push(cpu.here() / users as f64 * 1e6);
        sync_busy.push(cpu.fake() / elapsed.as_secs_f64());
        ratios.push(ratio);
        fastest_raw = fastest_raw.min(raw.elapsed);
        fastest_sync = fastest_sync.min(elapsed);
        println!(
            "round {round}: full sync:  {} pages, {entities} entities and memberships, {:.2} s ({}; {:.1} µs a user, \
             {:.1} an entity or membership), {:.0} entities/s, peak RSS {round_peak:.0} MB, store {:.0} MB: {:.0}% of \
             the raw fetch rate",
            run.counts.pages,
            elapsed.as_secs_f64(),
            cpu.spent(),
            sync_cpu[sync_cpu.len() - 1],
            sync_cpu[sync_cpu.len() - 1] * users as f64 / entities as f64,
            entities as f64 / elapsed.as_secs_f64(),
            bench.size_mb(),
            100.0 * ratio
        );
        last = Some((bench, worker, elapsed));
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        (values[(rounds - 1) / 2] + values[rounds / 2]) / 2.0
    };
    let (raw_cpu, sync_cpu) = (median(&mut raw_cpu), median(&mut sync_cpu));
    let (raw_busy, sync_busy) = (median(&mut raw_busy), median(&mut sync_busy));
    let median = median(&mut ratios);
    println!(
        "ratio:      over {rounds} rounds the sync reaches {:.0}% of the raw fetch rate at the median ({:.0}–{:.0}%), \
         {:.0}% fastest against fastest ({:.2} s against {:.2} s) (target >= 95%); peak RSS {peak:.0} MB \
         (target < 150 MB at 100k, < 100 MB at 1M)",
        100.0 * median,
        100.0 * ratios[0],
        100.0 * ratios[ratios.len() - 1],
        100.0 * fastest_raw.as_secs_f64() / fastest_sync.as_secs_f64(),
        fastest_sync.as_secs_f64(),
        fastest_raw.as_secs_f64(),
    );
    println!(
        "cpu:        the sync spends {sync_cpu:.1} µs of CPU a user at the median, storing included (target <= 10 µs); \
         receiving the same pages in the raw fetch spends {raw_cpu:.1} µs ({:.1}x)",
        sync_cpu / raw_cpu
    );
    println!(
        "source:     the fake was busy {:.0}% of the raw fetch's time and {:.0}% of the sync's at the median",
        100.0 * raw_busy,
        100.0 * sync_busy
    );
    let (bench, worker, elapsed) = last.expect("at least one round");
    let reading = reading_cost(&base_url, &token, users).await;
    let received = raw_cpu - reading.counting;
    println!(
        "floor:      receiving the pages costs {received:.1} µs a user (the raw fetch's CPU, less {:.1} µs \
         counting the users it got) and reading no more of them than any sync must (each member's id, each \
         user's JSON split out whole) {:.1} µs: {:.1} µs a user before anything is stored (target <= 10 µs)",
        reading.counting,
        reading.least,
        received + reading.least
    );
    let config = bench.config.clone();

    writeln!(fake_in, "mutate").unwrap();
    line.clear();
    fake_out.read_line(&mut line).unwrap();
    let started = Instant::now();
    let outcome = worker.run(&config, RunOptions::default(), &CancellationToken::new()).await.unwrap();
    let incremental = started.elapsed();
    let Outcome::Succeeded(run) = outcome else {
        panic!("the incremental run did not complete: {outcome:?}")
    };
    assert_eq!(run.kind, RunKind::Incremental, "the second run should be incremental");
    println!(
        "incremental: after {}: {} pages, {} entities and memberships, {:.2} s, {:.1}% of the full run (target < 3%)",
        line.trim(),
        run.counts.pages,
        run.counts.fetched(),
        incremental.as_secs_f64(),
        100.0 * incremental.as_secs_f64() / elapsed.as_secs_f64()
    );
    // What every incremental run reads whatever changed: Okta reports no change to roles.
    let started = Instant::now();
    let (_, admins) = Raw::new(&base_url, &token).admin_roles().await;
    let roles = started.elapsed();
    println!(
        "roles:      reading the {admins} admins' roles alone, with the connector's concurrency, as every \
         incremental run must (Okta's API reports no change to them): {:.2} s, {:.1}% of the full run",
        roles.as_secs_f64(),
        100.0 * roles.as_secs_f64() / elapsed.as_secs_f64()
    );
    let cpu = Cpu::start(fake_pid);
    let (run, again) = full_run(&worker, &config).await;
    println!(
        "full again: over the stored org, as a scheduled full run is: {} pages, {} entities and memberships, \
         {:.2} s ({}; {:.1} µs a user), {:.0}% of the fastest raw fetch's rate",
        run.counts.pages,
        run.counts.fetched(),
        again.as_secs_f64(),
        cpu.spent(),
        cpu.here() / users as f64 * 1e6,
        100.0 * fastest_raw.as_secs_f64() / again.as_secs_f64()
    );
    // Last, so rewriting the whole store disturbs none of the runs above.
    let storing = storing_cost(&bench, &domain, &token, users).await;
    println!(
        "storing:    writing what the syncs stored and nothing else ({} entities, {} identifiers and {} memberships \
         copied in one transaction into a fresh store of the same schema, with its writer's settings, less {:.1} µs \
         reading them back) costs SQLite {:.1} µs a user; with receiving and reading, {:.1} µs a user before the \
         sync maps, compares or records anything (target <= 10 µs)",
        storing.rows.0,
        storing.rows.1,
        storing.rows.2,
        storing.reading,
        storing.least,
        received + reading.least + storing.least
    );
    drop(fake_in);
    child.wait().ok();
}

/// A full run of `config`, which must succeed, and how long it took.
async fn full_run(worker: &Worker, config: &Config) -> (Run, Duration) {
    let started = Instant::now();
    let outcome = worker
        .run(config, RunOptions { full: true, ..RunOptions::default() }, &CancellationToken::new())
        .await
        .unwrap();
    let took = started.elapsed();
    let Outcome::Succeeded(run) = outcome else { panic!("the full run did not complete: {outcome:?}") };
    (run, took)
}

/// A fresh SQLite store in a directory of its own, holding one Okta config for the fake.
struct BenchStore {
    dir: tempfile::TempDir,
    sqlite: Arc<SqliteStore>,
    store: Arc<dyn Store>,
    config: Config,
}

impl BenchStore {
    async fn new(domain: &str, token: &str) -> BenchStore {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(
            SqliteStore::connect(
                &format!("sqlite://{}/bench.db", dir.path().display()),
                MasterKey::load_or_generate(dir.path()).unwrap(),
            )
            .await
            .unwrap(),
        );
        let store: Arc<dyn Store> = sqlite.clone();
        let org = store.ensure_org("bench").await.unwrap();
        let config =
            Config::created(org, IntegrationType::Okta, "bench".into(), domain.to_string(), Settings::new());
        store.insert_config(&config, &SecretValue::new(json!({"api_token": token}))).await.unwrap();
        BenchStore { dir, sqlite, store, config }
    }

    /// The database file's size.
    fn size_mb(&self) -> f64 {
        std::fs::metadata(self.dir.path().join("bench.db")).map_or(0.0, |m| m.len() as f64 / 1e6)
    }
}

/// Where the fake and this process run.
enum Cores {
    /// Both on every core this process may use.
    Shared,
    Split {
        fake: Vec<usize>,
        sync: Vec<usize>,
    },
}

impl Cores {
    /// Pins this thread to the second half of the cores it may use, and names the first half
    /// for the fake; on a single core, both share it.
    fn split() -> Cores {
        let allowed = allowed_cores();
        if allowed.len() < 2 {
            return Cores::Shared;
        }
        let (fake, sync) = allowed.split_at(allowed.len() / 2);
        pin_to(sync);
        Cores::Split { fake: fake.to_vec(), sync: sync.to_vec() }
    }
}

impl std::fmt::Display for Cores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cores::Shared => write!(f, "both sides sharing every core"),
            Cores::Split { fake, sync } => {
                write!(f, "the fake on core {}, the sync on core {}", list(fake), list(sync))
            }
        }
    }
}

fn list(cores: &[usize]) -> String {
    cores.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// The cores this thread may run on (Linux only; none elsewhere, so both sides share).
#[cfg(target_os = "linux")]
fn allowed_cores() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain bits; the kernel writes at most its size, and `CPU_ISSET`
    // reads within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&core| libc::CPU_ISSET(core, &set)).collect()
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cores() -> Vec<usize> {
    Vec::new()
}

/// Keeps this thread, and the threads it starts from now on, on `cores`.
#[cfg(target_os = "linux")]
fn pin_to(cores: &[usize]) {
    // SAFETY: as in `allowed_cores`; `CPU_SET` writes within the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &core in cores {
            libc::CPU_SET(core, &mut set);
        }
        let pinned = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(pinned, 0, "cannot pin to cores {}", list(cores));
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to(_: &[usize]) {}

fn groups_for(users: usize) -> usize {
    (users / 20).max(5)
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

/// The fake's limit on each endpoint's requests a minute. The rounds together ask for more of
/// the group members endpoint than half the fake's default in a minute (10,000 requests a round
/// at 100k users, 100,000 at 1M), and past half the connector rightly waits for the window's
/// reset: a round's sync, or the incremental run after them, then measured Okta's limit, not the
/// sync (an incremental run once took 13.8 s after five rounds).
const UNLIMITED: u32 = 100_000_000;

/// The child: a fake Okta org on a random port, each reply `latency` late; prints `base_url
/// domain token`, then changes the org on each `mutate` line it reads, until its standard input
/// closes.
async fn serve_fake(users: usize, latency: Duration) {
    let spec = TenantSpec { users, groups: groups_for(users), devices: 0, ..TenantSpec::default() };
    let fake = FakeOkta::start_with(spec).await.unwrap();
    fake.slow_pages(latency);
    fake.set_rate_limit(UNLIMITED);
    println!("{} {} {}", fake.base_url(), fake.domain(), fake.api_token());
    let mut commands = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(command) = commands.next_line().await.unwrap() {
        assert_eq!(command, "mutate", "the fake knows one command");
        println!("{}", fake.mutate(change_one_percent));
    }
}

/// Changes 1% of the org: a new title for every hundredth user, and a new member in every
/// hundredth group. Says what it changed.
fn change_one_percent(tenant: &mut OktaTenant) -> String {
    let users: Vec<String> = tenant.users().map(|u| u.id().to_string()).collect();
    let groups: Vec<String> = tenant.groups().map(|g| g.id().to_string()).collect();
    for id in users.iter().step_by(100) {
        tenant.update_user(id, |u| u.profile.title = Some("Staff Engineer".into()));
    }
    for (i, group) in groups.iter().enumerate().step_by(100) {
        tenant.add_member(group, &users[(i * 7919) % users.len()]);
    }
    format!("{} users and {} groups' members changed", users.len().div_ceil(100), groups.len().div_ceil(100))
}

struct RawFetch {
    pages: u64,
    items: u64,
    elapsed: Duration,
}

/// Downloads every page the connector reads, decoding only what finding the next page needs, in
/// the connector's pattern: the admins' roles (16 at a time, across the pages of admins) and then
/// the two user listings (one page in flight each) beside the groups, 20 a page, each page's
/// groups' members [`AT_ONCE`] groups at a time while the next page of groups is fetched; at most
/// [`IN_FLIGHT`] requests at once in all.
async fn raw_fetch(base: &str, token: &str) -> RawFetch {
    let raw = Raw::new(base, token);
    let started = Instant::now();
    let (users, groups) = tokio::join!(raw.users(), raw.groups());
    RawFetch { pages: users.0 + groups.0, items: users.1 + groups.1, elapsed: started.elapsed() }
}

/// The raw fetch's client; each listing returns the pages and items it read.
struct Raw {
    client: reqwest::Client,
    auth: String,
    base: String,
    in_flight: tokio::sync::Semaphore,
}

/// How many requests the connector has in flight at most, at the default `rate_limit_share`:
/// half of Okta's smallest concurrent-request limit on its current plans (35).
const IN_FLIGHT: usize = 17;

/// How many groups' members the connector asks for at once.
const AT_ONCE: usize = 8;

/// How many admins' roles the connector asks for at once.
const ROLES_AT_ONCE: usize = 16;

impl Raw {
    fn new(base: &str, token: &str) -> Raw {
        Raw {
            client: reqwest::Client::new(),
            auth: format!("SSWS {token}"),
            base: base.to_string(),
            in_flight: tokio::sync::Semaphore::new(IN_FLIGHT),
        }
    }

    /// A page's headers and body, read within the connector's limit on requests in flight.
    async fn get(&self, url: &str) -> (reqwest::header::HeaderMap, bytes::Bytes) {
        let _in_flight = self.in_flight.acquire().await.unwrap();
        let response = self.client.get(url).header("Authorization", &self.auth).send().await.unwrap();
        let headers = response.headers().clone();
        (headers, response.bytes().await.unwrap())
    }

    /// The admins' roles, then every user.
    async fn users(&self) -> (u64, u64) {
        let (mut pages, mut items) = self.admin_roles().await;
        for start in ["limit=200", "limit=200&filter=status%20eq%20%22DEPROVISIONED%22"] {
            let mut next = Some(format!("{}/api/v1/users?{start}", self.base));
            while let Some(url) = next {
                let (headers, body) = self.get(&url).await;
                next = next_link(&headers);
                pages += 1;
                items += count_ids(&body);
            }
        }
        (pages, items)
    }

    /// The admins (the next page named in the body's `_links`) and each one's roles: pages and
    /// admins.
    async fn admin_roles(&self) -> (u64, u64) {
        use futures::StreamExt;
        let (mut pages, mut items) = (0, 0);
        let first = Some(format!("{}/api/v1/iam/assignees/users?limit=100", self.base));
        // The next page of admins is asked for once the last one's roles are all being read.
        let assignees = futures::stream::unfold(first, |next| async move {
            let url = next?;
            let page: serde_json::Value = serde_json::from_slice(&self.get(&url).await.1).unwrap();
            let next = page["_links"]["next"]["href"].as_str().map(str::to_string);
            let ids: Vec<String> = page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string())
                .collect();
            Some((ids, next))
        });
        let admin_pages = std::cell::Cell::new(0);
        let mut roles = std::pin::pin!(
            assignees
                .map(|ids| {
                    admin_pages.set(admin_pages.get() + 1);
                    futures::stream::iter(ids)
                })
                .flatten()
                .map(|id| async move { self.get(&format!("{}/api/v1/users/{id}/roles", self.base)).await })
                .buffered(ROLES_AT_ONCE)
        );
        // An admin a page named, and one page of its roles.
        while roles.next().await.is_some() {
            items += 1;
            pages += 1;
        }
        pages += admin_pages.get();
        (pages, items)
    }

    /// Every group, and each group's members.
    async fn groups(&self) -> (u64, u64) {
        use futures::StreamExt;
        let (mut pages, mut items) = (0, 0);
        let mut next = Some(format!("{}/api/v1/groups?limit=20&expand=stats", self.base));
        let mut fetched = match &next {
            Some(url) => Some(self.get(url).await),
            None => None,
        };
        while let Some((headers, body)) = fetched.take() {
            next = next_link(&headers);
            let list: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
            pages += 1;
            items += list.len() as u64;
            let ids: Vec<String> = list.iter().map(|g| g["id"].as_str().unwrap().to_string()).collect();
            let members =
                futures::stream::iter(ids).map(|id| self.members(id)).buffered(AT_ONCE).collect::<Vec<u64>>();
            let following = async {
                match &next {
                    Some(url) => Some(self.get(url).await),
                    None => None,
                }
            };
            let (listed, following) = tokio::join!(members, following);
            pages += listed.iter().sum::<u64>();
            fetched = following;
        }
        (pages, items)
    }

    /// A group's member pages, one after another; how many.
    async fn members(&self, group: String) -> u64 {
        let mut pages = 0;
        let mut next = Some(format!("{}/api/v1/groups/{group}/users?limit=200", self.base));
        while let Some(url) = next {
            next = next_link(&self.get(&url).await.0);
            pages += 1;
        }
        pages
    }
}

/// How many times [`reading_cost`] reads each sample page.
const READINGS: usize = 20;

/// A member read for its id alone, as the connector reads a group's members.
#[derive(serde::Deserialize)]
struct MemberId {
    id: String,
}

/// What reading the org's pages costs, in µs of CPU a user.
struct Reading {
    /// At the least, whatever a sync does with them: each member's id out of a group's page of
    /// whole user objects, and each user of a users page split out as its JSON text (the
    /// connector reads more of a user: its fields, and keeps this text as the raw record).
    least: f64,
    /// The raw fetch's own counting of the users on its pages, which no sync needs.
    counting: f64,
}

/// Measures [`Reading`] on samples, ten pages of users and the first groups' members, each read
/// [`READINGS`] times on this thread, and scaled to the org's members a user.
async fn reading_cost(base: &str, token: &str, users: usize) -> Reading {
    let raw = Raw::new(base, token);
    let mut user_pages = Vec::new();
    let mut next = Some(format!("{base}/api/v1/users?limit=200"));
    while let Some(url) = next.take().filter(|_| user_pages.len() < 10) {
        let (headers, body) = raw.get(&url).await;
        next = next_link(&headers);
        user_pages.push(body);
    }
    let (_, groups) = raw.get(&format!("{base}/api/v1/groups?limit=50&expand=stats")).await;
    let groups: Vec<serde_json::Value> = serde_json::from_slice(&groups).unwrap();
    let mut member_pages = Vec::new();
    for group in &groups {
        let id = group["id"].as_str().unwrap();
        member_pages.push(raw.get(&format!("{base}/api/v1/groups/{id}/users?limit=200")).await.1);
    }
    let per_item = |pages: &[bytes::Bytes], read: &dyn Fn(&[u8]) -> usize| {
        let started = thread_cpu_seconds();
        let items: usize = (0..READINGS).map(|_| pages.iter().map(|page| read(page)).sum::<usize>()).sum();
        (thread_cpu_seconds() - started) / items as f64
    };
    let user = per_item(&user_pages, &|page| {
        serde_json::from_slice::<Vec<Box<serde_json::value::RawValue>>>(page).unwrap().len()
    });
    let counting = per_item(&user_pages, &|page| count_ids(page) as usize);
    let member = per_item(&member_pages, &|page| {
        serde_json::from_slice::<Vec<MemberId>>(page).unwrap().iter().filter(|m| !m.id.is_empty()).count()
    });
    let memberships: usize =
        groups.iter().map(|g| g["_embedded"]["stats"]["usersCount"].as_u64().unwrap() as usize).sum();
    let per_group = memberships as f64 / groups.len() as f64;
    let members_a_user = per_group * groups_for(users) as f64 / users as f64;
    Reading { least: (user + members_a_user * member) * 1e6, counting: counting * 1e6 }
}

/// What storing an org costs SQLite at the least, in µs of this process's CPU a user.
struct Storing {
    /// Writing the rows the runs stored, with nothing else done.
    least: f64,
    /// Reading them back from the synced store, taken off the copy's CPU.
    reading: f64,
    /// The entities, identifiers and memberships written.
    rows: (i64, i64, i64),
}

/// What SQLite spends at the least to store what `synced`'s runs stored: its entities, their
/// identifiers and its memberships, copied in one transaction, each table in its key's order
/// (the cheapest for its tree, and how a scan of the table itself returns it: an `ORDER BY`
/// cost SQLite 3 µs a user more), into a fresh store of the same schema, through a connection
/// with the store's writer settings, less what reading them back costs. A sync writes the same
/// rows and more (a lookup of each entity first, its history, a commit a batch, in the order
/// the source lists them), so it cannot spend less on storing.
async fn storing_cost(synced: &BenchStore, domain: &str, token: &str, users: usize) -> Storing {
    use sqlx::{ConnectOptions, Connection};
    let fresh = BenchStore::new(domain, token).await;
    fresh.sqlite.close().await;
    let url = format!("sqlite://{}/bench.db", fresh.dir.path().display());
    let mut conn = ctxsync_store::writer_connect_options(&url).unwrap().connect().await.unwrap();
    // Read-only, so closing this connection leaves the synced store's log alone.
    sqlx::query("ATTACH DATABASE $1 AS synced")
        .bind(format!("file:{}?mode=ro", synced.dir.path().join("bench.db").display()))
        .execute(&mut conn)
        .await
        .unwrap();
    // Every value of every row read, as the copy reads them; `length` counts a text's characters,
    // which the copy need not, so if anything the floor comes out low.
    let started = cpu_seconds("self");
    let mut rows = [0i64; 3];
    let reads = [
        "SELECT count(*), total(length(kind) + length(source_id) + length(data) + length(raw) + length(digest) \
         + length(first_seen_at) + length(updated_at)) + total(length(status)) + total(length(login)) \
         + total(length(display_name)) FROM synced.entities",
        "SELECT count(*), total(length(identifier) + entity_id) FROM synced.entity_identifiers NOT INDEXED",
        "SELECT count(*), total(length(group_id) + length(member_kind) + length(member_id) + length(first_seen_at) \
         + length(seen_run)) FROM synced.memberships",
    ];
    for (count, sql) in rows.iter_mut().zip(reads) {
        (*count, _) = sqlx::query_as::<_, (i64, f64)>(sql).fetch_one(&mut conn).await.unwrap();
    }
    let reading = cpu_seconds("self") - started;
    let (config, org) = (fresh.config.id.to_string(), fresh.config.org_id.to_string());
    let started = cpu_seconds("self");
    let mut tx = conn.begin().await.unwrap();
    let copies = [
        "INSERT INTO entities (id, config_id, org_id, kind, source_id, status, login, display_name, data, raw, \
         digest, first_seen_at, updated_at) SELECT id, $1, $2, kind, source_id, status, login, display_name, \
         data, raw, digest, first_seen_at, updated_at FROM synced.entities",
        "INSERT INTO entity_identifiers (identifier, entity_id) SELECT identifier, entity_id \
         FROM synced.entity_identifiers NOT INDEXED",
        "INSERT INTO memberships (config_id, group_id, member_kind, member_id, first_seen_at, seen_run) \
         SELECT $1, group_id, member_kind, member_id, first_seen_at, seen_run FROM synced.memberships",
    ];
    for sql in copies {
        sqlx::query(sql).bind(&config).bind(&org).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let copying = cpu_seconds("self") - started;
    conn.close().await.unwrap();
    let per_user = |seconds: f64| seconds / users as f64 * 1e6;
    Storing { least: per_user(copying - reading), reading: per_user(reading), rows: rows.into() }
}

/// The objects on a page of users, counted by their ids.
fn count_ids(page: &[u8]) -> u64 {
    page.windows(6).filter(|w| w == b"\"id\":\"").count() as u64
}

/// The CPU this thread has spent, in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers.get_all("link").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).find_map(
        |link| {
            link.contains("rel=\"next\"")
                .then(|| link.split('<').nth(1)?.split('>').next().map(str::to_string))
                .flatten()
        },
    )
}

/// Hands the memory the last round freed back to the system, so the next round's peak is its
/// own: glibc keeps freed memory for reuse, and resetting the peak leaves that in.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Linux only: writing 5 to clear_refs resets the peak ("high water mark") RSS.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds spent by this process, its SQLite threads, and the fake since `start`.
struct Cpu {
    fake: u32,
    ours: f64,
    writers: Vec<(String, f64)>,
    theirs: f64,
}

impl Cpu {
    fn start(fake: u32) -> Cpu {
        Cpu {
            fake,
            ours: cpu_seconds("self"),
            writers: writer_threads(),
            theirs: cpu_seconds(&fake.to_string()),
        }
    }

    /// This process's CPU seconds since the start, its SQLite threads included.
    fn here(&self) -> f64 {
        cpu_seconds("self") - self.ours
    }

    fn spent(&self) -> String {
        let writers: f64 = writer_threads()
            .iter()
            .map(|(task, now)| {
                now - self.writers.iter().find(|(t, _)| t == task).map_or(0.0, |(_, then)| *then)
            })
            .sum();
        format!(
            "CPU: {:.1} s here, of which {:.1} s in SQLite, {:.1} s in the fake",
            self.here(),
            writers.max(0.0),
            self.fake()
        )
    }

    /// The fake's CPU seconds since the start.
    fn fake(&self) -> f64 {
        cpu_seconds(&self.fake.to_string()) - self.theirs
    }
}

/// The CPU seconds of each of this process's SQLite threads (sqlx runs each connection on one), by task path.
fn writer_threads() -> Vec<(String, f64)> {
    let tasks = std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten();
    tasks
        .filter_map(|task| {
            let path = task.path().display().to_string();
            let name = std::fs::read_to_string(format!("{path}/comm")).ok()?;
            name.starts_with("sqlx-sqlite").then(|| (path.clone(), cpu_seconds(&path["/proc/".len()..])))
        })
        .collect()
}

/// User and system time of a process, from `/proc/{pid}/stat` (Linux only; 0 elsewhere).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    ticks / 100.0
}
