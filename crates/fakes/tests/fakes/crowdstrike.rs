use std::time::Duration;

use ctxsync_fakes::FakeCrowdStrike;
use serde_json::json;

use super::{client, json};

async fn token(fake: &FakeCrowdStrike, secret: &str) -> reqwest::Response {
    client()
        .post(format!("{}/oauth2/token", fake.base_url()))
        .form(&[("client_id", fake.client_id().as_str()), ("client_secret", secret)])
        .send()
        .await
        .unwrap()
}

async fn bearer(fake: &FakeCrowdStrike) -> String {
    let reply = token(fake, &fake.client_secret()).await;
    assert_eq!(reply.status(), 201);
    json(reply).await["access_token"].as_str().unwrap().to_string()
}

async fn hosts(fake: &FakeCrowdStrike, bearer: &str, query: &[(&str, &str)]) -> reqwest::Response {
    client()
        .get(format!("{}/devices/combined/devices/v1", fake.base_url()))
        .query(query)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn tokens_are_created_with_the_region_and_refused_in_the_msa_envelope() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    fake.set_region("us-2");
    let reply = token(&fake, &fake.client_secret()).await;
    assert_eq!(reply.status(), 201);
    assert_eq!(reply.headers()["x-cs-region"], "us-2");
    assert!(reply.headers().contains_key("x-ratelimit-limit"));
    assert!(reply.headers().contains_key("x-ratelimit-remaining"));
    let body = json(reply).await;
    assert_eq!((body["token_type"].clone(), body["expires_in"].clone()), (json!("bearer"), json!(1799)));

    let refused = token(&fake, "wrong").await;
    assert_eq!(refused.status(), 403);
    let body = json(refused).await;
    assert_eq!(body["errors"][0]["code"], 403);
    assert!(body["meta"]["trace_id"].is_string());

    let unknown = hosts(&fake, "not-a-token", &[]).await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(json(unknown).await["errors"][0]["message"], "access denied, invalid bearer token");
}

#[tokio::test]
async fn hosts_page_with_next_and_filter_on_modified_timestamp_in_either_quotes() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    let bearer = bearer(&fake).await;
    let first = json(hosts(&fake, &bearer, &[("limit", "5")]).await).await;
    assert_eq!(first["resources"].as_array().unwrap().len(), 5);
    assert_eq!(first["meta"]["pagination"]["total"], 12);
    let next = first["meta"]["pagination"]["next"].as_str().unwrap();
    let second = json(hosts(&fake, &bearer, &[("limit", "5"), ("offset", next)]).await).await;
    assert_ne!(second["resources"][0], first["resources"][0]);

    let id = fake.snapshot().into_keys().next().unwrap();
    fake.mutate(|t| t.contain(&id));
    for filter in
        ["modified_timestamp:>\"2025-06-01T00:00:00Z\"", "modified_timestamp:>'2025-06-01T00:00:00Z'"]
    {
        let changed =
            json(hosts(&fake, &bearer, &[("filter", filter), ("sort", "modified_timestamp.asc")]).await)
                .await;
        let ids: Vec<&str> = changed["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["device_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id.as_str()], "{filter}");
    }
    assert_eq!(hosts(&fake, &bearer, &[("filter", "hostname:'x'")]).await.status(), 400);
}

#[tokio::test]
async fn switches_refuse_hosts_as_a_missing_scope_and_a_govcloud_do() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    let bearer = bearer(&fake).await;
    fake.refuse_combined(true);
    assert_eq!(hosts(&fake, &bearer, &[]).await.status(), 404);
    fake.set_hosts_read(false);
    let denied = hosts(&fake, &bearer, &[]).await;
    assert_eq!(denied.status(), 403);
    assert_eq!(json(denied).await["errors"][0]["message"], "access denied, authorization failed");
}

#[tokio::test]
async fn rate_limits_name_an_epoch_second() {
    let fake = FakeCrowdStrike::start().await.unwrap();
    fake.rate_limit_next(1, Duration::from_secs(5));
    let reply = token(&fake, &fake.client_secret()).await;
    assert_eq!(reply.status(), 429);
    let at: u64 = reply.headers()["x-ratelimit-retryafter"].to_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!((now + 3..=now + 6).contains(&at), "{at} vs {now}");
    assert_eq!(reply.headers()["x-ratelimit-remaining"], "0");
}
