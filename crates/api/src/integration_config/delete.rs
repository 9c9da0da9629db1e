use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::parse_id;
use crate::auth::{Authorized, ManageIntegrations};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Delete an entity context sync configuration and its stored credentials (and the
/// subscriptions it holds at the source for push).
#[utoipa::path(
    delete,
    path = "/api/v2/security_monitoring/configuration/integration_config/{integration_config_id}",
    operation_id = "DeleteSecurityMonitoringIntegrationConfig",
    tag = "Security Monitoring",
    params(("integration_config_id" = String, Path, description = "The ID of the entity context sync configuration.")),
    responses(
        (status = 204, description = "OK"),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    // Subscriptions at the source would otherwise go on delivering to an endpoint that is gone.
    crate::push::unsubscribe(&state, auth.org_id, id).await?;
    let deleted = state.store.delete_config(auth.org_id, id).await?;
    state.configs.forget(auth.org_id, id);
    if !deleted {
        return Err(ApiError::config_not_found());
    }
    tracing::info!(config_id = %id, org_id = %auth.org_id, "config deleted");
    Ok(StatusCode::NO_CONTENT)
}
