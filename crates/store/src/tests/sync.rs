//! The sync bookkeeping against a fresh database: what a page writes, what completing a run
//! deletes (and what an unfinished run never deletes), and leases.

use std::sync::Arc;

use ctxsync_core::{
    Config, Coverage, DeletionGuard, Entity, EntityKind, Expected, Group, IntegrationType, Membership, OrgId,
    Record, Removal, RunKind, RunStatus, SecretValue, Settings, User, UserStatus,
};
use serde_json::json;

use super::TestStore;
use crate::{EntityCursor, EntityQuery, PageWrite, PreparedEntities, RunEnd, Store, StoreError};

pub(super) struct Db {
    pub test: TestStore,
    pub store: Arc<dyn Store>,
    pub org: OrgId,
    pub config: Config,
}

/// A fresh store with one org and one enabled Okta config.
pub(super) async fn db() -> Db {
    let test = TestStore::new().await;
    let store = test.store.clone();
    let org = store.ensure_org("default").await.unwrap();
    let config =
        Config::created(org, IntegrationType::Okta, "okta".into(), "acme.okta.com".into(), Settings::new());
    store.insert_config(&config, &SecretValue::new(json!({"api_token": "t"}))).await.unwrap();
    Db { test, store, org, config }
}

pub(crate) fn user(id: &str, email: &str, status: UserStatus) -> Record {
    Record::from_value(
        Entity::User(User {
            source_id: id.into(),
            login: email.into(),
            emails: vec![email.into()],
            verified_emails: vec![email.into()],
            immutable_id: None,
            on_premises: None,
            display_name: Some(id.to_uppercase()),
            given_name: None,
            family_name: None,
            status,
            title: None,
            department: None,
            manager: None,
            employee_id: None,
            created_at: None,
            last_login_at: None,
            source_updated_at: None,
            admin_roles: vec![],
            mfa_factors: vec![],
            mfa_enrolled: None,
        }),
        &json!({"id": id, "profile": {"email": email}}),
    )
}

pub(crate) fn group(id: &str) -> Record {
    Record::from_value(
        Entity::Group(Group {
            source_id: id.into(),
            name: id.into(),
            email: None,
            description: None,
            kind: None,
        }),
        &json!({"id": id}),
    )
}

pub(super) fn users(ids: &[&str]) -> Vec<Record> {
    ids.iter().map(|id| user(id, &format!("{id}@x.com"), UserStatus::Active)).collect()
}

/// `(group, member)` pairs as [`Db::members`] lists them.
pub(super) fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(group, member)| (group.to_string(), member.to_string())).collect()
}

pub(super) fn member(group: &str, user: &str) -> Membership {
    Membership { group_id: group.into(), member_kind: EntityKind::User, member_id: user.into() }
}

impl Db {
    /// Starts a run under the config's lease as it stands, as a worker starts its runs. Tests
    /// that are not about leases get one as "test-worker" that has already expired, so any
    /// other worker may take the config over as from a dead one.
    pub(super) async fn start(&self, kind: RunKind) -> ctxsync_core::Run {
        let owner = self.holder().await;
        self.store.start_run(self.config.id, kind, &owner).await.unwrap()
    }

    /// Goes on from a stopped full run under the config's lease as it stands.
    pub(super) async fn resume(&self, from: &crate::ResumePoint) -> ctxsync_core::Run {
        let owner = self.holder().await;
        self.store.resume_run(self.config.id, from, &owner).await.unwrap()
    }

    async fn holder(&self) -> String {
        if let Some(lease) = self.store.lease(self.config.id).await.unwrap() {
            return lease.owner;
        }
        let expired = ctxsync_core::now() - time::Duration::seconds(1);
        self.store.acquire_lease(self.config.id, "test-worker", expired, None).await.unwrap().unwrap();
        "test-worker".into()
    }

    /// One run of one page; a completed one applies every deletion (see `guarded` for the guard).
    pub(super) async fn run(
        &self,
        kind: RunKind,
        records: &[Record],
        memberships: &[Membership],
        removals: &[Removal],
        coverage: Option<Coverage>,
    ) -> ctxsync_core::Run {
        let end = coverage.map(|coverage| (coverage, DeletionGuard::OFF, Expected::new()));
        self.guarded(kind, records, memberships, removals, end).await
    }

