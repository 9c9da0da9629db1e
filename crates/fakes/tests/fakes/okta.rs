use ctxsync_fakes::{FakeOkta, FaultKnobs, OktaPermission, TenantSpec};
use reqwest::header::LINK;

use super::*;

fn links(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all(LINK).iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

fn next_url(links: &[String]) -> Option<String> {
    links.iter().find(|l| l.ends_with("rel=\"next\"")).map(|l| l[1..l.find('>').unwrap()].to_string())
}

#[tokio::test]
async fn users_are_paged_with_separate_link_headers() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 3, users: 45, groups: 2, ..TenantSpec::default() })
        .await
        .unwrap();
    let base = fake.base_url();
    let mut url = format!("{base}/api/v1/users?limit=10");
    let (mut seen, mut pages) = (Vec::new(), 0);
    loop {
        let response = client()
            .get(&url)
            .header("Authorization", format!("SSWS {}", fake.api_token()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        for header in ["x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"] {
            assert!(response.headers().contains_key(header), "{header}");
        }
        let links = links(&response);
        assert!(
            links[0].starts_with(&format!("<{base}/api/v1/users?")) && links[0].ends_with(">; rel=\"self\"")
        );
        let next = next_url(&links);
        let users = json(response).await;
        seen.extend(users.as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()));
        pages += 1;
        match next {
            Some(n) => {
                assert!(
                    n.starts_with(&format!("{base}/api/v1/users?after=00u")) && n.ends_with("&limit=10"),
                    "{n}"
                );
                assert_eq!(links.len(), 2);
                url = n;
            }
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a user was listed twice");
    assert!(seen.len() <= 45 && seen.len() >= 40, "{}", seen.len());
    assert_eq!(pages, seen.len().div_ceil(10));
    assert!(seen.iter().all(|id| id.len() == 20 && id.starts_with("00u")));
}

#[tokio::test]
async fn errors_are_full_okta_error_objects() {
    let fake = FakeOkta::start().await.unwrap();
    let base = fake.base_url();
    let response = client().get(format!("{base}/api/v1/users/me")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("x-rate-limit-remaining"));
    let body = json(response).await;
    assert_eq!(body["errorCode"], "E0000011");
    assert_eq!(body["errorSummary"], "Invalid token provided");
    assert_eq!(body["errorLink"], "E0000011");
    assert!(body["errorId"].as_str().unwrap().starts_with("oae"));
    assert_eq!(body["errorCauses"], serde_json::json!([]));

    let token = fake.add_token(OktaPermission::NoPermission);
    let auth = format!("SSWS {token}");
    let me =
        client().get(format!("{base}/api/v1/users/me")).header("Authorization", &auth).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(json(me).await["status"], "ACTIVE");
    for path in ["users", "groups"] {
        let response = client()
            .get(format!("{base}/api/v1/{path}?limit=1"))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(json(response).await["errorCode"], "E0000006");
    }
}

#[tokio::test]
async fn groups_carry_stats_when_asked() {
    let fake = FakeOkta::start().await.unwrap();
    let response = client()
        .get(format!("{}/api/v1/groups?expand=stats", fake.base_url()))
        .header("Authorization", format!("SSWS {}", fake.api_token()))
        .send()
        .await
        .unwrap();
    let groups = json(response).await;
    assert_eq!(groups.as_array().unwrap().len(), 5);
    assert!(groups[0]["_embedded"]["stats"]["usersCount"].as_u64().unwrap() > 0);
    assert_eq!(groups[0]["type"], "OKTA_GROUP");
    // Each group's `usersCount` is its members, whatever their status; the rest is as Okta has it.
    let snapshot = fake.snapshot();
    for group in groups.as_array().unwrap() {
        let id = group["id"].as_str().unwrap();
        let stats = &group["_embedded"]["stats"];
        let members = snapshot.user_members.iter().filter(|(g, _)| g == id).count();
        assert_eq!(stats["usersCount"], members, "{id}");
        assert_eq!(stats["appsCount"], 0);
        assert_eq!(stats["hasAdminPrivilege"], false);
        let href = format!("{}/api/v1/groups/{id}/stats", fake.base_url());
        assert_eq!(stats["_links"]["self"]["href"], href.as_str());
        let mut plain = group.clone();
        plain.as_object_mut().unwrap().remove("_embedded");
        assert_eq!(plain, snapshot.groups[id], "stats are all expand adds");
    }
    // Only when asked, and kept in the next link.
    let plain = json(get(&fake, "/api/v1/groups").await).await;
    assert!(plain.as_array().unwrap().iter().all(|g| g.get("_embedded").is_none()));
    let response = get(&fake, "/api/v1/groups?expand=stats&limit=2").await;
    let next = response
        .headers()
        .get_all("link")
        .iter()
        .map(|l| l.to_str().unwrap().to_string())
        .find(|l| l.contains("rel=\"next\""));
    assert!(next.unwrap().contains("expand=stats"));
}

pub(super) async fn get(fake: &FakeOkta, path_and_query: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path_and_query}", fake.base_url()))
        .header("Authorization", format!("SSWS {}", fake.api_token()))
        .send()
        .await
        .unwrap()
}

pub(super) fn ids(users: &Value) -> Vec<String> {
    users.as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn filters_find_what_changed_and_links_keep_them() {
    let fake = FakeOkta::start().await.unwrap();
    let snapshot = fake.snapshot();
    let deprovisioned: Vec<&String> =
        snapshot.users.iter().filter(|(_, u)| u["status"] == "DEPROVISIONED").map(|(id, _)| id).collect();
    assert!(!deprovisioned.is_empty());
    let listed = ids(&json(get(&fake, "/api/v1/users?limit=200").await).await);
    assert!(deprovisioned.iter().all(|d| !listed.contains(d)), "the default listing hides DEPROVISIONED");
    let filtered = ids(&json(get(&fake, "/api/v1/users?filter=status+eq+%22DEPROVISIONED%22").await).await);
    assert_eq!(filtered.iter().collect::<Vec<_>>(), deprovisioned);

    let all: Vec<String> = snapshot.users.keys().cloned().collect();
    fake.mutate(|t| {
        t.update_user(&all[7], |u| u.profile.title = Some("CTO".into()));
        t.deprovision_user(&all[9]);
    });
    let response =
        get(&fake, "/api/v1/users?limit=1&filter=lastUpdated+gt+%222025-06-01T00:00:00.000Z%22").await;
    let next = next_url(&links(&response)).unwrap();
    assert!(next.contains("filter=lastUpdated+gt+%222025-06-01T00%3A00%3A00.000Z%22"), "{next}");
    let mut changed = ids(&json(response).await);
    changed.extend(ids(&json(get(&fake, &next[fake.base_url().len()..]).await).await));
    assert_eq!(changed, [all[7].clone(), all[9].clone()]);

    let response = get(&fake, "/api/v1/users?filter=profile.city+eq+%22Paris%22").await;
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert_eq!(body["errorCode"], "E0000031");
    assert!(body["errorCauses"][0]["errorSummary"].as_str().unwrap().contains("profile.city"));
}

#[tokio::test]
async fn groups_with_membership_changes_are_found_by_filter() {
    let fake = FakeOkta::start().await.unwrap();
    let snapshot = fake.snapshot();
    let (group, user) = {
        let group = snapshot.groups.keys().next().unwrap().clone();
        let user =
            snapshot.users.keys().find(|u| !snapshot.user_members.contains(&(group.clone(), (*u).clone())));
        (group, user.unwrap().clone())
    };
    fake.mutate(|t| t.add_member(&group, &user));
    let changed = json(
        get(&fake, "/api/v1/groups?filter=lastMembershipUpdated+gt+%222025-06-01T00:00:00.000Z%22").await,
    )
    .await;
    assert_eq!(ids(&changed), std::slice::from_ref(&group));
    let profile_changes =
        json(get(&fake, "/api/v1/groups?filter=lastUpdated+gt+%222025-06-01T00:00:00.000Z%22").await).await;
    assert_eq!(ids(&profile_changes), Vec::<String>::new());
    assert!(fake.snapshot().user_members.contains(&(group, user)));
}

#[tokio::test]
async fn members_are_paged_and_unknown_groups_are_404() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 8, users: 60, groups: 2, ..TenantSpec::default() })
        .await
        .unwrap();
    let snapshot = fake.snapshot();
    let group = snapshot.groups.keys().next().unwrap();
    let mut url = format!("/api/v1/groups/{group}/users?limit=7");
    let mut seen = Vec::new();
    loop {
        let response = get(&fake, &url).await;
        let next = next_url(&links(&response));
        seen.extend(ids(&json(response).await));
        match next {
            Some(n) => url = n[fake.base_url().len()..].to_string(),
            None => break,
        }
    }
    let want: Vec<String> =
        snapshot.user_members.iter().filter(|(g, _)| g == group).map(|(_, u)| u.clone()).collect();
    assert_eq!(seen, want);
    let response = get(&fake, "/api/v1/groups/00gNOPE/users").await;
    assert_eq!(response.status(), 404);
    assert_eq!(json(response).await["errorCode"], "E0000007");
}

