use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ctxsync_core::{EntityKind, MfaFactor, UserStatus};
use ctxsync_fakes::{FakeOkta, Listing, OktaPermission, Snapshot, TenantSpec};
use ctxsync_sources::{Coverage, SourceError};
use serde_json::json;
use tokio::time::Instant;

use super::*;
use ctxsync_fakes::FaultKnobs;

fn okta_sources(fake: &FakeOkta) -> Sources {
    sources(Endpoints::overridden(fake.base_urls()))
}

fn okta_config(fake: &FakeOkta, include_factors: bool) -> Config {
    let mut settings = Settings::new();
    if include_factors {
        settings.insert("okta_include_factors".into(), json!(true));
    }
    config(IntegrationType::Okta, &fake.domain(), settings)
}

fn okta_credentials(token: &str) -> Credentials {
    credentials(IntegrationType::Okta, json!({ "api_token": token }))
}

async fn okta_run(fake: &FakeOkta, factors: bool, mode: SyncMode) -> (Result<Outcome, SyncError>, Collected) {
    run(&okta_sources(fake), &okta_config(fake, factors), &okta_credentials(&fake.api_token()), mode).await
}

fn expected_status(okta: &str) -> UserStatus {
    match okta {
        "ACTIVE" => UserStatus::Active,
        "STAGED" | "PROVISIONED" => UserStatus::Pending,
        "SUSPENDED" => UserStatus::Suspended,
        "DEPROVISIONED" => UserStatus::Deprovisioned,
        _ => UserStatus::Locked,
    }
}

/// Every user the run brought equals the org's object, field by field where the model reads it.
fn assert_users_match(got: &Collected, snapshot: &Snapshot, ids: &BTreeSet<String>, factors: bool) {
    let users = got.users();
    assert_eq!(users.keys().cloned().collect::<BTreeSet<_>>(), *ids);
    for (id, (user, raw)) in users {
        let want = &snapshot.users[&id];
        assert_eq!(&raw, want, "raw JSON of {id}");
        assert_eq!(user.login, text(want, "/profile/login").unwrap());
        let emails = addresses([text(want, "/profile/email"), text(want, "/profile/secondEmail")]);
        assert_eq!(user.emails, emails, "{id}");
        assert_eq!(user.status, expected_status(text(want, "/status").unwrap()), "{id}");
        assert_eq!(user.given_name.as_deref(), text(want, "/profile/firstName"));
        assert_eq!(user.family_name.as_deref(), text(want, "/profile/lastName"));
        assert_eq!(user.department.as_deref(), text(want, "/profile/department"));
        assert_eq!(user.title.as_deref(), text(want, "/profile/title"));
        assert_eq!(user.manager.as_deref(), text(want, "/profile/managerId"));
        assert_eq!(user.employee_id.as_deref(), text(want, "/profile/employeeNumber"));
        assert_eq!(user.admin_roles, got_roles(snapshot, &id), "roles of {id}");
        if factors {
            let enrolled: Vec<MfaFactor> = snapshot
                .factors
                .get(&id)
                .into_iter()
                .flatten()
                .map(|f| MfaFactor {
                    factor_type: f["factorType"].as_str().unwrap().into(),
                    provider: f["provider"].as_str().map(Into::into),
                    status: f["status"].as_str().map(Into::into),
                })
                .collect();
            assert_eq!(
                user.mfa_enrolled,
                Some(enrolled.iter().any(|f| f.status.as_deref() == Some("ACTIVE")))
            );
            assert_eq!(user.mfa_factors, enrolled, "factors of {id}");
        } else {
            assert!(user.mfa_factors.is_empty() && user.mfa_enrolled.is_none());
        }
    }
}

fn assert_equals_org(got: &Collected, snapshot: &Snapshot, factors: bool) {
    assert_users_match(got, snapshot, &snapshot.users.keys().cloned().collect(), factors);
    let groups = got.groups();
    assert_eq!(groups.keys().collect::<Vec<_>>(), snapshot.groups.keys().collect::<Vec<_>>());
    for (id, (group, raw)) in groups {
        assert_eq!(&raw, &snapshot.groups[&id]);
        assert_eq!(Some(group.name.as_str()), text(&raw, "/profile/name"));
        assert_eq!(group.kind.as_deref(), Some("OKTA_GROUP"));
    }
    assert_eq!(got.members(EntityKind::User), snapshot.user_members);
    assert_eq!(got.memberships.len(), snapshot.user_members.len(), "a membership was listed twice");
}

