use axum::extract::{Path, State};
use axum::http::StatusCode;
use ctxsync_core::ConfigState;
use ctxsync_sources::Credentials;
use ctxsync_sources::SourceError;

use super::body::parse_validate;
use super::parse_id;
use super::schema::ValidateRequestSchema;
use crate::auth::{Authorized, IntegrationsRead};
use crate::error::{ApiError, ErrorBody};
use crate::json::JsonBody;
use crate::state::AppState;

/// Validate credentials against the source without storing anything.
#[utoipa::path(
    post,
    path = "/api/v2/security_monitoring/configuration/integration_config/validate",
    operation_id = "ValidateSecurityMonitoringIntegrationCredentials",
    tag = "Security Monitoring",
    request_body(content = ValidateRequestSchema, content_type = "application/json", description = "The credentials to validate."),
    responses(
        (status = 200, description = "OK"),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
        (status = 502, description = "The source could not be reached", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["integrations_read"])),
)]
pub async fn validate_credentials(
    State(state): State<AppState>,
    _auth: Authorized<IntegrationsRead>,
    JsonBody(doc): JsonBody,
) -> Result<StatusCode, ApiError> {
    let request = parse_validate(&doc)?;
    state.sources.validate(request.domain.as_str(), &request.settings, &request.credentials).await?;
    Ok(StatusCode::OK)
}

/// Re-validate the credentials stored on a configuration; its `state` follows the answer.
///
/// When the source cannot be reached the state is left as it was: that says nothing about the
/// credentials.
#[utoipa::path(
    post,
    path = "/api/v2/security_monitoring/configuration/integration_config/{integration_config_id}/validate",
    operation_id = "ValidateSecurityMonitoringIntegrationConfig",
    tag = "Security Monitoring",
    params(("integration_config_id" = String, Path, description = "The ID of the entity context sync configuration.")),
    responses(
        (status = 200, description = "OK"),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
        (status = 502, description = "The source could not be reached; the state is unchanged", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["integrations_read"])),
)]
pub async fn validate_config(
    State(state): State<AppState>,
    auth: Authorized<IntegrationsRead>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let config = state.store.get_config(auth.org_id, id).await?.ok_or_else(ApiError::config_not_found)?;
    let secrets = state.store.load_secrets(auth.org_id, id).await?.ok_or_else(ApiError::config_not_found)?;
    let outcome = match Credentials::parse(config.integration_type, &secrets) {
        Ok(credentials) => state.sources.validate(&config.domain, &config.settings, &credentials).await,
        Err(e) => Err(SourceError::InvalidCredentials(format!("the stored secrets are not usable: {e}"))),
    };
    let new_state = match &outcome {
        Ok(()) => Some(ConfigState::Valid),
        Err(SourceError::Unreachable(_)) => None,
        Err(SourceError::Rejected(_) | SourceError::Refused(_) | SourceError::InvalidCredentials(_)) => {
            Some(ConfigState::Invalid)
        }
    };
    if let Some(new_state) = new_state.filter(|s| *s != config.state) {
        state.store.set_state(auth.org_id, id, new_state).await?;
        state.configs.forget(auth.org_id, id);
        tracing::info!(config_id = %id, state = %new_state, "config state changed by validation");
    }
    outcome.map(|()| StatusCode::OK).map_err(ApiError::from)
}