    /// One run of one page; `end`, when the listing completed: its coverage, the guard it ends
    /// under and the source's totals.
    pub(super) async fn guarded(
        &self,
        kind: RunKind,
        records: &[Record],
        memberships: &[Membership],
        removals: &[Removal],
        end: Option<(Coverage, DeletionGuard, Expected)>,
    ) -> ctxsync_core::Run {
        let entities = PreparedEntities::new(records.to_vec());
        let page =
            PageWrite { entities: &entities, memberships, whole_groups: &[], removals, checkpoint: None };
        self.one_page_run(kind, page, end).await
    }

    /// One run of one page that names every member of `whole_groups`.
    pub(super) async fn run_whole(
        &self,
        kind: RunKind,
        records: &[Record],
        memberships: &[Membership],
        whole_groups: &[&str],
        coverage: Option<Coverage>,
    ) -> ctxsync_core::Run {
        let whole_groups: Vec<String> = whole_groups.iter().map(|g| g.to_string()).collect();
        let entities = PreparedEntities::new(records.to_vec());
        let page = PageWrite {
            entities: &entities,
            memberships,
            whole_groups: &whole_groups,
            removals: &[],
            checkpoint: None,
        };
        let end = coverage.map(|coverage| (coverage, DeletionGuard::OFF, Expected::new()));
        self.one_page_run(kind, page, end).await
    }

    async fn one_page_run(
        &self,
        kind: RunKind,
        page: PageWrite<'_>,
        end: Option<(Coverage, DeletionGuard, Expected)>,
    ) -> ctxsync_core::Run {
        let run = self.start(kind).await;
        let mut run_counted = run.clone();
        let counts = self.store.apply_page(&run, self.org, page).await.unwrap();
        run_counted.counts.add(&counts);
        match end {
            Some((coverage, guard, expected)) => self
                .store
                .finish_run(
                    &run_counted,
                    RunEnd::Succeeded {
                        coverage,
                        cursor: Some(json!({"n": 1})),
                        next_run_at: ctxsync_core::now(),
                        guard,
                        expected,
                    },
                )
                .await
                .unwrap(),
            None => run_counted,
        }
    }

    pub(super) async fn ids(&self, kind: EntityKind) -> Vec<String> {
        let q = EntityQuery { kind: Some(kind), limit: 1000, ..EntityQuery::default() };
        self.store
            .list_entities(self.org, &q)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.entity.source_id().to_owned())
            .collect()
    }

    pub(super) async fn members(&self) -> Vec<(String, String)> {
        self.store
            .list_memberships(self.org, self.config.id, None, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.membership.group_id, m.membership.member_id))
            .collect()
    }
}

#[tokio::test]
async fn a_full_run_creates_then_skips_unchanged_then_deletes_what_vanished() {
    let db = db().await;
    let records =
        [user("u1", "a@x.com", UserStatus::Active), user("u2", "b@x.com", UserStatus::Active), group("g1")];
    let first = db
        .run(
            RunKind::Full,
            &records,
            &[member("g1", "u1"), member("g1", "u2")],
            &[],
            Some(Coverage::Everything),
        )
        .await;
    assert_eq!(first.status, RunStatus::Succeeded);
    assert_eq!((first.counts.by_type["user"].created, first.counts.by_type["membership"].created), (2, 2));

    let before = db.store.get_entity(db.org, db.config.id, EntityKind::User, "u1").await.unwrap().unwrap();
    let changed = [
        user("u1", "a@x.com", UserStatus::Active),
        user("u2", "b@x.com", UserStatus::Suspended),
        group("g1"),
    ];
    let second =
        db.run(RunKind::Full, &changed, &[member("g1", "u2")], &[], Some(Coverage::Everything)).await;
    let users = second.counts.by_type["user"];
    assert_eq!((users.fetched, users.created, users.updated, users.deleted), (2, 0, 1, 0));
    assert_eq!(second.counts.by_type["membership"].deleted, 1);
    let after = db.store.get_entity(db.org, db.config.id, EntityKind::User, "u1").await.unwrap().unwrap();
    assert_eq!(after.updated_at, before.updated_at, "an unchanged entity is not rewritten");

    let third = db
        .run(
            RunKind::Full,
            &[user("u2", "b@x.com", UserStatus::Suspended)],
            &[],
            &[],
            Some(Coverage::Everything),
        )
        .await;
    assert_eq!(third.counts.by_type["user"].deleted, 1);
    assert_eq!(third.counts.by_type["group"].deleted, 1);
    assert_eq!(db.ids(EntityKind::User).await, ["u2"]);
    assert!(db.members().await.is_empty());
}