#[tokio::test]
async fn a_full_sync_equals_the_org_across_many_pages() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 11, users: 450, groups: 4, ..TenantSpec::default() })
        .await
        .unwrap();
    let snapshot = fake.snapshot();
    // The tenant exercises what the mapping reads.
    let statuses: BTreeSet<&str> = snapshot.users.values().filter_map(|u| text(u, "/status")).collect();
    for status in ["ACTIVE", "DEPROVISIONED", "SUSPENDED", "STAGED", "LOCKED_OUT"] {
        assert!(statuses.contains(status), "{status} missing from {statuses:?}");
    }
    assert!(snapshot.roles.len() > 2 && !snapshot.factors.is_empty());
    assert!(
        snapshot.groups.keys().any(|g| snapshot.user_members.iter().filter(|(m, _)| m == g).count() > 200)
    );

    let (outcome, got) = okta_run(&fake, true, SyncMode::Full).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.coverage, Coverage::Everything);
    assert!(outcome.cursor.is_some());
    assert_equals_org(&got, &snapshot, true);
    assert_eq!(got.retries, 0);
    // The groups' `usersCount`s add up to the memberships handed over; Okta counts nothing else.
    let memberships = snapshot.user_members.len() as u64;
    assert_eq!(outcome.expected, BTreeMap::from([("membership".to_string(), memberships)]));
    assert_eq!(got.received()["membership"], memberships);
    // A group whose members fit one page is named whole by it; a larger one never is.
    let sizes: BTreeMap<String, usize> = snapshot.groups.keys().map(|g| (g.clone(), 0)).collect();
    let sizes = snapshot.user_members.iter().fold(sizes, |mut sizes, (g, _)| {
        *sizes.get_mut(g).unwrap() += 1;
        sizes
    });
    let one_page: BTreeMap<String, usize> =
        sizes.into_iter().filter(|(_, n)| (1..=200).contains(n)).collect();
    assert!(!one_page.is_empty());
    assert_eq!(got.whole_groups, one_page);
}

#[tokio::test]
async fn every_admins_roles_are_read_across_pages_of_admins() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 5, users: 300, groups: 2, ..TenantSpec::default() })
        .await
        .unwrap();
    let ids: Vec<String> = fake.snapshot().users.keys().cloned().collect();
    // Okta lists admins 100 a page: these take three pages.
    fake.mutate(|t| {
        for (n, id) in ids.iter().enumerate().take(250) {
            t.assign_role(id, if n % 2 == 0 { "READ_ONLY_ADMIN" } else { "HELP_DESK_ADMIN" });
        }
    });
    let snapshot = fake.snapshot();
    assert!(snapshot.roles.len() > 200, "{} admins", snapshot.roles.len());
    let (outcome, got) = okta_run(&fake, false, SyncMode::Full).await;
    outcome.unwrap();
    assert_equals_org(&got, &snapshot, false);
}

#[tokio::test]
async fn a_lost_page_of_members_falls_short_of_the_groups_stats() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 8, users: 300, groups: 4, ..TenantSpec::default() })
        .await
        .unwrap();
    let snapshot = fake.snapshot();
    let sizes: BTreeMap<&String, usize> = snapshot
        .groups
        .keys()
        .map(|g| (g, snapshot.user_members.iter().filter(|(m, _)| m == g).count()))
        .collect();
    assert!(sizes.values().all(|&n| n > 0), "{sizes:?}");
    // Some group's first page of members is skipped, and its next page (if any) comes instead.
    fake.drop_page(Listing::Members, 0);
    let (outcome, got) = okta_run(&fake, false, SyncMode::Full).await;
    let outcome = outcome.unwrap();
    let received = got.received()["membership"];
    assert_eq!(outcome.expected["membership"], snapshot.user_members.len() as u64);
    assert!(received < outcome.expected["membership"], "{received} of {:?}", outcome.expected);
    assert_eq!(got.users().len(), snapshot.users.len());

    // An incremental run lists only part of the org: it states no totals.
    let (incremental, _) = okta_run(&fake, false, SyncMode::Incremental(outcome.cursor.unwrap())).await;
    assert!(incremental.unwrap().expected.is_empty());
}

#[tokio::test]
async fn factors_are_read_only_when_asked() {
    let fake = FakeOkta::start().await.unwrap();
    let before = fake.requests();
    let (outcome, got) = okta_run(&fake, false, SyncMode::Full).await;
    outcome.unwrap();
    assert_equals_org(&got, &fake.snapshot(), false);
    let without_factors = fake.requests() - before;
    let before = fake.requests();
    okta_run(&fake, true, SyncMode::Full).await.0.unwrap();
    // One more request per user, and nothing else.
    assert_eq!(fake.requests() - before - without_factors, fake.snapshot().users.len() as u64);
}

