//! The endpoint Okta's Event Hooks call: the verification handshake and the deliveries.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use ctxsync_core::{ConfigId, EntityKind, IntegrationType};
use ctxsync_store::Delivery;
use metrics::counter;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{SECRET_HEADER, request_run};
use crate::error::{ApiError, ErrorBody};
use crate::json::JsonBody;
use crate::state::AppState;

/// Deliveries by source and outcome (`accepted`, `rejected`, `duplicate`: every event seen
/// before).
pub const DELIVERIES: &str = "ctxsync_push_deliveries_total";

/// The header Okta's verification request carries its challenge in.
const CHALLENGE_HEADER: &str = "x-okta-verification-challenge";

/// The most events one delivery may carry (Okta sends up to 50 at a time).
const MAX_EVENTS: usize = 1_000;

pub fn describe() {
    metrics::describe_counter!(
        DELIVERIES,
        "Push deliveries answered, by source and outcome (accepted, rejected for want of the secret, duplicate)."
    );
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationResponse {
    /// The challenge, echoed.
    pub verification: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    /// Events not seen before.
    pub accepted: usize,
    /// Events delivered before (Okta delivers at least once).
    pub duplicates: usize,
}

/// The Okta config whose push is on, and whether the request carries its secret. Unknown ids,
/// other sources and push turned off all answer the same 404: a caller without the secret learns
/// nothing.
async fn endpoint(state: &AppState, id: &str, headers: &HeaderMap) -> Result<(ConfigId, bool), ApiError> {
    let not_found = || ApiError::NotFound("no push endpoint here".into());
    let id: ConfigId = id.parse().map_err(|_| not_found())?;
    let config = state.store.config_by_id(id).await?.filter(|c| c.integration_type == IntegrationType::Okta);
    let Some(config) = config else { return Err(not_found()) };
    let Some(endpoint) = state.store.push_endpoint(config.id).await? else {
        return Err(not_found());
    };
    let presented = headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    Ok((config.id, !presented.is_empty() && endpoint.admits(presented)))
}

async fn refuse(state: &AppState, config: ConfigId) -> Result<ApiError, ApiError> {
    state.store.record_delivery(config, Delivery::Rejected, ctxsync_core::now()).await?;
    counter!(DELIVERIES, "source" => "okta", "outcome" => "rejected").increment(1);
    tracing::warn!(config_id = %config, "a push delivery without the config's secret was refused");
    Ok(ApiError::Unauthorized(format!(
        "the delivery lacks the config's secret in the {SECRET_HEADER} header"
    )))
}

/// Okta's one-time verification of a new event hook: the challenge echoed back.
#[utoipa::path(
    get,
    path = "/api/v2/ctxsync/push/okta/{config_id}",
    operation_id = "VerifyOktaEventHook",
    tag = "ctxsync",
    params(
        ("config_id" = String, Path, description = "The Okta integration config's ID."),
        ("X-Okta-Verification-Challenge" = String, Header, description = "The challenge to echo."),
        ("Authorization" = String, Header, description = "The config's push secret."),
    ),
    responses(
        (status = 200, description = "The challenge, echoed", body = VerificationResponse),
        (status = 400, description = "No challenge", body = ErrorBody),
        (status = 401, description = "Without the config's push secret", body = ErrorBody),
        (status = 404, description = "No push endpoint here", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    ),
)]
pub async fn okta_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<VerificationResponse>, ApiError> {
    let (config, admitted) = endpoint(&state, &id, &headers).await?;
    if !admitted {
        return Err(refuse(&state, config).await?);
    }
    let challenge = headers.get(CHALLENGE_HEADER).and_then(|v| v.to_str().ok()).filter(|c| !c.is_empty());
    let Some(challenge) = challenge else {
        return Err(ApiError::bad_request("no X-Okta-Verification-Challenge header to answer"));
    };
    tracing::info!(config_id = %config, "Okta event hook verified");
    Ok(Json(VerificationResponse { verification: challenge.to_owned() }))
}

/// One event of a delivery: its id, its type, and the users it names (`target[]` of type `User`).
struct Event {
    uuid: String,
    kind: String,
    users: Vec<String>,
}

/// The events of an Okta Event Hook delivery: `data.events[]` with `uuid` and `eventType`.
fn events(body: &Value) -> Option<Vec<Event>> {
    let events = body.get("data")?.get("events")?.as_array()?;
    events
        .iter()
        .map(|e| {
            let targets = e.get("target").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let users = targets
                .iter()
                .filter(|t| t.get("type").and_then(Value::as_str) == Some("User"))
                .filter_map(|t| Some(t.get("id")?.as_str()?.to_owned()))
                .collect();
            Some(Event {
                uuid: e.get("uuid")?.as_str()?.to_owned(),
                kind: e.get("eventType")?.as_str()?.to_owned(),
                users,
            })
        })
        .collect()
}

/// A delivery of Okta System Log events. Events about users and groups not seen before ask for a
/// run of the config now, which also reads each user they name from Okta; the run reads the
/// source, so the delivery itself writes nothing.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/push/okta/{config_id}",
    operation_id = "DeliverOktaEvents",
    tag = "ctxsync",
    params(
        ("config_id" = String, Path, description = "The Okta integration config's ID."),
        ("Authorization" = String, Header, description = "The config's push secret."),
    ),
    request_body(content = Object, description = "An Okta Event Hook delivery (`data.events[]`)."),
    responses(
        (status = 200, description = "Taken", body = DeliveryResponse),
        (status = 400, description = "Not an Okta Event Hook delivery", body = ErrorBody),
        (status = 401, description = "Without the config's push secret", body = ErrorBody),
        (status = 404, description = "No push endpoint here", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    ),
)]
pub async fn okta_delivery(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<DeliveryResponse>, ApiError> {
    let (config, admitted) = endpoint(&state, &id, &headers).await?;
    if !admitted {
        return Err(refuse(&state, config).await?);
    }
    let events = events(&body)
        .filter(|e| e.len() <= MAX_EVENTS)
        .ok_or_else(|| ApiError::bad_request(format!("not an Okta Event Hook delivery of at most {MAX_EVENTS} events: data.events[] with uuid and eventType")))?;
    let ids: Vec<String> = events.iter().map(|e| e.uuid.clone()).collect();
    let now = ctxsync_core::now();
    let fresh = state.store.record_delivery(config, Delivery::Accepted(&ids), now).await?;
    let outcome = if fresh.is_empty() && !ids.is_empty() { "duplicate" } else { "accepted" };
    counter!(DELIVERIES, "source" => "okta", "outcome" => outcome).increment(1);
    let about_the_directory: Vec<&Event> = events
        .iter()
        .filter(|e| fresh.contains(&e.uuid))
        .filter(|e| e.kind.starts_with("user.") || e.kind.starts_with("group."))
        .collect();
    if !about_the_directory.is_empty() {
        let mut users: Vec<String> =
            about_the_directory.iter().flat_map(|e| e.users.iter().cloned()).collect();
        users.sort();
        users.dedup();
        state.store.add_refresh_targets(config, EntityKind::User, &users, now).await?;
        request_run(&state, config).await?;
    }
    let body = DeliveryResponse { accepted: fresh.len(), duplicates: ids.len() - fresh.len() };
    Ok(Json(body))
}