#[tokio::test]
async fn an_unfinished_run_deletes_nothing_and_the_next_holder_clears_it() {
    let db = db().await;
    db.run(
        RunKind::Full,
        &[user("u1", "a@x.com", UserStatus::Active), user("u2", "b@x.com", UserStatus::Active)],
        &[],
        &[],
        Some(Coverage::Everything),
    )
    .await;
    // A run that saw only u3, then died.
    db.store
        .acquire_lease(db.config.id, "worker-a", ctxsync_core::now() - time::Duration::seconds(1), None)
        .await
        .unwrap()
        .unwrap();
    let dead = db.run(RunKind::Full, &[user("u3", "c@x.com", UserStatus::Active)], &[], &[], None).await;
    assert_eq!(db.ids(EntityKind::User).await, ["u1", "u2", "u3"], "upserts stay, nothing deleted");

    // Another worker takes the expired lease: the dead run is marked failed.
    let state = db
        .store
        .acquire_lease(db.config.id, "worker-b", ctxsync_core::now() + time::Duration::minutes(1), None)
        .await
        .unwrap();
    assert!(state.is_some());
    let dead = db.store.get_run(db.org, db.config.id, dead.id).await.unwrap().unwrap();
    assert_eq!(dead.status, RunStatus::Failed);
    assert!(dead.error.unwrap().contains("interrupted"));
    // A complete run then converges.
    db.run(RunKind::Full, &[user("u1", "a@x.com", UserStatus::Active)], &[], &[], Some(Coverage::Everything))
        .await;
    assert_eq!(db.ids(EntityKind::User).await, ["u1"]);
}

#[tokio::test]
async fn incremental_runs_apply_named_removals_and_relisted_groups_only() {
    let db = db().await;
    let all = [
        user("u1", "a@x.com", UserStatus::Active),
        user("u2", "b@x.com", UserStatus::Active),
        group("g1"),
        group("g2"),
    ];
    let members = [member("g1", "u1"), member("g1", "u2"), member("g2", "u1")];
    db.run(RunKind::Full, &all, &members, &[], Some(Coverage::Everything)).await;

    let removals = [Removal::Entity { kind: EntityKind::User, source_id: "u2".into() }];
    let run = db
        .run(
            RunKind::Incremental,
            &[user("u3", "c@x.com", UserStatus::Active)],
            &[member("g2", "u3")],
            &removals,
            Some(Coverage::Changes { groups_with_all_members: vec!["g2".into()] }),
        )
        .await;
    assert_eq!(db.ids(EntityKind::User).await, ["u1", "u3"], "u1 untouched though not listed; u2 removed");
    assert_eq!(run.counts.by_type["user"].deleted, 1);
    assert_eq!(
        db.members().await,
        [("g1".to_string(), "u1".to_string()), ("g2".into(), "u3".into())],
        "u2's memberships went with it; g2 was relisted in full"
    );
    assert_eq!(db.store.sync_state(db.config.id).await.unwrap().cursor, Some(json!({"n": 1})));
}

#[tokio::test]
async fn a_full_run_keeps_the_memberships_of_groups_it_could_not_list() {
    let db = db().await;
    let everyone = [user("u1", "a@x.com", UserStatus::Active), user("u2", "b@x.com", UserStatus::Active)];
    let all = [&everyone[..], &[group("g1"), group("g2")]].concat();
    let members = [member("g1", "u1"), member("g1", "u2"), member("g2", "u1"), member("g2", "u2")];
    db.run(RunKind::Full, &all, &members, &[], Some(Coverage::Everything)).await;

    // g1's members were refused; g2 lost u2; u2 itself is still listed.
    let coverage = Coverage::full(vec!["g1".into()]);
    db.run(RunKind::Full, &all, &[member("g2", "u1")], &[], Some(coverage)).await;
    assert_eq!(
        db.members().await,
        [("g1".to_string(), "u1".to_string()), ("g1".into(), "u2".into()), ("g2".into(), "u1".into())],
        "g1 kept as it was, g2 converged"
    );
}