#[tokio::test]
async fn a_token_that_may_not_read_roles_or_factors_still_syncs() {
    let fake = FakeOkta::start().await.unwrap();
    let token = fake.add_token(OktaPermission::UsersAndGroupsOnly);
    let sources = okta_sources(&fake);
    let (outcome, got) =
        run(&sources, &okta_config(&fake, true), &okta_credentials(&token), SyncMode::Full).await;
    outcome.unwrap();
    let users = got.users();
    assert_eq!(users.len(), fake.snapshot().users.len());
    assert!(users.values().all(|(u, _)| u.admin_roles.is_empty() && u.mfa_factors.is_empty()));
    assert_eq!(got.members(EntityKind::User), fake.snapshot().user_members);
}

/// A token refused the admins after their first page (its admin lost, mid-run, the role that may
/// view them), in a config's first run, syncs every user without roles, as a token that never
/// could read them does: none keeps the roles of the first page's admins alone. Allowed again,
/// the next run, going on from the refused one's cursor, reads every admin's roles.
#[tokio::test]
async fn a_token_refused_the_admins_after_their_first_page_syncs_without_any_roles() {
    let fake = FakeOkta::start().await.unwrap();
    let before = fake.snapshot();
    let users: Vec<&String> = before.users.keys().filter(|id| !before.roles.contains_key(*id)).collect();
    fake.mutate(|t| {
        for id in users.iter().take(5) {
            t.assign_role(id, "HELP_DESK_ADMIN");
        }
    });
    fake.limit_page_size(2);
    fake.refuse_admins_after(1);

    let (outcome, got) = okta_run(&fake, false, SyncMode::Full).await;
    let cursor = outcome.unwrap().cursor.unwrap();
    let users = got.users();
    assert_eq!(users.len(), fake.snapshot().users.len());
    assert!(users.values().all(|(u, _)| u.admin_roles.is_empty()), "no user keeps roles");

    // Incremental: the cursor must not hold the first page's roles either, or their admins,
    // unchanged since, would not be read again.
    fake.allow_admins();
    let (outcome, got) = okta_run(&fake, false, SyncMode::Incremental(cursor)).await;
    outcome.unwrap();
    let snapshot = fake.snapshot();
    let admins: BTreeSet<String> =
        snapshot.roles.iter().filter(|(_, roles)| !roles.is_empty()).map(|(id, _)| id.clone()).collect();
    assert!(admins.len() >= 6, "{admins:?}");
    assert_users_match(&got, &snapshot, &admins, false);
}

/// A token whose admin loses the role that may view roles, after runs that read them: the runs
/// it makes keep every admin's last roles (the incremental one for the admins it lists, the
/// scheduled full one, given the last cursor, for all) rather than revoking them, since Okta
/// said nothing about the roles. A role assigned meanwhile is read once the token may again.
#[tokio::test]
async fn a_token_that_may_no_longer_read_roles_keeps_those_the_last_run_read() {
    let fake = FakeOkta::start().await.unwrap();
    let (plain, promoted) = {
        let org = fake.snapshot();
        let mut plain = org.users.keys().filter(|id| !org.roles.contains_key(*id)).cloned();
        (plain.next().unwrap(), plain.next().unwrap())
    };
    // Two admins at least, so that reading every admin again would show.
    fake.mutate(|t| t.assign_role(&plain, "READ_ONLY_ADMIN"));
    let (outcome, _) = okta_run(&fake, false, SyncMode::Full).await;
    let cursor = outcome.unwrap().cursor.unwrap();
    let read = fake.snapshot();
    let admins: BTreeSet<String> =
        read.roles.iter().filter(|(_, roles)| !roles.is_empty()).map(|(id, _)| id.clone()).collect();
    assert!(admins.len() >= 2, "{admins:?}");
    let admin = admins.first().unwrap().clone();

    fake.refuse_admins_after(0);
    fake.mutate(|t| {
        t.update_user(&admin, |u| u.profile.title = Some("Principal Engineer".into()));
        t.assign_role(&promoted, "HELP_DESK_ADMIN");
    });
    let (outcome, got) = okta_run(&fake, false, SyncMode::Incremental(cursor)).await;
    let cursor = outcome.unwrap().cursor.unwrap();
    let listed = got.users();
    assert_eq!(listed[&admin].0.title.as_deref(), Some("Principal Engineer"));
    assert_eq!(listed[&admin].0.admin_roles, got_roles(&read, &admin), "the listed admin keeps its roles");

    let (outcome, got) = okta_run(&fake, false, SyncMode::FullAfter(cursor)).await;
    let cursor = outcome.unwrap().cursor.unwrap();
    let users = got.users();
    assert_eq!(users.len(), fake.snapshot().users.len());
    for (id, (user, _)) in &users {
        assert_eq!(user.admin_roles, got_roles(&read, id), "roles of {id} as last read");
    }

    // A user a push named, read after that run, keeps its roles too.
    let mut sink = Collected::default();
    let (config, credentials) = (okta_config(&fake, false), okta_credentials(&fake.api_token()));
    let ids = [admin.clone()];
    let named = Named { ids: &ids, after: Some(&cursor) };
    okta_sources(&fake).refresh_users(&config, &credentials, named, &mut sink).await.unwrap();
    assert_eq!(
        sink.users()[&admin].0.admin_roles,
        got_roles(&read, &admin),
        "the pushed admin keeps its roles"
    );

    // A full run stopped before it saved its roles mark, resumed: the same.
    let (outcome, got) =
        okta_run(&fake, false, SyncMode::Resume(Checkpoint::default(), Some(cursor.clone()))).await;
    outcome.unwrap();
    assert!(got.users().iter().all(|(id, (user, _))| user.admin_roles == got_roles(&read, id)));

    // Only a full run with nothing before it has no roles to keep.
    let (outcome, got) = okta_run(&fake, false, SyncMode::Full).await;
    outcome.unwrap();
    assert!(got.users().values().all(|(u, _)| u.admin_roles.is_empty()));

    // Allowed again, the run reads the admin whose roles changed, and no other: the cursor
    // kept the roles last read to compare with.
    fake.allow_admins();
    let (outcome, got) = okta_run(&fake, false, SyncMode::Incremental(cursor)).await;
    outcome.unwrap();
    let listed: BTreeSet<String> = got.users().into_keys().collect();
    assert!(listed.contains(&promoted), "{listed:?}");
    // The changed admin may come again: changed within the last run's second, which Okta's
    // `Date` does not split.
    assert!(listed.iter().all(|id| *id == promoted || *id == admin), "{listed:?}");
    assert_users_match(&got, &fake.snapshot(), &listed, false);
}

