//! The endpoint Google delivers a Google Workspace config's `users.watch` notifications to: one
//! request per change, its headers naming the channel (`X-Goog-Channel-ID`, with its token in
//! `X-Goog-Channel-Token`), the watched resource (`X-Goog-Resource-ID`), what happened
//! (`X-Goog-Resource-State`: `sync` when the channel opens, then the event) and the message's
//! number; the body is the user.
//!
//! Google retries what is not answered 2xx, with exponential backoff, so every notification is
//! answered 200, a refused one too (a retry would be refused again). One with the config's token
//! on one of its channels names the user for the run it asks for to read from Google: the body
//! itself is never stored, so a forged or replayed one writes nothing Google does not say.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use ctxsync_core::{EntityKind, IntegrationType};
use ctxsync_store::Delivery;
use metrics::counter;
use serde_json::Value;

use super::hook::DELIVERIES;
use super::{pushing, request_run};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// A notification of a change to a user on one of a Google Workspace config's channels: with the
/// channel's token, it has the user read again from Google by a run asked for now. The channel's
/// first message (`X-Goog-Resource-State: sync`) is acknowledged and counts as nothing.
#[utoipa::path(
    post,
    path = "/api/v2/ctxsync/push/google_workspace/{config_id}",
    operation_id = "DeliverGoogleDirectoryNotification",
    tag = "ctxsync",
    params(
        ("config_id" = String, Path, description = "The Google Workspace integration config's ID."),
        ("X-Goog-Channel-ID" = String, Header, description = "The channel's id."),
        ("X-Goog-Channel-Token" = String, Header, description = "The channel's token: the config's push secret."),
        ("X-Goog-Resource-State" = String, Header, description = "`sync`, or the event: add, delete, makeAdmin, undelete, update."),
        ("X-Goog-Resource-ID" = String, Header, description = "The watched resource's id."),
        ("X-Goog-Message-Number" = String, Header, description = "The message's number on its channel."),
    ),
    request_body(content = Object, description = "The Directory API user the notification is about."),
    responses(
        (status = 200, description = "Taken (notifications without the config's token are counted and ignored)"),
        (status = 400, description = "Not a Directory API user notification", body = ErrorBody),
        (status = 404, description = "No push endpoint here", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    ),
)]
pub async fn google_notification(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (config, endpoint) = pushing(&state, &id, IntegrationType::GoogleWorkspace).await?;
    let resource_state = header(&headers, "x-goog-resource-state");
    if resource_state == "sync" {
        return Ok(StatusCode::OK);
    }
    let (channel, token) = (header(&headers, "x-goog-channel-id"), header(&headers, "x-goog-channel-token"));
    let resource_id = header(&headers, "x-goog-resource-id");
    let subscriptions = state.store.subscriptions(config.id).await?;
    let on_a_channel = subscriptions
        .iter()
        .any(|s| s.id == channel && s.resource_id.as_deref().is_none_or(|r| r == resource_id));
    let now = ctxsync_core::now();
    if token.is_empty() || !endpoint.admits(token) || !on_a_channel {
        state.store.record_delivery(config.id, Delivery::Rejected, now).await?;
        counter!(DELIVERIES, "source" => "google_workspace", "outcome" => "rejected").increment(1);
        tracing::warn!(config_id = %config.id, "a Google notification without the token of one of the config's channels was refused");
        return Ok(StatusCode::OK);
    }
    let user = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| Some(b.get("id")?.as_str()?.to_owned()))
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_request("not a Directory API user notification: a user with its id"))?;
    // Google numbers each channel's messages: a message delivered again counts once.
    let number = header(&headers, "x-goog-message-number");
    let ids: Vec<String> = (!number.is_empty()).then(|| format!("{channel}:{number}")).into_iter().collect();
    let fresh = state.store.record_delivery(config.id, Delivery::Accepted(&ids), now).await?;
    let repeated = fresh.is_empty() && !ids.is_empty();
    let outcome = if repeated { "duplicate" } else { "accepted" };
    counter!(DELIVERIES, "source" => "google_workspace", "outcome" => outcome).increment(1);
    if !repeated {
        state.store.add_refresh_targets(config.id, EntityKind::User, &[user], now).await?;
        request_run(&state, config.id).await?;
    }
    Ok(StatusCode::OK)
}
