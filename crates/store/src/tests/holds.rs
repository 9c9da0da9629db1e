//! The mass-deletion guard and the completeness check against a fresh database: what a run
//! holds, what a confirmation applies, what a discard keeps, and what later runs change.

use ctxsync_core::{
    ChangeType, Coverage, DeletionGuard, Expected, HoldResolution, Membership, Record, Run, RunKind,
    RunStatus, UserStatus,
};

use super::sync::{Db, db, group, member, user};
use crate::{Decided, EventQuery};

fn users(range: std::ops::Range<u32>) -> Vec<Record> {
    range.map(|i| user(&format!("u{i}"), &format!("u{i}@x.com"), UserStatus::Active)).collect()
}

fn members(range: std::ops::Range<u32>) -> Vec<Membership> {
    range.map(|i| member("g1", &format!("u{i}"))).collect()
}

impl Db {
    /// A full run listing `range` users, all members of g1, under the default guard.
    async fn full_listing(&self, range: std::ops::Range<u32>, expected: Expected) -> Run {
        let mut records = users(range.clone());
        records.push(group("g1"));
        let end = Some((Coverage::Everything, DeletionGuard::DEFAULT, expected));
        self.guarded(RunKind::Full, &records, &members(range), &[], end).await
    }

    async fn user_count(&self) -> usize {
        let q = crate::EntityQuery {
            kind: Some(ctxsync_core::EntityKind::User),
            limit: 1000,
            ..crate::EntityQuery::default()
        };
        self.store.list_entities(self.org, &q).await.unwrap().len()
    }

    async fn decide(&self, run: &Run, decision: HoldResolution) -> Decided {
        self.store.decide_hold(self.org, self.config.id, run.id, decision).await.unwrap()
    }

    async fn held_users(&self, run: &Run) -> Vec<String> {
        let held =
            self.store.held_deletions(self.org, self.config.id, run.id, None, 1000).await.unwrap().unwrap();
        held.into_iter().filter(|h| h.kind == "user").map(|h| h.source_id).collect()
    }
}

