use std::collections::BTreeSet;

use ctxsync_fakes::{FakeEntra, TenantSpec};
use serde_json::json;

use super::*;

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

async fn access_token(fake: &FakeEntra) -> String {
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
    let fake = FakeEntra::start_with(TenantSpec { seed: 5, users: 31, groups: 3 }).await.unwrap();
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
