//! Change events and history against a fresh database: the baseline records none, later runs
//! record exactly what changed in order, intervals answer as-of questions, retention deletes.

use ctxsync_core::{ChangeType, Coverage, Entity, EntityKind, Record, Removal, RunKind, UserStatus};
use time::OffsetDateTime;

use super::sync::{Db, db, group, member, user};
use crate::{ChangeEvent, EventQuery, IntervalQuery};

fn admin(id: &str, roles: &[&str]) -> Record {
    let mut record = user(id, &format!("{id}@x.com"), UserStatus::Active);
    if let Entity::User(u) = &mut record.entity {
        u.admin_roles = roles.iter().map(|r| r.to_string()).collect();
    }
    record
}

fn titled(id: &str, title: &str) -> Record {
    let mut record = user(id, &format!("{id}@x.com"), UserStatus::Active);
    if let Entity::User(u) = &mut record.entity {
        u.title = Some(title.into());
    }
    record
}

/// `type entity_id related_id field`, compact enough to compare whole sequences.
fn describe(events: &[ChangeEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let mut s = format!("{} {}", e.change_type.as_str(), e.entity_id);
            for part in [e.related_id.as_deref(), e.field.as_deref()].into_iter().flatten() {
                s.push(' ');
                s.push_str(part);
            }
            s
        })
        .collect()
}

impl Db {
    pub(super) async fn events(&self, query: EventQuery) -> Vec<ChangeEvent> {
        self.store.list_events(Some(self.org), &EventQuery { limit: 1000, ..query }).await.unwrap()
    }

    async fn full(&self, records: &[Record], memberships: &[ctxsync_core::Membership]) -> ctxsync_core::Run {
        self.run(RunKind::Full, records, memberships, &[], Some(Coverage::Everything)).await
    }

    /// Members of `group` at `at`.
    async fn members_at(&self, group: &str, at: OffsetDateTime) -> Vec<String> {
        let q = IntervalQuery { group: Some(group.into()), at: Some(at), ..IntervalQuery::default() };
        let found = self.store.membership_intervals(self.org, self.config.id, &q).await.unwrap();
        found.into_iter().map(|i| i.membership.member_id).collect()
    }

    /// Groups `member` belonged to at `at`.
    async fn groups_at(&self, member: &str, at: OffsetDateTime) -> Vec<String> {
        let q = IntervalQuery { member: Some(member.into()), at: Some(at), ..IntervalQuery::default() };
        let found = self.store.membership_intervals(self.org, self.config.id, &q).await.unwrap();
        found.into_iter().map(|i| i.membership.group_id).collect()
    }

    /// Roles `user` held at `at`.
    async fn roles_at(&self, user: &str, at: OffsetDateTime) -> Vec<String> {
        let q = IntervalQuery { user: Some(user.into()), at: Some(at), ..IntervalQuery::default() };
        let found = self.store.role_intervals(self.org, self.config.id, &q).await.unwrap();
        found.into_iter().map(|i| i.role).collect()
    }
}

/// A moment strictly between two runs.
async fn pause() -> OffsetDateTime {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let t = ctxsync_core::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    t
}

