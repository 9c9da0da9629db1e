//! The official Datadog Rust client, pointed at ctxsync through its `{protocol}://{name}`
//! server entry, drives the whole family: what it sends is what Datadog's users send.

use std::collections::BTreeMap;

use datadog_api_client::datadog::{APIKey, Configuration, Error};
use datadog_api_client::datadogV2::api_security_monitoring::{
    ActivateIntegrationOptionalParams, CreateSecurityMonitoringIntegrationConfigError,
    ListSecurityMonitoringIntegrationConfigsOptionalParams, SecurityMonitoringAPI,
};
use datadog_api_client::datadogV2::model::*;

use crate::helpers::{TestApp, spawn_app};

const OPERATIONS: [&str; 10] = [
    "v2.activate_integration",
    "v2.deactivate_integration",
    "v2.get_entra_id_azure_app_registrations",
    "v2.create_security_monitoring_integration_config",
    "v2.get_security_monitoring_integration_config",
    "v2.list_security_monitoring_integration_configs",
    "v2.update_security_monitoring_integration_config",
    "v2.delete_security_monitoring_integration_config",
    "v2.validate_security_monitoring_integration_config",
    "v2.validate_security_monitoring_integration_credentials",
];

fn client(app: &TestApp) -> SecurityMonitoringAPI {
    let mut config = Configuration::new();
    config.server_index = 1;
    config.server_variables.insert("protocol".into(), "http".into());
    config.server_variables.insert("name".into(), app.address.trim_start_matches("http://").into());
    config.set_auth_key("apiKeyAuth", APIKey { key: app.api_key.clone(), prefix: String::new() });
    config.set_auth_key("appKeyAuth", APIKey { key: app.app_key.clone(), prefix: String::new() });
    for op in OPERATIONS {
        assert!(
            config.set_unstable_operation_enabled(op, true),
            "{op} is an unstable operation of the client"
        );
    }
    SecurityMonitoringAPI::with_config(config)
}

/// The ids of the configs of one type, as the client lists them.
async fn listed(api: &SecurityMonitoringAPI, of_type: SecurityMonitoringIntegrationType) -> Vec<String> {
    let params =
        ListSecurityMonitoringIntegrationConfigsOptionalParams::default().filter_integration_type(of_type);
    let listed = api.list_security_monitoring_integration_configs(params).await.unwrap();
    listed.data.into_iter().map(|d| d.id).collect()
}

fn okta_create(app: &TestApp, token: String) -> SecurityMonitoringIntegrationConfigCreateRequest {
    let attributes = SecurityMonitoringOktaIntegrationConfigCreateAttributes::new(
        app.fakes.okta.domain(),
        SecurityMonitoringIntegrationTypeOkta::OKTA,
        "Okta via the Datadog client".into(),
        SecurityMonitoringIntegrationConfigOktaSecrets::new(token),
    )
    .settings(BTreeMap::from([("owner".to_string(), serde_json::json!("secops"))]));
    SecurityMonitoringIntegrationConfigCreateRequest::new(SecurityMonitoringIntegrationConfigCreateData::new(
        SecurityMonitoringIntegrationConfigCreateAttributes::SecurityMonitoringOktaIntegrationConfigCreateAttributes(
            Box::new(attributes),
        ),
        SecurityMonitoringIntegrationConfigResourceType::INTEGRATION_CONFIG,
    ))
}

