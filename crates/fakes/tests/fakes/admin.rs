//! The admin API under `/_fake/{source}/…`, seen over HTTP, and fakes started again with the
//! credentials they handed out.

use ctxsync_fakes::{FakeEntra, FakeGoogle, FakeOkta, Fakes, Ports, TenantSpec};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;

const SPEC: TenantSpec = TenantSpec { seed: 11, users: 40, groups: 6, devices: 4 };
/// Before every change a test makes (generated timestamps are in 2024 and early 2025).
const CUT: &str = "2025-06-01T00:00:00.000Z";

async fn admin(base: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = client().request(method, format!("{base}{path}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(base: &str, path: &str) -> (StatusCode, Value) {
    admin(base, Method::POST, path, None).await
}

fn okta_filter(attribute: &str) -> String {
    let filter = format!("{attribute} gt \"{CUT}\"");
    url::form_urlencoded::byte_serialize(filter.as_bytes()).collect()
}

#[tokio::test]
async fn okta_changes_show_in_listings_filters_and_totals() {
    let fake = FakeOkta::start_with(SPEC).await.unwrap();
    let base = fake.base_url();
    let me = json(okta::get(&fake, "/api/v1/users/me").await).await["id"].as_str().unwrap().to_string();
    let snapshot = fake.snapshot();
    let user = snapshot.users.iter().find(|(id, u)| **id != me && u["status"] == "ACTIVE").unwrap().0.clone();

    assert_eq!(
        post(&base, &format!("/_fake/okta/users/{user}/suspend")).await,
        (StatusCode::OK, json!({"id": user}))
    );
    let suspended = json(okta::get(&fake, "/api/v1/users?filter=status+eq+%22SUSPENDED%22").await).await;
    assert!(okta::ids(&suspended).contains(&user));
    let changed =
        json(okta::get(&fake, &format!("/api/v1/users?filter={}", okta_filter("lastUpdated"))).await).await;
    assert_eq!(okta::ids(&changed), std::slice::from_ref(&user));
    assert_eq!(post(&base, &format!("/_fake/okta/users/{user}/suspend")).await.0, StatusCode::CONFLICT);
    assert_eq!(post(&base, &format!("/_fake/okta/users/{user}/unsuspend")).await.0, StatusCode::OK);
    assert_eq!(json(okta::get(&fake, &format!("/api/v1/users/{user}")).await).await["status"], "ACTIVE");
    assert_eq!(post(&base, "/_fake/okta/users/00unobody/suspend").await.0, StatusCode::NOT_FOUND);

    let (status, hired) = admin(
        &base,
        Method::POST,
        "/_fake/okta/users",
        Some(json!({"given_name": "Amara", "family_name": "Okafor"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let hired = hired["id"].as_str().unwrap().to_string();
    let profile = json(okta::get(&fake, &format!("/api/v1/users/{hired}")).await).await["profile"].clone();
    assert_eq!(
        (profile["login"].as_str(), profile["lastName"].as_str()),
        (Some("amara.okafor@acme.com"), Some("Okafor"))
    );
    let again = json!({"given_name": "Amara", "family_name": "Okafor"});
    assert_eq!(admin(&base, Method::POST, "/_fake/okta/users", Some(again)).await.0, StatusCode::CONFLICT);
    let renamed = admin(
        &base,
        Method::POST,
        &format!("/_fake/okta/users/{hired}/rename"),
        Some(json!({"family_name": "Novak"})),
    )
    .await;
    assert_eq!(renamed.0, StatusCode::OK);
    let profile = json(okta::get(&fake, &format!("/api/v1/users/{hired}")).await).await["profile"].clone();
    assert_eq!(
        (profile["lastName"].as_str(), profile["displayName"].as_str()),
        (Some("Novak"), Some("Amara Novak"))
    );

    let group = snapshot.groups.keys().next().unwrap().clone();
    let members_path = format!("/_fake/okta/groups/{group}/members/{hired}");
    assert_eq!(admin(&base, Method::PUT, &members_path, None).await.0, StatusCode::OK);
    let members = json(okta::get(&fake, &format!("/api/v1/groups/{group}/users")).await).await;
    assert!(okta::ids(&members).contains(&hired));
    let moved = json(
        okta::get(&fake, &format!("/api/v1/groups?filter={}", okta_filter("lastMembershipUpdated"))).await,
    )
    .await;
    assert_eq!(okta::ids(&moved), std::slice::from_ref(&group));
    assert_eq!(admin(&base, Method::DELETE, &members_path, None).await.0, StatusCode::OK);
    let members = json(okta::get(&fake, &format!("/api/v1/groups/{group}/users")).await).await;
    assert!(!okta::ids(&members).contains(&hired));
    let nowhere = format!("/_fake/okta/groups/00gnowhere/members/{hired}");
    assert_eq!(admin(&base, Method::PUT, &nowhere, None).await.0, StatusCode::NOT_FOUND);

    let (status, cleared) = post(&base, "/_fake/okta/clear_users").await;
    assert_eq!(
        (status, cleared["deleted"].as_u64()),
        (StatusCode::OK, Some(snapshot.users.len() as u64 - 1))
    );
    let left = fake.snapshot();
    assert_eq!(left.users.len(), 2, "the token's admin and the non-admin stay");
    assert!(left.users.contains_key(&me));
    let groups = json(okta::get(&fake, "/api/v1/groups?expand=stats").await).await;
    let total: u64 = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["_embedded"]["stats"]["usersCount"].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, left.user_members.len(), "group totals follow the deletions");
}

#[tokio::test]
async fn a_dropped_page_goes_missing_from_the_next_listing() {
    let fake = FakeOkta::start_with(SPEC).await.unwrap();
    let base = fake.base_url();
    let whole = okta::ids(&json(okta::get(&fake, "/api/v1/users?limit=10").await).await);
    let (status, _) =
        admin(&base, Method::POST, "/_fake/okta/drop_page", Some(json!({"listing": "users"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let skipped = okta::ids(&json(okta::get(&fake, "/api/v1/users?limit=10").await).await);
    assert!(skipped.iter().all(|id| !whole.contains(id)), "the first page's users are not served");
    let bad =
        admin(&base, Method::POST, "/_fake/okta/drop_page", Some(json!({"listing": "everything"}))).await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn google_changes_show_in_the_directory_listing() {
    let fake = FakeGoogle::start_with(SPEC).await.unwrap();
    let base = fake.directory_base_url();
    let token = google::admin_token(&fake).await;
    let list = || async {
        let query = [("customer", "my_customer"), ("maxResults", "500")];
        json(google::directory(&fake, &token, "users", &query).await).await["users"]
            .as_array()
            .unwrap()
            .clone()
    };
    let admin_email = fake.admin_email();
    let user = list()
        .await
        .into_iter()
        .find(|u| {
            u["primaryEmail"] != admin_email.as_str() && u["suspended"] == false && u["archived"] == false
        })
        .unwrap();
    let id = user["id"].as_str().unwrap().to_string();

    assert_eq!(post(&base, &format!("/_fake/google/users/{id}/suspend")).await.0, StatusCode::OK);
    let renamed = admin(
        &base,
        Method::POST,
        &format!("/_fake/google/users/{id}/rename"),
        Some(json!({"family_name": "Moreau"})),
    )
    .await;
    assert_eq!(renamed.0, StatusCode::OK);
    let now = list().await.into_iter().find(|u| u["id"] == id.as_str()).unwrap();
    assert_eq!(
        (now["suspended"].as_bool(), now["name"]["familyName"].as_str()),
        (Some(true), Some("Moreau"))
    );
    assert_ne!(now["etag"], user["etag"]);
    assert_eq!(post(&base, &format!("/_fake/google/users/{id}/unsuspend")).await.0, StatusCode::OK);
    assert_eq!(list().await.into_iter().find(|u| u["id"] == id.as_str()).unwrap()["suspended"], false);

    let (status, cleared) = post(&base, "/_fake/google/clear_users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(cleared["deleted"].as_u64().unwrap() > 30);
    let left: Vec<String> =
        list().await.iter().map(|u| u["primaryEmail"].as_str().unwrap().to_string()).collect();
    assert_eq!(left.len(), 2, "the impersonated admin and the non-admin stay: {left:?}");
    assert!(left.contains(&admin_email));
}

#[tokio::test]
async fn entra_changes_show_in_delta_rounds_and_counts() {
    let fake = FakeEntra::start_with(SPEC).await.unwrap();
    let base = fake.graph_base_url();
    let token = entra::access_token(&fake).await;
    let (users, delta, _) =
        entra::delta_round(&token, format!("{base}/v1.0/users/delta?$select=id,accountEnabled,surname"), 100)
            .await;
    let id = users.iter().find(|u| u["accountEnabled"] == true).unwrap()["id"].as_str().unwrap().to_string();

    assert_eq!(post(&base, &format!("/_fake/entra/users/{id}/suspend")).await.0, StatusCode::OK);
    let (changes, _, _) = entra::delta_round(&token, delta, 100).await;
    assert_eq!(entra::ids(&changes), [id.clone()].into());
    assert_eq!(changes[0]["accountEnabled"], false);

    let (status, cleared) = post(&base, "/_fake/entra/clear_users").await;
    assert_eq!((status, cleared["deleted"].as_u64()), (StatusCode::OK, Some(users.len() as u64)));
    let count = client()
        .get(format!("{base}/v1.0/users/$count"))
        .bearer_auth(&token)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    assert_eq!(count.text().await.unwrap(), "0");
}

/// The port of a fake's base URL.
fn port(base_url: &str) -> u16 {
    base_url.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap()
}

#[tokio::test]
async fn fakes_started_again_accept_the_credentials_they_handed_out() {
    let first = Fakes::start_with(SPEC).await.unwrap();
    let credentials = first.credentials();
    let ports = Ports {
        okta: port(&first.okta.base_url()),
        google: port(&first.google.directory_base_url()),
        entra: port(&first.entra.graph_base_url()),
        crowdstrike: port(&first.crowdstrike.base_url()),
        sentinelone: port(&first.sentinelone.base_url()),
    };
    let Fakes { okta, google, entra, crowdstrike, sentinelone } = first;
    tokio::join!(
        okta.shutdown(),
        google.shutdown(),
        entra.shutdown(),
        crowdstrike.shutdown(),
        sentinelone.shutdown()
    );

    let again = Fakes::start_on(SPEC, ports, Some(&credentials)).await.unwrap();
    assert_eq!(again.credentials(), credentials);
    assert_eq!(port(&again.okta.base_url()), ports.okta, "the same port, being free again");
    assert_eq!(okta::get(&again.okta, "/api/v1/users/me").await.status(), 200);
    google::admin_token(&again.google).await;
    entra::access_token(&again.entra).await;

    let taken = Fakes::start_on(SPEC, ports, Some(&credentials)).await.unwrap();
    assert_ne!(port(&taken.okta.base_url()), ports.okta, "another port while the first is taken");
}

/// One EDR fake's admin routes: `field` names what its API calls the host's containment status,
/// last user and OS build, and `contained` the status that means contained.
async fn fleet_changes_show_in_the_listing(
    source: &str,
    base: &str,
    snapshot: impl Fn() -> std::collections::BTreeMap<String, Value>,
    field: [&str; 3],
    contained: Value,
) {
    let [status, last_user, build] = field;
    let before = snapshot();
    let host = before.keys().next().unwrap().clone();
    let at = |path: &str| format!("/_fake/{source}/hosts{path}");

    assert_eq!(post(base, &at(&format!("/{host}/contain"))).await, (StatusCode::OK, json!({"id": host})));
    assert_eq!(snapshot()[&host][status], contained, "{source}");
    assert_eq!(post(base, &at(&format!("/{host}/contain"))).await.0, StatusCode::CONFLICT);
    assert_eq!(post(base, &at(&format!("/{host}/release"))).await.0, StatusCode::OK);
    assert_ne!(snapshot()[&host][status], contained, "{source}");
    assert_eq!(post(base, &at("/nohost/contain")).await.0, StatusCode::NOT_FOUND);

    let logon = Some(json!({"handle": "amara.okafor"}));
    assert_eq!(admin(base, Method::POST, &at(&format!("/{host}/logon")), logon).await.0, StatusCode::OK);
    assert!(snapshot()[&host][last_user].as_str().unwrap().contains("amara.okafor"), "{source}");
    let update = Some(json!({"build": "26100.4061"}));
    assert_eq!(admin(base, Method::POST, &at(&format!("/{host}/os")), update).await.0, StatusCode::OK);
    assert_eq!(snapshot()[&host][build], "26100.4061", "{source}");

    let body = json!({"hostname": "ACME-LT-7777", "handle": "amara.okafor"});
    let (created, added) = admin(base, Method::POST, &at(""), Some(body)).await;
    assert_eq!(created, StatusCode::CREATED);
    assert!(snapshot().contains_key(added["id"].as_str().unwrap()), "{source}: {added}");
    assert_eq!(admin(base, Method::DELETE, &at(&format!("/{host}")), None).await.0, StatusCode::OK);
    assert_eq!(
        post(base, &at(&format!("/{host}/contain"))).await.0,
        StatusCode::NOT_FOUND,
        "{source}: retired"
    );
}

#[tokio::test]
async fn edr_host_changes_show_in_the_fleets_listings() {
    let falcon = ctxsync_fakes::FakeCrowdStrike::start_with(SPEC).await.unwrap();
    let snapshot = || falcon.snapshot();
    let fields = ["status", "last_login_user", "os_build"];
    fleet_changes_show_in_the_listing(
        "crowdstrike",
        &falcon.base_url(),
        snapshot,
        fields,
        json!("contained"),
    )
    .await;
    assert_eq!(falcon.hidden().len(), 2, "the retired host is hidden beside the seeded one");

    let console = ctxsync_fakes::FakeSentinelOne::start_with(SPEC).await.unwrap();
    let snapshot = || console.snapshot();
    let fields = ["networkQuarantineEnabled", "lastLoggedInUserName", "osRevision"];
    fleet_changes_show_in_the_listing("sentinelone", &console.base_url(), snapshot, fields, json!(true))
        .await;
    let decommissioned = console.snapshot().values().filter(|a| a["isDecommissioned"] == true).count();
    assert!(decommissioned >= 1, "the retired agent is decommissioned, still listed");
}