#[tokio::test]
async fn a_mass_deletion_is_held_with_its_reason_then_confirmed() {
    let db = db().await;
    db.full_listing(0..50, Expected::new()).await;
    let run = db.full_listing(0..30, Expected::new()).await;

    assert_eq!(run.status, RunStatus::Held);
    let hold = run.hold.clone().unwrap();
    assert!(hold.reason.contains("user: 20 of 50 (40.0%) would be deleted"), "{}", hold.reason);
    assert_eq!((hold.deletions["user"], hold.deletions["membership"]), (20, 20));
    assert_eq!(run.counts.by_type["user"].deleted, 0);
    assert_eq!(db.user_count().await, 50, "nothing deleted while held");
    let stored = db.store.get_run(db.org, db.config.id, run.id).await.unwrap().unwrap();
    assert_eq!(stored.hold, Some(hold), "the hold is recorded on the run");
    assert_eq!(db.store.pending_holds(db.org, db.config.id).await.unwrap(), [stored]);

    let held = db.store.held_deletions(db.org, db.config.id, run.id, None, 15).await.unwrap().unwrap();
    assert_eq!(held.len(), 15);
    assert_eq!((held[0].kind.as_str(), held[0].source_id.as_str()), ("membership", "g1"), "ordered by kind");
    let rest = db
        .store
        .held_deletions(db.org, db.config.id, run.id, Some(&held[14].cursor()), 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.len() + rest.len(), 40, "20 users and their 20 memberships");
    let last = rest.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.login.as_deref()),
        ("user", Some("u49@x.com")),
        "users show who they are"
    );
    let held_users = db.held_users(&run).await;
    assert_eq!(held_users.len(), 20);
    assert!(held_users.iter().all(|u| u[1..].parse::<u32>().unwrap() >= 30), "{held_users:?}");

    let Decided::Resolved(confirmed) = db.decide(&run, HoldResolution::Confirmed).await else {
        panic!("the hold was pending")
    };
    assert_eq!(confirmed.hold.as_ref().unwrap().resolution, Some(HoldResolution::Confirmed));
    assert_eq!(
        (confirmed.counts.by_type["user"].deleted, confirmed.counts.by_type["membership"].deleted),
        (20, 20)
    );
    assert_eq!(db.user_count().await, 30);
    let deleted =
        db.events(EventQuery { types: vec![ChangeType::UserDeleted], ..EventQuery::default() }).await;
    assert_eq!(deleted.len(), 20, "a confirmed deletion is an event like a run's own");
    assert!(deleted.iter().all(|e| e.run_id == run.id));
    assert!(matches!(db.decide(&run, HoldResolution::Discarded).await, Decided::NotHeld(_)), "decided once");
    assert!(db.store.pending_holds(db.org, db.config.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_empty_listing_is_held_and_discarding_keeps_every_entity() {
    let db = db().await;
    db.full_listing(0..5, Expected::new()).await;
    let run = db
        .guarded(
            RunKind::Full,
            &[],
            &[],
            &[],
            Some((Coverage::Everything, DeletionGuard::DEFAULT, Expected::new())),
        )
        .await;
    assert_eq!(run.status, RunStatus::Held, "5 users are under the floor, but all of them is a wipe");
    assert!(run.hold.as_ref().unwrap().reason.contains("user: all 5 would be deleted"));

    let Decided::Resolved(discarded) = db.decide(&run, HoldResolution::Discarded).await else { panic!() };
    assert_eq!(discarded.hold.unwrap().resolution, Some(HoldResolution::Discarded));
    assert_eq!(db.user_count().await, 5);
    assert!(db.held_users(&run).await.is_empty());
    assert!(matches!(db.decide(&run, HoldResolution::Confirmed).await, Decided::NotHeld(_)));

    let small = db.full_listing(0..4, Expected::new()).await;
    assert_eq!(small.status, RunStatus::Succeeded, "one of five is under the floor");
    assert_eq!(db.user_count().await, 4);
}

#[tokio::test]
async fn later_pages_spare_what_they_list_again_and_a_full_run_supersedes_the_hold() {
    let db = db().await;
    db.full_listing(0..50, Expected::new()).await;
    let held = db.full_listing(0..30, Expected::new()).await;
    assert_eq!(held.status, RunStatus::Held);

    // An incremental run sees five of the missing users again: they are no longer deletions.
    let back = users(30..35);
    db.run(
        RunKind::Incremental,
        &back,
        &[],
        &[],
        Some(Coverage::Changes { groups_with_all_members: vec![] }),
    )
    .await;
    assert_eq!(db.held_users(&held).await.len(), 15);
    let Decided::Resolved(confirmed) = db.decide(&held, HoldResolution::Confirmed).await else { panic!() };
    assert_eq!(confirmed.counts.by_type["user"].deleted, 15);
    assert_eq!(db.user_count().await, 35);

    // A new hold, then a full run that lists everyone: the hold is superseded, nothing deleted.
    let again = db.full_listing(0..10, Expected::new()).await;
    assert_eq!(again.status, RunStatus::Held);
    let full = db.full_listing(0..35, Expected::new()).await;
    assert_eq!(full.status, RunStatus::Succeeded);
    let stored = db.store.get_run(db.org, db.config.id, again.id).await.unwrap().unwrap();
    assert_eq!(stored.hold.unwrap().resolution, Some(HoldResolution::Superseded));
    assert!(db.store.pending_holds(db.org, db.config.id).await.unwrap().is_empty());
    assert!(matches!(db.decide(&again, HoldResolution::Confirmed).await, Decided::NotHeld(_)));
    assert_eq!(db.user_count().await, 35);
}

#[tokio::test]
async fn an_incomplete_listing_holds_even_a_small_deletion_and_is_recorded_on_the_run() {
    let db = db().await;
    db.full_listing(0..50, Expected::new()).await;
    let expected: Expected = [("user".to_owned(), 50), ("membership".to_owned(), 50)].into();

    let short = db.full_listing(0..48, expected.clone()).await;
    assert_eq!(short.status, RunStatus::Held);
    let reason = short.hold.unwrap().reason;
    assert!(
        reason.starts_with("incomplete listing: membership: the source reported 50, the run received 48"),
        "{reason}"
    );
    let completeness = short.completeness.unwrap();
    assert_eq!((completeness.by_type["user"].expected, completeness.by_type["user"].ingested), (50, 48));
    assert!(completeness.is_short());
    assert_eq!(db.user_count().await, 50);

    let whole = db.full_listing(0..49, [("user".to_owned(), 49)].into()).await;
    assert_eq!(whole.status, RunStatus::Succeeded, "the source's totals match, so one deletion is applied");
    assert!(whole.completeness.unwrap().mismatches().is_empty());
    assert_eq!(db.user_count().await, 49);
    let stored = db.store.get_run(db.org, db.config.id, whole.id).await.unwrap().unwrap();
    assert_eq!(stored.completeness.unwrap().by_type["user"].expected, 49);
}

/// What the metrics read of every config: the end of its newest succeeded run, and its held
/// runs; a held run is no success.
#[tokio::test]
async fn run_summaries_show_the_last_success_and_the_held_runs() {
    let db = db().await;
    let summary =
        |summaries: Vec<crate::RunSummary>| summaries.into_iter().find(|s| s.config == db.config.id);
    let before = summary(db.store.run_summaries().await.unwrap()).unwrap();
    assert_eq!((before.last_success, before.held_runs), (None, 0));

    let succeeded = db.full_listing(0..50, Expected::new()).await;
    let held = db.full_listing(0..30, Expected::new()).await;
    assert_eq!(held.status, RunStatus::Held);
    let after = summary(db.store.run_summaries().await.unwrap()).unwrap();
    assert_eq!(after.integration_type, db.config.integration_type);
    assert_eq!(after.last_success, succeeded.finished_at);
    assert_eq!(after.held_runs, 1);

    db.decide(&held, HoldResolution::Discarded).await;
    assert_eq!(summary(db.store.run_summaries().await.unwrap()).unwrap().held_runs, 0);
}

/// Each pool reports its connections, never more idle than open.
#[tokio::test]
async fn pools_report_their_connections() {
    let db = db().await;
    db.store.ping().await.unwrap();
    let pools = db.store.pools();
    assert!(!pools.is_empty());
    for pool in pools {
        assert!(pool.max >= 1 && pool.open <= pool.max && pool.idle <= pool.open, "{pool:?}");
    }
}
