use axum::Json;
use axum::extract::State;
use ctxsync_core::Config;

use super::body::parse_create;
use super::response::ConfigResponse;
use super::schema::CreateRequestSchema;
use super::warn_setting_typos;
use crate::auth::{Authorized, ManageIntegrations};
use crate::error::{ApiError, ErrorBody};
use crate::json::JsonBody;
use crate::state::AppState;

/// Create an entity context sync configuration.
///
/// The credentials in `secrets` are validated against the source before anything is stored, and
/// are never returned.
#[utoipa::path(
    post,
    path = "/api/v2/security_monitoring/configuration/integration_config",
    operation_id = "CreateSecurityMonitoringIntegrationConfig",
    tag = "Security Monitoring",
    request_body(content = CreateRequestSchema, content_type = "application/json", description = "The definition of the new integration configuration."),
    responses(
        (status = 200, description = "OK", body = ConfigResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
        (status = 502, description = "The source could not be reached; nothing was stored", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    JsonBody(doc): JsonBody,
) -> Result<Json<ConfigResponse>, ApiError> {
    let request = parse_create(&doc)?;
    let new = request.config;
    state.sources.validate(new.domain.as_str(), &new.settings, &request.credentials).await?;
    let config = Config::created(
        auth.org_id,
        new.integration_type,
        new.name.into_inner(),
        new.domain.into_inner(),
        new.settings,
    );
    state.store.insert_config(&config, &new.secrets).await?;
    tracing::info!(config_id = %config.id, org_id = %config.org_id, integration_type = %config.integration_type, "config created");
    warn_setting_typos(&config);
    Ok(Json(config.into()))
}