#[tokio::test]
async fn a_group_listed_whole_loses_only_the_members_its_page_did_not_name() {
    let db = db().await;
    let all = [users(&["u1", "u2", "u3"]), vec![group("g1"), group("g2")]].concat();
    let members = [member("g1", "u1"), member("g1", "u2"), member("g2", "u1"), member("g2", "u2")];
    let first = db.run_whole(RunKind::Full, &all, &members, &["g1", "g2"], Some(Coverage::Everything)).await;
    assert_eq!(first.counts.by_type["membership"].created, 4);

    // A run that named only u1 in g1, then died: nothing is deleted.
    let expired = ctxsync_core::now() - time::Duration::seconds(1);
    db.store.acquire_lease(db.config.id, "worker-a", expired, None).await.unwrap().unwrap();
    db.run_whole(RunKind::Full, &all, &[member("g1", "u1")], &["g1"], None).await;
    let later = ctxsync_core::now() + time::Duration::minutes(1);
    db.store.acquire_lease(db.config.id, "worker-b", later, None).await.unwrap().unwrap();
    assert_eq!(db.members().await.len(), 4, "an unfinished run deletes no member");

    // g1 named u1 and u3 whole; g2's members came the other way, marked one by one.
    let second = db
        .run_whole(
            RunKind::Full,
            &all,
            &[member("g1", "u1"), member("g1", "u3"), member("g2", "u2")],
            &["g1"],
            Some(Coverage::Everything),
        )
        .await;
    let counted = second.counts.by_type["membership"];
    assert_eq!((counted.fetched, counted.created, counted.deleted), (3, 1, 2));
    assert_eq!(
        db.members().await,
        pairs(&[("g1", "u1"), ("g1", "u3"), ("g2", "u2")]),
        "g1 lost u2, whom its page did not name; g2 lost u1, whom no page marked"
    );
}

#[tokio::test]
async fn an_incremental_run_deletes_unnamed_members_of_relisted_groups_only() {
    let db = db().await;
    let all = [users(&["u1", "u2"]), vec![group("g1"), group("g2")]].concat();
    let members = [member("g1", "u1"), member("g1", "u2"), member("g2", "u1"), member("g2", "u2")];
    db.run_whole(RunKind::Full, &all, &members, &["g1", "g2"], Some(Coverage::Everything)).await;

    // Both groups' pages name only u1, but only g2 was relisted for the run's coverage.
    let coverage = Coverage::Changes { groups_with_all_members: vec!["g2".into()] };
    let named = [member("g1", "u1"), member("g2", "u1")];
    db.run_whole(RunKind::Incremental, &[], &named, &["g1", "g2"], Some(coverage)).await;
    assert_eq!(db.members().await, pairs(&[("g1", "u1"), ("g1", "u2"), ("g2", "u1")]));
}

#[tokio::test]
async fn leases_exclude_other_workers_until_they_expire() {
    let db = db().await;
    let later = ctxsync_core::now() + time::Duration::minutes(1);
    assert!(db.store.acquire_lease(db.config.id, "a", later, None).await.unwrap().is_some());
    assert!(db.store.acquire_lease(db.config.id, "b", later, None).await.unwrap().is_none());
    assert!(
        db.store.due_configs(ctxsync_core::now(), 10).await.unwrap().is_empty(),
        "a leased config is not due"
    );
    assert!(db.store.renew_lease(db.config.id, "a", later).await.unwrap());
    assert!(!db.store.renew_lease(db.config.id, "b", later).await.unwrap());
    db.store.release_lease(db.config.id, "a").await.unwrap();
    assert!(db.store.acquire_lease(db.config.id, "b", later, None).await.unwrap().is_some());
}

