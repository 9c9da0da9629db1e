use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use ctxsync_core::IntegrationType;

use super::response::{ConfigData, ConfigsResponse};
use crate::auth::{Authorized, IntegrationsRead};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

const FILTER: &str = "filter[integration_type]";

/// List the entity context sync configurations of the caller's org.
#[utoipa::path(
    get,
    path = "/api/v2/security_monitoring/configuration/integration_config",
    operation_id = "ListSecurityMonitoringIntegrationConfigs",
    tag = "Security Monitoring",
    params(("filter[integration_type]" = Option<super::schema::IntegrationTypeSchema>, Query, description = "Filter the entity context sync configurations by source type.")),
    responses(
        (status = 200, description = "OK", body = ConfigsResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["integrations_read"])),
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Authorized<IntegrationsRead>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ConfigsResponse>, ApiError> {
    let filter = match query.get(FILTER) {
        None => None,
        Some(raw) => Some(IntegrationType::parse(raw).ok_or_else(|| {
            ApiError::bad_request(format!("{FILTER}: must be one of {}", IntegrationType::expected_list()))
        })?),
    };
    let configs = state.store.list_configs(auth.org_id, filter).await?;
    Ok(Json(ConfigsResponse { data: configs.into_iter().map(ConfigData::from).collect() }))
}