#[tokio::test]
async fn the_baseline_records_no_events_and_each_later_change_is_one_event_in_order() {
    let db = db().await;
    let first = db
        .full(
            &[admin("u1", &["SUPER_ADMIN"]), titled("u2", "Engineer"), group("g1")],
            &[member("g1", "u1"), member("g1", "u2")],
        )
        .await;
    assert!(first.baseline, "the first completed full run is the baseline");
    assert!(db.events(EventQuery::default()).await.is_empty(), "the baseline records no events");

    let mut suspended = titled("u2", "Staff Engineer");
    if let Entity::User(u) = &mut suspended.entity {
        u.status = UserStatus::Suspended;
    }
    let second = db
        .full(
            &[admin("u1", &[]), suspended, admin("u3", &["HELP_DESK_ADMIN"]), group("g1")],
            &[member("g1", "u2"), member("g1", "u3")],
        )
        .await;
    assert!(!second.baseline);
    let third = db.full(&[admin("u1", &[]), admin("u3", &["HELP_DESK_ADMIN"]), group("g1")], &[]).await;
    assert!(!third.baseline);

    let events = db.events(EventQuery::default()).await;
    assert_eq!(
        describe(&events),
        [
            // Second run: its page, new entities first, then its end.
            "user.created u3",
            "admin_role.revoked u1 SUPER_ADMIN",
            "user.status_changed u2 status",
            "user.attribute_changed u2 title",
            "membership.added g1 u3 user",
            "membership.removed g1 u1 user",
            // Third run: u2 is gone, and with it its membership; u3 left g1.
            "user.deleted u2",
            "membership.removed g1 u2 user",
            "membership.removed g1 u3 user",
        ]
    );
    assert!(events.windows(2).all(|w| w[0].id < w[1].id), "ids grow");
    assert!(
        events[..6].iter().all(|e| e.run_id == second.id) && events[6..].iter().all(|e| e.run_id == third.id)
    );
    let status = &events[2];
    assert_eq!((status.old.clone(), status.new.clone()), (Some("active".into()), Some("suspended".into())));
    assert_eq!(events[3].new, Some("Staff Engineer".into()));

    let only = |types: Vec<ChangeType>| EventQuery { types, ..EventQuery::default() };
    assert_eq!(db.events(only(vec![ChangeType::UserDeleted])).await.len(), 1);
    let about_u3 = db.events(EventQuery { entity_id: Some("u3".into()), ..EventQuery::default() }).await;
    assert_eq!(
        describe(&about_u3),
        ["user.created u3", "membership.added g1 u3 user", "membership.removed g1 u3 user"]
    );
    let after = db.events(EventQuery { after: Some(events[6].id), ..EventQuery::default() }).await;
    assert_eq!(after, events[7..]);
    let other = db.store.ensure_org("other").await.unwrap();
    assert!(
        db.store
            .list_events(Some(other), &EventQuery { limit: 10, ..EventQuery::default() })
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn incremental_runs_record_the_removals_the_source_named() {
    let db = db().await;
    db.full(&[admin("u1", &[]), admin("u2", &[]), group("g1")], &[member("g1", "u1"), member("g1", "u2")])
        .await;
    let removals = [
        Removal::Entity { kind: EntityKind::User, source_id: "u2".into() },
        Removal::Membership(member("g1", "u1")),
    ];
    db.run(
        RunKind::Incremental,
        &[titled("u1", "Lead")],
        &[],
        &removals,
        Some(Coverage::Changes { groups_with_all_members: vec![] }),
    )
    .await;
    assert_eq!(
        describe(&db.events(EventQuery::default()).await),
        [
            "user.attribute_changed u1 title",
            "user.deleted u2",
            "membership.removed g1 u1 user",
            "membership.removed g1 u2 user",
        ]
    );
}

#[tokio::test]
async fn an_unfinished_first_run_is_no_baseline_and_the_next_full_run_is() {
    let db = db().await;
    let dead = db.run(RunKind::Full, &[admin("u1", &[])], &[], &[], None).await;
    assert!(!dead.baseline);
    let first = db.full(&[admin("u1", &[]), admin("u2", &[])], &[]).await;
    assert!(first.baseline);
    assert!(db.events(EventQuery::default()).await.is_empty());
    let runs = db.store.list_runs(db.org, db.config.id, 10).await.unwrap();
    assert_eq!(runs.iter().filter(|r| r.baseline).count(), 1);
}

#[tokio::test]
async fn memberships_and_roles_answer_as_of_any_time() {
    let db = db().await;
    let t0 = pause().await;
    db.full(
        &[admin("u1", &["SUPER_ADMIN"]), admin("u2", &["READ_ONLY_ADMIN"]), group("g1"), group("g2")],
        &[member("g1", "u1")],
    )
    .await;
    let t1 = pause().await;
    db.full(
        &[
            admin("u1", &["SUPER_ADMIN", "ORG_ADMIN"]),
            admin("u2", &["READ_ONLY_ADMIN"]),
            group("g1"),
            group("g2"),
        ],
        &[member("g1", "u1"), member("g1", "u2"), member("g2", "u1")],
    )
    .await;
    let t2 = pause().await;
    db.full(&[admin("u1", &["ORG_ADMIN"]), group("g1"), group("g2")], &[member("g2", "u1")]).await;
    let t3 = pause().await;
    db.full(
        &[admin("u1", &["ORG_ADMIN"]), group("g1"), group("g2")],
        &[member("g1", "u1"), member("g2", "u1")],
    )
    .await;
    let t4 = pause().await;

    assert!(db.members_at("g1", t0).await.is_empty(), "nothing before the first sync");
    assert_eq!(db.members_at("g1", t1).await, ["u1"]);
    assert_eq!(db.members_at("g1", t2).await, ["u1", "u2"]);
    assert!(db.members_at("g1", t3).await.is_empty());
    assert_eq!(db.members_at("g1", t4).await, ["u1"], "re-added: a new interval");

    assert_eq!(db.groups_at("u1", t2).await, ["g1", "g2"]);
    assert_eq!(db.groups_at("u1", t3).await, ["g2"]);

    assert_eq!(db.roles_at("u1", t1).await, ["SUPER_ADMIN"], "roles held at creation count");
    assert_eq!(db.roles_at("u1", t2).await, ["ORG_ADMIN", "SUPER_ADMIN"]);
    assert_eq!(db.roles_at("u1", t3).await, ["ORG_ADMIN"]);
    assert_eq!(db.roles_at("u2", t2).await, ["READ_ONLY_ADMIN"]);
    assert!(db.roles_at("u2", t3).await.is_empty(), "a deleted user's roles end with it");

    let all =
        IntervalQuery { member: Some("u1".into()), group: Some("g1".into()), ..IntervalQuery::default() };
    let intervals = db.store.membership_intervals(db.org, db.config.id, &all).await.unwrap();
    assert_eq!(intervals.len(), 2);
    assert!(intervals[0].valid_from < t1 && intervals[0].valid_to.is_some_and(|to| t2 < to && to < t3));
    assert!(intervals[1].valid_from > t3 && intervals[1].valid_to.is_none());
    let roles = IntervalQuery {
        user: Some("u1".into()),
        role: Some("SUPER_ADMIN".into()),
        ..IntervalQuery::default()
    };
    let roles = db.store.role_intervals(db.org, db.config.id, &roles).await.unwrap();
    assert_eq!(roles.len(), 1);
    assert!(roles[0].valid_from < t1 && roles[0].valid_to.is_some_and(|to| t2 < to && to < t3));

    let other = db.store.ensure_org("other").await.unwrap();
    assert!(db.store.membership_intervals(other, db.config.id, &all).await.unwrap().is_empty());
}

#[tokio::test]
async fn retention_deletes_events_observed_before_the_cut_off() {
    let db = db().await;
    db.full(&[admin("u1", &[])], &[]).await;
    db.full(&[admin("u1", &[]), admin("u2", &[])], &[]).await;
    let between = pause().await;
    db.full(&[admin("u1", &[]), admin("u2", &[]), admin("u3", &[])], &[]).await;
    assert_eq!(db.events(EventQuery::default()).await.len(), 2);
    assert_eq!(db.store.delete_events_before(between).await.unwrap(), 1);
    assert_eq!(describe(&db.events(EventQuery::default()).await), ["user.created u3"]);
}
