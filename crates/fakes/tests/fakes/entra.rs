use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use ctxsync_fakes::{FakeEntra, Listing, TenantSpec};
use serde_json::{Value, json};

use super::*;
use ctxsync_fakes::FaultKnobs;

async fn request_token(fake: &FakeEntra, tenant: &str, id: &str, secret: &str) -> reqwest::Response {
    client()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", fake.login_base_url()))
        .form(&[
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap()
}

pub(super) async fn access_token(fake: &FakeEntra) -> String {
    let body =
        json(request_token(fake, &fake.tenant_id(), &fake.client_id(), &fake.client_secret()).await).await;
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn login_errors_are_aadsts_bodies() {
    let fake = FakeEntra::start().await.unwrap();
    let response = request_token(&fake, &fake.domain(), &fake.client_id(), "wrong").await;
    assert_eq!(response.status(), 401);
    let body = json(response).await;
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000215]));
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with("AADSTS7000215: Invalid client secret provided."));
    assert!(description.contains("\r\nTrace ID: ") && description.contains("\r\nCorrelation ID: "));
    for key in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[key].is_string(), "{key}");
    }

    let response =
        request_token(&fake, "other.onmicrosoft.com", &fake.client_id(), &fake.client_secret()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error_codes"], json!([90002]));
    let response = request_token(&fake, &fake.tenant_id(), "11111111-1111-1111-1111-111111111111", "x").await;
    assert_eq!(json(response).await["error"], "unauthorized_client");
}

#[tokio::test]
async fn users_are_paged_by_next_links_on_the_fake() {
    let fake = FakeEntra::start_with(TenantSpec { seed: 5, users: 31, groups: 3, ..TenantSpec::default() })
        .await
        .unwrap();
    let token = access_token(&fake).await;
    let base = fake.graph_base_url();
    let mut url = format!("{base}/v1.0/users?$top=10&$select=id,displayName");
    let mut ids = BTreeSet::new();
    loop {
        let body = json(client().get(&url).bearer_auth(&token).send().await.unwrap()).await;
        for user in body["value"].as_array().unwrap() {
            let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["displayName", "id"]);
            assert!(ids.insert(user["id"].as_str().unwrap().to_string()));
        }
        match body.get("@odata.nextLink") {
            Some(next) => {
                url = next.as_str().unwrap().to_string();
                assert!(url.starts_with(&format!("{base}/v1.0/users?$top=10&")), "{url}");
            }
            None => break,
        }
    }
    assert!((28..=31).contains(&ids.len()), "{}", ids.len());
}

#[tokio::test]
async fn graph_checks_top_select_and_tokens() {
    let fake = FakeEntra::start().await.unwrap();
    let token = access_token(&fake).await;
    let base = fake.graph_base_url();
    let response =
        client().get(format!("{base}/v1.0/users?$top=1000")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        json(response).await["error"]["message"],
        "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
    );
    let response =
        client().get(format!("{base}/v1.0/users?$select=nope")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 400);

    let body =
        json(client().get(format!("{base}/v1.0/users?$top=1")).bearer_auth(&token).send().await.unwrap())
            .await;
    let keys: BTreeSet<&str> = body["value"][0].as_object().unwrap().keys().map(String::as_str).collect();
    assert!(keys.contains("userPrincipalName") && !keys.contains("accountEnabled"), "{keys:?}");

    let response =
        client().get(format!("{base}/v1.0/groups")).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(json(response).await["error"]["code"], "InvalidAuthenticationToken");

    let (id, secret) = fake.app_without_consent();
    let body = json(request_token(&fake, &fake.domain(), &id, &secret).await).await;
    let unconsented = body["access_token"].as_str().unwrap();
    let response = client().get(format!("{base}/v1.0/groups")).bearer_auth(unconsented).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(json(response).await["error"]["code"], "Authorization_RequestDenied");
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let fake = FakeEntra::start().await.unwrap();
    let token = access_token(&fake).await;
    fake.throttle_next(2, 7);
    let url = format!("{}/v1.0/groups?$top=1", fake.graph_base_url());
    for _ in 0..2 {
        let response = client().get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(json(response).await["error"]["code"], "TooManyRequests");
    }
    assert_eq!(client().get(&url).bearer_auth(&token).send().await.unwrap().status(), 200);
}