#[tokio::test]
async fn roles_factors_and_assignees_need_a_token_that_may_read_them() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 2, users: 300, groups: 1, ..TenantSpec::default() })
        .await
        .unwrap();
    let snapshot = fake.snapshot();
    let first = json(get(&fake, "/api/v1/iam/assignees/users?limit=2").await).await;
    let next = first["_links"]["next"]["href"].as_str().unwrap();
    let second = json(get(&fake, &next[fake.base_url().len()..]).await).await;
    let assignees: Vec<&str> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["value"].as_array().unwrap())
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        assignees,
        snapshot.roles.keys().map(String::as_str).take(assignees.len()).collect::<Vec<_>>()
    );
    let admin = snapshot.roles.keys().next().unwrap();
    let roles = json(get(&fake, &format!("/api/v1/users/{admin}/roles")).await).await;
    assert_eq!(roles, serde_json::Value::Array(snapshot.roles[admin].clone()));
    assert_eq!(roles[0]["type"], "SUPER_ADMIN");
    let (enrolled, factors) = snapshot.factors.iter().next().unwrap();
    let served = json(get(&fake, &format!("/api/v1/users/{enrolled}/factors")).await).await;
    assert_eq!(&served, &serde_json::Value::Array(factors.clone()));

    let limited = fake.add_token(OktaPermission::UsersAndGroupsOnly);
    for path in [format!("/api/v1/users/{admin}/roles"), format!("/api/v1/users/{enrolled}/factors")] {
        let response = client()
            .get(format!("{}{path}", fake.base_url()))
            .header("Authorization", format!("SSWS {limited}"));
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn faults_are_answered_like_okta() {
    let fake = FakeOkta::start().await.unwrap();
    fake.rate_limit_next(1, std::time::Duration::from_secs(7));
    let response = get(&fake, "/api/v1/users").await;
    assert_eq!(response.status(), 429);
    let reset: i64 = response.headers()["x-rate-limit-reset"].to_str().unwrap().parse().unwrap();
    let date = response.headers()["date"].to_str().unwrap().to_string();
    let date = time::PrimitiveDateTime::parse(
        &date,
        time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ),
    )
    .unwrap()
    .assume_utc();
    assert_eq!(reset - date.unix_timestamp(), 7);
    assert_eq!(response.headers()["x-rate-limit-remaining"], "0");
    assert_eq!(json(response).await["errorCode"], "E0000047");

    fake.fail_next(1, 503);
    assert_eq!(get(&fake, "/api/v1/users").await.status(), 503);
    fake.truncate_next(1);
    let cut = get(&fake, "/api/v1/users").await.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&cut).is_err());
    assert_eq!(get(&fake, "/api/v1/users").await.status(), 200);

    fake.drop_page(ctxsync_fakes::Listing::Users, 1);
    let first = get(&fake, "/api/v1/users?limit=5").await;
    let next = next_url(&links(&first)).unwrap();
    let second = get(&fake, &next[fake.base_url().len()..]).await;
    let (first, second) = (ids(&json(first).await), ids(&json(second).await));
    let listed = ids(&json(get(&fake, "/api/v1/users?limit=200").await).await);
    assert_eq!(second[0], listed[10], "the second page was skipped");
    assert_eq!(first, listed[..5]);

    fake.revoke_all_tokens();
    assert_eq!(get(&fake, "/api/v1/users").await.status(), 401);
}

