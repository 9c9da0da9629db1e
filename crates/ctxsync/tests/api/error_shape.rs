use reqwest::header::{ALLOW, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{BASE, errors, raw, spawn_app};

/// Status, and the body after checking it is `{"errors": [...]}` sent as JSON.
async fn json_error(response: Response) -> (StatusCode, Vec<String>) {
    let status = response.status();
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json", "{status}");
    let body: Value = response.json().await.expect("a JSON body");
    (status, errors(&body))
}

#[tokio::test]
async fn every_error_from_the_framework_has_the_usual_shape() {
    let app = spawn_app().await;

    let long = format!("GET {BASE}?filter={} HTTP/1.1\r\nHost: ctxsync\r\n\r\n", "a".repeat(70 * 1024));
    for (request, status_line, message) in [
        (long.as_str(), "HTTP/1.1 414 URI Too Long", "the request URI is longer than 64 KiB"),
        ("NOT HTTP AT ALL\r\n\r\n", "HTTP/1.1 400 Bad Request", "the request is not valid HTTP/1.1"),
    ] {
        let answer = raw(&app.address, request).await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with(status_line), "{answer}");
        assert!(head.to_ascii_lowercase().contains("\r\ncontent-type: application/json\r\n"), "{answer}");
        assert_eq!(serde_json::from_str::<Value>(body).unwrap(), json!({"errors": [message]}));
    }

    let (status, messages) = json_error(app.request(Method::GET, &format!("{BASE}/%FF"), None).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(messages[0].contains("UTF-8"), "{messages:?}");

    let (status, messages) = json_error(app.request(Method::PUT, BASE, None).await).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(messages, ["Method not allowed"]);

    let response = app.client.post(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(response.headers()[ALLOW], "GET,HEAD");
    let (status, messages) = json_error(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(messages, ["Method Not Allowed"]);

    let (status, messages) = json_error(app.request(Method::GET, "/api/v2/nowhere", None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(messages, ["Not found"]);
}

#[tokio::test]
async fn a_key_given_twice_is_refused_by_its_path_without_its_value() {
    let app = spawn_app().await;
    let send = |body: String| {
        app.client
            .post(format!("{}{BASE}", app.address))
            .header("DD-API-KEY", &app.api_key)
            .header("DD-APPLICATION-KEY", &app.app_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let attributes = app.okta_attributes();
    let token = attributes["secrets"]["api_token"].as_str().unwrap().to_string();
    let type_twice =
        format!(r#"{{"data": {{"type": "integration_config", "type": "x", "attributes": {attributes}}}}}"#);
    let (status, messages) = json_error(send(type_twice).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        messages,
        ["request body has the key $.data.type more than once; each key may appear only once"]
    );

    let secret_twice = format!(
        r#"{{"data": {{"type": "integration_config", "attributes": {{"integration_type": "OKTA", "name": "Okta",
            "domain": {domain}, "secrets": {{"api_token": "{token}", "api_token": "second-{token}"}}}}}}}}"#,
        domain = json!(app.fakes.okta.domain()),
    );
    let (status, messages) = json_error(send(secret_twice).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(messages[0].contains("$.data.attributes.secrets.api_token more than once"), "{messages:?}");
    assert!(!messages[0].contains(&token), "{messages:?}");

    assert!(app.list("").await.is_empty(), "nothing was created");
}