/// Every item of a delta round from `url`, and the round's delta link.
pub(super) async fn delta_round(
    token: &str,
    mut url: String,
    page_size: usize,
) -> (Vec<Value>, String, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let response = client()
            .get(&url)
            .bearer_auth(token)
            .header("Prefer", format!("odata.maxpagesize={page_size}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["preference-applied"], format!("odata.maxpagesize={page_size}"));
        let body = json(response).await;
        pages += 1;
        items.extend(body["value"].as_array().unwrap().iter().cloned());
        match (body.get("@odata.nextLink"), body.get("@odata.deltaLink")) {
            (Some(next), None) => url = next.as_str().unwrap().to_string(),
            (None, Some(delta)) => return (items, delta.as_str().unwrap().to_string(), pages),
            _ => panic!("a page ends with exactly one link: {body}"),
        }
    }
}

pub(super) fn ids(items: &[Value]) -> BTreeSet<String> {
    items.iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn delta_rounds_list_everything_then_only_changes() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 8, users: 120, groups: 4, devices: 6 }).await.unwrap();
    let token = access_token(&fake).await;
    let base = fake.graph_base_url();
    let select = "id,displayName,accountEnabled,manager";
    let (users, delta, pages) =
        delta_round(&token, format!("{base}/v1.0/users/delta?$select={select}"), 50).await;
    assert_eq!(pages, 3);
    let snapshot = fake.snapshot();
    assert_eq!(ids(&users), snapshot.users.keys().cloned().collect());
    for user in &users {
        let keys: BTreeSet<&str> = user.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            keys.is_subset(&BTreeSet::from(["id", "displayName", "accountEnabled", "manager@delta"])),
            "{keys:?}"
        );
        let manager = user.get("manager@delta").map(|m| m[0]["id"].as_str().unwrap().to_string());
        assert_eq!(manager.as_ref(), snapshot.managers.get(user["id"].as_str().unwrap()));
    }
    assert!(delta.starts_with(&format!("{base}/v1.0/users/delta?$deltatoken=")), "{delta}");

    let (quiet, delta, _) = delta_round(&token, delta, 50).await;
    assert!(quiet.is_empty(), "{quiet:?}");

    let first = users[0]["id"].as_str().unwrap().to_string();
    let second = users[1]["id"].as_str().unwrap().to_string();
    let added = fake.mutate(|t| {
        t.update_user(&first, |u| u.display_name = "Renamed".into());
        t.delete_user(&second);
        t.add_user("Katherine", "Johnson")
    });
    let (changes, _, _) = delta_round(&token, delta, 50).await;
    let by_id = |id: &str| changes.iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("{id} missing"));
    assert_eq!(by_id(&first)["displayName"], "Renamed");
    assert_eq!(by_id(&second)["@removed"], json!({"reason": "deleted"}));
    assert_eq!(by_id(&added)["accountEnabled"], true);
}

#[tokio::test]
async fn group_deltas_split_big_groups_and_report_member_changes() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 4, users: 90, groups: 5, devices: 12 }).await.unwrap();
    fake.limit_members_per_page(7);
    let token = access_token(&fake).await;
    let start = format!("{}/v1.0/groups/delta?$select=id,displayName,members", fake.graph_base_url());
    let (groups, delta, pages) = delta_round(&token, start, 999).await;
    assert!(pages > 5, "{pages}");
    let mut members = BTreeSet::new();
    for group in &groups {
        for m in group["members@delta"].as_array().unwrap_or(&Vec::new()) {
            assert!(m.get("@removed").is_none());
            let kind = m["@odata.type"].as_str().unwrap().trim_start_matches("#microsoft.graph.").to_string();
            members.insert((
                group["id"].as_str().unwrap().to_string(),
                kind,
                m["id"].as_str().unwrap().to_string(),
            ));
        }
    }
    let expected: BTreeSet<(String, String, String)> =
        fake.snapshot().memberships.into_iter().map(|(g, k, m)| (g, k.as_str().to_string(), m)).collect();
    assert_eq!(members, expected);
    assert!(expected.iter().any(|(_, k, _)| k == "device") && expected.iter().any(|(_, k, _)| k == "group"));

    let (group, member) =
        expected.iter().find(|(_, k, _)| k == "user").map(|(g, _, m)| (g.clone(), m.clone())).unwrap();
    fake.mutate(|t| t.remove_member(&group, &member));
    let (changes, _, _) = delta_round(&token, delta, 999).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["id"], group.as_str());
    assert_eq!(
        changes[0]["members@delta"],
        json!([{"@odata.type": "#microsoft.graph.user", "id": member, "@removed": {"reason": "deleted"}}])
    );
}

