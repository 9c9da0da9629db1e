use std::time::Duration;

use ctxsync_fakes::{FakeSentinelOne, SentinelOneScope, TenantSpec};
use serde_json::json;

use super::*;

const FLEET: TenantSpec = TenantSpec { seed: 9, users: 30, groups: 2, devices: 30 };

async fn get(fake: &FakeSentinelOne, token: &str, path_and_query: &str) -> reqwest::Response {
    client()
        .get(format!("{}/web/api/v2.1/{path_and_query}", fake.base_url()))
        .header("Authorization", format!("ApiToken {token}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn agents_are_paged_by_cursor_until_it_is_null() {
    let fake = FakeSentinelOne::start_with(FLEET).await.unwrap();
    let all = fake.snapshot();
    let live = all.values().filter(|a| a["isDecommissioned"] == json!(false)).count();
    assert!(live < all.len(), "the fleet has decommissioned agents");

    let first = json(get(&fake, &fake.api_token(), "agents").await).await;
    assert_eq!(first["data"].as_array().unwrap().len(), 10, "ten by default");
    assert_eq!(first["pagination"]["totalItems"], json!(live), "decommissioned agents hidden by default");

    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let query = match &cursor {
            Some(c) => {
                // Base64 may hold `+`, which a query must escape.
                let c: String = url::form_urlencoded::byte_serialize(c.as_bytes()).collect();
                format!("agents?limit=7&isDecommissioned=true,false&sortBy=updatedAt&cursor={c}")
            }
            None => "agents?limit=7&isDecommissioned=true,false&sortBy=updatedAt".to_string(),
        };
        let page = json(get(&fake, &fake.api_token(), &query).await).await;
        assert_eq!(page["pagination"]["totalItems"], json!(all.len()));
        for agent in page["data"].as_array().unwrap() {
            assert!(agent["id"].is_string() && agent["tags"]["sentinelone"].is_array());
            seen.push((
                agent["updatedAt"].as_str().unwrap().to_string(),
                agent["id"].as_str().unwrap().to_string(),
            ));
        }
        match &page["pagination"]["nextCursor"] {
            Value::Null => break,
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("nextCursor {other}"),
        }
    }
    assert_eq!(seen.len(), all.len());
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "sorted by updatedAt, each once");
}

#[tokio::test]
async fn updated_at_filters_find_what_changed() {
    let fake = FakeSentinelOne::start_with(FLEET).await.unwrap();
    let id = fake.mutate(|t| t.agents().next().unwrap().id().to_string());
    fake.mutate(|t| t.set_last_user(&id, "ACME\\grace.hopper"));
    let updated = fake.snapshot()[&id]["updatedAt"].as_str().unwrap().to_string();
    let gte = json(get(&fake, &fake.api_token(), &format!("agents?updatedAt__gte={updated}")).await).await;
    assert_eq!(gte["data"][0]["id"], json!(id));
    assert_eq!(gte["pagination"]["totalItems"], json!(1));
    let gt = json(get(&fake, &fake.api_token(), &format!("agents?updatedAt__gt={updated}")).await).await;
    assert_eq!(gt["data"], json!([]));
    assert_eq!(gt["pagination"]["nextCursor"], Value::Null);
}

#[tokio::test]
async fn bad_requests_and_tokens_get_the_error_envelope() {
    let fake = FakeSentinelOne::start().await.unwrap();
    let response = get(&fake, &fake.api_token(), "agents?limit=1001").await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["errors"][0]["code"], json!(4_000_010));

    let response = get(&fake, "nope", "user").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        json(response).await,
        json!({"errors": [{"code": 4_010_010, "title": "Authentication Failed", "detail": null}]})
    );

    let site = fake.add_token(SentinelOneScope::Site);
    assert_eq!(json(get(&fake, &site, "user").await).await["data"]["scope"], json!("site"));
    let response = get(&fake, &site, "agents").await;
    assert_eq!(response.status(), 403);
    assert_eq!(json(response).await["errors"][0]["code"], json!(4_030_010));
}

#[tokio::test]
async fn a_rate_limit_says_how_long_to_wait() {
    let fake = FakeSentinelOne::start().await.unwrap();
    fake.rate_limit_next(1, Duration::from_secs(5));
    let response = get(&fake, &fake.api_token(), "user").await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(get(&fake, &fake.api_token(), "user").await.status(), 200);
}
