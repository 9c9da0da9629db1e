//! Entra ID app registrations: in ctxsync, the app registrations behind the org's ENTRA_ID
//! configs (their `client_id` and tenant), since those are what its Entra syncs run as.

use axum::Json;
use axum::extract::State;
use ctxsync_core::{ConfigState, IntegrationType};
use ctxsync_sources::Credentials;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::schema::AppRegistrationsResourceType;
use crate::auth::{Authorized, IntegrationsRead};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SecurityMonitoringEntraIdAzureAppRegistrationsResponse)]
pub struct AppRegistrationsResponse {
    pub data: AppRegistrationsData,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SecurityMonitoringEntraIdAzureAppRegistrationsData)]
pub struct AppRegistrationsData {
    /// The ID of the organization the app registrations belong to.
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = AppRegistrationsResourceType)]
    pub resource_type: &'static str,
    pub attributes: AppRegistrationsAttributes,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SecurityMonitoringEntraIdAzureAppRegistrationsAttributes)]
pub struct AppRegistrationsAttributes {
    pub azure_app_registrations: Vec<AppRegistration>,
    /// Whether at least one app registration is usable (its config is enabled and valid).
    pub has_valid_prerequisite: bool,
    /// The first ENTRA_ID config, if one exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub subscribed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SecurityMonitoringAzureAppRegistration)]
pub struct AppRegistration {
    pub client_id: String,
    /// 1 when the source last refused the credentials, else 0.
    pub error_count: i64,
    /// Whether ctxsync syncs with this registration (its config is enabled and valid).
    pub resource_collection_enabled: bool,
    /// Always 0: ctxsync reads the directory, not Azure subscriptions.
    pub subscription_count: i64,
    pub tenant_id: String,
}

/// Get the Entra ID app registrations of the org and whether one is usable.
#[utoipa::path(
    get,
    path = "/api/v2/security_monitoring/configuration/integration_config/entra_id/azure_app_registrations",
    operation_id = "GetEntraIdAzureAppRegistrations",
    tag = "Security Monitoring",
    responses(
        (status = 200, description = "OK", body = AppRegistrationsResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["integrations_read"])),
)]
pub async fn app_registrations(
    State(state): State<AppState>,
    auth: Authorized<IntegrationsRead>,
) -> Result<Json<AppRegistrationsResponse>, ApiError> {
    let configs = state.store.list_configs(auth.org_id, Some(IntegrationType::EntraId)).await?;
    let mut registrations = Vec::with_capacity(configs.len());
    for config in &configs {
        let Some(secrets) = state.store.load_secrets(auth.org_id, config.id).await? else { continue };
        let Ok(credentials) = Credentials::parse(IntegrationType::EntraId, &secrets) else { continue };
        let Some(client_id) = ctxsync_sources::entra_client_id(&credentials) else { continue };
        registrations.push(AppRegistration {
            client_id: client_id.to_owned(),
            error_count: i64::from(config.state == ConfigState::Invalid),
            resource_collection_enabled: config.enabled && config.state == ConfigState::Valid,
            subscription_count: 0,
            tenant_id: ctxsync_sources::entra_tenant(&config.domain, &config.settings).to_owned(),
        });
    }
    let first = configs.first();
    Ok(Json(AppRegistrationsResponse {
        data: AppRegistrationsData {
            id: auth.org_id.to_string(),
            resource_type: "entra_id_azure_app_registrations",
            attributes: AppRegistrationsAttributes {
                has_valid_prerequisite: registrations.iter().any(|r| r.resource_collection_enabled),
                azure_app_registrations: registrations,
                integration_id: first.map(|c| c.id.to_string()),
                is_enabled: first.map(|c| c.enabled),
                subscribed_at: first.map(|c| c.created_at.format(&Rfc3339).expect("a stored time formats")),
            },
        },
    }))
}
