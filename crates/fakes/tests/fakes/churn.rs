//! The churn, step by step: what it changes shows in each fake's own listings and in their
//! incremental filters and delta rounds, exactly.

use std::collections::{BTreeMap, BTreeSet};

use ctxsync_fakes::{Change, ChangeKind, Churn, Fakes, Source, TenantSpec};
use serde_json::Value;

use super::*;

const SPEC: TenantSpec = TenantSpec { seed: 5, users: 60, groups: 6, devices: 4 };

fn made_in(changes: &[Change], source: Source) -> Vec<&Change> {
    changes.iter().filter(|c| c.source == source).collect()
}

/// The users whose own record changed (a move changes groups, not the user).
fn changed_users(changes: &[&Change]) -> BTreeSet<String> {
    changes.iter().filter(|c| !matches!(c.kind, ChangeKind::Moved { .. })).map(|c| c.id.clone()).collect()
}

/// What the changes leave behind, the last change of each thing winning.
#[derive(Default)]
struct Outcome {
    /// Whether each user the churn suspended or reactivated ends suspended.
    suspended: BTreeMap<String, bool>,
    family_name: BTreeMap<String, String>,
    /// Whether (group, user) ends a membership.
    member: BTreeMap<(String, String), bool>,
    /// Groups whose members changed.
    regrouped: BTreeSet<String>,
}

fn outcome(changes: &[&Change]) -> Outcome {
    let mut out = Outcome::default();
    for c in changes {
        let user = c.id.clone();
        match &c.kind {
            ChangeKind::Suspended => _ = out.suspended.insert(user, true),
            ChangeKind::Reactivated => _ = out.suspended.insert(user, false),
            ChangeKind::Renamed { family_name } => _ = out.family_name.insert(user, family_name.clone()),
            ChangeKind::Hired { group } => {
                out.member.insert((group.clone(), user), true);
                out.regrouped.insert(group.clone());
            }
            ChangeKind::Moved { from, to } => {
                out.member.insert((from.clone(), user.clone()), false);
                out.member.insert((to.clone(), user), true);
                out.regrouped.extend([from.clone(), to.clone()]);
            }
            host => panic!("{host:?} made in an identity provider"),
        }
    }
    out
}

