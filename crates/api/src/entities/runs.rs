use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use ctxsync_core::{ConfigId, ConfigState, OrgId, Run, RunStatus};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

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

/// The answer to "sync now": the run that was asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRequestedResponse {
    pub data: SyncRequestedData,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRequestedData {
    /// The id the run will have; `GET …/sync_runs/{id}` finds it once a worker starts it.
    pub id: String,
    /// Always `sync_run`.
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    pub attributes: SyncRequestedAttributes,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRequestedAttributes {
    /// Always `queued`: a worker starts it within seconds.
    pub status: &'static str,
    pub config_id: String,
}

/// Sync the config now instead of at its next scheduled time.
///
/// Answers with the id the run will have and a `Location` to follow it; asking again before it
/// starts answers with the same run. While a run of the config is in progress the answer is 409
/// naming it.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/sync",
    operation_id = "SyncNow",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The config.")),
    responses(
        (status = 202, description = "Accepted: a worker starts the run within seconds", body = SyncRequestedResponse,
            headers(("Location" = String, description = "The run: `/api/v2/ctxsync/integration_configs/{config_id}/sync_runs/{run_id}` (404 until a worker starts it)"))),
        (status = 400, description = "The config is disabled or its credentials are invalid", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 409, description = "A run of the config is in progress", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn sync_now(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    Path(config): Path<String>,
) -> Result<(StatusCode, [(header::HeaderName, String); 1], Json<SyncRequestedResponse>), ApiError> {
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
    if let Some(running) = run_in_progress(&state, auth.org_id, id).await? {
        return Err(ApiError::Conflict(format!(
            "run {} of this config is in progress (started {}); follow it at {}",
            running.id,
            super::response::rfc3339(running.started_at),
            run_path(id, running.id)
        )));
    }
    let run = state.store.request_run(auth.org_id, id).await?.ok_or_else(ApiError::config_not_found)?;
    state.runs_due.notify_one();
    let body = SyncRequestedResponse {
        data: SyncRequestedData {
            id: run.to_string(),
            resource_type: "sync_run",
            attributes: SyncRequestedAttributes { status: "queued", config_id: id.to_string() },
        },
    };
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, run_path(id, run))], Json(body)))
}

fn run_path(config: ConfigId, run: Uuid) -> String {
    format!("/api/v2/ctxsync/integration_configs/{config}/sync_runs/{run}")
}

/// The config's run that a live worker is running: one left `running` by a dead worker does not
/// count (the next worker marks it failed).
async fn run_in_progress(state: &AppState, org: OrgId, config: ConfigId) -> Result<Option<Run>, ApiError> {
    let live = state.store.lease(config).await?.is_some_and(|lease| lease.until > ctxsync_core::now());
    if !live {
        return Ok(None);
    }
    let newest = state.store.list_runs(org, config, 1).await?.into_iter().next();
    Ok(newest.filter(|run| run.status == RunStatus::Running))
}
