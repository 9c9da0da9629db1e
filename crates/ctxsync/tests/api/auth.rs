use reqwest::{Method, StatusCode};

use crate::helpers::{BASE, errors, spawn_app, status_json};

#[tokio::test]
async fn missing_empty_or_wrong_keys_are_forbidden() {
    let app = spawn_app().await;
    let cases = [
        (None, None, "API key required (DD-API-KEY header)"),
        (Some(""), Some(""), "API key required (DD-API-KEY header)"),
        (Some(app.api_key.as_str()), None, "Application key required (DD-APPLICATION-KEY header)"),
        (Some(app.api_key.as_str()), Some("nope"), "Forbidden: invalid API key or application key"),
        (Some("nope"), Some(app.app_key.as_str()), "Forbidden: invalid API key or application key"),
    ];
    for (api, app_key, expected) in cases {
        let mut req = app.client.get(format!("{}{BASE}", app.address));
        if let Some(k) = api {
            req = req.header("DD-API-KEY", k);
        }
        if let Some(k) = app_key {
            req = req.header("DD-APPLICATION-KEY", k);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.headers()["content-type"], "application/json");
        let (status, body) = status_json(response).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(errors(&body), [expected]);
    }
}

#[tokio::test]
async fn keys_of_two_orgs_do_not_combine() {
    let app = spawn_app().await;
    let other = app.create_keys("other", "").await;
    let response = app.request_as(&app.api_key, &other.app_key, Method::GET, BASE, None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app.request_as(&other.api_key, &other.app_key, Method::GET, BASE, None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn another_orgs_config_is_not_found() {
    let app = spawn_app().await;
    let id = app.create_ok(app.okta_attributes()).await["id"].as_str().unwrap().to_string();
    let other = app.create_keys("other", "").await;
    let as_other = |method: Method, path: String, body| {
        let (api, key) = (other.api_key.clone(), other.app_key.clone());
        let app = &app;
        async move { app.request_as(&api, &key, method, &path, body).await }
    };
    let patch = crate::helpers::envelope(serde_json::json!({"integration_type": "OKTA", "name": "stolen"}));
    for (method, path, body) in [
        (Method::GET, format!("{BASE}/{id}"), None),
        (Method::PATCH, format!("{BASE}/{id}"), Some(patch)),
        (Method::DELETE, format!("{BASE}/{id}"), None),
        (Method::POST, format!("{BASE}/{id}/validate"), None),
    ] {
        let (status, body) = status_json(as_other(method.clone(), path, body).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {body}");
    }
    let (_, list) = status_json(as_other(Method::GET, BASE.to_string(), None).await).await;
    assert_eq!(list["data"], serde_json::json!([]));
    let (_, mine) = status_json(app.get(&id).await).await;
    assert_eq!(mine["data"]["attributes"]["name"], "Okta", "untouched by the other org");
}

#[tokio::test]
async fn scopes_limit_what_a_key_may_do() {
    let app = spawn_app().await;
    let read = app.create_keys("default", "integrations_read").await;
    let manage = app.create_keys("default", "manage_integrations").await;
    let body = Some(crate::helpers::envelope(app.okta_attributes()));

    let (status, errs) =
        status_json(app.request_as(&read.api_key, &read.app_key, Method::POST, BASE, body.clone()).await)
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(errors(&errs), ["Forbidden: the application key lacks the manage_integrations scope"]);
    assert!(app.list("").await.is_empty());

    let (status, created) =
        status_json(app.request_as(&manage.api_key, &manage.app_key, Method::POST, BASE, body).await).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["data"]["id"].as_str().unwrap();

    let (status, errs) = status_json(
        app.request_as(&manage.api_key, &manage.app_key, Method::GET, &format!("{BASE}/{id}"), None).await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(errors(&errs), ["Forbidden: the application key lacks the integrations_read scope"]);

    for (method, path) in [
        (Method::GET, format!("{BASE}/{id}")),
        (Method::GET, BASE.to_string()),
        (Method::POST, format!("{BASE}/{id}/validate")),
    ] {
        let response = app.request_as(&read.api_key, &read.app_key, method.clone(), &path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{method} {path}");
    }
    let response =
        app.request_as(&read.api_key, &read.app_key, Method::DELETE, &format!("{BASE}/{id}"), None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
