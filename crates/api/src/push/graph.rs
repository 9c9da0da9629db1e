//! The endpoints Microsoft Graph delivers an Entra ID config's change notifications and
//! lifecycle notifications to: the validation handshake, then notifications whose `clientState`
//! must be the config's and whose subscription must be one of the config's.
//!
//! Graph wants an answer within 3 s and retries what fails, so the answer is 202 at once, for a
//! notification refused too (a retry would be refused again); what a notification asks for (a
//! run, a subscription made again) is done after. A notification carries ids only, and the run
//! it asks for reads the changes through the stored delta links: a forged one can write nothing
//! Graph does not say.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ctxsync_core::{Config, IntegrationType};
use ctxsync_store::{Delivery, PushEndpoint, SourceSubscription};
use metrics::counter;
use serde::Deserialize;
use serde_json::Value;

use super::hook::DELIVERIES;
use super::subscriptions::{credentials, renew, resubscribe};
use super::{pushing, request_run};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The most notifications one delivery may carry.
const MAX_NOTIFICATIONS: usize = 1_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Validation {
    /// Graph's handshake: the token to answer with, as `text/plain`.
    #[serde(rename = "validationToken")]
    validation_token: Option<String>,
}

/// The Entra ID config whose push is on, with its endpoint and subscriptions.
async fn endpoint(
    state: &AppState,
    id: &str,
) -> Result<(Config, PushEndpoint, Vec<SourceSubscription>), ApiError> {
    let (config, endpoint) = pushing(state, id, IntegrationType::EntraId).await?;
    let subscriptions = state.store.subscriptions(config.id).await?;
    Ok((config, endpoint, subscriptions))
}

/// Graph's handshake answered: the token, decoded, as `text/plain`.
fn validated(token: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response()
}

/// One notification as Graph sends it, change or lifecycle.
struct Notification {
    subscription_id: String,
    lifecycle_event: Option<String>,
    /// Whether it carries the config's `clientState` and names one of its subscriptions.
    admitted: bool,
}

