use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{BASE, Options, errors, spawn_app, spawn_app_with, status_json};

const HEADERS: [&str; 5] = [
    "x-ratelimit-limit",
    "x-ratelimit-period",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-name",
];

#[tokio::test]
async fn every_api_response_carries_the_rate_limit_headers() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4();
    let responses = [
        app.request(Method::GET, BASE, None).await,
        app.request(Method::GET, &format!("{BASE}/{id}"), None).await,
        app.request_as("", "", Method::GET, BASE, None).await,
        app.create(json!({})).await,
    ];
    for response in responses {
        for h in HEADERS {
            assert!(response.headers().contains_key(h), "{h} missing on a {}", response.status());
        }
        assert_eq!(response.headers()["x-ratelimit-limit"], "10000");
        assert_eq!(response.headers()["x-ratelimit-period"], "60");
    }
}

#[tokio::test]
async fn past_the_limit_an_org_gets_429_and_others_do_not() {
    let app = spawn_app_with(Options { rate_limit: 3, ..Options::default() }).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let response = app.request(Method::GET, BASE, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        remaining.push(response.headers()["x-ratelimit-remaining"].to_str().unwrap().to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let response = app.request(Method::GET, BASE, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let reset: u64 = response.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    let (_, body) = status_json(response).await;
    assert!(errors(&body)[0].starts_with("Too many requests"));

    let other = app.create_keys("other", "").await;
    let response = app.request_as(&other.api_key, &other.app_key, Method::GET, BASE, None).await;
    assert_eq!(response.status(), StatusCode::OK, "another org keeps its own budget");
}

#[tokio::test]
async fn malformed_bodies_get_clear_errors_and_the_server_carries_on() {
    let app = spawn_app().await;
    let send = |body: Vec<u8>, content_type: &'static str| {
        app.client
            .post(format!("{}{BASE}", app.address))
            .header("DD-API-KEY", &app.api_key)
            .header("DD-APPLICATION-KEY", &app.app_key)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, &str, StatusCode, &str)> = vec![
        (
            b"{\"data\": ".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "request body is not valid JSON",
        ),
        (b"".to_vec(), "application/json", StatusCode::BAD_REQUEST, "request body is required"),
        (
            b"[1,2]".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "request body: must be a JSON object",
        ),
        (
            b"{}".to_vec(),
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        ),
        (
            vec![b' '; 70 * 1024],
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than 64 KiB",
        ),
        (
            vec![0xff, 0xfe, 0x00],
            "application/json",
            StatusCode::BAD_REQUEST,
            "request body is not valid JSON",
        ),
    ];
    for (body, content_type, expected_status, expected) in cases {
        let (status, got) = status_json(send(body, content_type).await.unwrap()).await;
        assert_eq!(status, expected_status, "{got}");
        assert!(errors(&got)[0].starts_with(expected), "{expected:?} vs {got}");
    }
    let (status, _) = status_json(app.request(Method::GET, "/api/v2/nowhere", None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = status_json(app.request(Method::PUT, BASE, None).await).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(errors(&body), ["Method not allowed"]);
    app.create_ok(app.okta_attributes()).await;
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}