#[tokio::test]
async fn every_kind_of_change_is_made_in_every_tenant() {
    let fakes = Fakes::start_with(SPEC).await.unwrap();
    let mut churn = Churn::new(1);
    let changes: Vec<Change> = (0..5).flat_map(|_| churn.step(&fakes)).collect();
    let kinds = |source| -> Vec<&str> {
        made_in(&changes, source)
            .iter()
            .map(|c| match c.kind {
                ChangeKind::Suspended => "suspended",
                ChangeKind::Reactivated => "reactivated",
                ChangeKind::Hired { .. } => "hired",
                ChangeKind::Renamed { .. } => "renamed",
                ChangeKind::Moved { .. } => "moved",
                ChangeKind::Contained => "contained",
                ChangeKind::Released => "released",
                ChangeKind::HostAdded { .. } => "host added",
                ChangeKind::LoggedOn { .. } => "logged on",
                ChangeKind::OsUpdated { .. } => "os updated",
            })
            .collect()
    };
    for source in [Source::Okta, Source::Google, Source::Entra] {
        assert_eq!(kinds(source), ["suspended", "reactivated", "hired", "renamed", "moved"], "{source:?}");
    }
    for source in [Source::CrowdStrike, Source::SentinelOne] {
        let want = ["contained", "released", "host added", "logged on", "os updated"];
        assert_eq!(kinds(source), want, "{source:?}");
    }
    let again: Vec<Change> = {
        let fakes = Fakes::start_with(SPEC).await.unwrap();
        let mut churn = Churn::new(1);
        (0..5).flat_map(|_| churn.step(&fakes)).collect()
    };
    let users = |c: &[Change]| {
        c.iter().filter(|c| c.source != Source::Entra).map(|c| c.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(users(&again), users(&changes), "a seed repeats its changes");
}

#[tokio::test]
async fn okta_lists_the_changes_and_its_filters_find_exactly_them() {
    let fakes = Fakes::start_with(SPEC).await.unwrap();
    let mut churn = Churn::new(2);
    let changes: Vec<Change> = (0..10).flat_map(|_| churn.step(&fakes)).collect();
    let okta = made_in(&changes, Source::Okta);
    let fake = &fakes.okta;

    let filter = |attribute: &str| {
        let f = format!("{attribute} gt \"2025-06-01T00:00:00.000Z\"");
        url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
    };
    let updated = okta::ids(
        &json(okta::get(fake, &format!("/api/v1/users?filter={}", filter("lastUpdated"))).await).await,
    );
    assert_eq!(updated.into_iter().collect::<BTreeSet<_>>(), changed_users(&okta));
    let regrouped: BTreeSet<String> = okta::ids(
        &json(okta::get(fake, &format!("/api/v1/groups?filter={}", filter("lastMembershipUpdated"))).await)
            .await,
    )
    .into_iter()
    .collect();
    let expected = outcome(&okta);
    assert!(expected.regrouped.is_subset(&regrouped), "{:?} not all in {regrouped:?}", expected.regrouped);
    for (user, suspended) in &expected.suspended {
        let status = json(okta::get(fake, &format!("/api/v1/users/{user}")).await).await["status"].clone();
        assert_eq!(status, if *suspended { "SUSPENDED" } else { "ACTIVE" }, "{user}");
    }
    for (user, family_name) in &expected.family_name {
        let profile = json(okta::get(fake, &format!("/api/v1/users/{user}")).await).await["profile"].clone();
        assert_eq!(profile["lastName"], family_name.as_str(), "{user}");
    }
    for ((group, user), member) in &expected.member {
        let members = okta::ids(&json(okta::get(fake, &format!("/api/v1/groups/{group}/users")).await).await);
        assert_eq!(members.contains(user), *member, "{user} in {group}");
    }
}

#[tokio::test]
async fn google_lists_the_changes() {
    let fakes = Fakes::start_with(SPEC).await.unwrap();
    let mut churn = Churn::new(3);
    let changes: Vec<Change> = (0..10).flat_map(|_| churn.step(&fakes)).collect();
    let google = made_in(&changes, Source::Google);
    let token = google::admin_token(&fakes.google).await;
    let query = [("customer", "my_customer"), ("maxResults", "500")];
    let listed = json(google::directory(&fakes.google, &token, "users", &query).await).await;
    let by_id: BTreeMap<&str, &Value> =
        listed["users"].as_array().unwrap().iter().map(|u| (u["id"].as_str().unwrap(), u)).collect();
    let expected = outcome(&google);
    for (user, suspended) in &expected.suspended {
        assert_eq!(by_id[user.as_str()]["suspended"], *suspended, "{user}");
    }
    for (user, family_name) in &expected.family_name {
        assert_eq!(by_id[user.as_str()]["name"]["familyName"], family_name.as_str(), "{user}");
    }
    for ((group, user), member) in &expected.member {
        let path = format!("groups/{group}/members");
        let members = json(google::directory(&fakes.google, &token, &path, &[]).await).await;
        let ids: Vec<&str> =
            members["members"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids.contains(&user.as_str()), *member, "{user} in {group}");
    }
}

#[tokio::test]
async fn entra_delta_rounds_report_exactly_the_changes() {
    let fakes = Fakes::start_with(SPEC).await.unwrap();
    let base = fakes.entra.graph_base_url();
    let token = entra::access_token(&fakes.entra).await;
    let (_, users_delta, _) =
        entra::delta_round(&token, format!("{base}/v1.0/users/delta?$select=id,accountEnabled,surname"), 100)
            .await;
    let (_, groups_delta, _) =
        entra::delta_round(&token, format!("{base}/v1.0/groups/delta?$select=id,members"), 100).await;
    let mut churn = Churn::new(4);
    let changes: Vec<Change> = (0..10).flat_map(|_| churn.step(&fakes)).collect();
    let entra = made_in(&changes, Source::Entra);

    let (users, _, _) = entra::delta_round(&token, users_delta, 100).await;
    assert_eq!(entra::ids(&users), changed_users(&entra));
    let by_id = |id: &str| users.iter().find(|u| u["id"] == id).unwrap();
    let expected = outcome(&entra);
    for (user, suspended) in &expected.suspended {
        assert_eq!(by_id(user)["accountEnabled"], !suspended, "{user}");
    }
    for (user, family_name) in &expected.family_name {
        assert_eq!(by_id(user)["surname"], family_name.as_str(), "{user}");
    }
    let (groups, _, _) = entra::delta_round(&token, groups_delta, 100).await;
    assert_eq!(entra::ids(&groups), expected.regrouped);
}

#[tokio::test]
async fn the_fleets_show_what_the_churn_did_to_their_hosts() {
    let fakes = Fakes::start_with(SPEC).await.unwrap();
    let mut churn = Churn::new(3);
    let changes: Vec<Change> = (0..5).flat_map(|_| churn.step(&fakes)).collect();
    let falcon = fakes.crowdstrike.snapshot();
    let console = fakes.sentinelone.snapshot();
    for change in made_in(&changes, Source::CrowdStrike) {
        let host = &falcon[&change.id];
        match &change.kind {
            ChangeKind::Contained | ChangeKind::Released => {}
            ChangeKind::HostAdded { handle } | ChangeKind::LoggedOn { handle } => {
                assert!(host["last_login_user"].as_str().unwrap().contains(handle.as_str()), "{change:?}");
            }
            ChangeKind::OsUpdated { build } => assert_eq!(host["os_build"], build.as_str()),
            user => panic!("{user:?} made in a fleet"),
        }
    }
    for change in made_in(&changes, Source::SentinelOne) {
        let agent = &console[&change.id];
        match &change.kind {
            ChangeKind::Contained | ChangeKind::Released => {}
            ChangeKind::HostAdded { handle } | ChangeKind::LoggedOn { handle } => {
                assert!(
                    agent["lastLoggedInUserName"].as_str().unwrap().contains(handle.as_str()),
                    "{change:?}"
                );
            }
            ChangeKind::OsUpdated { build } => assert_eq!(agent["osRevision"], build.as_str()),
            user => panic!("{user:?} made in a fleet"),
        }
    }
    // Contained, then released: the one host contained last is free again.
    let contained = |c: &&Change| c.kind == ChangeKind::Contained;
    let released =
        made_in(&changes, Source::CrowdStrike).into_iter().find(|c| c.kind == ChangeKind::Released);
    let first = made_in(&changes, Source::CrowdStrike).into_iter().find(contained).unwrap();
    assert_eq!(
        released.map(|r| r.id.as_str()),
        Some(first.id.as_str()),
        "the only contained host is released"
    );
    assert_eq!(falcon[&first.id]["status"], "normal");
}