fn notifications(
    body: &[u8],
    endpoint: &PushEndpoint,
    subscriptions: &[SourceSubscription],
) -> Result<Vec<Notification>, ApiError> {
    let refuse = || {
        ApiError::bad_request(format!(
            "not a Microsoft Graph notification delivery of at most {MAX_NOTIFICATIONS} notifications: \
             value[] with subscriptionId"
        ))
    };
    let body: Value = serde_json::from_slice(body).map_err(|_| refuse())?;
    let value = body.get("value").and_then(Value::as_array).filter(|v| v.len() <= MAX_NOTIFICATIONS);
    value
        .ok_or_else(refuse)?
        .iter()
        .map(|n| {
            let subscription_id = n.get("subscriptionId")?.as_str()?.to_owned();
            let client_state = n.get("clientState").and_then(Value::as_str).unwrap_or_default();
            let admitted = !client_state.is_empty()
                && endpoint.admits(client_state)
                && subscriptions.iter().any(|s| s.id == subscription_id);
            let lifecycle_event = n.get("lifecycleEvent").and_then(Value::as_str).map(str::to_owned);
            Some(Notification { subscription_id, lifecycle_event, admitted })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(refuse)
}

/// What a delivery to either endpoint comes to.
enum Delivered {
    /// Graph's handshake, answered.
    Handshake(Response),
    /// The config, and its notifications that carried its `clientState`: none when none did.
    Taken(Config, Vec<Notification>),
}

/// Looks up the config's endpoint, answers the handshake or reads and counts the notifications.
async fn delivered(
    state: &AppState,
    id: &str,
    validation: Validation,
    body: &[u8],
) -> Result<Delivered, ApiError> {
    let (config, endpoint, subscriptions) = endpoint(state, id).await?;
    if let Some(token) = validation.validation_token {
        return Ok(Delivered::Handshake(validated(token)));
    }
    let notifications = notifications(body, &endpoint, &subscriptions)?;
    let admitted = match record(state, &config, &notifications).await? {
        true => notifications.into_iter().filter(|n| n.admitted).collect(),
        false => Vec::new(),
    };
    Ok(Delivered::Taken(config, admitted))
}

/// Answers a delivery at once (Graph allows 3 s) and does `then` with what it admitted after.
async fn take<F, Done>(
    state: AppState,
    id: &str,
    validation: Validation,
    body: &[u8],
    then: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(AppState, Config, Vec<Notification>) -> Done + Send + 'static,
    Done: Future<Output = Result<(), ApiError>> + Send,
{
    let (config, admitted) = match delivered(&state, id, validation, body).await? {
        Delivered::Handshake(answer) => return Ok(answer),
        Delivered::Taken(config, admitted) => (config, admitted),
    };
    if !admitted.is_empty() {
        let config_id = config.id;
        tokio::spawn(async move {
            if let Err(error) = then(state, config, admitted).await {
                tracing::warn!(%config_id, %error, "what a Graph notification asked for could not be done");
            }
        });
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Counts what was admitted and refused; whether anything was admitted.
async fn record(state: &AppState, config: &Config, notifications: &[Notification]) -> Result<bool, ApiError> {
    let now = ctxsync_core::now();
    let refused = notifications.iter().filter(|n| !n.admitted).count();
    if refused > 0 {
        state.store.record_delivery(config.id, Delivery::Rejected, now).await?;
        counter!(DELIVERIES, "source" => "entra_id", "outcome" => "rejected").increment(1);
        tracing::warn!(config_id = %config.id, refused, "Graph notifications without the config's clientState were refused");
    }
    let admitted = refused < notifications.len();
    if admitted {
        state.store.record_delivery(config.id, Delivery::Accepted(&[]), now).await?;
        counter!(DELIVERIES, "source" => "entra_id", "outcome" => "accepted").increment(1);
    }
    Ok(admitted)
}

/// Change notifications of an Entra ID config's users and groups: those with the config's
/// `clientState` ask for a run of the config now. The `validationToken` handshake is answered at
/// once.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/push/entra_id/{config_id}",
    operation_id = "DeliverGraphNotifications",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The Entra ID integration config's ID."), Validation),
    request_body(content = Object, description = "Microsoft Graph change notifications (`value[]`)."),
    responses(
        (status = 200, description = "The validation token, as text/plain", body = String, content_type = "text/plain"),
        (status = 202, description = "Taken (notifications without the config's clientState are counted and ignored)"),
        (status = 400, description = "Not a Graph notification delivery", body = ErrorBody),
        (status = 404, description = "No push endpoint here", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    ),
)]
pub async fn entra_notifications(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(validation): Query<Validation>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let asks = |state: AppState, config: Config, _| async move { request_run(&state, config.id).await };
    take(state, &id, validation, &body, asks).await
}

/// Lifecycle notifications of an Entra ID config's subscriptions: `reauthorizationRequired`
/// reauthorizes (or renews) the subscription, `subscriptionRemoved` makes the subscriptions again
/// and asks for a run, `missed` asks for a run and renews the subscription (making it again when
/// Graph lost it).
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/push/entra_id/{config_id}/lifecycle",
    operation_id = "DeliverGraphLifecycleNotifications",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The Entra ID integration config's ID."), Validation),
    request_body(content = Object, description = "Microsoft Graph lifecycle notifications (`value[]` with `lifecycleEvent`)."),
    responses(
        (status = 200, description = "The validation token, as text/plain", body = String, content_type = "text/plain"),
        (status = 202, description = "Taken (notifications without the config's clientState are counted and ignored)"),
        (status = 400, description = "Not a Graph notification delivery", body = ErrorBody),
        (status = 404, description = "No push endpoint here", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    ),
)]
pub async fn entra_lifecycle(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(validation): Query<Validation>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let answers = |state: AppState, config: Config, admitted: Vec<Notification>| async move {
        lifecycle(&state, &config, &admitted).await
    };
    take(state, &id, validation, &body, answers).await
}

async fn lifecycle(
    state: &AppState,
    config: &Config,
    notifications: &[Notification],
) -> Result<(), ApiError> {
    let event = |n: &Notification| n.lifecycle_event.as_deref().unwrap_or_default().to_owned();
    if notifications.iter().any(|n| event(n) == "subscriptionRemoved") {
        tracing::info!(config_id = %config.id, "Graph removed a subscription; making them again");
        resubscribe(state, config).await?;
        return request_run(state, config.id).await;
    }
    for n in notifications {
        // One made again meanwhile (a renewal Graph answered 404) is taken care of, run included.
        let current = state.store.subscriptions(config.id).await?;
        if !current.iter().any(|s| s.id == n.subscription_id) {
            continue;
        }
        match event(n).as_str() {
            "reauthorizationRequired" => {
                let credentials = credentials(state, config).await?;
                let reauthorized =
                    state.sources.reauthorize_subscription(config, &credentials, &n.subscription_id).await;
                if !matches!(reauthorized, Ok(true)) {
                    renew(state, config, &n.subscription_id).await?;
                }
            }
            "missed" => {
                request_run(state, config.id).await?;
                renew(state, config, &n.subscription_id).await?;
            }
            other => {
                tracing::info!(config_id = %config.id, event = other, "an unknown lifecycle event was ignored")
            }
        }
    }
    Ok(())
}
