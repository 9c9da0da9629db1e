use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{BASE, errors, spawn_app, status_json};

#[tokio::test]
async fn create_returns_the_config_without_secrets() {
    let app = spawn_app().await;
    let data = app.create_ok(app.okta_attributes()).await;
    assert_eq!(data["type"], "integration_config");
    uuid::Uuid::parse_str(data["id"].as_str().unwrap()).expect("id is a UUID");
    let attrs = &data["attributes"];
    assert_eq!(attrs["integration_type"], "OKTA");
    assert_eq!(attrs["name"], "Okta");
    assert_eq!(attrs["domain"], app.fakes.okta.domain());
    assert_eq!(attrs["enabled"], true);
    assert_eq!(attrs["state"], "valid");
    assert_eq!(attrs["settings"], json!({"team": "secops"}));
    assert_eq!(attrs["created_at"], attrs["modified_at"]);
    time::OffsetDateTime::parse(
        attrs["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339 timestamp");
    let keys: Vec<&String> = attrs.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["created_at", "domain", "enabled", "integration_type", "modified_at", "name", "settings", "state"]
    );
}

#[tokio::test]
async fn each_supported_type_can_be_created_and_read_back() {
    let app = spawn_app().await;
    for attributes in [app.okta_attributes(), app.google_attributes(), app.entra_attributes()] {
        let created = app.create_ok(attributes).await;
        let (status, got) = status_json(app.get(created["id"].as_str().unwrap()).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got["data"], created);
    }
    assert_eq!(app.list("").await.len(), 3);
}

