//! Directory push: `users.watch` channels (`POST users/watch?customer=my_customer&event=…`), one
//! per event, since a channel watches one event; `channels.stop` ends one.
//!
//! Google has no push for groups or memberships, and no renewal: a channel lives for the `ttl`
//! it asked for (at most what Google allows) and is then replaced by a new one. A notification
//! carries the channel's `token` (the config's push secret) and the user as its body; the run it
//! asks for reads that user again through the connector.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::client::DirectoryClient;
use crate::SourceError;
use crate::registry::{Subscription, SubscriptionRequest};

/// The events a channel can watch: each config has one channel for each, so a new, deleted,
/// restored, changed or promoted user is told of.
pub(crate) const EVENTS: [&str; 5] = ["add", "delete", "makeAdmin", "undelete", "update"];

/// What each channel asks to live: six hours, the longest Google keeps a Directory channel.
const TTL: Duration = Duration::from_secs(6 * 3600);

/// How long before its expiry a channel is replaced: ample time for a renewal that fails once.
const RENEW_BEFORE: Duration = Duration::from_secs(3600);

/// The channel as `users.watch` answers it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Channel {
    id: String,
    resource_id: String,
    /// Milliseconds since the epoch, as a string (an int64).
    expiration: Option<String>,
}

/// Opens a channel for each of [`EVENTS`]; on a failure, stops those opened so far, so nothing
/// is left delivering to a config whose push is not on.
pub(crate) async fn watch(
    client: &DirectoryClient<'_>,
    request: &SubscriptionRequest<'_>,
) -> Result<Vec<Subscription>, SourceError> {
    let mut made: Vec<Subscription> = Vec::new();
    for event in EVENTS {
        match open(client, request, event).await {
            Ok(channel) => made.push(channel),
            Err(error) => {
                for channel in &made {
                    let resource_id = channel.resource_id.as_deref().unwrap_or_default();
                    if let Err(e) = stop(client, &channel.id, resource_id).await {
                        tracing::warn!(error = %e, "could not stop a channel opened before a failure");
                    }
                }
                return Err(error);
            }
        }
    }
    Ok(made)
}

async fn open(
    client: &DirectoryClient<'_>,
    request: &SubscriptionRequest<'_>,
    event: &str,
) -> Result<Subscription, SourceError> {
    let body = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "web_hook",
        "address": request.notification_url,
        "token": request.client_state,
        "params": {"ttl": TTL.as_secs().to_string()},
    });
    let query = [("customer", "my_customer"), ("event", event)];
    let action = format!("watch users ({event}) for push to {}", request.notification_url);
    let reply =
        client.post(&["admin", "directory", "v1", "users", "watch"], &query, &body, &action, &[]).await?;
    let channel: Channel = reply.json().ok_or_else(|| {
        SourceError::Unreachable(
            "Google answered users.watch without the channel's id and resourceId; check \
             CTXSYNC_GOOGLE_DIRECTORY_BASE_URL"
                .into(),
        )
    })?;
    let now = ctxsync_core::now();
    let expires_at = channel
        .expiration
        .and_then(|ms| ms.parse::<i128>().ok())
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok())
        .unwrap_or(now + TTL);
    let renew_at = (expires_at - RENEW_BEFORE).max(now);
    Ok(Subscription {
        resource: format!("users?event={event}"),
        id: channel.id,
        resource_id: Some(channel.resource_id),
        expires_at,
        renew_at,
    })
}

/// Stops the channel; one Google no longer knows (expired, or stopped already) is stopped.
pub(crate) async fn stop(
    client: &DirectoryClient<'_>,
    id: &str,
    resource_id: &str,
) -> Result<(), SourceError> {
    let body = json!({"id": id, "resourceId": resource_id});
    let tolerated = [StatusCode::NOT_FOUND];
    client
        .post(&["admin", "directory_v1", "channels", "stop"], &[], &body, "stop a channel", &tolerated)
        .await?;
    Ok(())
}