#[tokio::test]
async fn a_lease_whose_holder_is_dead_is_taken_over_at_once() {
    let db = db().await;
    let later = ctxsync_core::now() + time::Duration::minutes(1);
    assert!(db.store.acquire_lease(db.config.id, "dead", later, None).await.unwrap().is_some());
    let run = db.start(RunKind::Full).await;
    assert_eq!(db.store.lease(db.config.id).await.unwrap().unwrap().owner, "dead");
    assert!(
        db.store.acquire_lease(db.config.id, "b", later, Some("someone else")).await.unwrap().is_none(),
        "only the named holder is replaced"
    );
    assert!(db.store.acquire_lease(db.config.id, "b", later, Some("dead")).await.unwrap().is_some());
    let lease = db.store.lease(db.config.id).await.unwrap().unwrap();
    assert_eq!((lease.owner.as_str(), lease.until.unix_timestamp()), ("b", later.unix_timestamp()));
    let run = db.store.get_run(db.org, db.config.id, run.id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed, "the dead holder's run ends with a reason");
    assert!(run.error.unwrap().contains("interrupted"));
    db.store.release_lease(db.config.id, "b").await.unwrap();
    assert_eq!(db.store.lease(db.config.id).await.unwrap(), None);
}

#[tokio::test]
async fn sync_now_promises_the_id_of_the_next_run() {
    let db = db().await;
    let promised = db.store.request_run(db.org, db.config.id).await.unwrap().unwrap();
    assert_eq!(
        db.store.request_run(db.org, db.config.id).await.unwrap(),
        Some(promised),
        "a second request before the run starts is the same run"
    );
    assert_eq!(db.store.request_run(ctxsync_core::OrgId::new(), db.config.id).await.unwrap(), None);
    let due = db.store.due_configs(ctxsync_core::now(), 10).await.unwrap();
    assert_eq!(due.iter().map(|c| c.id).collect::<Vec<_>>(), [db.config.id]);
    let run = db.start(RunKind::Full).await;
    assert_eq!(run.id, promised);
    let after = db.start(RunKind::Full).await;
    assert_ne!(after.id, promised, "the promise is kept once");

    // A request during a run makes the config due again as soon as the run ends.
    let next = db.store.request_run(db.org, db.config.id).await.unwrap().unwrap();
    let later = ctxsync_core::now() + time::Duration::hours(1);
    db.store.finish_run(&after, RunEnd::Failed { error: "x".into(), next_run_at: later }).await.unwrap();
    let state = db.store.sync_state(db.config.id).await.unwrap();
    assert!(state.next_run_at.unwrap() <= ctxsync_core::now(), "{:?}", state.next_run_at);
    assert_eq!(db.start(RunKind::Full).await.id, next);
}

/// A config pointed at another org (or source) forgets where its runs had got to: an
/// incremental run from the old org's cursor would list the new one's changes since then only.
/// Any other change keeps them.
#[tokio::test]
async fn a_config_pointed_at_another_source_forgets_its_cursor_and_last_full_run() {
    let db = db().await;
    db.run(RunKind::Full, &[user("u1", "a@x.com", UserStatus::Active)], &[], &[], Some(Coverage::Everything))
        .await;
    let synced = db.store.sync_state(db.config.id).await.unwrap();
    assert!(synced.cursor.is_some() && synced.last_full_at.is_some(), "{synced:?}");

    let mut renamed = db.config.clone();
    renamed.name = "Okta, production".into();
    renamed.settings.insert("okta_include_factors".into(), json!(true));
    assert!(
        db.store.update_config(&renamed, Some(&SecretValue::new(json!({"api_token": "t2"})))).await.unwrap()
    );
    assert_eq!(db.store.sync_state(db.config.id).await.unwrap(), synced, "the same org, kept");

    let mut moved = renamed.clone();
    moved.domain = "other.okta.com".into();
    assert!(db.store.update_config(&moved, None).await.unwrap());
    let state = db.store.sync_state(db.config.id).await.unwrap();
    assert_eq!((state.cursor, state.last_full_at), (None, None));
    assert_eq!(state.next_run_at, synced.next_run_at);

    db.run(RunKind::Full, &[user("u9", "z@x.com", UserStatus::Active)], &[], &[], Some(Coverage::Everything))
        .await;
    // A run going on meanwhile is cancelled: neither its next page nor its end is taken.
    let running = db.start(RunKind::Full).await;
    let mut retyped = moved.clone();
    retyped.integration_type = IntegrationType::EntraId;
    assert!(db.store.update_config(&retyped, None).await.unwrap());
    let state = db.store.sync_state(db.config.id).await.unwrap();
    assert_eq!((state.cursor, state.last_full_at), (None, None));
    let stopped = db.store.list_runs(db.org, db.config.id, 1).await.unwrap().remove(0);
    assert_eq!((stopped.id, stopped.status), (running.id, RunStatus::Cancelled));
    assert_eq!(stopped.error.as_deref(), Some(crate::SOURCE_CHANGED));
    let entities = PreparedEntities::new(vec![user("u8", "y@x.com", UserStatus::Active)]);
    let page = PageWrite {
        entities: &entities,
        memberships: &[],
        whole_groups: &[],
        removals: &[],
        checkpoint: None,
    };
    let refused = db.store.apply_page(&running, db.org, page).await;
    assert!(matches!(refused, Err(StoreError::RunTakenOver(_))), "{refused:?}");
    let end = RunEnd::Succeeded {
        coverage: Coverage::Everything,
        cursor: Some(json!({"old": "org"})),
        next_run_at: ctxsync_core::now(),
        guard: DeletionGuard::OFF,
        expected: Expected::new(),
    };
    assert!(matches!(db.store.finish_run(&running, end).await, Err(StoreError::RunTakenOver(_))));
    assert_eq!(db.store.sync_state(db.config.id).await.unwrap().cursor, None);
}

