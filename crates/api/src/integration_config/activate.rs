//! Activate and deactivate: the contract's switches for a whole integration type.
//!
//! ctxsync has no credentials of its own to create an integration with (Datadog borrows its
//! Azure integration's), so activating a type turns on the org's existing config of that type —
//! the same partial update as `PATCH … {"enabled": true}` plus the request's overrides — and
//! says how to create one when there is none.

use axum::Json;
use axum::extract::{Path, State};
use ctxsync_core::{Config, ConfigPatch, IntegrationType, OrgId};

use super::BASE_PATH;
use super::body::parse_activate;
use super::response::ConfigResponse;
use super::schema::ActivateRequestSchema;
use super::update::apply_patch;
use crate::auth::{Authorized, ManageIntegrations};
use crate::error::{ApiError, ErrorBody};
use crate::json::OptionalJsonBody;
use crate::state::AppState;

/// Activate the org's integration of a type, re-enabling it if it was disabled.
#[utoipa::path(
    post,
    path = "/api/v2/security_monitoring/configuration/integration_config/{integration_type}/activate",
    operation_id = "ActivateIntegration",
    tag = "Security Monitoring",
    params(("integration_type" = String, Path, description = "The integration type to activate (for example, `entra_id`).")),
    request_body(content = ActivateRequestSchema, content_type = "application/json", description = "Optional configuration overrides for the integration to activate."),
    responses(
        (status = 200, description = "OK", body = ConfigResponse),
        (status = 400, description = "Bad Request (for example, no integration of this type exists yet)", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn activate(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    Path(raw_type): Path<String>,
    OptionalJsonBody(doc): OptionalJsonBody,
) -> Result<Json<ConfigResponse>, ApiError> {
    let integration_type = path_type(&raw_type)?;
    let overrides = doc.as_ref().map(parse_activate).transpose()?;
    let Some(existing) = first_of_type(&state, auth.org_id, integration_type).await? else {
        return Err(ApiError::bad_request(format!(
            "there is no {integration_type} integration to activate: {integration_type} needs credentials, so create it \
             with POST {BASE_PATH} ({})",
            credentials_hint(integration_type)
        )));
    };
    let patch = ConfigPatch {
        name: overrides.as_ref().and_then(|o| o.name.clone()),
        domain: overrides.as_ref().and_then(|o| o.domain.clone()),
        enabled: Some(true),
        settings: overrides.and_then(|o| o.settings),
        ..ConfigPatch::default()
    };
    let config = apply_patch(&state, auth.org_id, existing.id, &patch).await?;
    Ok(Json(config.into()))
}

/// Deactivate every enabled integration of a type; answers with the first of them.
#[utoipa::path(
    post,
    path = "/api/v2/security_monitoring/configuration/integration_config/{integration_type}/deactivate",
    operation_id = "DeactivateIntegration",
    tag = "Security Monitoring",
    params(("integration_type" = String, Path, description = "The integration type to deactivate (for example, `entra_id`).")),
    responses(
        (status = 200, description = "OK", body = ConfigResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn deactivate(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    Path(raw_type): Path<String>,
) -> Result<Json<ConfigResponse>, ApiError> {
    let integration_type = path_type(&raw_type)?;
    let configs = state.store.list_configs(auth.org_id, Some(integration_type)).await?;
    if configs.is_empty() {
        return Err(ApiError::NotFound(format!("there is no {integration_type} integration in this org")));
    }
    let mut first = None;
    for config in configs {
        let updated = if config.enabled {
            let patch = ConfigPatch { enabled: Some(false), ..ConfigPatch::default() };
            apply_patch(&state, auth.org_id, config.id, &patch).await?
        } else {
            config
        };
        first.get_or_insert(updated);
    }
    Ok(Json(first.expect("at least one config").into()))
}

fn path_type(raw: &str) -> Result<IntegrationType, ApiError> {
    IntegrationType::parse_path(raw).ok_or_else(|| {
        ApiError::NotFound(format!(
            "unknown integration type {raw:?}; one of {}",
            IntegrationType::ALL.map(|t| t.as_str().to_ascii_lowercase()).join(", ")
        ))
    })
}

async fn first_of_type(state: &AppState, org: OrgId, t: IntegrationType) -> Result<Option<Config>, ApiError> {
    Ok(state.store.list_configs(org, Some(t)).await?.into_iter().next())
}

fn credentials_hint(t: IntegrationType) -> String {
    match ctxsync_sources::source(t) {
        None => "not supported yet by this release".into(),
        Some(source) => {
            format!("secrets: {}", source.secrets.iter().map(|k| k.name).collect::<Vec<_>>().join(" and "))
        }
    }
}
