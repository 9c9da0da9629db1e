//! Resuming a full run: what a stopped one listed is kept with its checkpoint, and the run that
//! goes on from it decides deletions from both listings together.

use ctxsync_core::{
    Config, Coverage, DeletionGuard, EntityKind, Expected, Membership, Record, Run, RunCounts, RunKind,
    RunStatus,
};
use serde_json::json;

use super::sync::{Db, db, group, member, pairs, users};
use crate::{Checkpointed, PageWrite, PreparedEntities, RunEnd, StoreError};

impl Db {
    /// Applies one page to `run`, moving its checkpoint to `marks` when given; returns the run
    /// with its counts.
    async fn page(
        &self,
        run: Run,
        records: &[Record],
        memberships: &[Membership],
        marks: Option<serde_json::Value>,
    ) -> Run {
        self.page_naming_whole(run, records, memberships, &[], marks).await
    }

    /// [`Db::page`] for a page that names every member of `whole_groups`.
    async fn page_naming_whole(
        &self,
        mut run: Run,
        records: &[Record],
        memberships: &[Membership],
        whole_groups: &[String],
        marks: Option<serde_json::Value>,
    ) -> Run {
        let marks = marks.map(|m| m.as_object().unwrap().clone());
        let unmarked = RunCounts::default();
        let checkpoint = marks.as_ref().map(|marks| Checkpointed { marks, unmarked: &unmarked });
        let entities = PreparedEntities::new(records.to_vec());
        let write = PageWrite { entities: &entities, memberships, whole_groups, removals: &[], checkpoint };
        let counts = self.store.apply_page(&run, self.org, write).await.unwrap();
        run.counts.add(&counts);
        run
    }

    async fn complete(&self, run: &Run) -> Run {
        let end = RunEnd::Succeeded {
            coverage: Coverage::Everything,
            cursor: None,
            next_run_at: ctxsync_core::now(),
            guard: DeletionGuard::OFF,
            expected: Expected::new(),
        };
        self.store.finish_run(run, end).await.unwrap()
    }

    /// Takes the config's lease as "worker-a" and starts a full run.
    async fn leased_full_run(&self) -> Run {
        self.store.acquire_lease(self.config.id, "worker-a", in_a_minute(), None).await.unwrap().unwrap();
        self.start(RunKind::Full).await
    }

    /// Marks the config's running run interrupted, as the next holder of an expired lease does.
    async fn take_lease_over(&self) {
        self.take_lease_over_from("worker-a", "worker-b").await;
    }

    async fn take_lease_over_from(&self, holder: &str, next: &str) {
        self.store.acquire_lease(self.config.id, next, in_a_minute(), Some(holder)).await.unwrap().unwrap();
    }
}

fn in_a_minute() -> time::OffsetDateTime {
    ctxsync_core::now() + time::Duration::minutes(1)
}