#[tokio::test]
async fn create_reports_every_field_problem() {
    let app = spawn_app().await;
    let (status, body) = status_json(
        app.create(
            json!({"integration_type": "OKTAA", "name": 7, "secrets": {"token": "x"}, "colour": "red"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let errs = errors(&body);
    for expected in [
        "data.attributes.colour: unknown attribute; expected integration_type, name, domain, secrets, settings",
        "data.attributes.integration_type: must be one of GOOGLE_WORKSPACE, OKTA, ENTRA_ID, CROWDSTRIKE, SENTINELONE",
        "data.attributes.name: must be a string",
        "data.attributes.domain: is required",
    ] {
        assert!(errs.contains(&expected.to_string()), "missing {expected:?} in {errs:?}");
    }
    assert!(app.list("").await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn secrets_are_checked_per_type() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"integration_type": "OKTA", "secrets": {}}),
            "data.attributes.secrets.api_token: is required",
        ),
        (
            json!({"integration_type": "GOOGLE_WORKSPACE", "secrets": {"service_account_json": {"type": "user"}}}),
            "data.attributes.secrets.service_account_json.type: must be \"service_account\"",
        ),
        (
            json!({"integration_type": "GOOGLE_WORKSPACE", "secrets": {"service_account_json": app.fakes.google.service_account_json()}}),
            "data.attributes.secrets.admin_email: is required",
        ),
        (
            json!({"integration_type": "ENTRA_ID", "secrets": {"client_id": "x"}}),
            "data.attributes.secrets.client_secret: is required",
        ),
    ];
    for (mut attrs, expected) in cases {
        attrs["name"] = json!("n");
        attrs["domain"] = json!("example.com");
        let (status, body) = status_json(app.create(attrs).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(errors(&body).contains(&expected.to_string()), "{expected} not in {body}");
    }
}

#[tokio::test]
async fn envelope_must_be_json_api() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"data": {"type": "config", "attributes": app.okta_attributes()}}),
            "data.type: must be \"integration_config\"",
        ),
        (
            json!({"data": {"attributes": app.okta_attributes()}}),
            "data.type: is required and must be \"integration_config\"",
        ),
        (json!({"attributes": {}}), "data: is required"),
        (
            json!({"data": {"type": "integration_config", "id": "x", "attributes": app.okta_attributes()}}),
            "data.id: must not be sent: the server assigns ids",
        ),
    ];
    for (doc, expected) in cases {
        let (status, body) = status_json(app.request(Method::POST, BASE, Some(doc)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(errors(&body).contains(&expected.to_string()), "{expected} not in {body}");
    }
}

#[tokio::test]
async fn partial_update_changes_only_what_is_sent() {
    let app = spawn_app().await;
    let created = app.create_ok(app.okta_attributes()).await;
    let id = created["id"].as_str().unwrap();

    let (status, body) =
        status_json(app.patch(id, json!({"integration_type": "OKTA", "name": "Renamed"})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let attrs = &body["data"]["attributes"];
    assert_eq!(attrs["name"], "Renamed");
    for unchanged in ["domain", "enabled", "settings", "state", "created_at", "integration_type"] {
        assert_eq!(attrs[unchanged], created["attributes"][unchanged], "{unchanged}");
    }
    assert!(attrs["modified_at"].as_str() > created["attributes"]["modified_at"].as_str());

    let (_, again) = status_json(
        app.patch(id, json!({"integration_type": "OKTA", "name": "Renamed", "enabled": true})).await,
    )
    .await;
    assert_eq!(
        again["data"]["attributes"]["modified_at"], attrs["modified_at"],
        "no change, no new modified_at"
    );

    let (_, disabled) = status_json(
        app.patch(id, json!({"integration_type": "OKTA", "enabled": false, "settings": {}})).await,
    )
    .await;
    assert_eq!(disabled["data"]["attributes"]["enabled"], false);
    assert_eq!(disabled["data"]["attributes"]["settings"], json!({}));
    let (_, stored) = status_json(app.get(id).await).await;
    assert_eq!(stored["data"], disabled["data"]);
}

/// The original contract: "All fields are optional". Raw documents without `integration_type`,
/// as the seed's clients send them, update the stored config of whatever type it is.
#[tokio::test]
async fn every_update_attribute_is_optional() {
    let app = spawn_app().await;
    let created = app.create_ok(app.entra_attributes()).await;
    let id = created["id"].as_str().unwrap();

    let (status, body) = status_json(app.patch(id, json!({"name": "renamed"})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["attributes"]["name"], "renamed");
    assert_eq!(body["data"]["attributes"]["integration_type"], "ENTRA_ID", "the stored type applies");

    let (status, body) = status_json(app.patch(id, json!({"enabled": false})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["attributes"]["enabled"], false);
    let after_disable = body["data"].clone();

    let (status, body) = status_json(app.patch(id, json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "an empty update is a no-op: {body}");
    assert_eq!(body["data"], after_disable, "modified_at unchanged");
    let (_, stored) = status_json(app.get(id).await).await;
    assert_eq!(stored["data"], after_disable);

    let (status, body) =
        status_json(app.patch(id, json!({"integration_type": "ENTRA_ID", "enabled": true})).await).await;
    assert_eq!(status, StatusCode::OK, "the stored type may be repeated: {body}");
    assert_eq!(body["data"]["attributes"]["enabled"], true);
}

/// Secrets sent without a type are read as the stored type's, and checked against its source.
#[tokio::test]
async fn secrets_without_a_type_are_the_stored_types() {
    let app = spawn_app().await;
    let created = app.create_ok(app.okta_attributes()).await;
    let id = created["id"].as_str().unwrap();

    let (status, body) =
        status_json(app.patch(id, json!({"name": "x", "secrets": {"client_id": "c"}})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        errors(&body),
        [
            "data.attributes.secrets.client_id: unknown key; expected api_token",
            "data.attributes.secrets.api_token: is required"
        ]
    );
    let (status, body) = status_json(app.patch(id, json!({"secrets": {"api_token": "00wrong"}})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors(&body)[0].contains("E0000011"), "checked against Okta: {body}");
    let (_, stored) = status_json(app.get(id).await).await;
    assert_eq!(stored["data"], created, "untouched");

    let good = app.fakes.okta.add_token(ctxsync_fakes::OktaPermission::ReadAll);
    let (status, body) = status_json(app.patch(id, json!({"secrets": {"api_token": good}})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn new_secrets_are_validated_before_anything_is_written() {
    let app = spawn_app().await;
    let created = app.create_ok(app.okta_attributes()).await;
    let id = created["id"].as_str().unwrap();
    let (status, body) =
        status_json(app.patch(id, json!({"integration_type": "OKTA", "name": "Should not stick", "secrets": {"api_token": "00wrong"}})).await)
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors(&body)[0].contains("E0000011"), "the source's answer is quoted: {body}");
    let (_, stored) = status_json(app.get(id).await).await;
    assert_eq!(stored["data"], created, "untouched");

    let good = app.fakes.okta.add_token(ctxsync_fakes::OktaPermission::ReadAll);
    let (status, body) =
        status_json(app.patch(id, json!({"integration_type": "OKTA", "secrets": {"api_token": good}})).await)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["data"]["attributes"]["modified_at"].as_str() > created["attributes"]["modified_at"].as_str()
    );
}

#[tokio::test]
async fn changing_the_type_needs_new_secrets_for_it() {
    let app = spawn_app().await;
    let id = app.create_ok(app.okta_attributes()).await["id"].as_str().unwrap().to_string();
    let (status, body) = status_json(app.patch(&id, json!({"integration_type": "ENTRA_ID"})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        errors(&body),
        ["data.attributes.secrets: required when changing integration_type from OKTA to ENTRA_ID"]
    );
    let (status, body) = status_json(
        app.patch(&id, json!({"integration_type": "ENTRA_ID", "secrets": {"client_id": "c"}})).await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        errors(&body),
        ["data.attributes.secrets.client_secret: is required"],
        "names what is missing"
    );
    let mut entra = app.entra_attributes();
    entra.as_object_mut().unwrap().remove("name");
    let (status, body) = status_json(app.patch(&id, entra).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["attributes"]["integration_type"], "ENTRA_ID");
    assert_eq!(body["data"]["attributes"]["name"], "Okta");
}

#[tokio::test]
async fn list_filters_by_type() {
    let app = spawn_app().await;
    app.create_ok(app.okta_attributes()).await;
    app.create_ok(app.entra_attributes()).await;
    app.create_ok(app.okta_attributes()).await;
    let okta = app.list("?filter[integration_type]=OKTA").await;
    assert_eq!(okta.len(), 2);
    assert!(okta.iter().all(|c| c["attributes"]["integration_type"] == "OKTA"));
    assert_eq!(app.list("?filter%5Bintegration_type%5D=ENTRA_ID").await.len(), 1);
    assert!(app.list("?filter[integration_type]=GOOGLE_WORKSPACE").await.is_empty());
    let (status, body) =
        status_json(app.request(Method::GET, &format!("{BASE}?filter[integration_type]=okta"), None).await)
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors(&body)[0].starts_with("filter[integration_type]: must be one of"));
}

#[tokio::test]
async fn delete_removes_the_config() {
    let app = spawn_app().await;
    let id = app.create_ok(app.okta_attributes()).await["id"].as_str().unwrap().to_string();
    let response = app.request(Method::DELETE, &format!("{BASE}/{id}"), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.text().await.unwrap().is_empty());
    assert_eq!(app.get(&id).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.request(Method::DELETE, &format!("{BASE}/{id}"), None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(app.list("").await.is_empty());
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let app = spawn_app().await;
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_string()] {
        for (method, body) in [
            (Method::GET, None),
            (Method::DELETE, None),
            (Method::PATCH, Some(crate::helpers::envelope(json!({"integration_type": "OKTA"})))),
            (Method::POST, None),
        ] {
            let path =
                if method == Method::POST { format!("{BASE}/{id}/validate") } else { format!("{BASE}/{id}") };
            let (status, body) = status_json(app.request(method.clone(), &path, body).await).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
            assert!(errors(&body)[0].starts_with("integration config not found"), "{body}");
        }
    }
}

/// A GET by id may be served from memory: this replica's own writes show at once, a change made
/// elsewhere (another replica, a command) within a second.
#[tokio::test]
async fn a_config_changed_elsewhere_shows_within_a_second() {
    let app = spawn_app().await;
    let created = app.create_ok(app.okta_attributes()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let name = |body: &serde_json::Value| body["data"]["attributes"]["name"].as_str().unwrap().to_owned();
    let (_, got) = status_json(app.get(&id).await).await;
    assert_eq!(name(&got), "Okta");

    let (status, _) = status_json(app.patch(&id, serde_json::json!({"name": "mine"})).await).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let (_, got) = status_json(app.get(&id).await).await;
    assert_eq!(name(&got), "mine", "this replica reads its own write at once");

    let store = app.store().await;
    let org = store.ensure_org("default").await.unwrap();
    let mut config = store.get_config(org, id.parse().unwrap()).await.unwrap().unwrap();
    config.name = "elsewhere".into();
    store.update_config(&config, None).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let (_, got) = status_json(app.get(&id).await).await;
        if name(&got) == "elsewhere" {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "still stale after two seconds");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_rate_limit_share_is_a_whole_percent() {
    let app = spawn_app().await;
    for bad in [json!(0), json!(101), json!("50%")] {
        let mut attrs = app.okta_attributes();
        attrs["settings"] = json!({"rate_limit_share": bad});
        let (status, body) = status_json(app.create(attrs).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(errors(&body)[0].starts_with("data.attributes.settings.rate_limit_share"), "{body}");
        assert!(errors(&body)[0].contains("source's rate limits ctxsync may use"), "{body}");
    }
    let mut attrs = app.okta_attributes();
    attrs["settings"] = json!({"rate_limit_share": 25});
    let created = app.create_ok(attrs).await;
    assert_eq!(created["attributes"]["settings"]["rate_limit_share"], 25);
}
