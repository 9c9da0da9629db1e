use axum::Json;
use axum::extract::{Path, State};
use ctxsync_core::{Config, ConfigId, ConfigPatch, ConfigState, FieldErrors, OrgId};
use ctxsync_sources::Credentials;

use super::body::parse_update;
use super::response::ConfigResponse;
use super::schema::UpdateRequestSchema;
use super::{parse_id, warn_setting_typos};
use crate::auth::{Authorized, ManageIntegrations};
use crate::error::{ApiError, ErrorBody};
use crate::json::JsonBody;
use crate::state::AppState;

/// Partially update an entity context sync configuration: only the fields sent change.
///
/// A change of `secrets`, `domain` or `integration_type` is validated against the source first;
/// if that fails the stored config is left untouched.
#[utoipa::path(
    patch,
    path = "/api/v2/security_monitoring/configuration/integration_config/{integration_config_id}",
    operation_id = "UpdateSecurityMonitoringIntegrationConfig",
    tag = "Security Monitoring",
    params(("integration_config_id" = String, Path, description = "The ID of the entity context sync configuration.")),
    request_body(content = UpdateRequestSchema, content_type = "application/json", description = "The fields to update on the integration configuration."),
    responses(
        (status = 200, description = "OK", body = ConfigResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
        (status = 502, description = "The source could not be reached; nothing was changed", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn update(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody,
) -> Result<Json<ConfigResponse>, ApiError> {
    let id = parse_id(&id)?;
    let patch = parse_update(&doc, id)?;
    let config = apply_patch(&state, auth.org_id, id, &patch).await?;
    if patch.settings.is_some() {
        warn_setting_typos(&config);
    }
    Ok(Json(config.into()))
}

/// Applies a partial update to a stored config: plans it, re-validates against the source when
/// the connection changes (leaving the store untouched on failure), and writes only when
/// something changed. Shared with activate and deactivate, which are updates of `enabled`.
pub(super) async fn apply_patch(
    state: &AppState,
    org_id: OrgId,
    id: ConfigId,
    patch: &ConfigPatch,
) -> Result<Config, ApiError> {
    let current = state.store.get_config(org_id, id).await?.ok_or_else(ApiError::config_not_found)?;
    let current_secrets =
        state.store.load_secrets(org_id, id).await?.ok_or_else(ApiError::config_not_found)?;
    let next_type = patch.integration_type.unwrap_or(current.integration_type);
    let validated = ctxsync_sources::source(next_type).map_or(&[][..], |s| s.validated_settings);
    let plan =
        patch.plan(&current, &current_secrets, validated, ctxsync_core::now()).map_err(FieldErrors::from)?;
    let mut config = plan.config;
    if plan.revalidate {
        let secrets = patch.secrets.as_ref().unwrap_or(&current_secrets);
        let credentials = Credentials::parse(config.integration_type, secrets)?;
        state.sources.validate(&config.domain, &config.settings, &credentials).await?;
        config.state = ConfigState::Valid;
    }
    if plan.changed {
        let new_secrets = patch.secrets.as_ref().filter(|s| **s != current_secrets);
        let updated = state.store.update_config(&config, new_secrets).await?;
        state.configs.forget(org_id, id);
        if !updated {
            return Err(ApiError::config_not_found());
        }
        tracing::info!(config_id = %id, %org_id, revalidated = plan.revalidate, "config updated");
    }
    Ok(config)
}