#[tokio::test]
async fn a_killed_full_run_is_resumed_with_what_it_saw_and_counted() {
    let db = db().await;
    let everyone = [users(&["u1", "u2", "u3"]), vec![group("g1")]].concat();
    db.run(
        RunKind::Full,
        &everyone,
        &[member("g1", "u1"), member("g1", "u3")],
        &[],
        Some(Coverage::Everything),
    )
    .await;

    let run = db.leased_full_run().await;
    let first = [users(&["u1"]), vec![group("g1")]].concat();
    let run = db.page(run, &first, &[member("g1", "u1")], Some(json!({"users": {"next": "u2"}}))).await;
    // Applied after the last mark: listed again by the resumed run, so not counted with the mark.
    db.page(run.clone(), &users(&["u2"]), &[], None).await;
    db.take_lease_over().await;

    let point = db.store.resume_point(db.config.id).await.unwrap().expect("the stopped run can be resumed");
    assert_eq!(point.run, run.id);
    assert_eq!(point.checkpoint, *json!({"users": {"next": "u2"}}).as_object().unwrap());
    assert_eq!(point.counts.by_type["user"].fetched, 1, "the counts as of the mark");
    let resumed = db.resume(&point).await;
    assert_eq!(resumed.resumed_from, Some(run.id));
    assert_eq!(resumed.counts, point.counts);
    // u3 left the source meanwhile: the rest of the listing has only u2.
    let resumed = db.page(resumed, &users(&["u2"]), &[], Some(json!({"users": {"next": null}}))).await;
    let finished = db.complete(&resumed).await;

    assert_eq!(finished.status, RunStatus::Succeeded);
    assert_eq!(finished.counts.by_type["user"].fetched, 2, "each user counted once over both runs");
    assert_eq!(finished.counts.by_type["user"].deleted, 1);
    assert_eq!(db.ids(EntityKind::User).await, ["u1", "u2"], "what the stopped run listed is not deleted");
    assert_eq!(db.ids(EntityKind::Group).await, ["g1"]);
    assert_eq!(db.members().await, [("g1".to_string(), "u1".to_string())], "g1-u3 went, g1-u1 was seen");
    assert_eq!(db.store.resume_point(db.config.id).await.unwrap(), None, "a completed run leaves nothing");
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_neither_resumes_nor_drops_the_stopped_run() {
    let db = db().await;
    let run = db.leased_full_run().await;
    db.page(run.clone(), &users(&["u1"]), &[], Some(json!({"users": {"next": "u2"}}))).await;
    db.take_lease_over().await;

    // worker-a wakes up after worker-b took the config over, while a "sync now" waits.
    let promised = db.store.request_run(db.org, db.config.id).await.unwrap().unwrap();
    let point = db.store.resume_point(db.config.id).await.unwrap().unwrap();
    let err = db.store.resume_run(db.config.id, &point, "worker-a").await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
    let err = db.store.start_run(db.config.id, RunKind::Full, "worker-a").await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
    assert_eq!(
        db.store.resume_point(db.config.id).await.unwrap(),
        Some(point.clone()),
        "a refused start drops nothing the stopped run kept"
    );
    assert_eq!(db.store.list_runs(db.org, db.config.id, 10).await.unwrap().len(), 1, "nor records a run");

    let resumed = db.store.resume_run(db.config.id, &point, "worker-b").await.unwrap();
    assert_eq!(resumed.resumed_from, Some(run.id));
    assert_eq!(resumed.id, promised, "the promise of a \"sync now\" is kept for the holder's run");
}

#[tokio::test]
async fn a_group_listed_whole_again_by_the_resumed_run_is_decided_by_that_listing() {
    let db = db().await;
    let everyone = [users(&["u1", "u2"]), vec![group("g1"), group("g2"), group("g3")]].concat();
    let every = |groups: &[&str], users: &[&str]| -> Vec<Membership> {
        groups.iter().flat_map(|g| users.iter().map(move |u| member(g, u))).collect()
    };
    let whole = |groups: &[&str]| -> Vec<String> { groups.iter().map(|g| g.to_string()).collect() };
    let all = every(&["g1", "g2", "g3"], &["u1", "u2"]);
    db.run_whole(RunKind::Full, &everyone, &all, &["g1", "g2", "g3"], Some(Coverage::Everything)).await;

    let run = db.leased_full_run().await;
    let marked = Some(json!({"groups": 1}));
    let g3 = every(&["g3"], &["u1"]);
    let run = db.page_naming_whole(run, &everyone, &g3, &whole(&["g3"]), marked).await;
    // After the mark, g1 and g2 named u1 alone: the resumed run lists both again.
    let g1_g2 = every(&["g1", "g2"], &["u1"]);
    db.page_naming_whole(run.clone(), &[], &g1_g2, &whole(&["g1", "g2"]), None).await;
    db.take_lease_over().await;

    let point = db.store.resume_point(db.config.id).await.unwrap().expect("the stopped run can be resumed");
    let resumed = db.resume(&point).await;
    // u2 is back in g1 by then, and still out of g2.
    let again = [every(&["g1"], &["u1", "u2"]), every(&["g2"], &["u1"])].concat();
    let done = Some(json!({"groups": 2}));
    let resumed = db.page_naming_whole(resumed, &[], &again, &whole(&["g1", "g2"]), done).await;
    let finished = db.complete(&resumed).await;

    assert_eq!(finished.counts.by_type["membership"].deleted, 2);
    let kept = pairs(&[("g1", "u1"), ("g1", "u2"), ("g2", "u1"), ("g3", "u1")]);
    assert_eq!(
        db.members().await,
        kept,
        "g3's listing before the stop decides; g1's and g2's second ones do"
    );
}

#[tokio::test]
async fn a_group_listed_whole_before_the_stop_and_in_parts_after_keeps_what_either_listing_named() {
    let db = db().await;
    let everyone = [users(&["u1", "u2", "u3"]), vec![group("g1")]].concat();
    let members = [member("g1", "u1"), member("g1", "u2"), member("g1", "u3")];
    db.run_whole(RunKind::Full, &everyone, &members, &["g1"], Some(Coverage::Everything)).await;

    let run = db.leased_full_run().await;
    let run = db.page(run, &everyone, &[], Some(json!({"users": 1}))).await;
    // After the mark, g1's one page named u1 alone.
    db.page_naming_whole(run.clone(), &[], &[member("g1", "u1")], &["g1".to_string()], None).await;
    db.take_lease_over().await;

    let point = db.store.resume_point(db.config.id).await.unwrap().expect("the stopped run can be resumed");
    let resumed = db.resume(&point).await;
    // By then g1 lists over several pages, and u2 is back in it.
    let resumed = db.page(resumed, &[], &[member("g1", "u2")], Some(json!({"groups": 1}))).await;
    let finished = db.complete(&resumed).await;

    assert_eq!(finished.counts.by_type["membership"].deleted, 1);
    let kept = pairs(&[("g1", "u1"), ("g1", "u2")]);
    assert_eq!(db.members().await, kept, "u3, which neither listing named, is the only one to go");
}

/// A run that went on from a stopped one and listed a group whole again decides that group, and
/// so does a run going on from it in turn: the member the second listing dropped goes, though a
/// mark from the first stopped run's listing had been carried to it.
#[tokio::test]
async fn a_group_listed_whole_again_is_decided_by_that_listing_through_a_second_resume() {
    let db = db().await;
    let everyone = [users(&["u1", "u2"]), vec![group("g1")]].concat();
    let both = [member("g1", "u1"), member("g1", "u2")];
    db.run_whole(RunKind::Full, &everyone, &both, &["g1"], Some(Coverage::Everything)).await;
    relist_whole_through_a_second_resume(&db).await;
}

/// The same when the first stopped run was the config's first listing.
#[tokio::test]
async fn a_first_listing_resumed_twice_is_decided_by_its_last_whole_listing_of_a_group() {
    relist_whole_through_a_second_resume(&db().await).await;
}

/// A full run lists g1 whole with u1 and u2 and stops; the run going on from it lists g1 whole
/// with u1 alone, marks it, and stops; the third run completes without listing g1 again.
async fn relist_whole_through_a_second_resume(db: &Db) {
    let everyone = [users(&["u1", "u2"]), vec![group("g1")]].concat();
    let both = [member("g1", "u1"), member("g1", "u2")];
    let stored_before = db.ids(EntityKind::User).await.len();
    let run = db.leased_full_run().await;
    let run = db.page(run, &everyone, &[], Some(json!({"users": 1}))).await;
    let first_listing = stored_before == 0;
    assert_eq!(
        db.test.count("run_seen_entities").await == 0,
        first_listing,
        "seen rows unless a first listing"
    );
    // After the mark, g1's one page named both members.
    db.page_naming_whole(run.clone(), &[], &both, &["g1".to_string()], None).await;
    db.take_lease_over().await;

    let point = db.store.resume_point(db.config.id).await.unwrap().expect("the stopped run can be resumed");
    let second = db.resume(&point).await;
    // By then u2 has left g1; this listing of g1 is marked, so the next run will not list it.
    let marked = Some(json!({"users": 1, "groups": 1}));
    db.page_naming_whole(second, &[], &[member("g1", "u1")], &["g1".to_string()], marked).await;
    db.take_lease_over_from("worker-b", "worker-c").await;

    let point = db.store.resume_point(db.config.id).await.unwrap().expect("the second run can be resumed");
    let third = db.resume(&point).await;
    let third = db.page(third, &[], &[], Some(json!({"users": 1, "groups": 2}))).await;
    let finished = db.complete(&third).await;

    assert_eq!(finished.status, RunStatus::Succeeded);
    assert_eq!(db.members().await, pairs(&[("g1", "u1")]), "the second listing of g1 decides");
    assert_eq!(db.ids(EntityKind::User).await, ["u1", "u2"]);
}

/// A config's first full run writes no seen rows for its entities (everything stored is its
/// own), so going on from it must keep that: what it listed before the stop stays, and a group
/// it lists whole again is decided by that listing.
#[tokio::test]
async fn a_first_full_run_that_stopped_is_resumed_with_what_it_listed() {
    let db = db().await;
    let run = db.leased_full_run().await;
    let first = [users(&["u1", "u2"]), vec![group("g1"), group("g2")]].concat();
    let run = db.page(run, &first, &[member("g1", "u1")], Some(json!({"users": {"next": "u3"}}))).await;
    // After the mark: u3, and g2 listed whole with two members.
    let g2 = [member("g2", "u1"), member("g2", "u2")];
    db.page_naming_whole(run.clone(), &users(&["u3"]), &g2, &["g2".to_string()], None).await;
    assert_eq!(db.test.count("run_seen_entities").await, 0, "a first listing writes no entity's seen row");
    db.take_lease_over().await;

    let point = db.store.resume_point(db.config.id).await.unwrap().expect("the stopped run can be resumed");
    let resumed = db.resume(&point).await;
    // By then u3 has left the source, and u2 has left g2.
    let done = Some(json!({"users": {"next": null}}));
    let resumed = db.page_naming_whole(resumed, &[], &[member("g2", "u1")], &["g2".to_string()], done).await;
    let finished = db.complete(&resumed).await;

    assert_eq!(finished.status, RunStatus::Succeeded);
    assert_eq!(
        db.ids(EntityKind::User).await,
        ["u1", "u2", "u3"],
        "what the stopped run listed before the stop stays, as after any full run's stop"
    );
    assert_eq!(db.ids(EntityKind::Group).await, ["g1", "g2"]);
    assert_eq!(finished.counts.by_type["membership"].deleted, 1);
    assert_eq!(db.members().await, pairs(&[("g1", "u1"), ("g2", "u1")]), "g2's second listing decides");
}

/// A full run after a first one that failed is no first listing: the config stores what the
/// failed one wrote, and what the new run does not list goes.
#[tokio::test]
async fn a_full_run_after_a_failed_first_one_deletes_what_only_that_one_listed() {
    let db = db().await;
    let run = db.start(RunKind::Full).await;
    let everyone = [users(&["u1", "u2"]), vec![group("g1"), group("g2")]].concat();
    let run = db.page(run, &everyone, &[member("g1", "u1"), member("g1", "u2")], None).await;
    let failed = RunEnd::Failed { error: "Okta answered 500".into(), next_run_at: ctxsync_core::now() };
    db.store.finish_run(&run, failed).await.unwrap();
    assert_eq!(db.store.resume_point(db.config.id).await.unwrap(), None, "it left no mark to go on from");

    let again = db.start(RunKind::Full).await;
    let listed = [users(&["u1"]), vec![group("g1")]].concat();
    let again = db.page(again, &listed, &[member("g1", "u1")], None).await;
    assert_eq!(db.test.count("run_seen_entities").await, 2, "this run notes what it saw");
    let finished = db.complete(&again).await;

    assert_eq!(finished.status, RunStatus::Succeeded);
    assert_eq!(db.ids(EntityKind::User).await, ["u1"]);
    assert_eq!(db.ids(EntityKind::Group).await, ["g1"]);
    assert_eq!(db.members().await, pairs(&[("g1", "u1")]));
}

#[tokio::test]
async fn a_full_run_that_starts_over_drops_what_a_stopped_one_kept() {
    let db = db().await;
    db.run(RunKind::Full, &users(&["u1", "u2"]), &[], &[], Some(Coverage::Everything)).await;
    let run = db.start(RunKind::Full).await;
    let run = db.page(run, &users(&["u1"]), &[], Some(json!({"users": 1}))).await;
    let failed = RunEnd::Failed { error: "Okta answered 500".into(), next_run_at: ctxsync_core::now() };
    db.store.finish_run(&run, failed).await.unwrap();
    assert_eq!(db.store.resume_point(db.config.id).await.unwrap().map(|p| p.run), Some(run.id));

    let fresh = db.start(RunKind::Full).await;
    assert_eq!(db.store.resume_point(db.config.id).await.unwrap(), None);
    let fresh = db.page(fresh, &users(&["u2"]), &[], None).await;
    db.complete(&fresh).await;
    assert_eq!(db.ids(EntityKind::User).await, ["u2"], "u1, seen only by the dropped run, is deleted");
}

#[tokio::test]
async fn only_full_runs_that_marked_their_progress_can_be_resumed() {
    let db = db().await;
    let unmarked = db.start(RunKind::Full).await;
    let unmarked = db.page(unmarked, &users(&["u1"]), &[], None).await;
    db.store.finish_run(&unmarked, RunEnd::Cancelled { reason: "stopping".into() }).await.unwrap();
    assert_eq!(db.store.resume_point(db.config.id).await.unwrap(), None, "nothing marked");

    let incremental = db.start(RunKind::Incremental).await;
    let incremental = db.page(incremental, &users(&["u2"]), &[], Some(json!({"users": 1}))).await;
    db.store.finish_run(&incremental, RunEnd::Cancelled { reason: "stopping".into() }).await.unwrap();
    assert_eq!(db.store.resume_point(db.config.id).await.unwrap(), None, "an incremental run starts anew");

    let stopped = db.start(RunKind::Full).await;
    let stopped = db.page(stopped, &users(&["u3"]), &[], Some(json!({"users": 1}))).await;
    db.store.finish_run(&stopped, RunEnd::Cancelled { reason: "stopping".into() }).await.unwrap();
    assert_eq!(db.store.resume_point(db.config.id).await.unwrap().map(|p| p.run), Some(stopped.id));
}

#[tokio::test]
async fn the_counts_of_a_resume_point_are_those_of_its_mark() {
    let db = db().await;
    let run = db.start(RunKind::Full).await;
    let run = db.page(run, &users(&["u1"]), &[], Some(json!({"users": 1}))).await;
    // Pages after the mark are counted in the run's progress, but a resumed run lists them again.
    let run = db.page(run, &users(&["u2", "u3"]), &[], None).await;
    db.store.save_progress(&run).await.unwrap();
    db.store.finish_run(&run, RunEnd::Cancelled { reason: "stopping".into() }).await.unwrap();
    let point = db.store.resume_point(db.config.id).await.unwrap().unwrap();
    assert_eq!(point.counts.by_type["user"].fetched, 1);
    assert!(point.stopped_at >= point.listed_since);
}

#[tokio::test]
async fn any_run_but_the_one_going_on_drops_what_a_stopped_run_kept() {
    let db = db().await;
    db.run(RunKind::Full, &users(&["u1", "u2"]), &[], &[], Some(Coverage::Everything)).await;
    let stopped = db.start(RunKind::Full).await;
    let stopped = db.page(stopped, &users(&["u1"]), &[], Some(json!({"users": 1}))).await;
    db.store.finish_run(&stopped, RunEnd::Cancelled { reason: "stopping".into() }).await.unwrap();
    let incremental = db.start(RunKind::Incremental).await;
    assert_eq!(db.store.resume_point(db.config.id).await.unwrap(), None, "an incremental run in between");
    db.store.finish_run(&incremental, RunEnd::Cancelled { reason: "stopping".into() }).await.unwrap();
}

#[tokio::test]
async fn a_worker_that_stalled_past_a_takeover_writes_nothing() {
    let db = db().await;
    let stalled = db.leased_full_run().await;
    let stalled = db.page(stalled, &users(&["u1"]), &[], Some(json!({"users": 1}))).await;
    db.take_lease_over().await;
    let point = db.store.resume_point(db.config.id).await.unwrap().unwrap();
    let resumed = db.resume(&point).await;

    let entities = PreparedEntities::new(users(&["u9"]));
    let (marks, unmarked) = (json!({"users": 2}).as_object().unwrap().clone(), RunCounts::default());
    let late = PageWrite {
        entities: &entities,
        memberships: &[],
        whole_groups: &[],
        removals: &[],
        checkpoint: Some(Checkpointed { marks: &marks, unmarked: &unmarked }),
    };
    let refused = db.store.apply_page(&stalled, db.org, late).await;
    assert!(matches!(refused, Err(crate::StoreError::RunTakenOver(id)) if id == stalled.id), "{refused:?}");
    assert_eq!(db.ids(EntityKind::User).await, ["u1"], "nothing of the late page was written");
    let finished = db.complete(&resumed).await;
    assert_eq!(finished.status, RunStatus::Succeeded);
    assert_eq!(db.store.resume_point(db.config.id).await.unwrap(), None, "no stopped run came back to life");
}

/// A stopped full run of a config since pointed at another org is not gone on with: its marks
/// are the old org's.
#[tokio::test]
async fn a_stopped_run_is_not_resumed_once_its_config_names_another_source() {
    let db = db().await;
    let run = db.leased_full_run().await;
    db.page(run, &users(&["u1"]), &[], Some(json!({"users": {"next": "u2"}}))).await;
    db.take_lease_over().await;
    assert!(db.store.resume_point(db.config.id).await.unwrap().is_some());

    let renamed = Config { name: "Okta, production".into(), ..db.config.clone() };
    db.store.update_config(&renamed, None).await.unwrap();
    assert!(db.store.resume_point(db.config.id).await.unwrap().is_some(), "the same org: still resumable");
    let moved = Config { domain: "other.okta.com".into(), ..renamed };
    db.store.update_config(&moved, None).await.unwrap();
    assert_eq!(db.store.resume_point(db.config.id).await.unwrap(), None);
}
