//! Entity lookup by address and by source id, in batches as enrichment asks for them, from a
//! SQLite store holding a 100k-user org.
//!
//! `cargo bench -p ctxsync-store --bench lookup` (add `-- --users N` for another size,
//! `--rounds N` for more or fewer passes than 5). The store is filled through the sync's own
//! write path (`apply_page`), then looked up 500 identifiers at a time: two thirds addresses, one
//! third source ids, in random order, one in ten unknown. Each round looks up every identifier
//! once; the median and the fastest round's lookups per second are printed beside the target
//! (GUIDE §5: at least 50,000/s).

use std::time::Instant;

use ctxsync_core::{
    Config, Entity, IntegrationType, Record, RunKind, SecretValue, Settings, User, UserStatus,
};
use ctxsync_store::{
    ConfigStore, EntityStore, KeyStore, MasterKey, PageWrite, PreparedEntities, SqliteStore, SyncStore,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// Identifiers per lookup call: what an enrichment batch sends.
const BATCH: usize = 500;

/// Users written per transaction, as the sync writes them.
const PAGE: usize = 4_000;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users = flag(&args, "--users").unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(
        &format!("sqlite://{}/lookup.db", dir.path().display()),
        MasterKey::load_or_generate(dir.path()).unwrap(),
    )
    .await
    .unwrap();
    let org = store.ensure_org("bench").await.unwrap();
    let config =
        Config::created(org, IntegrationType::Okta, "bench".into(), "bench.okta.com".into(), Settings::new());
    store.insert_config(&config, &SecretValue::new(json!({"api_token": "t"}))).await.unwrap();

    let started = Instant::now();
    let lease_until = ctxsync_core::now() + time::Duration::hours(1);
    store.acquire_lease(config.id, "bench", lease_until, None).await.unwrap().unwrap();
    let run = store.start_run(config.id, RunKind::Full, "bench").await.unwrap();
    for first in (0..users).step_by(PAGE) {
        let records: Vec<Record> = (first..(first + PAGE).min(users)).map(user).collect();
        let page = PageWrite {
            entities: &PreparedEntities::new(records),
            memberships: &[],
            whole_groups: &[],
            removals: &[],
            checkpoint: None,
        };
        store.apply_page(&run, org, page).await.unwrap();
    }
    println!("store:   {users} users written in {:.1} s", started.elapsed().as_secs_f64());

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut wanted: Vec<String> = (0..users)
        .map(|i| match i % 3 {
            0 => source_id(i),
            _ if rng.gen_ratio(1, 10) => format!("nobody{i}@example.com"),
            _ => address(i).to_uppercase(),
        })
        .collect();
    wanted.shuffle(&mut rng);
    let rounds = flag(&args, "--rounds").unwrap_or(5).max(1);
    let mut rates = Vec::new();
    for round in 1..=rounds {
        let started = Instant::now();
        let mut found = 0;
        for batch in wanted.chunks(BATCH) {
            found += store.lookup_entities(org, batch).await.unwrap().len();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let rate = wanted.len() as f64 / elapsed;
        println!(
            "round {round}: {} identifiers in batches of {BATCH}, {found} found, {elapsed:.2} s: {rate:.0} lookups/s",
            wanted.len()
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let (median, best) = (rates[rates.len() / 2], rates[rates.len() - 1]);
    println!(
        "lookup:  over {rounds} rounds {median:.0} lookups/s at the median, {best:.0} at the fastest: {:.0}% and \
         {:.0}% of the target (>= 50,000/s)",
        100.0 * median / 50_000.0,
        100.0 * best / 50_000.0
    );
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

fn source_id(i: usize) -> String {
    format!("00u{i:017}")
}

fn address(i: usize) -> String {
    format!("user{i}@example.com")
}

fn user(i: usize) -> Record {
    let id = source_id(i);
    let email = address(i);
    Record::from_value(
        Entity::User(User {
            source_id: id.clone(),
            login: email.clone(),
            emails: vec![email.clone()],
            verified_emails: vec![email.clone()],
            immutable_id: None,
            on_premises: None,
            display_name: Some(format!("User {i}")),
            given_name: Some("User".into()),
            family_name: Some(i.to_string()),
            status: UserStatus::Active,
            title: Some("Engineer".into()),
            department: Some("Engineering".into()),
            manager: None,
            employee_id: Some(format!("E{i:06}")),
            created_at: None,
            last_login_at: None,
            source_updated_at: None,
            admin_roles: vec![],
            mfa_factors: vec![],
            mfa_enrolled: None,
        }),
        &json!({"id": id, "status": "ACTIVE", "profile": {"login": email, "email": email}}),
    )
}
