//! Microsoft Graph change notifications: the subscriptions ctxsync makes for a config's users
//! and groups (`POST /subscriptions`), renews (`PATCH`), reauthorizes and deletes.
//!
//! Graph checks a new subscription's URLs before it answers: it posts a `validationToken` to each
//! and wants it back within 10 s, so ctxsync must already answer at those URLs. A notification
//! carries the subscription's `clientState` and ids only; the run it asks for reads the changes
//! through the stored delta links. Directory resources live at most 41,760 minutes (29 days),
//! so subscriptions ask for a little less, and are renewed every hour: their expiry never comes
//! near, and one Graph lost without a word is found within the hour (the renewal's 404).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::GraphClient;
use crate::SourceError;
use crate::registry::{Subscription, SubscriptionRequest};

/// The resources a config subscribes to: what a run lists incrementally, less devices, which
/// Graph does not notify about.
pub(crate) const RESOURCES: [&str; 2] = ["/users", "/groups"];

/// What is asked of each subscription: less than Graph's 41,760 minutes, so a clock a little
/// ahead of Graph's is not refused.
pub(crate) const LIFETIME: Duration = Duration::from_secs(41_700 * 60);

/// How long after it was made or renewed a subscription is renewed.
const RENEW_AFTER: Duration = Duration::from_secs(3600);

/// What Graph notifies about: changes and deletions (a new user is an update of the directory).
const CHANGE_TYPE: &str = "updated,deleted";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    id: String,
    #[serde(default)]
    resource: String,
    expiration_date_time: String,
}

fn expiry(text: &str) -> Result<OffsetDateTime, SourceError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        SourceError::Unreachable(format!(
            "Microsoft Graph answered a subscription with an expirationDateTime that is not a time ({text:?}); \
             check CTXSYNC_GRAPH_BASE_URL"
        ))
    })
}

fn text(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).expect("times in range format as RFC 3339")
}

/// The subscription Graph answered with, made or renewed.
fn answered(reply: &crate::http::Reply, resource: &str) -> Result<Subscription, SourceError> {
    let created: Created = reply.json().ok_or_else(|| {
        SourceError::Unreachable(
            "Microsoft Graph answered a subscription without its id and expiry; check CTXSYNC_GRAPH_BASE_URL"
                .into(),
        )
    })?;
    let resource = if created.resource.is_empty() { resource.to_string() } else { created.resource };
    let expires_at = expiry(&created.expiration_date_time)?;
    let renew_at = (ctxsync_core::now() + RENEW_AFTER).min(expires_at);
    Ok(Subscription { resource, id: created.id, resource_id: None, expires_at, renew_at })
}

/// Subscribes to each of [`RESOURCES`]; on a failure, deletes those made so far, so nothing is
/// left delivering to a config whose push is not on.
pub(crate) async fn subscribe(
    client: &GraphClient<'_>,
    request: &SubscriptionRequest<'_>,
) -> Result<Vec<Subscription>, SourceError> {
    let mut made = Vec::new();
    for resource in RESOURCES {
        match create(client, request, resource).await {
            Ok(subscription) => made.push(subscription),
            Err(error) => {
                for subscription in &made {
                    if let Err(e) = delete(client, &subscription.id).await {
                        tracing::warn!(error = %e, "could not delete a subscription made before a failure");
                    }
                }
                return Err(error);
            }
        }
    }
    Ok(made)
}

async fn create(
    client: &GraphClient<'_>,
    request: &SubscriptionRequest<'_>,
    resource: &str,
) -> Result<Subscription, SourceError> {
    let body = json!({
        "changeType": CHANGE_TYPE,
        "notificationUrl": request.notification_url,
        "lifecycleNotificationUrl": request.lifecycle_url,
        "resource": resource,
        "expirationDateTime": text(ctxsync_core::now() + LIFETIME),
        "clientState": request.client_state,
    });
    let url = client.url(&["subscriptions"], "");
    let reply = client.send(Method::POST, &url, Some(&body)).await?;
    if reply.status != StatusCode::CREATED && reply.status != StatusCode::OK {
        let action = format!("subscribe to {resource} (it must reach {})", request.notification_url);
        return Err(client.refusal(&reply, &action, &[request.client_state]));
    }
    answered(&reply, resource)
}

/// Moves the subscription's expiry a [`LIFETIME`] on; `None` when Graph no longer knows it.
pub(crate) async fn renew(client: &GraphClient<'_>, id: &str) -> Result<Option<Subscription>, SourceError> {
    let body = json!({"expirationDateTime": text(ctxsync_core::now() + LIFETIME)});
    let url = client.url(&["subscriptions", id], "");
    let reply = client.send(Method::PATCH, &url, Some(&body)).await?;
    match reply.status {
        StatusCode::NOT_FOUND => Ok(None),
        status if status.is_success() => Ok(Some(answered(&reply, "")?)),
        _ => Err(client.refusal(&reply, "renew a subscription", &[])),
    }
}

/// Answers a `reauthorizationRequired` lifecycle notification; `false` when Graph no longer
/// knows the subscription.
pub(crate) async fn reauthorize(client: &GraphClient<'_>, id: &str) -> Result<bool, SourceError> {
    let url = client.url(&["subscriptions", id, "reauthorize"], "");
    let reply = client.send(Method::POST, &url, None).await?;
    match reply.status {
        StatusCode::NOT_FOUND => Ok(false),
        status if status.is_success() => Ok(true),
        _ => Err(client.refusal(&reply, "reauthorize a subscription", &[])),
    }
}

/// Deletes the subscription; one Graph no longer knows is deleted already.
pub(crate) async fn delete(client: &GraphClient<'_>, id: &str) -> Result<(), SourceError> {
    let url = client.url(&["subscriptions", id], "");
    let reply = client.send(Method::DELETE, &url, None).await?;
    match reply.status {
        StatusCode::NOT_FOUND => Ok(()),
        status if status.is_success() => Ok(()),
        _ => Err(client.refusal(&reply, "delete a subscription", &[])),
    }
}
