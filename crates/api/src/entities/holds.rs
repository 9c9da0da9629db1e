//! Held deletions (a run that would have deleted too much, or whose listing looked incomplete)
//! and a config's sync health.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ctxsync_core::{ConfigId, ConfigState, HoldResolution, Run, RunKind, RunStatus};
use ctxsync_store::{Decided, HeldCursor, HeldDeletion};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use super::params;
use super::response::{RunData, rfc3339};
use super::runs::RunResponse;
use crate::auth::{Authorized, IntegrationsRead, ManageIntegrations};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Runs the health looks back over for the last full run.
const LOOKBACK: u32 = 50;

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldDeletionsResponse {
    pub data: Vec<HeldDeletionData>,
    /// `{"page": {"next_cursor": "…"}}`; `next_cursor` is null on the last page.
    #[schema(value_type = Object)]
    pub meta: Value,
}

/// An entity or membership a held run would delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldDeletionData {
    /// Always `held_deletion`.
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    /// `kind` (`user`, `group`, `device` or `membership`), `source_id` (a membership's group),
    /// `member_kind` and `member_id` (memberships only), and the entity's `login` and
    /// `display_name` while it is stored.
    #[schema(value_type = Object)]
    pub attributes: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    pub data: HealthData,
}

/// Whether a config's syncs are keeping its entities current, and what needs attention.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthData {
    /// The config's id.
    pub id: String,
    /// Always `sync_health`.
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    /// `healthy` (no problems), `problems` (sentences saying what needs attention and what to
    /// do), `enabled`, `state`, `last_run` and `last_full_run` (runs, as the runs route shows
    /// them), `last_completed_at`, `held_runs` (ids of runs whose deletions wait) and
    /// `completeness` (the last full run's expected and ingested counts by kind).
    #[schema(value_type = Object)]
    pub attributes: Value,
}

impl From<HeldDeletion> for HeldDeletionData {
    fn from(r: HeldDeletion) -> Self {
        let membership = r.kind == "membership";
        HeldDeletionData {
            resource_type: "held_deletion",
            attributes: json!({
                "kind": r.kind,
                "source_id": r.source_id,
                "member_kind": membership.then_some(r.member_kind),
                "member_id": membership.then_some(r.member_id),
                "login": r.login,
                "display_name": r.display_name,
            }),
        }
    }
}

fn ids(config: &str, run: &str) -> Result<(ConfigId, Uuid), ApiError> {
    let config = config.parse().map_err(|_| ApiError::config_not_found())?;
    let run = run.parse().map_err(|_| run_not_found())?;
    Ok((config, run))
}

fn run_not_found() -> ApiError {
    ApiError::NotFound("sync run not found".into())
}

fn encode_cursor(c: &HeldCursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).expect("a cursor serializes"))
}

fn decode_cursor(s: &str) -> Option<HeldCursor> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()
}

/// What a held run would delete, to review before confirming or discarding.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/sync_runs/{run_id}/held_deletions",
    operation_id = "ListHeldDeletions",
    tag = "ctxsync",
    params(
        ("config_id" = String, Path, description = "The config."),
        ("run_id" = String, Path, description = "The held run."),
        ("page[size]" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Rows per page, 1 to 1000 (default 100)."),
        ("page[cursor]" = Option<String>, Query, description = "`meta.page.next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "OK; empty once the hold is resolved", body = HeldDeletionsResponse),
        (status = 400, description = "Bad Request", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["integrations_read"])),
)]
pub async fn list_held_deletions(
    State(state): State<AppState>,
    auth: Authorized<IntegrationsRead>,
    Path((config, run)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<HeldDeletionsResponse>, ApiError> {
    let (config, run) = ids(&config, &run)?;
    let mut errors = params::unknown(&query, &["page[size]", "page[cursor]"]);
    let limit = params::page_size(&query, &mut errors);
    let after = match query.get("page[cursor]").map(|c| decode_cursor(c)) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => {
            errors.push("page[cursor]: is not a cursor this API returned".into());
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors));
    }
    let rows = state
        .store
        .held_deletions(auth.org_id, config, run, after.as_ref(), limit)
        .await?
        .ok_or_else(run_not_found)?;
    let next_cursor = (rows.len() as u32 == limit).then(|| rows.last().map(|r| encode_cursor(&r.cursor())));
    let data = rows.into_iter().map(HeldDeletionData::from).collect();
    Ok(Json(HeldDeletionsResponse { data, meta: json!({"page": {"next_cursor": next_cursor.flatten()}}) }))
}

async fn decide(
    state: &AppState,
    org: ctxsync_core::OrgId,
    config: &str,
    run: &str,
    decision: HoldResolution,
) -> Result<Json<RunResponse>, ApiError> {
    let (config, run) = ids(config, run)?;
    match state.store.decide_hold(org, config, run, decision).await? {
        Decided::Resolved(run) => {
            tracing::info!(config_id = %config, run_id = %run.id, decision = decision.as_str(), "held deletions decided");
            Ok(Json(RunResponse { data: run.into() }))
        }
        Decided::NotHeld(run) => Err(ApiError::Conflict(match run.hold.and_then(|h| h.resolution) {
            Some(resolution) => format!("the run's held deletions were already {}", resolution.as_str()),
            None => format!("the run is {}, not held: it has no deletions waiting", run.status.as_str()),
        })),
        Decided::NotFound => Err(run_not_found()),
    }
}

