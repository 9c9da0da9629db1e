use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ctxsync_core::{ConfigId, ConfigState};
use serde::Serialize;
use utoipa::ToSchema;

use super::response::RunData;
use crate::auth::{Authorized, IntegrationsRead, ManageIntegrations};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Runs listed, newest first.
const HISTORY: u32 = 50;

#[derive(Debug, Serialize, ToSchema)]
pub struct RunsResponse {
    pub data: Vec<RunData>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunResponse {
    pub data: RunData,
}

fn config_id(raw: &str) -> Result<ConfigId, ApiError> {
    raw.parse().map_err(|_| ApiError::config_not_found())
}

/// The config's sync runs, newest first; a run in progress shows its counts so far.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/sync_runs",
    operation_id = "ListSyncRuns",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The config.")),
    responses(
        (status = 200, description = "OK", body = RunsResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["integrations_read"])),
)]
pub async fn list_runs(
    State(state): State<AppState>,
    auth: Authorized<IntegrationsRead>,
    Path(config): Path<String>,
) -> Result<Json<RunsResponse>, ApiError> {
    let config = config_id(&config)?;
    state.store.get_config(auth.org_id, config).await?.ok_or_else(ApiError::config_not_found)?;
    let runs = state.store.list_runs(auth.org_id, config, HISTORY).await?;
    Ok(Json(RunsResponse { data: runs.into_iter().map(RunData::from).collect() }))
}

/// One sync run.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/sync_runs/{run_id}",
    operation_id = "GetSyncRun",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The config."), ("run_id" = String, Path, description = "The run.")),
    responses(
        (status = 200, description = "OK", body = RunResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["integrations_read"])),
)]
pub async fn get_run(
    State(state): State<AppState>,
    auth: Authorized<IntegrationsRead>,
    Path((config, run)): Path<(String, String)>,
) -> Result<Json<RunResponse>, ApiError> {
    let not_found = || ApiError::NotFound("sync run not found".into());
    let config = config_id(&config)?;
    let run = run.parse().map_err(|_| not_found())?;
    let run = state.store.get_run(auth.org_id, config, run).await?.ok_or_else(not_found)?;
    Ok(Json(RunResponse { data: run.into() }))
}

/// Sync the config now instead of at its next scheduled time.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/sync",
    operation_id = "SyncNow",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The config.")),
    responses(
        (status = 202, description = "Accepted: a worker starts the run within seconds"),
        (status = 400, description = "The config is disabled or its credentials are invalid", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn sync_now(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    Path(config): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = config_id(&config)?;
    let config = state.store.get_config(auth.org_id, id).await?.ok_or_else(ApiError::config_not_found)?;
    if !config.enabled {
        return Err(ApiError::bad_request(
            "the config is disabled: enable it first (PATCH with \"enabled\": true)",
        ));
    }
    if config.state == ConfigState::Invalid {
        return Err(ApiError::bad_request(
            "the config's credentials were rejected by the source: update its secrets first",
        ));
    }
    if !state.store.request_run(auth.org_id, id).await? {
        return Err(ApiError::config_not_found());
    }
    Ok(StatusCode::ACCEPTED)
}