#[tokio::test]
async fn expired_tokens_are_gone_and_delta_refuses_top() {
    let fake = FakeEntra::start().await.unwrap();
    let token = access_token(&fake).await;
    let base = fake.graph_base_url();
    let (_, delta, _) = delta_round(&token, format!("{base}/v1.0/devices/delta"), 999).await;
    fake.expire_delta_tokens();
    let response = client().get(&delta).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 410);
    assert_eq!(response.headers()["location"], format!("{base}/v1.0/devices/delta"));
    assert_eq!(json(response).await["error"]["code"], "syncStateNotFound");
    let garbage = format!("{base}/v1.0/users/delta?$deltatoken=not-a-token");
    assert_eq!(client().get(&garbage).bearer_auth(&token).send().await.unwrap().status(), 410);

    let response =
        client().get(format!("{base}/v1.0/users/delta?$top=5")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn filtered_user_deltas_and_role_assignments() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 6, users: 300, groups: 2, devices: 0 }).await.unwrap();
    let token = access_token(&fake).await;
    let base = fake.graph_base_url();
    let some: Vec<String> = fake.mutate(|t| t.users().map(|(id, _)| id).take(3).collect());
    fake.mutate(|t| {
        t.assign_role(&some[1], "Security Reader");
        t.assign_role(&some[2], "Global Reader");
        t.assign_role(&some[2], "User Administrator");
    });
    let snapshot = fake.snapshot();
    let wanted: Vec<&String> = snapshot.users.keys().take(3).collect();
    let filter = wanted.iter().map(|id| format!("id eq '{id}'")).collect::<Vec<_>>().join(" or ");
    let url = format!("{base}/v1.0/users/delta?$select=id&$filter={}", filter.replace(' ', "+"));
    let (users, _, _) = delta_round(&token, url, 999).await;
    assert_eq!(ids(&users), wanted.into_iter().cloned().collect());

    let mut url =
        format!("{base}/v1.0/roleManagement/directory/roleAssignments?$expand=roleDefinition&$top=2");
    let mut held = BTreeSet::new();
    loop {
        let body = json(client().get(&url).bearer_auth(&token).send().await.unwrap()).await;
        for a in body["value"].as_array().unwrap() {
            held.insert((
                a["principalId"].as_str().unwrap().to_string(),
                a["roleDefinition"]["displayName"].as_str().unwrap().to_string(),
            ));
        }
        match body.get("@odata.nextLink") {
            Some(next) => url = next.as_str().unwrap().to_string(),
            None => break,
        }
    }
    let expected: BTreeSet<(String, String)> = snapshot
        .admin_roles
        .iter()
        .flat_map(|(u, roles)| roles.iter().map(move |r| (u.clone(), r.clone())))
        .collect();
    assert!(expected.len() > 2);
    assert_eq!(held, expected);

    fake.withdraw_permission("RoleManagement.Read.Directory");
    let token = access_token(&fake).await;
    let response = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn faults_break_graph_on_purpose() {
    let fake = FakeEntra::start_with(TenantSpec { seed: 1, users: 30, groups: 2, devices: 0 }).await.unwrap();
    let token = access_token(&fake).await;
    let url = format!("{}/v1.0/users/delta?$select=id", fake.graph_base_url());
    let get = || client().get(&url).bearer_auth(&token).send();

    fake.fail_next(1, 503);
    let response = get().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(json(response).await["error"]["code"], "serviceNotAvailable");

    fake.truncate_next(1);
    let cut = get().await.unwrap().text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&cut).is_err(), "{cut}");

    fake.slow_pages(std::time::Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(get().await.unwrap().status(), 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    fake.slow_pages(std::time::Duration::ZERO);

    fake.drop_page(Listing::Users, 0);
    let (users, _, _) = delta_round(&token, url.clone(), 10).await;
    assert_eq!(users.len(), fake.snapshot().users.len() - 10, "one page of ten lost");

    fake.revoke_secret();
    let response = request_token(&fake, &fake.domain(), &fake.client_id(), &fake.client_secret()).await;
    assert_eq!(json(response).await["error"], "invalid_client");
    assert_eq!(get().await.unwrap().status(), 200, "tokens issued before still work");
    fake.expire_access_tokens();
    let response = get().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(json(response).await["error"]["code"], "InvalidAuthenticationToken");
}

#[tokio::test]
async fn counts_are_plain_integers_behind_consistency_level_eventual() {
    let fake = FakeEntra::start_with(TenantSpec { seed: 2, users: 40, groups: 4, devices: 7 }).await.unwrap();
    let token = access_token(&fake).await;
    let base = fake.graph_base_url();
    let count = |collection: &str, token: &str, eventual: bool| {
        let mut request = client().get(format!("{base}/v1.0/{collection}/$count")).bearer_auth(token);
        if eventual {
            request = request.header("ConsistencyLevel", "eventual");
        }
        request.send()
    };

    let response = count("users", &token, false).await.unwrap();
    assert_eq!(response.status(), 400);
    let error = json(response).await;
    assert_eq!(error["error"]["code"], "Request_UnsupportedQuery");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("'ConsistencyLevel:eventual' header is missing"), "{message}");
    assert!(error["error"]["innerError"]["request-id"].is_string());
    let response = count("users", "not-a-token", true).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(json(response).await["error"]["code"], "InvalidAuthenticationToken");

    let snapshot = fake.snapshot();
    let sizes = [("users", snapshot.users.len()), ("groups", snapshot.groups.len()), ("devices", 7)];
    for (collection, size) in sizes {
        let response = count(collection, &token, true).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/plain");
        assert_eq!(response.text().await.unwrap(), size.to_string(), "{collection}");
    }
    let gone = snapshot.users.keys().next().unwrap().clone();
    fake.mutate(|t| t.delete_user(&gone));
    let after = count("users", &token, true).await.unwrap().text().await.unwrap();
    assert_eq!(after, (snapshot.users.len() - 1).to_string());

    // The app's permissions and the faults apply, but a count is never cut in half.
    let (id, secret) = fake.app_without_consent();
    let body = json(request_token(&fake, &fake.tenant_id(), &id, &secret).await).await;
    let unconsented = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(count("devices", &unconsented, true).await.unwrap().status(), 403);
    fake.fail_next(1, 503);
    assert_eq!(count("groups", &token, true).await.unwrap().status(), 503);
    fake.truncate_next(1);
    assert_eq!(count("groups", &token, true).await.unwrap().text().await.unwrap(), "4");
}