/// Applies a held run's deletions, except those a later run listed again; records their change
/// events like a run's own.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/sync_runs/{run_id}/confirm_deletions",
    operation_id = "ConfirmHeldDeletions",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The config."), ("run_id" = String, Path, description = "The held run.")),
    responses(
        (status = 200, description = "Applied; the run shows what was deleted", body = RunResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 409, description = "The run has no deletions waiting", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn confirm_deletions(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    Path((config, run)): Path<(String, String)>,
) -> Result<Json<RunResponse>, ApiError> {
    decide(&state, auth.org_id, &config, &run, HoldResolution::Confirmed).await
}

/// Drops a held run's deletions: the entities stay. The next full run judges deletions afresh.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/sync_runs/{run_id}/discard_deletions",
    operation_id = "DiscardHeldDeletions",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The config."), ("run_id" = String, Path, description = "The held run.")),
    responses(
        (status = 200, description = "Dropped", body = RunResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 409, description = "The run has no deletions waiting", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["manage_integrations"])),
)]
pub async fn discard_deletions(
    State(state): State<AppState>,
    auth: Authorized<ManageIntegrations>,
    Path((config, run)): Path<(String, String)>,
) -> Result<Json<RunResponse>, ApiError> {
    decide(&state, auth.org_id, &config, &run, HoldResolution::Discarded).await
}

/// Whether the config's syncs keep its entities current: failed or held runs, listings the
/// source's totals say were incomplete, rejected credentials, settings keys that look misspelt.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/health",
    operation_id = "GetSyncHealth",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The config.")),
    responses(
        (status = 200, description = "OK", body = HealthResponse),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
    ),
    security(("apiKeyAuth" = [], "appKeyAuth" = []), ("AuthZ" = ["integrations_read"])),
)]
pub async fn get_health(
    State(state): State<AppState>,
    auth: Authorized<IntegrationsRead>,
    Path(config): Path<String>,
) -> Result<Json<HealthResponse>, ApiError> {
    let id: ConfigId = config.parse().map_err(|_| ApiError::config_not_found())?;
    let config = state.store.get_config(auth.org_id, id).await?.ok_or_else(ApiError::config_not_found)?;
    let runs = state.store.list_runs(auth.org_id, id, LOOKBACK).await?;
    let held = state.store.pending_holds(auth.org_id, id).await?;
    let completed = |r: &&Run| matches!(r.status, RunStatus::Succeeded | RunStatus::Held);
    let last_run = runs.iter().find(|r| r.status != RunStatus::Running);
    let last_completed = runs.iter().find(completed);
    let last_full = runs.iter().filter(|r| r.kind == RunKind::Full).find(completed);

    let mut problems = Vec::new();
    if !config.enabled {
        problems.push("the config is disabled: its entities are not kept current".to_owned());
    }
    if config.state == ConfigState::Invalid {
        problems.push("the source rejected the credentials: update the config's secrets".to_owned());
    }
    problems.extend(ctxsync_sources::setting_typos(&config.settings).iter().map(ToString::to_string));
    // A run left `running` under a lease nobody renews lost its worker: the next worker to take
    // the lease marks it failed, but until then it would pass for one in progress.
    if let Some(run) = runs.first().filter(|r| r.status == RunStatus::Running) {
        let lease = state.store.lease(id).await?;
        if lease.is_none_or(|l| l.until < ctxsync_core::now()) {
            problems.push(format!(
                "run {} was interrupted: its worker stopped before it completed (nothing was deleted); \
                 the next run marks it failed and lists again",
                run.id
            ));
        }
    }
    if let Some(run) = last_run.filter(|r| r.status == RunStatus::Failed) {
        problems
            .push(format!("the last run failed: {}", run.error.as_deref().unwrap_or("no reason recorded")));
    }
    for run in &held {
        let reason = run.hold.as_ref().map_or("", |h| h.reason.as_str());
        problems.push(format!("run {} holds its deletions ({reason})", run.id));
    }
    let completeness = last_full.and_then(|r| r.completeness.as_ref());
    for mismatch in completeness.map(|c| c.mismatches()).unwrap_or_default() {
        problems.push(format!("the last full run's listing does not match the source's totals: {mismatch}"));
    }
    let attributes = json!({
        "healthy": problems.is_empty(),
        "problems": problems,
        "enabled": config.enabled,
        "state": config.state.as_str(),
        "last_run": last_run.cloned().map(RunData::from),
        "last_full_run": last_full.cloned().map(RunData::from),
        "last_completed_at": last_completed.and_then(|r| r.finished_at).map(rfc3339),
        "held_runs": held.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
        "completeness": completeness.map(|c| &c.by_type),
    });
    Ok(Json(HealthResponse {
        data: HealthData { id: id.to_string(), resource_type: "sync_health", attributes },
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn any_cursor() -> impl Strategy<Value = HeldCursor> {
        ("[a-z]{0,8}", "\\PC{0,40}", "[a-z]{0,8}", "\\PC{0,40}").prop_map(
            |(kind, source_id, member_kind, member_id)| HeldCursor {
                kind,
                source_id,
                member_kind,
                member_id,
            },
        )
    }

    proptest! {
        /// A cursor the API handed out resumes at the same row.
        #[test]
        fn any_cursor_round_trips(cursor in any_cursor()) {
            prop_assert_eq!(decode_cursor(&encode_cursor(&cursor)), Some(cursor));
        }

        /// Any other text, including base64url of JSON that is not a cursor, decodes to nothing
        /// (the handler's 400 naming `page[cursor]`) or to a cursor, never a panic.
        #[test]
        fn any_cursor_text_never_panics(
            text in prop_oneof![
                "\\PC{0,60}",
                "[A-Za-z0-9_-]{0,80}",
                "\\PC{0,60}".prop_map(|json| URL_SAFE_NO_PAD.encode(json)),
                any_cursor().prop_map(|c| encode_cursor(&c)[1..].to_string()),
            ],
        ) {
            let _ = decode_cursor(&text);
        }
    }
}