/// The role types `snapshot` gives user `id`, sorted, as a synced user carries them.
fn got_roles(snapshot: &Snapshot, id: &str) -> Vec<String> {
    let mut roles: Vec<String> = snapshot
        .roles
        .get(id)
        .into_iter()
        .flatten()
        .map(|r| r["type"].as_str().unwrap().to_string())
        .collect();
    roles.sort();
    roles
}

#[tokio::test]
async fn an_incremental_run_reports_exactly_the_changes() {
    let fake = FakeOkta::start().await.unwrap();
    let (outcome, _) = okta_run(&fake, false, SyncMode::Full).await;
    let cursor = outcome.unwrap().cursor.unwrap();

    let before = fake.snapshot();
    let user_ids: Vec<String> = before.users.keys().cloned().collect();
    let group_ids: Vec<String> = before.groups.keys().cloned().collect();
    let deleted = user_ids[20].clone();
    let outsider = user_ids
        .iter()
        .find(|u| **u != deleted && !before.user_members.contains(&(group_ids[0].clone(), (*u).clone())))
        .unwrap()
        .clone();
    let leaver =
        before.user_members.iter().find(|(g, u)| *g == group_ids[1] && *u != deleted).unwrap().1.clone();
    let promoted = user_ids[21].clone();
    let (added, new_group) = fake.mutate(|t| {
        let added = t.add_user("Grace", "Hopper");
        t.update_user(&user_ids[3], |u| u.profile.title = Some("Principal Engineer".into()));
        t.suspend_user(&user_ids[4]);
        t.deprovision_user(&user_ids[5]);
        t.delete_user(&deleted);
        t.assign_role(&promoted, "HELP_DESK_ADMIN");
        t.update_group(&group_ids[2], |g| g.description = Some("Renamed".into()));
        t.add_member(&group_ids[0], &outsider);
        t.remove_member(&group_ids[1], &leaver);
        let new_group = t.add_group("Incident Response");
        t.add_member(&new_group, &added);
        (added, new_group)
    });
    let after = fake.snapshot();

    let (outcome, got) = okta_run(&fake, false, SyncMode::Incremental(cursor.clone())).await;
    let outcome = outcome.unwrap();
    let changed_users: BTreeSet<String> =
        [&added, &user_ids[3], &user_ids[4], &user_ids[5], &promoted].into_iter().cloned().collect();
    assert_users_match(&got, &after, &changed_users, false);
    assert_eq!(got.users()[&user_ids[5]].0.status, UserStatus::Deprovisioned);
    assert_eq!(got.users()[&promoted].0.admin_roles, ["HELP_DESK_ADMIN"]);

    let changed_groups: BTreeSet<String> = got.groups().into_keys().collect();
    assert_eq!(changed_groups, [group_ids[2].clone(), new_group.clone()].into());
    for (id, (_, raw)) in got.groups() {
        assert_eq!(&raw, &after.groups[&id]);
    }

    // Groups whose members moved are listed again in full: the deleted user's groups too.
    let Coverage::Changes { groups_with_all_members } = &outcome.coverage else {
        panic!("an incremental run covers changes, got {:?}", outcome.coverage)
    };
    let relisted: BTreeSet<String> = groups_with_all_members.iter().cloned().collect();
    let mut want_relisted: BTreeSet<String> =
        [&group_ids[0], &group_ids[1], &new_group].into_iter().cloned().collect();
    want_relisted.extend(before.user_members.iter().filter(|(_, u)| *u == deleted).map(|(g, _)| g.clone()));
    assert_eq!(relisted, want_relisted);
    assert_eq!(relisted.len(), groups_with_all_members.len());
    let members_of_relisted: BTreeSet<(String, String)> =
        after.user_members.iter().filter(|(g, _)| relisted.contains(g)).cloned().collect();
    assert_eq!(got.members(EntityKind::User), members_of_relisted);
    assert!(got.members(EntityKind::User).contains(&(group_ids[0].clone(), outsider)));
    assert!(!got.members(EntityKind::User).contains(&(group_ids[1].clone(), leaver)));

    // The cursor moved on; a run from the old cursor sees the same changes again.
    assert_ne!(outcome.cursor.as_ref().unwrap(), &cursor);
    let (again, _) = okta_run(&fake, false, SyncMode::Incremental(cursor)).await;
    assert_eq!(again.unwrap().coverage, outcome.coverage);
}

