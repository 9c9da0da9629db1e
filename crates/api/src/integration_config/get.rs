use axum::Json;
use axum::extract::{Path, State};

use super::parse_id;
use super::response::ConfigResponse;
use crate::auth::{Authorized, IntegrationsRead};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Get an entity context sync configuration.
#[utoipa::path(
    get,
    path = "/api/v2/security_monitoring/configuration/integration_config/{integration_config_id}",
    operation_id = "GetSecurityMonitoringIntegrationConfig",
    tag = "Security Monitoring",
    params(("integration_config_id" = String, Path, description = "The ID of the entity context sync configuration.")),
    responses(
        (status = 200, description = "OK", body = ConfigResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["integrations_read"])),
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Authorized<IntegrationsRead>,
    Path(id): Path<String>,
) -> Result<Json<ConfigResponse>, ApiError> {
    let id = parse_id(&id)?;
    let config =
        state.configs.get(&state.store, auth.org_id, id).await?.ok_or_else(ApiError::config_not_found)?;
    Ok(Json(config.into()))
}