#[tokio::test]
async fn lookups_and_filters_find_entities_by_any_identifier() {
    let db = db().await;
    db.run(
        RunKind::Full,
        &[
            user("u1", "Alice@X.com", UserStatus::Active),
            user("u2", "b@x.com", UserStatus::Suspended),
            group("g1"),
        ],
        &[member("g1", "u2")],
        &[],
        Some(Coverage::Everything),
    )
    .await;
    let found = db
        .store
        .lookup_entities(db.org, &["alice@x.com".into(), "U2".into(), "nobody".into()])
        .await
        .unwrap();
    let ids: Vec<(&str, &str)> = found.iter().map(|(i, e)| (i.as_str(), e.entity.source_id())).collect();
    assert_eq!(ids, [("alice@x.com", "u1"), ("u2", "u2")]);
    let q = EntityQuery { status: Some("suspended".into()), limit: 10, ..EntityQuery::default() };
    assert_eq!(db.store.list_entities(db.org, &q).await.unwrap().len(), 1);
    let q = EntityQuery { member_of: Some("g1".into()), limit: 10, ..EntityQuery::default() };
    assert_eq!(db.store.list_entities(db.org, &q).await.unwrap()[0].entity.source_id(), "u2");
    let other = db.store.ensure_org("other").await.unwrap();
    assert!(
        db.store.lookup_entities(other, &["u1".into()]).await.unwrap().is_empty(),
        "orgs do not see each other"
    );
    db.store.delete_config(db.org, db.config.id).await.unwrap();
    assert!(
        db.store.lookup_entities(db.org, &["u1".into()]).await.unwrap().is_empty(),
        "deleting a config deletes its entities"
    );
}

#[tokio::test]
async fn a_changed_entity_answers_only_to_its_new_identifiers() {
    let db = db().await;
    db.run(
        RunKind::Full,
        &[user("u1", "old@x.com", UserStatus::Active)],
        &[],
        &[],
        Some(Coverage::Everything),
    )
    .await;
    let run = db
        .run(
            RunKind::Full,
            &[user("u1", "new@x.com", UserStatus::Active)],
            &[],
            &[],
            Some(Coverage::Everything),
        )
        .await;
    assert_eq!(run.counts.by_type["user"].updated, 1);
    let found = db.store.lookup_entities(db.org, &["old@x.com".into(), "new@x.com".into()]).await.unwrap();
    let ids: Vec<(&str, &str)> = found.iter().map(|(i, e)| (i.as_str(), e.entity.source_id())).collect();
    assert_eq!(ids, [("new@x.com", "u1")]);
}