#[test]
fn a_hundred_thousand_user_tenant_generates_quickly() {
    // Timing is for benchmarks; this only proves the generator scales (memberships grow with
    // people, not people × teams) and stays deterministic.
    let spec = TenantSpec { seed: 99, users: 20_000, groups: 1_000, devices: 2_000 };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let snapshot = runtime.block_on(async { FakeEntra::start_with(spec).await.unwrap().snapshot() });
    let per_user = snapshot.memberships.len() as f64 / snapshot.users.len() as f64;
    assert!((4.0..6.5).contains(&per_user), "{per_user}");
    assert_eq!(snapshot.devices.len(), 2_000);
}

#[tokio::test]
async fn device_lists_expand_registered_owners_like_graph() {
    let fake =
        FakeEntra::start_with(TenantSpec { seed: 6, users: 80, groups: 3, devices: 230 }).await.unwrap();
    let token = access_token(&fake).await;
    let base = fake.graph_base_url();
    let snapshot = fake.snapshot();
    let expand = "$select=id,displayName&$expand=registeredOwners($select=id)";

    // At most 100 devices a page once owners are expanded, the expansion kept in the next link.
    let mut url = format!("{base}/v1.0/devices?$top=999&{expand}");
    let mut owners = BTreeMap::new();
    let mut pages = 0;
    loop {
        let body = json(client().get(&url).bearer_auth(&token).send().await.unwrap()).await;
        pages += 1;
        let devices = body["value"].as_array().unwrap();
        assert!(devices.len() <= 100, "{}", devices.len());
        for device in devices {
            let keys: BTreeSet<&str> = device.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, BTreeSet::from(["displayName", "id", "registeredOwners"]));
            let listed = device["registeredOwners"].as_array().unwrap();
            assert!(listed.len() <= 1);
            for owner in listed {
                assert_eq!(owner, &json!({"@odata.type": "#microsoft.graph.user", "id": owner["id"]}));
                owners.insert(
                    device["id"].as_str().unwrap().to_string(),
                    owner["id"].as_str().unwrap().to_string(),
                );
            }
        }
        match body.get("@odata.nextLink") {
            Some(next) => {
                url = next.as_str().unwrap().to_string();
                assert!(url.contains("registeredOwners"), "{url}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(owners, snapshot.device_owners);
    assert!(snapshot.device_owners.len() < snapshot.devices.len(), "some devices have no owner");

    // Without a nested $select, owners come with a user's default properties.
    let body = json(
        client()
            .get(format!("{base}/v1.0/devices?$top=5&$expand=registeredOwners"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let owner = body["value"].as_array().unwrap().iter().find_map(|d| d["registeredOwners"].get(0)).unwrap();
    assert!(owner["userPrincipalName"].is_string() && owner["@odata.type"] == "#microsoft.graph.user");

    // Devices by id: `id in (…)` of at most 15 values.
    let chosen: Vec<&String> = snapshot.devices.keys().take(15).collect();
    let quoted: Vec<String> = chosen.iter().map(|id| format!("'{id}'")).collect();
    let filtered = |ids: &[String]| {
        let filter = format!("id in ({})", ids.join(","));
        let mut url = url::Url::parse(&format!("{base}/v1.0/devices")).unwrap();
        url.query_pairs_mut()
            .append_pair("$filter", &filter)
            .append_pair("$select", "id")
            .append_pair("$expand", "registeredOwners($select=id)");
        client().get(url).bearer_auth(&token).send()
    };
    let body = json(filtered(&quoted).await.unwrap()).await;
    let got: BTreeSet<&str> =
        body["value"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(got, chosen.iter().map(|s| s.as_str()).collect());
    let mut sixteen = quoted.clone();
    sixteen.push(format!("'{}'", snapshot.devices.keys().nth(15).unwrap()));
    let response = filtered(&sixteen).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"]["code"], "Request_UnsupportedQuery");

    // Unknown relationships and owner properties are Graph's 400s; the token is checked first.
    for bad in ["$expand=owners", "$expand=registeredOwners($select=nope)"] {
        let response =
            client().get(format!("{base}/v1.0/devices?{bad}")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    let response = client().get(format!("{base}/v1.0/devices?{expand}")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let (id, secret) = fake.app_without_consent();
    let body = json(request_token(&fake, &fake.domain(), &id, &secret).await).await;
    let response = client()
        .get(format!("{base}/v1.0/devices?{expand}"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Refused owners: the expansion answers 403, the plain list still works.
    fake.refuse_device_owners();
    let response =
        client().get(format!("{base}/v1.0/devices?{expand}")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(json(response).await["error"]["code"], "Authorization_RequestDenied");
    let response =
        client().get(format!("{base}/v1.0/devices?$top=1")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn owner_changes_alone_are_not_in_the_device_delta() {
    let fake = FakeEntra::start_with(TenantSpec { seed: 6, users: 40, groups: 2, devices: 8 }).await.unwrap();
    let token = access_token(&fake).await;
    let base = fake.graph_base_url();
    // "Sync from now": no devices, a delta link from the present.
    let (items, delta, pages) = delta_round(
        &token,
        format!("{base}/v1.0/devices/delta?$select=id,displayName&$deltatoken=latest"),
        10,
    )
    .await;
    assert_eq!((items.len(), pages), (0, 1));
    let snapshot = fake.snapshot();
    let (device, owner) = snapshot.device_owners.iter().next().unwrap();
    let other = snapshot.users.keys().find(|u| *u != owner).unwrap().clone();
    let renamed = snapshot.devices.keys().find(|d| *d != device).unwrap().clone();
    fake.mutate(|t| {
        t.set_device_owner(device, Some(&other));
        t.update_device(&renamed, |d| d.display_name = "Renamed".into());
    });
    let (changes, _, _) = delta_round(&token, delta, 10).await;
    assert_eq!(ids(&changes), BTreeSet::from([renamed]));
    assert_eq!(changes[0].as_object().unwrap().keys().collect::<Vec<_>>(), ["displayName", "id"]);
    assert_eq!(fake.snapshot().device_owners[device], other);
}
