//! A config's push endpoint: its status, turning it on (a new secret, shown once) and off.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use ctxsync_core::{Config, ConfigId, IntegrationType};
use ctxsync_store::{PushEndpoint, new_secret, secret_digest};
use serde::Serialize;
use utoipa::ToSchema;

use super::{OKTA_HOOK_PATH, SECRET_HEADER};
use crate::auth::{Authorized, IntegrationsRead, ManageIntegrations};
use crate::entities::response::rfc3339;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct PushResponse {
    pub data: PushData,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushData {
    /// The config's id.
    pub id: String,
    #[serde(rename = "type")]
    #[schema(example = "push_endpoint")]
    pub resource_type: &'static str,
    pub attributes: PushAttributes,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushAttributes {
    /// Where the source delivers: give it to the source's console (Okta: Workflow → Event Hooks).
    pub url: String,
    /// The header the source must send, its value the secret.
    pub header: &'static str,
    /// Only in the answer that made it: shown once, stored as a digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub enabled: bool,
    #[schema(nullable)]
    pub created_at: Option<String>,
    #[schema(nullable)]
    pub last_delivery_at: Option<String>,
    /// Deliveries accepted; events among them that had come before; deliveries refused for want
    /// of the secret.
    pub deliveries: u64,
    pub duplicate_events: u64,
    pub rejected: u64,
}

fn config_id(raw: &str) -> Result<ConfigId, ApiError> {
    raw.parse().map_err(|_| ApiError::config_not_found())
}

/// The config, when its source can push.
async fn pushing_config(state: &AppState, org: ctxsync_core::OrgId, id: &str) -> Result<Config, ApiError> {
    let config = state.store.get_config(org, config_id(id)?).await?.ok_or_else(ApiError::config_not_found)?;
    if config.integration_type != IntegrationType::Okta {
        return Err(ApiError::bad_request(format!(
            "push is available for OKTA configs (Okta Event Hooks); {} configs are synced on their schedule",
            config.integration_type.as_str()
        )));
    }
    Ok(config)
}

/// The address the source reaches this service at: `CTXSYNC_PUBLIC_URL`, else the `Host` the
/// request came to.
fn hook_url(state: &AppState, headers: &HeaderMap, config: ConfigId) -> String {
    let base = state.public_url.clone().unwrap_or_else(|| {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        format!("http://{host}")
    });
    format!("{}{OKTA_HOOK_PATH}/{config}", base.trim_end_matches('/'))
}

fn response(
    url: String,
    config: ConfigId,
    endpoint: Option<&PushEndpoint>,
    secret: Option<String>,
) -> PushResponse {
    PushResponse {
        data: PushData {
            id: config.to_string(),
            resource_type: "push_endpoint",
            attributes: PushAttributes {
                url,
                header: SECRET_HEADER,
                secret,
                enabled: endpoint.is_some(),
                created_at: endpoint.map(|e| rfc3339(e.created_at)),
                last_delivery_at: endpoint.and_then(|e| e.last_delivery_at).map(rfc3339),
                deliveries: endpoint.map_or(0, |e| e.deliveries),
                duplicate_events: endpoint.map_or(0, |e| e.duplicates),
                rejected: endpoint.map_or(0, |e| e.rejected),
            },
        },
    }
}

/// The config's push endpoint: where the source delivers, whether it is on, what it has seen.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/push",
    operation_id = "GetPushEndpoint",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The integration config's ID.")),
    responses(
        (status = 200, description = "OK", body = PushResponse),
        (status = 400, description = "The config's source cannot push", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["integrations_read"])),
)]
pub async fn get_push(
    State(state): State<AppState>,
    auth: Authorized<IntegrationsRead>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PushResponse>, ApiError> {
    let config = pushing_config(&state, auth.org_id, &id).await?;
    let endpoint = state.store.push_endpoint(config.id).await?;
    Ok(Json(response(hook_url(&state, &headers, config.id), config.id, endpoint.as_ref(), None)))
}

/// Turns push on with a new secret, or replaces the secret (the old one stops working at once):
/// the answer is the only place the secret is ever shown.
#[utoipa::path(
    put,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/push",
    operation_id = "EnablePushEndpoint",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The integration config's ID.")),
    responses(
        (status = 200, description = "OK: the secret is in `attributes.secret`", body = PushResponse),
        (status = 400, description = "The config's source cannot push", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn enable_push(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PushResponse>, ApiError> {
    let config = pushing_config(&state, auth.org_id, &id).await?;
    let secret = new_secret();
    let now = ctxsync_core::now();
    if !state.store.set_push_secret(auth.org_id, config.id, &secret_digest(&secret), now).await? {
        return Err(ApiError::config_not_found());
    }
    let endpoint = state.store.push_endpoint(config.id).await?;
    tracing::info!(config_id = %config.id, "push secret set");
    Ok(Json(response(hook_url(&state, &headers, config.id), config.id, endpoint.as_ref(), Some(secret))))
}

/// Turns push off: deliveries are refused (404) until it is turned on again.
#[utoipa::path(
    delete,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/push",
    operation_id = "DisablePushEndpoint",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The integration config's ID.")),
    responses(
        (status = 204, description = "Turned off"),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found, or push was off", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn disable_push(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = config_id(&id)?;
    if !state.store.delete_push_secret(auth.org_id, id).await? {
        return Err(ApiError::NotFound("push is not on for this config".into()));
    }
    Ok(StatusCode::NO_CONTENT)
}