/// Identifiers stored otherwise than the entity's (as by an earlier version) are mended at the
/// entity's next change, even one that leaves what it answers to as it was.
#[tokio::test]
async fn identifiers_stored_otherwise_are_mended_at_the_next_change() {
    let db = db().await;
    let with_title = |title: &'static str| {
        let mut record = user("u1", "a@x.com", UserStatus::Active);
        if let Entity::User(u) = &mut record.entity {
            u.title = Some(title.into());
        }
        [record]
    };
    db.run(RunKind::Full, &with_title("Engineer"), &[], &[], Some(Coverage::Everything)).await;
    db.test.execute("DELETE FROM entity_identifiers WHERE identifier = $1", &["a@x.com"]).await;
    let lookup = || async {
        let found = db.store.lookup_entities(db.org, &["a@x.com".into()]).await.unwrap();
        found.iter().map(|(_, e)| e.entity.source_id().to_owned()).collect::<Vec<_>>()
    };
    assert!(lookup().await.is_empty(), "the identifier was taken away");

    let run =
        db.run(RunKind::Full, &with_title("Staff Engineer"), &[], &[], Some(Coverage::Everything)).await;
    assert_eq!(run.counts.by_type["user"].updated, 1);
    assert_eq!(lookup().await, ["u1"]);
}

#[tokio::test]
async fn listings_page_in_byte_order_on_every_backend() {
    let db = db().await;
    let ids = ["Zed", "_x", "a", "b-2", "b10", "é"];
    let records: Vec<Record> =
        ids.iter().map(|id| user(id, &format!("{id}@x.com"), UserStatus::Active)).collect();
    let members: Vec<Membership> = ids.iter().map(|id| member("g", id)).collect();
    db.run(RunKind::Full, &records, &members, &[], Some(Coverage::Everything)).await;

    let mut seen = Vec::new();
    let mut query = EntityQuery { kind: Some(EntityKind::User), limit: 4, ..EntityQuery::default() };
    loop {
        let page = db.store.list_entities(db.org, &query).await.unwrap();
        let Some(last) = page.last() else { break };
        query.after = Some(EntityCursor {
            config_id: last.config_id,
            kind: last.entity.kind(),
            source_id: last.entity.source_id().to_owned(),
        });
        seen.extend(page.iter().map(|e| e.entity.source_id().to_owned()));
    }
    let mut sorted = ids.map(str::to_owned).to_vec();
    sorted.sort();
    assert_eq!(seen, sorted);

    let first = db.store.list_memberships(db.org, db.config.id, None, 3).await.unwrap();
    let rest = db.store.list_memberships(db.org, db.config.id, Some(&first[2].membership), 10).await.unwrap();
    let members: Vec<String> = first.iter().chain(&rest).map(|m| m.membership.member_id.clone()).collect();
    assert_eq!(members, sorted);
}

/// A page bigger than one statement can bind (the engine writes up to 4,000 users or 240,000
/// memberships at once) is written whole, and every row is recognized on the next run.
#[tokio::test]
async fn a_page_larger_than_one_statement_is_written_and_recognized_whole() {
    let db = db().await;
    let users: Vec<Record> =
        (0..12_000).map(|i| user(&format!("u{i:05}"), &format!("{i}@x.com"), UserStatus::Active)).collect();
    let memberships: Vec<Membership> =
        (0..12_000).map(|i| member(&format!("g{}", i % 3), &format!("u{i:05}"))).collect();
    let run = db.run(RunKind::Full, &users, &memberships, &[], Some(Coverage::Everything)).await;
    assert_eq!(
        (run.counts.by_type["user"].created, run.counts.by_type["membership"].created),
        (12_000, 12_000)
    );

    let mut changed = users.clone();
    changed[11_999] = user("u11999", "moved@x.com", UserStatus::Active);
    let run = db.run(RunKind::Full, &changed, &memberships, &[], Some(Coverage::Everything)).await;
    let (users_seen, members_seen) = (&run.counts.by_type["user"], &run.counts.by_type["membership"]);
    assert_eq!((users_seen.created, users_seen.updated), (0, 1), "only the changed user is rewritten");
    assert_eq!((members_seen.created, members_seen.deleted), (0, 0), "every membership was marked seen");
    assert_eq!(users_seen.deleted, 0, "every user was noted as seen");
    let found =
        db.store.lookup_entities(db.org, &["moved@x.com".into(), "11999@x.com".into()]).await.unwrap();
    assert_eq!(
        found.iter().map(|(i, e)| (i.as_str(), e.entity.source_id())).collect::<Vec<_>>(),
        [("moved@x.com", "u11999")]
    );
}

