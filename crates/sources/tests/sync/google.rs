use std::collections::BTreeSet;
use std::time::Duration;

use ctxsync_core::{EntityKind, UserStatus};
use ctxsync_fakes::{FakeGoogle, FaultKnobs, GoogleRateLimit, Listing, Snapshot, TenantSpec};
use ctxsync_sources::{Coverage, Cursor, GoogleQuota, SourceError};
use serde_json::json;
use tokio::time::Instant;

use super::*;

fn google_sources(fake: &FakeGoogle) -> Sources {
    sources(Endpoints::overridden(fake.base_urls()))
}

fn google_config(fake: &FakeGoogle) -> Config {
    config(IntegrationType::GoogleWorkspace, &fake.domain(), Settings::new())
}

fn google_credentials(fake: &FakeGoogle) -> Credentials {
    credentials(
        IntegrationType::GoogleWorkspace,
        json!({ "service_account_json": fake.service_account_json(), "admin_email": fake.admin_email() }),
    )
}

async fn google_run(fake: &FakeGoogle, mode: SyncMode) -> (Result<Outcome, SyncError>, Collected) {
    run(&google_sources(fake), &google_config(fake), &google_credentials(fake), mode).await
}

fn flag(value: &Value, key: &str) -> bool {
    value[key].as_bool().unwrap_or(false)
}

fn assert_equals_account(got: &Collected, snapshot: &Snapshot) {
    let users = got.users();
    assert_eq!(users.keys().collect::<Vec<_>>(), snapshot.users.keys().collect::<Vec<_>>());
    for (id, (user, raw)) in users {
        let want = &snapshot.users[&id];
        assert_eq!(&raw, want, "raw JSON of {id}");
        assert_eq!(user.login, text(want, "/primaryEmail").unwrap());
        let others = want["emails"].as_array().into_iter().flatten().map(|e| e["address"].as_str());
        let aliases = want["aliases"].as_array().into_iter().flatten().map(Value::as_str);
        let emails = addresses(std::iter::once(text(want, "/primaryEmail")).chain(others).chain(aliases));
        assert_eq!(user.emails, emails, "{id}");
        let status = match (flag(want, "archived"), flag(want, "suspended")) {
            (true, _) => UserStatus::Deprovisioned,
            (false, true) => UserStatus::Suspended,
            _ => UserStatus::Active,
        };
        assert_eq!(user.status, status, "{id}");
        assert_eq!(user.given_name.as_deref(), text(want, "/name/givenName"));
        assert_eq!(user.family_name.as_deref(), text(want, "/name/familyName"));
        assert_eq!(user.display_name.as_deref(), text(want, "/name/fullName"));
        assert_eq!(user.department.as_deref(), text(want, "/organizations/0/department"));
        assert_eq!(user.title.as_deref(), text(want, "/organizations/0/title"));
        assert_eq!(user.manager.as_deref(), text(want, "/relations/0/value"));
        assert_eq!(user.employee_id.as_deref(), text(want, "/externalIds/0/value"));
        let mut roles = Vec::new();
        if flag(want, "isAdmin") {
            roles.push("super_admin");
        }
        if flag(want, "isDelegatedAdmin") {
            roles.push("delegated_admin");
        }
        assert_eq!(user.admin_roles, roles, "{id}");
        assert_eq!(user.mfa_enrolled, Some(flag(want, "isEnrolledIn2Sv")));
    }
    let groups = got.groups();
    assert_eq!(groups.keys().collect::<Vec<_>>(), snapshot.groups.keys().collect::<Vec<_>>());
    for (id, (group, raw)) in groups {
        assert_eq!(&raw, &snapshot.groups[&id]);
        assert_eq!(group.email.as_deref(), text(&raw, "/email"));
        assert_eq!(Some(group.name.as_str()), text(&raw, "/name"));
    }
    assert_eq!(got.members(EntityKind::User), snapshot.user_members);
    assert_eq!(got.members(EntityKind::Group), snapshot.group_members);
    let listed = snapshot.user_members.len() + snapshot.group_members.len();
    assert_eq!(got.memberships.len(), listed, "a membership was listed twice");
}