#[tokio::test]
async fn a_cursor_from_elsewhere_asks_for_a_full_run() {
    let fake = FakeOkta::start().await.unwrap();
    let cursor =
        ctxsync_sources::Cursor(json!({"deltaLink": "https://graph.microsoft.com/v1.0/users/delta"}));
    let (outcome, got) = okta_run(&fake, false, SyncMode::Incremental(cursor)).await;
    assert_eq!(outcome.unwrap_err(), SyncError::CursorExpired);
    assert_eq!(got.pages, 0);
}

#[tokio::test(start_paused = true)]
async fn a_429_storm_waits_until_each_reset() {
    let fake = FakeOkta::start().await.unwrap();
    fake.rate_limit_next(3, Duration::from_secs(30));
    let started = Instant::now();
    let (outcome, got) = okta_run(&fake, false, SyncMode::Full).await;
    outcome.unwrap();
    // The run's first requests (the admins, the groups) go together, so two of the 429s are
    // waited out side by side, and the third after them: two resets in a row.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(60) && waited < Duration::from_secs(65), "{waited:?}");
    assert_eq!(got.retries, 3);
    assert_equals_org(&got, &fake.snapshot(), false);
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_backoff() {
    let fake = FakeOkta::start().await.unwrap();
    fake.fail_next(3, 503);
    let started = Instant::now();
    let (outcome, got) = okta_run(&fake, false, SyncMode::Full).await;
    outcome.unwrap();
    // 1 s, 2 s and 4 s, each ±25%; the run's first two requests go together, so at least the
    // first two steps of one of them come in a row.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs_f64(2.25) && waited <= Duration::from_secs_f64(8.75), "{waited:?}");
    assert_eq!(got.retries, 3);
    assert_equals_org(&got, &fake.snapshot(), false);
}

#[tokio::test(start_paused = true)]
async fn an_outage_longer_than_the_budget_fails_the_run() {
    let fake = FakeOkta::start().await.unwrap();
    fake.fail_next(100, 500);
    let (outcome, _) = okta_run(&fake, false, SyncMode::Full).await;
    match outcome {
        Err(SyncError::Source(SourceError::Unreachable(message))) => {
            assert!(message.contains("kept failing (HTTP 500"), "{message}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_truncated_page_is_fetched_again() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 4, users: 30, groups: 3, ..TenantSpec::default() })
        .await
        .unwrap();
    fake.truncate_next(2);
    let (outcome, got) = okta_run(&fake, false, SyncMode::Full).await;
    outcome.unwrap();
    assert_eq!(got.retries, 2);
    assert_equals_org(&got, &fake.snapshot(), false);

    fake.truncate_next(1_000);
    let (outcome, _) = okta_run(&fake, false, SyncMode::Full).await;
    match outcome {
        Err(SyncError::Source(SourceError::Unreachable(message))) => {
            assert!(message.contains("could not be read"), "{message}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn slow_pages_are_waited_for() {
    let fake = FakeOkta::start().await.unwrap();
    fake.slow_pages(Duration::from_secs(20));
    let started = Instant::now();
    let requests = fake.requests();
    let (outcome, got) = okta_run(&fake, false, SyncMode::Full).await;
    outcome.unwrap();
    let served = (fake.requests() - requests) as u32;
    // Every request waited its 20 s; some went at the same time as others.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(20) * 3 && waited < Duration::from_secs(20) * served, "{waited:?}");
    assert_eq!(waited.as_secs() % 20, 0, "{waited:?}");
    assert_eq!(got.retries, 0);
}

#[tokio::test]
async fn a_token_revoked_mid_run_is_rejected() {
    let fake = FakeOkta::start().await.unwrap();
    let sources = okta_sources(&fake);
    let (config, credentials) = (okta_config(&fake, false), okta_credentials(&fake.api_token()));
    let mut sink = Hooked::new(1, || async { fake.revoke_all_tokens() });
    let outcome = sources.sync(&config, &credentials, SyncMode::Full, &mut sink).await;
    match outcome {
        Err(SyncError::Source(SourceError::Rejected(message))) => {
            assert!(message.contains("Invalid token provided (E0000011)"), "{message}");
            assert!(!message.contains(&fake.api_token()), "{message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    // Users and groups are listed at the same time, so a second page may have been served
    // before the revocation; members are asked for only after their groups' page went in.
    assert!(sink.collected.pages <= 2, "{} pages", sink.collected.pages);
    assert!(sink.collected.memberships.is_empty());
}

#[tokio::test]
async fn members_of_a_group_deleted_mid_run_are_skipped() {
    let fake = FakeOkta::start().await.unwrap();
    let groups: Vec<String> = fake.snapshot().groups.into_keys().collect();
    let last = groups.last().unwrap().clone();
    let sources = okta_sources(&fake);
    let (config, credentials) = (okta_config(&fake, false), okta_credentials(&fake.api_token()));
    // Once the groups page went to the sink, delete a group before its members are asked for.
    let mut sink = Hooked::after_groups(|| async { fake.mutate(|t| t.delete_group(&last)) });
    sources.sync(&config, &credentials, SyncMode::Full, &mut sink).await.unwrap();
    let listed: BTreeMap<String, usize> =
        sink.collected.memberships.iter().fold(BTreeMap::new(), |mut m, x| {
            *m.entry(x.group_id.clone()).or_default() += 1;
            m
        });
    assert!(!listed.contains_key(&last));
    assert_eq!(listed.len(), groups.len() - 1);
}

#[tokio::test]
async fn a_group_whose_members_are_refused_is_left_out_of_the_coverage() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 5, users: 120, groups: 4, ..TenantSpec::default() })
        .await
        .unwrap();
    let snapshot = fake.snapshot();
    let refused = snapshot.groups.keys().next().unwrap().clone();
    fake.refuse_group_members(&refused);
    let (outcome, got) = okta_run(&fake, false, SyncMode::Full).await;
    let outcome = outcome.expect("the run goes on without that group's members");
    assert_eq!(outcome.coverage, Coverage::EverythingBut { groups_without_members: vec![refused.clone()] });
    assert_eq!(got.users().len(), snapshot.users.len());
    let others: Vec<_> = snapshot.user_members.iter().filter(|(g, _)| *g != refused).collect();
    assert_eq!(got.received()["membership"], others.len() as u64);
    assert!(got.memberships.iter().all(|m| m.group_id != refused));
    assert_eq!(
        outcome.expected["membership"],
        others.len() as u64,
        "the refused group's count is not expected"
    );
}

/// The buckets the listings of a small org fill.
const LISTING_BUCKETS: [&str; 3] = ["/api/v1/users", "/api/v1/groups", "/api/v1/groups/{id}/users"];

/// An org whose listing buckets allow `limit` requests a one-second window.
async fn limited_org(seed: u64, users: usize, page: usize, limit: u32) -> FakeOkta {
    let fake = FakeOkta::start_with(TenantSpec { seed, users, groups: 4, devices: 0 }).await.unwrap();
    fake.limit_page_size(page);
    fake.set_rate_window(Duration::from_secs(1));
    for bucket in LISTING_BUCKETS {
        fake.set_bucket_limit(bucket, limit);
    }
    fake
}

/// Runs two full syncs at once, each of which must list the whole org without meeting a 429;
/// returns the most requests one window of each listing bucket took.
async fn two_at_once(
    fake: &FakeOkta,
    one: (&Sources, &Config),
    two: (&Sources, &Config),
) -> Vec<(&'static str, u32)> {
    let credentials = okta_credentials(&fake.api_token());
    let ((first, got_one), (second, got_two)) = tokio::join!(
        run(one.0, one.1, &credentials, SyncMode::Full),
        run(two.0, two.1, &credentials, SyncMode::Full),
    );
    first.unwrap();
    second.unwrap();
    let users: BTreeSet<String> = fake.snapshot().users.keys().cloned().collect();
    assert_eq!(got_one.users().keys().cloned().collect::<BTreeSet<_>>(), users);
    assert_eq!(got_two.users().keys().cloned().collect::<BTreeSet<_>>(), users);
    assert_eq!(fake.rate_limited(), 0, "no request met a full window");
    LISTING_BUCKETS.iter().map(|bucket| (*bucket, fake.busiest_window(bucket))).collect()
}

fn half_share() -> Settings {
    serde_json::from_value(json!({"rate_limit_share": 50})).unwrap()
}

/// Two configs of one org syncing at once keep together to their share of each endpoint's
/// window, never meet a 429, and still list the whole org.
#[tokio::test]
async fn two_configs_of_one_org_keep_to_their_share_of_each_rate_limit() {
    let fake = limited_org(21, 24, 6, 8).await;
    let sources = okta_sources(&fake);
    let one = config(IntegrationType::Okta, &fake.domain(), half_share());
    let two = config(IntegrationType::Okta, &fake.domain(), half_share());
    for (bucket, busiest) in two_at_once(&fake, (&sources, &one), (&sources, &two)).await {
        assert!((1..=4).contains(&busiest), "{bucket}: {busiest} requests in one window, half of 8 is 4");
    }
}

/// Two replicas syncing configs of one org at once each pace their own requests, unaware of the
/// other's, and still keep together to their share: each leaves the rest of every window free, as
/// Okta's `X-Rate-Limit-Remaining` (everyone's requests) shows it.
#[tokio::test]
async fn two_replicas_keep_together_to_their_share_without_sharing_state() {
    let fake = limited_org(22, 40, 4, 10).await;
    // The same org under another spelling of its host: a pacer of its own, as in another process.
    let elsewhere: Vec<(&'static str, String)> = fake
        .base_urls()
        .into_iter()
        .map(|(name, url)| (name, url.replace("127.0.0.1", "localhost")))
        .collect();
    let (here, there) = (okta_sources(&fake), sources(Endpoints::overridden(elsewhere)));
    let config = config(IntegrationType::Okta, &fake.domain(), half_share());
    for (bucket, busiest) in two_at_once(&fake, (&here, &config), (&there, &config)).await {
        // Half of 10, and at most what one replica sends at once (this org's four groups'
        // members): each learns what the other took only from the replies it gets.
        assert!((1..=9).contains(&busiest), "{bucket}: {busiest} requests in one window, half of 10 is 5");
    }
}

/// Two configs of one org syncing at once, factors and roles read, with replies slow enough that
/// requests overlap: together they keep within half of Okta's smallest concurrent-request limit
/// on its current plans (35), so they never meet its 429 and leave the rest to the org's other
/// clients; on a developer org of the plan before (15), a share of 40% keeps within it too.
#[tokio::test]
async fn configs_of_one_org_keep_to_their_share_of_its_requests_in_flight() {
    for (limit, percent, most_allowed) in [(35, 50, 17), (15, 40, 14)] {
        let fake =
            FakeOkta::start_with(TenantSpec { seed: 23, users: 120, groups: 8, devices: 0 }).await.unwrap();
        fake.limit_page_size(10);
        fake.set_concurrency_limit(limit);
        let ids: Vec<String> = fake.snapshot().users.keys().cloned().collect();
        fake.mutate(|t| {
            for id in ids.iter().step_by(3) {
                t.assign_role(id, "READ_ONLY_ADMIN");
            }
        });
        fake.slow_pages(Duration::from_millis(20));
        let sources = okta_sources(&fake);
        let settings: Settings =
            serde_json::from_value(json!({"rate_limit_share": percent, "okta_include_factors": true}))
                .unwrap();
        let one = config(IntegrationType::Okta, &fake.domain(), settings.clone());
        let two = config(IntegrationType::Okta, &fake.domain(), settings);
        two_at_once(&fake, (&sources, &one), (&sources, &two)).await;
        assert_eq!(fake.concurrency_refused(), 0, "a limit of {limit}");
        let most = fake.most_in_flight();
        assert!(
            (2..=most_allowed).contains(&most),
            "{most} requests in flight at once, {percent}% of {limit}"
        );
    }
}

/// The users a push named are read one by one: one Okta still has comes back as it is now, one it
/// deleted as a removal, one it never had as a removal of nothing.
#[tokio::test]
async fn users_a_push_named_are_read_again_and_a_deleted_one_removed() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 8, users: 12, groups: 2, devices: 0 }).await.unwrap();
    let users: Vec<String> = fake.snapshot().users.keys().rev().take(2).cloned().collect();
    let (kept, deleted) = (&users[0], &users[1]);
    fake.mutate(|t| {
        t.suspend_user(kept);
        t.delete_user(deleted);
    });
    let named = [kept.clone(), deleted.clone(), "00unever".to_string()];
    let mut sink = Collected::default();
    let credentials = okta_credentials(&fake.api_token());
    let config = okta_config(&fake, false);
    let named = Named { ids: &named, after: None };
    okta_sources(&fake).refresh_users(&config, &credentials, named, &mut sink).await.unwrap();
    let got = sink.users();
    assert_eq!(got.keys().collect::<Vec<_>>(), [kept]);
    assert_eq!(got[kept].0.status, UserStatus::Suspended);
    let removed: Vec<&str> = sink
        .removals
        .iter()
        .map(|r| match r {
            ctxsync_core::Removal::Entity { source_id, .. } => source_id.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(removed, [deleted.as_str(), "00unever"]);

    // After a run, a named admin's roles are those the run has just read: no request for them.
    let (outcome, _) = okta_run(&fake, false, SyncMode::Full).await;
    let cursor = outcome.unwrap().cursor.unwrap();
    let snapshot = fake.snapshot();
    let admin = snapshot.roles.iter().find(|(_, roles)| !roles.is_empty()).expect("an admin").0.clone();
    let role_requests =
        || fake.requests_in("/api/v1/users/{id}/roles") + fake.requests_in("/api/v1/iam/assignees/users");
    let (roles_before, users_before) = (role_requests(), fake.requests_in("/api/v1/users/{id}"));
    let mut sink = Collected::default();
    let ids = [admin.clone()];
    let named = Named { ids: &ids, after: Some(&cursor) };
    okta_sources(&fake).refresh_users(&config, &credentials, named, &mut sink).await.unwrap();
    assert_eq!(sink.users()[&admin].0.admin_roles, got_roles(&snapshot, &admin));
    assert!(!sink.users()[&admin].0.admin_roles.is_empty());
    assert_eq!((role_requests(), fake.requests_in("/api/v1/users/{id}")), (roles_before, users_before + 1));
}

#[tokio::test]
async fn a_stopped_full_run_resumes_from_its_marks_and_completes_the_listing() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 5, users: 600, groups: 160, ..TenantSpec::default() })
        .await
        .unwrap();
    fake.limit_page_size(10);
    let snapshot = fake.snapshot();
    let (full, whole) = okta_run(&fake, false, SyncMode::Full).await;
    let full = full.unwrap();
    let full_requests = fake.requests();

    let (sources, config, credentials) =
        (okta_sources(&fake), okta_config(&fake, false), okta_credentials(&fake.api_token()));
    let mut first = Stopping::after(whole.pages / 2);
    let stopped = sources.sync(&config, &credentials, SyncMode::Full, &mut first).await;
    assert!(matches!(stopped, Err(SyncError::Sink(_))), "{stopped:?}");
    let marked: Vec<&String> = first.checkpoint.0.keys().collect();
    assert_eq!(marked, ["groups", "roles", "users"], "both listings got somewhere");
    let before = fake.requests();
    let (resumed, rest) =
        run(&sources, &config, &credentials, SyncMode::Resume(first.checkpoint.clone(), None)).await;
    let resumed = resumed.unwrap();
    let resumed_requests = fake.requests() - before;

    // Both parts together hand over the org; the resumed one ends as the full run did.
    let mut both = first.collected;
    both.records.extend(rest.records);
    both.memberships.extend(rest.memberships);
    assert_users_match(&both, &snapshot, &snapshot.users.keys().cloned().collect(), false);
    assert_eq!(both.groups().keys().collect::<Vec<_>>(), snapshot.groups.keys().collect::<Vec<_>>());
    assert_eq!(both.members(EntityKind::User), snapshot.user_members);
    assert_eq!(resumed.coverage, full.coverage);
    assert_eq!(resumed.expected, full.expected, "the groups' stats add up over both parts");
    assert_eq!(resumed.cursor, full.cursor, "the cursor keeps the first part's start and newest changes");
    // Together they ask for little more than one full run: the admin roles again (read before
    // any user), and the pages in flight or not yet marked when the run stopped.
    let stopped = before - full_requests;
    let extra = (stopped + resumed_requests).saturating_sub(full_requests);
    assert!(
        extra * 10 <= full_requests,
        "{extra} requests more than a full run's {full_requests} (stopped after {stopped}, resumed with {resumed_requests})"
    );
}