#[tokio::test]
async fn the_official_client_drives_every_operation() {
    let app = spawn_app().await;
    let api = client(&app);

    let created = api
        .create_security_monitoring_integration_config(okta_create(&app, app.fakes.okta.api_token()))
        .await
        .unwrap();
    let id = created.data.id.clone();
    let attrs = &created.data.attributes;
    assert_eq!(attrs.integration_type, SecurityMonitoringIntegrationType::OKTA);
    assert_eq!(attrs.name.as_deref(), Some("Okta via the Datadog client"));
    assert!(attrs.enabled);
    assert_eq!(attrs.state, Some(SecurityMonitoringIntegrationConfigState::VALID));
    assert!(attrs.created_at.is_some() && attrs.created_at == attrs.modified_at);
    assert!(
        attrs.additional_properties.is_empty(),
        "no field beyond the contract: {:?}",
        attrs.additional_properties
    );

    let got = api.get_security_monitoring_integration_config(id.clone()).await.unwrap();
    assert_eq!(got.data.attributes.settings, attrs.settings);

    assert_eq!(listed(&api, SecurityMonitoringIntegrationType::OKTA).await, vec![id.clone()]);
    assert_eq!(listed(&api, SecurityMonitoringIntegrationType::ENTRA_ID).await, Vec::<String>::new());

    let update = SecurityMonitoringIntegrationConfigUpdateRequest::new(SecurityMonitoringIntegrationConfigUpdateData::new(
        SecurityMonitoringIntegrationConfigUpdateAttributes::SecurityMonitoringOktaIntegrationConfigUpdateAttributes(Box::new(
            SecurityMonitoringOktaIntegrationConfigUpdateAttributes::new(SecurityMonitoringIntegrationTypeOkta::OKTA)
                .name("Renamed".into())
                .enabled(false),
        )),
        SecurityMonitoringIntegrationConfigResourceType::INTEGRATION_CONFIG,
    ));
    let updated = api.update_security_monitoring_integration_config(id.clone(), update).await.unwrap();
    assert_eq!(updated.data.attributes.name.as_deref(), Some("Renamed"));
    assert!(!updated.data.attributes.enabled);
    assert_eq!(updated.data.attributes.domain, attrs.domain);
    assert!(updated.data.attributes.modified_at > attrs.modified_at);

    api.validate_security_monitoring_integration_config(id.clone()).await.unwrap();
    let credentials = SecurityMonitoringIntegrationCredentialsValidateRequest::new(
        SecurityMonitoringIntegrationCredentialsValidateData::new(
            SecurityMonitoringIntegrationCredentialsValidateAttributes::SecurityMonitoringOktaIntegrationCredentialsValidateAttributes(
                Box::new(SecurityMonitoringOktaIntegrationCredentialsValidateAttributes::new(
                    app.fakes.okta.domain(),
                    SecurityMonitoringIntegrationTypeOkta::OKTA,
                    SecurityMonitoringIntegrationConfigOktaSecrets::new(app.fakes.okta.api_token()),
                )),
            ),
            SecurityMonitoringIntegrationConfigResourceType::INTEGRATION_CONFIG,
        ),
    );
    api.validate_security_monitoring_integration_credentials(credentials).await.unwrap();

    api.delete_security_monitoring_integration_config(id.clone()).await.unwrap();
    match api.get_security_monitoring_integration_config(id).await {
        Err(Error::ResponseError(r)) => assert_eq!(r.status, 404),
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[tokio::test]
async fn the_official_client_sees_errors_in_the_contract_shape() {
    let app = spawn_app().await;
    let api = client(&app);
    match api.create_security_monitoring_integration_config(okta_create(&app, "00revoked".into())).await {
        Err(Error::ResponseError(r)) => {
            assert_eq!(r.status, 400);
            match r.entity {
                Some(CreateSecurityMonitoringIntegrationConfigError::APIErrorResponse(e)) => {
                    assert!(e.errors[0].contains("Invalid token provided"), "{:?}", e.errors)
                }
                other => panic!("an APIErrorResponse, got {other:?}"),
            }
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test]
async fn the_official_client_creates_a_google_workspace_config() {
    let app = spawn_app().await;
    let api = client(&app);
    let key_file = app.fakes.google.service_account_json();
    let field = |k: &str| key_file[k].as_str().unwrap().to_string();
    let mut account = SecurityMonitoringIntegrationConfigGoogleWorkspaceServiceAccount::new(
        field("client_email"),
        field("private_key"),
        field("project_id"),
        field("type"),
    );
    for (k, v) in key_file.as_object().unwrap() {
        if !["client_email", "private_key", "project_id", "type"].contains(&k.as_str()) {
            account.additional_properties.insert(k.clone(), v.clone());
        }
    }
    let secrets = SecurityMonitoringIntegrationConfigGoogleWorkspaceSecrets::new(account)
        .admin_email(app.fakes.google.admin_email());
    let request = SecurityMonitoringIntegrationConfigCreateRequest::new(SecurityMonitoringIntegrationConfigCreateData::new(
        SecurityMonitoringIntegrationConfigCreateAttributes::SecurityMonitoringGoogleWorkspaceIntegrationConfigCreateAttributes(
            Box::new(SecurityMonitoringGoogleWorkspaceIntegrationConfigCreateAttributes::new(
                app.fakes.google.domain(),
                SecurityMonitoringIntegrationTypeGoogleWorkspace::GOOGLE_WORKSPACE,
                "Workspace".into(),
                secrets,
            )),
        ),
        SecurityMonitoringIntegrationConfigResourceType::INTEGRATION_CONFIG,
    ));
    let created = api.create_security_monitoring_integration_config(request).await.unwrap();
    assert_eq!(created.data.attributes.integration_type, SecurityMonitoringIntegrationType::GOOGLE_WORKSPACE);
}

#[tokio::test]
async fn the_official_client_activates_deactivates_and_reads_app_registrations() {
    let app = spawn_app().await;
    let api = client(&app);
    let created = app.create_ok(app.entra_attributes()).await;

    let off = api.deactivate_integration("entra_id".into()).await.unwrap();
    assert_eq!(off.data.id, created["id"].as_str().unwrap());
    assert!(!off.data.attributes.enabled);

    let on = api
        .activate_integration(
            "entra_id".into(),
            ActivateIntegrationOptionalParams::default().body(
                SecurityMonitoringIntegrationActivateRequest::new().data(
                    SecurityMonitoringIntegrationActivateData::new()
                        .attributes(
                            SecurityMonitoringIntegrationActivateAttributes::new().name("Entra".into()),
                        )
                        .type_(SecurityMonitoringIntegrationActivateResourceType::ACTIVATE_ENTRA_ID_REQUEST),
                ),
            ),
        )
        .await
        .unwrap();
    assert!(on.data.attributes.enabled);
    assert_eq!(on.data.id, off.data.id);

    let registrations = api.get_entra_id_azure_app_registrations().await.unwrap();
    let attrs = registrations.data.attributes;
    assert!(attrs.has_valid_prerequisite);
    assert_eq!(attrs.azure_app_registrations.len(), 1);
    assert_eq!(attrs.azure_app_registrations[0].client_id, app.fakes.entra.client_id());
    assert_eq!(attrs.integration_id.as_deref(), created["id"].as_str());
}

fn create_request(
    attributes: SecurityMonitoringIntegrationConfigCreateAttributes,
) -> SecurityMonitoringIntegrationConfigCreateRequest {
    SecurityMonitoringIntegrationConfigCreateRequest::new(SecurityMonitoringIntegrationConfigCreateData::new(
        attributes,
        SecurityMonitoringIntegrationConfigResourceType::INTEGRATION_CONFIG,
    ))
}

fn update_request(
    attributes: SecurityMonitoringIntegrationConfigUpdateAttributes,
) -> SecurityMonitoringIntegrationConfigUpdateRequest {
    SecurityMonitoringIntegrationConfigUpdateRequest::new(SecurityMonitoringIntegrationConfigUpdateData::new(
        attributes,
        SecurityMonitoringIntegrationConfigResourceType::INTEGRATION_CONFIG,
    ))
}

fn credentials_request(
    attributes: SecurityMonitoringIntegrationCredentialsValidateAttributes,
) -> SecurityMonitoringIntegrationCredentialsValidateRequest {
    SecurityMonitoringIntegrationCredentialsValidateRequest::new(
        SecurityMonitoringIntegrationCredentialsValidateData::new(
            attributes,
            SecurityMonitoringIntegrationConfigResourceType::INTEGRATION_CONFIG,
        ),
    )
}

/// The 400's first error detail, as the client hands it over.
fn rejection<T: std::fmt::Debug>(result: Result<T, Error<impl std::fmt::Debug>>) -> String {
    match result {
        Err(Error::ResponseError(r)) => {
            assert_eq!(r.status, 400, "{}", r.content);
            r.content
        }
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test]
async fn the_official_client_creates_updates_and_validates_crowdstrike_configs() {
    let app = spawn_app().await;
    let api = client(&app);
    let falcon = &app.fakes.crowdstrike;
    let secrets = |secret: String| {
        SecurityMonitoringIntegrationConfigCrowdStrikeSecrets::new(falcon.client_id(), secret)
    };
    let kind = SecurityMonitoringIntegrationTypeCrowdStrike::CROWDSTRIKE;

    let created = api
        .create_security_monitoring_integration_config(create_request(
            SecurityMonitoringIntegrationConfigCreateAttributes::SecurityMonitoringCrowdStrikeIntegrationConfigCreateAttributes(
                Box::new(SecurityMonitoringCrowdStrikeIntegrationConfigCreateAttributes::new(
                    falcon.domain(),
                    kind.clone(),
                    "Falcon".into(),
                    secrets(falcon.client_secret()),
                )),
            ),
        ))
        .await
        .unwrap();
    let id = created.data.id.clone();
    assert_eq!(created.data.attributes.integration_type, SecurityMonitoringIntegrationType::CROWDSTRIKE);
    assert_eq!(created.data.attributes.state, Some(SecurityMonitoringIntegrationConfigState::VALID));
    assert!(created.data.attributes.additional_properties.is_empty(), "no secret or extra field comes back");
    assert_eq!(listed(&api, SecurityMonitoringIntegrationType::CROWDSTRIKE).await, vec![id.clone()]);

    // A wrong secret in an update is refused and changes nothing; a rename alone needs none.
    let wrong = api
        .update_security_monitoring_integration_config(
            id.clone(),
            update_request(SecurityMonitoringIntegrationConfigUpdateAttributes::SecurityMonitoringCrowdStrikeIntegrationConfigUpdateAttributes(
                Box::new(SecurityMonitoringCrowdStrikeIntegrationConfigUpdateAttributes::new(kind.clone()).secrets(secrets("x".repeat(40)))),
            )),
        )
        .await;
    let said = rejection(wrong);
    assert!(said.contains("CrowdStrike refused the API client's credentials"), "{said}");
    let renamed = api
        .update_security_monitoring_integration_config(
            id.clone(),
            update_request(SecurityMonitoringIntegrationConfigUpdateAttributes::SecurityMonitoringCrowdStrikeIntegrationConfigUpdateAttributes(
                Box::new(SecurityMonitoringCrowdStrikeIntegrationConfigUpdateAttributes::new(kind.clone()).name("Falcon EU".into())),
            )),
        )
        .await
        .unwrap();
    assert_eq!(renamed.data.attributes.name.as_deref(), Some("Falcon EU"));
    api.validate_security_monitoring_integration_config(id).await.unwrap();

    let check = |secret: String| {
        credentials_request(SecurityMonitoringIntegrationCredentialsValidateAttributes::SecurityMonitoringCrowdStrikeIntegrationCredentialsValidateAttributes(
            Box::new(SecurityMonitoringCrowdStrikeIntegrationCredentialsValidateAttributes::new(falcon.domain(), kind.clone(), secrets(secret))),
        ))
    };
    api.validate_security_monitoring_integration_credentials(check(falcon.client_secret())).await.unwrap();
    falcon.set_hosts_read(false);
    let said = rejection(
        api.validate_security_monitoring_integration_credentials(check(falcon.client_secret())).await,
    );
    assert!(said.contains("lacks the Hosts: Read scope"), "{said}");
    assert!(!said.contains(&falcon.client_secret()), "{said}");
}

#[tokio::test]
async fn the_official_client_rotates_a_sentinelone_token() {
    let app = spawn_app().await;
    let api = client(&app);
    let console = &app.fakes.sentinelone;
    let kind = SecurityMonitoringIntegrationTypeSentinelOne::SENTINELONE;
    let old = console.api_token();

    let created = api
        .create_security_monitoring_integration_config(create_request(
            SecurityMonitoringIntegrationConfigCreateAttributes::SecurityMonitoringSentinelOneIntegrationConfigCreateAttributes(
                Box::new(SecurityMonitoringSentinelOneIntegrationConfigCreateAttributes::new(
                    console.domain(),
                    kind.clone(),
                    "Singularity".into(),
                    SecurityMonitoringIntegrationConfigSentinelOneSecrets::new(old.clone()),
                )),
            ),
        ))
        .await
        .unwrap();
    let id = created.data.id.clone();
    assert_eq!(created.data.attributes.integration_type, SecurityMonitoringIntegrationType::SENTINELONE);
    assert_eq!(created.data.attributes.domain, console.domain());

    // The console issues a new token; the config takes it, and the old one can then go.
    let new = console.add_token(ctxsync_fakes::SentinelOneScope::Account);
    let update = |token: String| {
        update_request(SecurityMonitoringIntegrationConfigUpdateAttributes::SecurityMonitoringSentinelOneIntegrationConfigUpdateAttributes(
            Box::new(
                SecurityMonitoringSentinelOneIntegrationConfigUpdateAttributes::new(kind.clone())
                    .secrets(SecurityMonitoringIntegrationConfigSentinelOneSecrets::new(token)),
            ),
        ))
    };
    api.update_security_monitoring_integration_config(id.clone(), update(new)).await.unwrap();
    console.revoke_token(&old);
    api.validate_security_monitoring_integration_config(id.clone()).await.unwrap();

    let site = console.add_token(ctxsync_fakes::SentinelOneScope::Site);
    let said =
        rejection(api.update_security_monitoring_integration_config(id.clone(), update(site.clone())).await);
    assert!(said.contains("scoped to a site"), "{said}");
    assert!(!said.contains(&site), "{said}");
    api.validate_security_monitoring_integration_config(id).await.unwrap();
}