#[tokio::test]
async fn a_full_sync_equals_the_account_across_many_pages() {
    let fake =
        FakeGoogle::start_with(TenantSpec { seed: 5, users: 1_100, groups: 10, ..TenantSpec::default() })
            .await
            .unwrap();
    let snapshot = fake.snapshot();
    // The account exercises what the mapping reads: nesting, the whole-account member, states.
    assert!(!snapshot.group_members.is_empty());
    let customer_groups =
        fake.mutate(|t| t.groups().filter(|g| g.members().any(|(_, kind)| kind == "CUSTOMER")).count());
    assert_eq!(customer_groups, 1);
    for key in ["archived", "suspended", "isDelegatedAdmin", "isEnrolledIn2Sv"] {
        assert!(snapshot.users.values().any(|u| flag(u, key)), "nobody is {key}");
    }
    assert!(
        snapshot.groups.keys().any(|g| snapshot.user_members.iter().filter(|(m, _)| m == g).count() > 200)
    );

    let (outcome, got) = google_run(&fake, SyncMode::Full).await;
    let outcome = outcome.unwrap();
    // The groups' `directMembersCount`s, less the whole-account member the run leaves out, are
    // the memberships handed over; Google counts nothing else.
    let memberships = (snapshot.user_members.len() + snapshot.group_members.len()) as u64;
    let direct: u64 = snapshot
        .groups
        .values()
        .map(|g| g["directMembersCount"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(direct, memberships + 1);
    let expected = BTreeMap::from([("membership".to_string(), memberships)]);
    assert_eq!(outcome, Outcome { cursor: None, coverage: Coverage::Everything, expected });
    assert_eq!(got.received()["membership"], memberships);
    assert_equals_account(&got, &snapshot);
    assert_eq!(got.retries, 0);
    assert_eq!(fake.tokens_issued(), 1);
    assert!(groups_of_one_page(&snapshot).is_empty());
    assert!(got.whole_groups.is_empty(), "no page names a group of several pages whole");
}

/// Each group whose members fit one page, with how many of them name an entity: the groups a
/// full run's pages name whole.
fn groups_of_one_page(snapshot: &Snapshot) -> BTreeMap<String, usize> {
    let members = || snapshot.user_members.iter().chain(&snapshot.group_members);
    snapshot
        .groups
        .iter()
        .filter(|(_, g)| g["directMembersCount"].as_str().unwrap().parse::<u64>().unwrap() <= 200)
        .map(|(id, _)| (id.clone(), members().filter(|(g, _)| g == id).count()))
        .filter(|(_, named)| *named > 0)
        .collect()
}

#[tokio::test]
async fn a_page_with_all_of_a_groups_members_names_it_whole() {
    let fake = FakeGoogle::start_with(TenantSpec { seed: 5, users: 300, groups: 8, ..TenantSpec::default() })
        .await
        .unwrap();
    let snapshot = fake.snapshot();
    let (outcome, got) = google_run(&fake, SyncMode::Full).await;
    assert_eq!(outcome.unwrap().coverage, Coverage::Everything);
    assert_equals_account(&got, &snapshot);
    let whole = groups_of_one_page(&snapshot);
    assert!(!whole.is_empty());
    assert_eq!(got.whole_groups, whole);
}

#[tokio::test]
async fn an_incremental_run_lists_everything() {
    let fake = FakeGoogle::start().await.unwrap();
    let (added, removed) = fake.mutate(|t| {
        let ids: Vec<String> = t.users().map(|u| u.id().to_string()).collect();
        t.suspend_user(&ids[3]);
        t.deprovision_user(&ids[4]);
        t.delete_user(&ids[5]);
        (t.add_user("Grace", "Hopper"), ids[5].clone())
    });
    let (outcome, got) = google_run(&fake, SyncMode::Incremental(Cursor(json!(null)))).await;
    // Listing everything, the run is checked as a full one is.
    let expected = BTreeMap::from([("membership".to_string(), got.memberships.len() as u64)]);
    assert_eq!(outcome.unwrap(), Outcome { cursor: None, coverage: Coverage::Everything, expected });
    assert_equals_account(&got, &fake.snapshot());
    let users = got.users();
    assert!(users.contains_key(&added) && !users.contains_key(&removed));
}

#[tokio::test]
async fn a_lost_page_of_members_falls_short_of_the_direct_members_count() {
    let fake = FakeGoogle::start_with(TenantSpec { seed: 9, users: 600, groups: 4, ..TenantSpec::default() })
        .await
        .unwrap();
    let snapshot = fake.snapshot();
    let memberships = (snapshot.user_members.len() + snapshot.group_members.len()) as u64;
    // The first group's first page of members is skipped; its next page comes instead.
    let first = snapshot.groups.keys().next().unwrap();
    let first_members = snapshot.user_members.iter().filter(|(g, _)| g == first).count();
    assert!(first_members > 200, "{first_members}");
    fake.drop_page(Listing::Members, 0);
    let (outcome, got) = google_run(&fake, SyncMode::Full).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.expected["membership"], memberships);
    assert_eq!(got.received()["membership"], memberships - 200);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_are_backed_off_whatever_their_status() {
    for reason in [
        GoogleRateLimit::UserRateLimitExceeded,
        GoogleRateLimit::RateLimitExceeded,
        GoogleRateLimit::QuotaExceeded,
    ] {
        let fake = FakeGoogle::start().await.unwrap();
        fake.rate_limit_next(3, reason);
        let started = Instant::now();
        let (outcome, got) = google_run(&fake, SyncMode::Full).await;
        outcome.unwrap_or_else(|e| panic!("{reason:?}: {e}"));
        // No Retry-After from Google: 1 s, 2 s and 4 s, each ±25%.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs_f64(5.25) && waited <= Duration::from_secs_f64(8.75),
            "{waited:?}"
        );
        assert_eq!(got.retries, 3, "{reason:?}");
        assert_equals_account(&got, &fake.snapshot());
    }
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_cut_bodies_are_retried() {
    let fake = FakeGoogle::start().await.unwrap();
    fake.fail_next(2, 502);
    let (outcome, got) = google_run(&fake, SyncMode::Full).await;
    outcome.unwrap();
    assert_eq!(got.retries, 2);
    fake.truncate_next(2);
    let (outcome, got) = google_run(&fake, SyncMode::Full).await;
    outcome.unwrap();
    assert_eq!(got.retries, 2);
    assert_equals_account(&got, &fake.snapshot());
}

#[tokio::test]
async fn a_token_that_expires_mid_run_is_minted_again() {
    let fake = FakeGoogle::start().await.unwrap();
    let sources = google_sources(&fake);
    let (config, credentials) = (google_config(&fake), google_credentials(&fake));
    let mut sink = Hooked::new(1, || async { fake.expire_access_tokens() });
    sources.sync(&config, &credentials, SyncMode::Full, &mut sink).await.unwrap();
    assert_equals_account(&sink.collected, &fake.snapshot());
    assert_eq!(fake.tokens_issued(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_token_is_renewed_before_it_expires() {
    let fake = FakeGoogle::start().await.unwrap();
    let sources = google_sources(&fake);
    let (config, credentials) = (google_config(&fake), google_credentials(&fake));
    // Nearly an hour passes by the client's clock; the fake would still take the token.
    let mut sink = Hooked::new(1, || tokio::time::advance(Duration::from_secs(3_300)));
    sources.sync(&config, &credentials, SyncMode::Full, &mut sink).await.unwrap();
    assert_equals_account(&sink.collected, &fake.snapshot());
    assert_eq!(fake.tokens_issued(), 2);
    assert_eq!(sink.collected.retries, 0);
}

#[tokio::test]
async fn a_service_account_revoked_mid_run_is_rejected() {
    let fake = FakeGoogle::start().await.unwrap();
    let sources = google_sources(&fake);
    let (config, credentials) = (google_config(&fake), google_credentials(&fake));
    let mut sink = Hooked::new(1, || async { fake.revoke_service_account() });
    match sources.sync(&config, &credentials, SyncMode::Full, &mut sink).await {
        Err(SyncError::Source(SourceError::Rejected(message))) => {
            assert!(message.contains("Invalid JWT Signature. (invalid_grant)"), "{message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(sink.collected.pages, 1);
}

#[tokio::test]
async fn members_of_a_group_deleted_mid_run_are_skipped() {
    let fake = FakeGoogle::start().await.unwrap();
    let groups: Vec<String> = fake.snapshot().groups.into_keys().collect();
    let last = groups.last().unwrap().clone();
    let sources = google_sources(&fake);
    let (config, credentials) = (google_config(&fake), google_credentials(&fake));
    let mut sink = Hooked::new(2, || async { fake.mutate(|t| t.delete_group(&last)) });
    sources.sync(&config, &credentials, SyncMode::Full, &mut sink).await.unwrap();
    let listed: BTreeSet<&String> = sink.collected.memberships.iter().map(|m| &m.group_id).collect();
    assert!(!listed.contains(&last));
    assert_eq!(listed.len(), groups.len() - 1);
}

#[tokio::test]
async fn a_group_whose_members_are_refused_is_left_out_of_the_coverage() {
    let fake = FakeGoogle::start_with(TenantSpec { seed: 5, users: 120, groups: 4, ..TenantSpec::default() })
        .await
        .unwrap();
    let snapshot = fake.snapshot();
    let refused = snapshot.groups.keys().next().unwrap().clone();
    fake.refuse_group_members(&refused);
    let (outcome, got) = google_run(&fake, SyncMode::Full).await;
    let outcome = outcome.expect("the run goes on without that group's members");
    assert_eq!(outcome.coverage, Coverage::EverythingBut { groups_without_members: vec![refused.clone()] });
    assert_eq!(got.users().len(), snapshot.users.len());
    assert_eq!(got.groups().len(), snapshot.groups.len(), "the group itself is listed");
    let others = snapshot.user_members.iter().chain(&snapshot.group_members).filter(|(g, _)| *g != refused);
    let others = others.count() as u64;
    assert_eq!(got.received()["membership"], others);
    assert!(got.memberships.iter().all(|m| m.group_id != refused));
    assert_eq!(outcome.expected["membership"], others, "the refused group's count is not expected");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_that_outlasts_the_retries_is_not_taken_for_a_refused_group() {
    let fake = FakeGoogle::start().await.unwrap();
    google_run(&fake, SyncMode::Full).await.0.unwrap();
    // A run's last request lists a group's members: from there on, Google's 403 that means
    // "slow down" never ends.
    fake.hold_faults(fake.requests() - 1);
    fake.rate_limit_next(1_000, GoogleRateLimit::UserRateLimitExceeded);
    let (outcome, _) = google_run(&fake, SyncMode::Full).await;
    match outcome {
        Err(SyncError::Source(SourceError::Unreachable(message))) => {
            assert!(message.contains("userRateLimitExceeded"), "{message}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stopped_full_run_resumes_from_its_marks_and_completes_the_listing() {
    let fake =
        FakeGoogle::start_with(TenantSpec { seed: 6, users: 300, groups: 40, ..TenantSpec::default() })
            .await
            .unwrap();
    fake.limit_page_size(10);
    let snapshot = fake.snapshot();
    let (full, whole) = google_run(&fake, SyncMode::Full).await;
    let full = full.unwrap();
    let full_requests = fake.requests();

    let (sources, config, credentials) =
        (google_sources(&fake), google_config(&fake), google_credentials(&fake));
    for stop_at in [whole.pages / 4, whole.pages * 3 / 4] {
        let before = fake.requests();
        let mut first = Stopping::after(stop_at);
        let stopped = sources.sync(&config, &credentials, SyncMode::Full, &mut first).await;
        assert!(matches!(stopped, Err(SyncError::Sink(_))), "{stopped:?}");
        assert!(!first.checkpoint.0.is_empty());
        let middle = fake.requests();
        let (resumed, rest) =
            run(&sources, &config, &credentials, SyncMode::Resume(first.checkpoint.clone(), None)).await;
        let resumed = resumed.unwrap();
        let (stopped, resumed_requests) = (middle - before, fake.requests() - middle);

        let mut both = first.collected;
        both.records.extend(rest.records);
        both.memberships.extend(rest.memberships);
        // What the stopped run handed over after its last mark is listed again; the store keeps
        // one of each.
        let key = |m: &ctxsync_core::Membership| (m.group_id.clone(), m.member_kind, m.member_id.clone());
        both.memberships.sort_by_key(key);
        both.memberships.dedup_by_key(|m| key(m));
        assert_equals_account(&both, &snapshot);
        assert_eq!(resumed, full, "the same coverage and member totals over both parts");
        let extra = (stopped + resumed_requests).saturating_sub(full_requests);
        assert!(
            extra * 10 <= full_requests,
            "{extra} requests more than a full run's {full_requests} (stopped after {stopped}, resumed with {resumed_requests})"
        );
    }

    let refused =
        ctxsync_sources::Checkpoint(json!({"users": {"next": "not a token"}}).as_object().unwrap().clone());
    let (result, _) = run(&sources, &config, &credentials, SyncMode::Resume(refused, None)).await;
    assert_eq!(result.unwrap_err(), SyncError::CursorExpired, "a token Google refuses means starting over");
}

/// Groups made and deleted while a run stands still move the others on its page: the resumed run
/// still lists every group's members, whatever their position now.
#[tokio::test]
async fn a_resumed_groups_page_that_moved_still_lists_every_group() {
    let fake =
        FakeGoogle::start_with(TenantSpec { seed: 7, users: 120, groups: 30, ..TenantSpec::default() })
            .await
            .unwrap();
    fake.limit_page_size(10);
    let (sources, config, credentials) =
        (google_sources(&fake), google_config(&fake), google_credentials(&fake));
    let (_, whole) = google_run(&fake, SyncMode::Full).await;
    // Stop inside a page of groups some of whose groups are done.
    let mut first = Stopping::after(0);
    for take in (whole.pages / 2..whole.pages).rev() {
        first = Stopping::after(take);
        let _ = sources.sync(&config, &credentials, SyncMode::Full, &mut first).await;
        let done = first.checkpoint.0.get("groups").and_then(|g| g["done"].as_array().map(Vec::len));
        if done.is_some_and(|done| done > 0 && done < 10) {
            break;
        }
    }
    let done = first.checkpoint.0["groups"]["done"].as_array().unwrap().clone();
    assert!(!done.is_empty(), "a page of groups was part done: {:?}", first.checkpoint);
    let first_user = fake.snapshot().users.keys().next().unwrap().clone();
    fake.mutate(|t| {
        t.delete_group(done[0].as_str().unwrap());
        let made = t.add_group("Made meanwhile");
        t.add_member(&made, &first_user);
    });

    let (resumed, rest) =
        run(&sources, &config, &credentials, SyncMode::Resume(first.checkpoint.clone(), None)).await;
    resumed.unwrap();
    let now = fake.snapshot();
    let groups: BTreeSet<String> =
        first.collected.groups().into_keys().chain(rest.groups().into_keys()).collect();
    assert!(now.groups.keys().all(|g| groups.contains(g)), "every group now in the account was handed over");
    let members: BTreeSet<(String, String)> =
        first.collected.members(EntityKind::User).into_iter().chain(rest.members(EntityKind::User)).collect();
    let missing: Vec<&(String, String)> = now.user_members.iter().filter(|m| !members.contains(*m)).collect();
    assert!(missing.is_empty(), "memberships never handed over: {missing:?}");
}

/// The users a push named are read one by one, as a listing maps them: one Google still has comes
/// back as it is now, one it deleted and one it never had as removals.
#[tokio::test]
async fn users_a_push_named_are_read_again_and_a_deleted_one_removed() {
    let fake =
        FakeGoogle::start_with(TenantSpec { seed: 8, users: 12, groups: 2, devices: 0 }).await.unwrap();
    let users: Vec<String> = fake.snapshot().users.keys().rev().take(2).cloned().collect();
    let (kept, deleted) = (&users[0], &users[1]);
    fake.mutate(|t| {
        t.suspend_user(kept);
        t.delete_user(deleted);
    });
    let named = [kept.clone(), deleted.clone(), "100000000404".to_string()];
    let mut sink = Collected::default();
    let (config, credentials) = (google_config(&fake), google_credentials(&fake));
    let named = Named { ids: &named, after: None };
    google_sources(&fake).refresh_users(&config, &credentials, named, &mut sink).await.unwrap();
    let got = sink.users();
    assert_eq!(got.keys().collect::<Vec<_>>(), [kept]);
    assert_eq!(got[kept].0.status, UserStatus::Suspended);
    assert_eq!(&got[kept].1, &fake.snapshot().users[kept], "the raw JSON as users.get serves it");
    let removed: Vec<&str> = sink
        .removals
        .iter()
        .map(|r| match r {
            ctxsync_core::Removal::Entity { kind: EntityKind::User, source_id } => source_id.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(removed, [deleted.as_str(), "100000000404"]);
}

/// Push opens a `users.watch` channel per event with the config's token, and stopping them
/// (twice: the second finds them stopped already) leaves none.
#[tokio::test]
async fn channels_are_opened_per_event_and_stopped() {
    let fake = FakeGoogle::start().await.unwrap();
    let (config, credentials) = (google_config(&fake), google_credentials(&fake));
    let sources = google_sources(&fake);
    let request = ctxsync_sources::SubscriptionRequest {
        notification_url: "http://127.0.0.1:9/push",
        lifecycle_url: "",
        client_state: "t0ken",
    };
    let made = sources.subscribe(&config, &credentials, &request).await.unwrap();
    let resources: Vec<&str> = made.iter().map(|s| s.resource.as_str()).collect();
    let events = ["add", "delete", "makeAdmin", "undelete", "update"];
    assert_eq!(resources, events.map(|e| format!("users?event={e}")));
    let open = fake.channels();
    assert_eq!(open.len(), 5);
    for subscription in &made {
        let channel = open.iter().find(|c| c.id == subscription.id).unwrap();
        assert_eq!(subscription.resource_id.as_deref(), Some(channel.resource_id.as_str()));
        assert_eq!(
            (channel.token.as_deref(), channel.address.as_str()),
            (Some("t0ken"), "http://127.0.0.1:9/push")
        );
        assert!((subscription.expires_at - channel.expires).abs() < time::Duration::milliseconds(1));
        assert_eq!(subscription.renew_at, subscription.expires_at - time::Duration::hours(1));
    }
    assert_eq!(sources.renew_subscription(&config, &credentials, &made[0].id).await.unwrap(), None);
    for _ in 0..2 {
        for s in &made {
            sources.unsubscribe(&config, &credentials, &s.id, s.resource_id.as_deref()).await.unwrap();
        }
    }
    assert!(fake.channels().is_empty());
}

/// An account whose project lets each admin make `queries` Directory requests a one-second
/// window, and sources told so (Google never reports its quota).
async fn limited_account(seed: u64, queries: u32) -> (FakeGoogle, Sources) {
    let fake = FakeGoogle::start_with(TenantSpec { seed, users: 300, groups: 40, devices: 0 }).await.unwrap();
    fake.set_directory_quota(queries, Duration::from_secs(1));
    let quota = GoogleQuota { queries, window: Duration::from_secs(1) };
    let sources = sources(Endpoints::overridden(fake.base_urls()).with_google_quota(quota));
    (fake, sources)
}

fn with_share(fake: &FakeGoogle, percent: u8) -> Config {
    let settings = serde_json::from_value(json!({"rate_limit_share": percent})).unwrap();
    config(IntegrationType::GoogleWorkspace, &fake.domain(), settings)
}

/// Two configs of one service account and admin syncing at once share one pacer: together they
/// keep to their share of the quota, meet no refusal, list the whole account, and take about the
/// least time the share allows.
#[tokio::test(start_paused = true)]
async fn two_configs_of_one_account_and_admin_keep_to_their_share_of_the_directory_quota() {
    let (fake, sources) = limited_account(41, 20).await;
    let (one, two) = (with_share(&fake, 50), with_share(&fake, 50));
    let creds = google_credentials(&fake);
    let started = Instant::now();
    let ((a, first), (b, second)) = tokio::join!(
        run(&sources, &one, &creds, SyncMode::Full),
        run(&sources, &two, &creds, SyncMode::Full),
    );
    let took = started.elapsed();
    a.unwrap();
    b.unwrap();
    let snapshot = fake.snapshot();
    assert_equals_account(&first, &snapshot);
    assert_equals_account(&second, &snapshot);
    assert_eq!(fake.rate_limited(), 0, "no request met a full window");
    let busiest = fake.busiest_window();
    assert!((5..=10).contains(&busiest), "{busiest} requests in one window, half of 20 is 10");
    let least = Duration::from_secs(fake.queries_served().div_ceil(10) - 1);
    assert!(
        took <= least.mul_f64(1.15) + Duration::from_secs(1),
        "took {took:?}, the share allows {least:?}"
    );
}

/// Two replicas of one service account and admin cannot see each other's use (Google reports
/// none): untold of each other, each keeps to the share on its own, so together they take more
/// than one share; told that two processes sync the domain (as the sync engine tells them from
/// the store's leases), each keeps to half of it.
#[tokio::test(start_paused = true)]
async fn replicas_keep_to_the_share_together_only_when_told_of_each_other() {
    for told in [false, true] {
        let (fake, here) = limited_account(43, 40).await;
        let elsewhere =
            fake.base_urls().into_iter().map(|(name, url)| (name, url.replace("127.0.0.1", "localhost")));
        let quota = GoogleQuota { queries: 40, window: Duration::from_secs(1) };
        let there = sources(Endpoints::overridden(elsewhere).with_google_quota(quota));
        let (config, creds) = (with_share(&fake, 50), google_credentials(&fake));
        let split = |processes| {
            for replica in [&here, &there] {
                let key = replica.shared_limit(IntegrationType::GoogleWorkspace, &config.domain).unwrap();
                replica.split_limit(&key, processes);
            }
        };
        split(if told { 2 } else { 1 });
        let ((a, _), (b, _)) = tokio::join!(
            run(&here, &config, &creds, SyncMode::Full),
            run(&there, &config, &creds, SyncMode::Full),
        );
        a.unwrap();
        b.unwrap();
        let busiest = fake.busiest_window();
        let expected = if told { 11..=20 } else { 21..=40 };
        assert!(
            expected.contains(&busiest),
            "told {told}: {busiest} requests in one window, a share of 40 is 20"
        );
        assert_eq!(fake.rate_limited(), 0, "two shares of 50% fit the quota");
        // The splits outlive the fake, whose port a later test's may take.
        split(1);
    }
}

/// Validating credentials, which an API caller waits on, does not wait for a share a sync has
/// filled: its requests go at once and are counted, so the next sync waits for them instead.
#[tokio::test(start_paused = true)]
async fn validation_goes_at_once_and_the_next_sync_waits_for_it() {
    let fake =
        FakeGoogle::start_with(TenantSpec { seed: 44, users: 30, groups: 3, devices: 0 }).await.unwrap();
    let window = Duration::from_secs(600);
    fake.set_directory_quota(8, window);
    let sources = sources(
        Endpoints::overridden(fake.base_urls()).with_google_quota(GoogleQuota { queries: 8, window }),
    );
    let (config, creds) = (with_share(&fake, 50), google_credentials(&fake));
    let started = Instant::now();
    for _ in 0..3 {
        sources.validate(&config.domain, &config.settings, &creds).await.unwrap();
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "six requests went at once, over a share of four");
    let (outcome, got) = run(&sources, &config, &creds, SyncMode::Full).await;
    outcome.unwrap();
    assert_equals_account(&got, &fake.snapshot());
    assert!(started.elapsed() >= window, "the sync waited for the validations to slide out");
    assert_eq!(fake.rate_limited(), 0, "six of a quota of eight");
}

/// A refusal that comes anyway (here the pacer was told of a larger quota than the project has,
/// as when another tool spends it) is Google's 403, backed off and retried until the run completes.
#[tokio::test(start_paused = true)]
async fn refusals_of_the_quota_are_retried_and_the_run_completes() {
    let fake =
        FakeGoogle::start_with(TenantSpec { seed: 42, users: 300, groups: 40, devices: 0 }).await.unwrap();
    fake.set_directory_quota(10, Duration::from_secs(1));
    let told = GoogleQuota { queries: 40, window: Duration::from_secs(1) };
    let sources = sources(Endpoints::overridden(fake.base_urls()).with_google_quota(told));
    let (outcome, got) =
        run(&sources, &google_config(&fake), &google_credentials(&fake), SyncMode::Full).await;
    outcome.unwrap();
    assert_equals_account(&got, &fake.snapshot());
    assert!(fake.rate_limited() > 0, "the quota refused some requests");
    assert_eq!(u64::from(got.retries), fake.rate_limited(), "each refusal was retried");
    assert_eq!(fake.busiest_window(), 10);
}

/// The token falls due while several groups' members are being asked for at once, some groups
/// over several pages: one token is minted for them all and the listing goes on.
#[tokio::test(start_paused = true)]
async fn a_token_falls_due_while_members_are_listed_at_once() {
    let fake =
        FakeGoogle::start_with(TenantSpec { seed: 48, users: 300, groups: 40, devices: 0 }).await.unwrap();
    fake.limit_page_size(10);
    let sources = google_sources(&fake);
    let (config, credentials) = (google_config(&fake), google_credentials(&fake));
    // Users come first, 30 pages of them; then the groups and their members, in some 80 pages.
    for after in (32..110).step_by(7) {
        let issued = fake.tokens_issued();
        let mut sink = Hooked::new(after, || tokio::time::advance(Duration::from_secs(3_300)));
        sources.sync(&config, &credentials, SyncMode::Full, &mut sink).await.unwrap();
        assert_equals_account(&sink.collected, &fake.snapshot());
        assert_eq!(fake.tokens_issued() - issued, 2, "after page {after}");
        assert_eq!(sink.collected.retries, 0);
    }
}

/// Several groups' members are asked for at once, so a run waits on Google's replies far less
/// than one request after another would, and the account still arrives whole.
#[tokio::test(start_paused = true)]
async fn several_groups_members_are_asked_for_at_once() {
    let fake =
        FakeGoogle::start_with(TenantSpec { seed: 47, users: 100, groups: 40, devices: 0 }).await.unwrap();
    let delay = Duration::from_millis(100);
    fake.slow_pages(delay);
    let started = Instant::now();
    let (outcome, got) = google_run(&fake, SyncMode::Full).await;
    let took = started.elapsed();
    outcome.unwrap();
    assert_equals_account(&got, &fake.snapshot());
    // Each request waits a delay: one after another, the run would wait them all.
    let one_at_a_time = delay * fake.queries_served() as u32;
    assert!(took < one_at_a_time.mul_f64(0.6), "took {took:?}, one request at a time {one_at_a_time:?}");
}