/// Keys travel into SQLite inside JSON text, so a key that JSON must escape is the one to check:
/// it is written, found, recognized on the next run, and deleted when it goes.
#[tokio::test]
async fn keys_with_quotes_backslashes_and_accents_survive_every_step_of_a_run() {
    let db = db().await;
    let (odd, email, group_id) = ("u\"1\\é\t", "o\"n\\é@x.com", "g\"1\\");
    let records =
        [user(odd, email, UserStatus::Active), user("plain", "p@x.com", UserStatus::Active), group(group_id)];
    let memberships = [member(group_id, odd), member(group_id, "plain")];
    let run = db.run(RunKind::Full, &records, &memberships, &[], Some(Coverage::Everything)).await;
    assert_eq!((run.counts.by_type["user"].created, run.counts.by_type["membership"].created), (2, 2));
    let found = db.store.lookup_entities(db.org, &[email.to_uppercase(), odd.into()]).await.unwrap();
    assert_eq!(found.iter().map(|(_, e)| e.entity.source_id()).collect::<Vec<_>>(), [odd, odd]);
    assert!(db.members().await.contains(&(group_id.to_owned(), odd.to_owned())));

    let run = db.run(RunKind::Full, &records, &memberships, &[], Some(Coverage::Everything)).await;
    let (users, members) = (&run.counts.by_type["user"], &run.counts.by_type["membership"]);
    assert_eq!((users.created, users.updated, users.deleted), (0, 0, 0), "recognized, not rewritten");
    assert_eq!((members.created, members.deleted), (0, 0), "every membership was marked seen");

    let run = db.run(RunKind::Full, &records[1..], &memberships[1..], &[], Some(Coverage::Everything)).await;
    assert_eq!((run.counts.by_type["user"].deleted, run.counts.by_type["membership"].deleted), (1, 1));
    assert_eq!(db.ids(EntityKind::User).await, ["plain"]);
}

/// A config deleted while its run writes pages is deleted, never refused: on PostgreSQL the
/// deletion cascading through the run's rows used to deadlock with a page write taking them the
/// other way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_deleted_while_its_run_writes_pages_goes_without_error() {
    let db = db().await;
    for round in 0..24 {
        let config = Config::created(
            db.org,
            IntegrationType::Okta,
            format!("r{round}"),
            "acme.okta.com".into(),
            Settings::new(),
        );
        db.store.insert_config(&config, &SecretValue::new(json!({"api_token": "t"}))).await.unwrap();
        let until = ctxsync_core::now() + time::Duration::minutes(1);
        db.store.acquire_lease(config.id, "worker", until, None).await.unwrap().unwrap();
        let run = db.store.start_run(config.id, RunKind::Full, "worker").await.unwrap();
        let written = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let writer = {
            let (store, org, written) = (db.store.clone(), db.org, written.clone());
            tokio::spawn(async move {
                for page in 0.. {
                    let users: Vec<Record> = (0..50)
                        .map(|i| {
                            user(&format!("u{page}-{i}"), &format!("u{page}-{i}@x.com"), UserStatus::Active)
                        })
                        .collect();
                    let groups = [group(&format!("g{page}"))];
                    let records: Vec<Record> = users.into_iter().chain(groups).collect();
                    let memberships = [member(&format!("g{page}"), &format!("u{page}-0"))];
                    let write = PageWrite {
                        entities: &PreparedEntities::new(records),
                        memberships: &memberships,
                        whole_groups: &[],
                        removals: &[],
                        checkpoint: None,
                    };
                    if store.apply_page(&run, org, write).await.is_err() {
                        return;
                    }
                    written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        while written.load(std::sync::atomic::Ordering::Relaxed) < 2 {
            tokio::task::yield_now().await;
        }
        let deleted = db.store.delete_config(db.org, config.id).await;
        assert!(matches!(deleted, Ok(true)), "round {round}: {deleted:?}");
        writer.await.unwrap();
    }
}
