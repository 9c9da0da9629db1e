use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{BASE, Options, TestApp, envelope, errors, spawn_app, spawn_app_with, status_json};

async fn validate(app: &TestApp, attributes: Value) -> (StatusCode, Value) {
    status_json(app.request(Method::POST, &format!("{BASE}/validate"), Some(envelope(attributes))).await)
        .await
}

fn without_name(mut attrs: Value) -> Value {
    attrs.as_object_mut().unwrap().retain(|k, _| k != "name" && k != "settings");
    attrs
}

/// Asserts a 400 whose message contains `needle`, and that nothing was stored.
async fn rejected(app: &TestApp, attributes: Value, needle: &str) {
    let (status, body) = status_json(app.create(attributes).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = errors(&body).join(" ");
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
    assert!(app.list("").await.is_empty(), "nothing stored after a rejected credential");
}

#[tokio::test]
async fn good_credentials_validate_for_every_type() {
    let app = spawn_app().await;
    for attrs in [app.okta_attributes(), app.google_attributes(), app.entra_attributes()] {
        let (status, body) = validate(&app, without_name(attrs)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, Value::Null, "no body");
    }
    assert!(app.list("").await.is_empty(), "validation stores nothing");
}

#[tokio::test]
async fn okta_wrong_and_underprivileged_tokens_are_rejected() {
    let app = spawn_app().await;
    let mut attrs = app.okta_attributes();
    attrs["secrets"]["api_token"] = json!("00notatoken");
    rejected(&app, attrs.clone(), "Invalid token provided").await;
    let weak = app.fakes.okta.add_token(ctxsync_fakes::OktaPermission::NoPermission);
    attrs["secrets"]["api_token"] = json!(weak);
    rejected(&app, attrs, "permission").await;
}

#[tokio::test]
async fn google_signature_delegation_and_admin_are_checked() {
    let app = spawn_app().await;
    let mut attrs = app.google_attributes();
    attrs["secrets"]["service_account_json"] = app.fakes.google.service_account_with_wrong_key();
    rejected(&app, attrs.clone(), "Invalid JWT Signature").await;
    attrs["secrets"]["service_account_json"] = app.fakes.google.service_account_without_delegation();
    rejected(&app, attrs.clone(), "unauthorized_client").await;
    attrs["secrets"]["service_account_json"] = app.fakes.google.service_account_json();
    attrs["secrets"]["admin_email"] = json!(app.fakes.google.non_admin_email());
    rejected(&app, attrs.clone(), "Not Authorized").await;
    attrs["secrets"]["admin_email"] = json!("nobody@example.com");
    rejected(&app, attrs, "Invalid email or User ID").await;
}

#[tokio::test]
async fn entra_secret_and_consent_are_checked() {
    let app = spawn_app().await;
    let mut attrs = app.entra_attributes();
    attrs["secrets"]["client_secret"] = json!("wrong-secret");
    rejected(&app, attrs.clone(), "AADSTS7000215").await;
    let (id, secret) = app.fakes.entra.app_without_consent();
    attrs["secrets"] = json!({"client_id": id, "client_secret": secret});
    rejected(&app, attrs, "Authorization_RequestDenied").await;
}

#[tokio::test]
async fn entra_tenant_comes_from_settings_or_domain() {
    let app = spawn_app().await;
    let mut attrs = app.entra_attributes();
    attrs["domain"] = json!("unrelated.example.com");
    rejected(&app, attrs.clone(), "AADSTS90002").await;
    attrs["settings"] = json!({"tenant_id": app.fakes.entra.tenant_id()});
    let created = app.create_ok(attrs).await;
    assert_eq!(created["attributes"]["settings"]["tenant_id"], app.fakes.entra.tenant_id());
}

#[tokio::test]
async fn an_unreachable_source_is_a_clear_error_and_stores_nothing() {
    // A port that was free a moment ago stands for a dead host.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let app =
        spawn_app_with(Options { okta_base_url: Some(format!("http://{closed}")), ..Options::default() })
            .await;
    let (status, body) = status_json(app.create(app.okta_attributes()).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(errors(&body)[0].to_lowercase().contains("could not reach okta"), "{body}");
    assert!(app.list("").await.is_empty());
}

#[tokio::test]
async fn private_source_hosts_are_refused_without_an_override() {
    let app = spawn_app_with(Options { use_fakes: false, ..Options::default() }).await;
    for domain in ["localhost", "127.0.0.1", "10.1.2.3", "169.254.169.254"] {
        let (status, body) = status_json(
            app.create(json!({"integration_type": "OKTA", "name": "x", "domain": domain, "secrets": {"api_token": "00abc"}})).await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{domain}: {body}");
        assert!(errors(&body)[0].contains("CTXSYNC_ALLOW_PRIVATE_SOURCES"), "{domain}: {body}");
    }
}

#[tokio::test]
async fn revalidation_moves_the_state_both_ways() {
    let app = spawn_app().await;
    let token = app.fakes.okta.add_token(ctxsync_fakes::OktaPermission::ReadAll);
    let mut attrs = app.okta_attributes();
    attrs["secrets"]["api_token"] = json!(token);
    let id = app.create_ok(attrs).await["id"].as_str().unwrap().to_string();
    let path = format!("{BASE}/{id}/validate");

    let (status, body) = status_json(app.request(Method::POST, &path, None).await).await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));

    app.fakes.okta.revoke_token(&token);
    let (status, body) = status_json(app.request(Method::POST, &path, None).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors(&body)[0].contains("Invalid token provided"), "{body}");
    let (_, got) = status_json(app.get(&id).await).await;
    assert_eq!(got["data"]["attributes"]["state"], "invalid");

    let (status, body) = status_json(
        app.patch(
            &id,
            json!({"integration_type": "OKTA", "secrets": {"api_token": app.fakes.okta.api_token()}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["attributes"]["state"], "valid");
}