#[tokio::test]
async fn pages_can_be_capped_overlapped_and_reversed() {
    let fake = FakeOkta::start().await.unwrap();
    let listed = ids(&json(get(&fake, "/api/v1/users?limit=200").await).await);
    fake.limit_page_size(4);
    let first = get(&fake, "/api/v1/users?limit=200").await;
    let next = next_url(&links(&first)).unwrap();
    assert!(next.ends_with("limit=4"), "{next}");
    assert_eq!(ids(&json(first).await), listed[..4]);

    // The first page points back into its middle: the second repeats its last two users.
    fake.overlap_page(ctxsync_fakes::Listing::Users, 0);
    let first = get(&fake, "/api/v1/users").await;
    let next = next_url(&links(&first)).unwrap();
    let second = ids(&json(get(&fake, &next[fake.base_url().len()..]).await).await);
    assert_eq!(ids(&json(first).await), listed[..4]);
    assert_eq!(second, listed[2..6]);

    fake.reverse_page(ctxsync_fakes::Listing::Users, 0);
    let reversed = ids(&json(get(&fake, "/api/v1/users").await).await);
    assert_eq!(reversed, listed[..4].iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(fake.pages_served(ctxsync_fakes::Listing::Users), 5);
}

#[tokio::test]
async fn held_faults_meet_the_request_they_were_aimed_at() {
    let fake = FakeOkta::start().await.unwrap();
    fake.hold_faults(2);
    fake.fail_next(1, 503);
    fake.revoke_credentials_next();
    assert_eq!(get(&fake, "/api/v1/users").await.status(), 200);
    assert_eq!(get(&fake, "/api/v1/users").await.status(), 200);
    let revoked = get(&fake, "/api/v1/users").await;
    assert_eq!(revoked.status(), 401, "the third request revoked the token");
    assert_eq!(json(revoked).await["errorCode"], "E0000011");
    assert_eq!(get(&fake, "/api/v1/users").await.status(), 503);
    fake.restore_credentials();
    assert_eq!(get(&fake, "/api/v1/users").await.status(), 200);
}
