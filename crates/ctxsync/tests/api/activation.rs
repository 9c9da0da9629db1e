use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{BASE, errors, spawn_app, status_json};

#[tokio::test]
async fn activate_re_enables_the_existing_config_instead_of_duplicating_it() {
    let app = spawn_app().await;
    let created = app.create_ok(app.entra_attributes()).await;
    let id = created["id"].as_str().unwrap();
    app.patch(id, json!({"integration_type": "ENTRA_ID", "enabled": false})).await;

    let body =
        json!({"data": {"type": "activate_entra_id_request", "attributes": {"name": "Entra (activated)"}}});
    let (status, activated) =
        status_json(app.request(Method::POST, &format!("{BASE}/entra_id/activate"), Some(body)).await).await;
    assert_eq!(status, StatusCode::OK, "{activated}");
    assert_eq!(activated["data"]["id"], created["id"]);
    assert_eq!(activated["data"]["attributes"]["enabled"], true);
    assert_eq!(activated["data"]["attributes"]["name"], "Entra (activated)");

    let (status, again) =
        status_json(app.request(Method::POST, &format!("{BASE}/entra_id/activate"), None).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["data"]["attributes"]["modified_at"], activated["data"]["attributes"]["modified_at"],
        "nothing changed"
    );
    assert_eq!(app.list("").await.len(), 1, "no duplicate");
}

#[tokio::test]
async fn activate_without_a_config_says_how_to_create_one() {
    let app = spawn_app().await;
    let (status, body) =
        status_json(app.request(Method::POST, &format!("{BASE}/okta/activate"), None).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(errors(&body)[0].contains("there is no OKTA integration to activate"), "{body}");
    assert!(errors(&body)[0].contains("(secrets: api_token)"), "names the secrets a create needs: {body}");
    let (status, body) =
        status_json(app.request(Method::POST, &format!("{BASE}/ldap/activate"), None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(errors(&body)[0].starts_with("unknown integration type \"ldap\""), "{body}");
    let bad = json!({"data": {"type": "integration_config", "attributes": {}}});
    let (status, body) =
        status_json(app.request(Method::POST, &format!("{BASE}/okta/activate"), Some(bad)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(errors(&body), ["data.type: must be \"activate_entra_id_request\""]);
}

#[tokio::test]
async fn deactivate_disables_every_config_of_the_type() {
    let app = spawn_app().await;
    let first = app.create_ok(app.okta_attributes()).await;
    app.create_ok(app.okta_attributes()).await;
    let entra = app.create_ok(app.entra_attributes()).await;

    let (status, body) =
        status_json(app.request(Method::POST, &format!("{BASE}/okta/deactivate"), None).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["id"], first["id"]);
    let okta = app.list("?filter[integration_type]=OKTA").await;
    assert!(okta.iter().all(|c| c["attributes"]["enabled"] == false));
    let (_, still) = status_json(app.get(entra["id"].as_str().unwrap()).await).await;
    assert_eq!(still["data"]["attributes"]["enabled"], true, "other types untouched");

    let (status, _) =
        status_json(app.request(Method::POST, &format!("{BASE}/google_workspace/deactivate"), None).await)
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn app_registrations_reflect_the_entra_configs() {
    let app = spawn_app().await;
    let path = format!("{BASE}/entra_id/azure_app_registrations");
    let (status, empty) = status_json(app.request(Method::GET, &path, None).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["data"]["type"], "entra_id_azure_app_registrations");
    assert_eq!(
        empty["data"]["attributes"],
        json!({"azure_app_registrations": [], "has_valid_prerequisite": false})
    );

    let created = app.create_ok(app.entra_attributes()).await;
    let (_, body) = status_json(app.request(Method::GET, &path, None).await).await;
    let attrs = &body["data"]["attributes"];
    assert_eq!(attrs["has_valid_prerequisite"], true);
    assert_eq!(attrs["integration_id"], created["id"]);
    assert_eq!(attrs["is_enabled"], true);
    assert_eq!(attrs["subscribed_at"], created["attributes"]["created_at"]);
    assert_eq!(
        attrs["azure_app_registrations"],
        json!([{"client_id": app.fakes.entra.client_id(), "error_count": 0, "resource_collection_enabled": true,
                "subscription_count": 0, "tenant_id": app.fakes.entra.domain()}])
    );
    assert!(!body.to_string().contains(&app.fakes.entra.client_secret()));
}
