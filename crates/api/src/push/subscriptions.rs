//! The subscriptions a source keeps for a config's push (Microsoft Graph's change
//! notifications, Google's `users.watch` channels): made when push is turned on, made again when
//! the source removed them, renewed before they expire (`keep_subscriptions`, which `ctxsync
//! serve` runs; Google cannot renew a channel, so its channels are made again), and deleted when
//! push is turned off.
//!
//! Every subscription of a config carries one `clientState`, the config's push secret: new each
//! time the subscriptions are made, never shown, stored only as its digest. Graph checks the
//! notification URL before it answers a new subscription, so the digest is stored first: the
//! endpoint answers Graph's handshake only for a config whose push is on.

use std::time::Duration;

use ctxsync_core::{Config, ConfigId, IntegrationType, OrgId};
use ctxsync_sources::{Credentials, SourceError, SubscriptionRequest};
use ctxsync_store::{SourceSubscription, new_secret, secret_digest};
use time::OffsetDateTime;

use super::{ENTRA_PUSH_PATH, GOOGLE_PUSH_PATH, request_run};
use crate::error::ApiError;
use crate::state::AppState;

/// A replica renewing a subscription holds it this long; a renewal that failed is tried again
/// after it.
const CLAIM_FOR: time::Duration = time::Duration::minutes(10);

/// Where the source delivers the config's notifications, and (Graph only) its lifecycle
/// notifications.
pub(crate) fn notification_urls(public_url: &str, config: &Config) -> (String, Option<String>) {
    let public_url = public_url.trim_end_matches('/');
    match config.integration_type {
        IntegrationType::GoogleWorkspace => (format!("{public_url}{GOOGLE_PUSH_PATH}/{}", config.id), None),
        _ => {
            let url = format!("{public_url}{ENTRA_PUSH_PATH}/{}", config.id);
            let lifecycle = format!("{url}/lifecycle");
            (url, Some(lifecycle))
        }
    }
}

/// The config's stored credentials, parsed.
pub(crate) async fn credentials(state: &AppState, config: &Config) -> Result<Credentials, ApiError> {
    let secrets =
        state.store.load_secrets(config.org_id, config.id).await?.ok_or_else(ApiError::config_not_found)?;
    Credentials::parse(config.integration_type, &secrets).map_err(|e| {
        ApiError::from(SourceError::InvalidCredentials(format!("the stored secrets are not usable: {e}")))
    })
}

/// Makes the config's subscriptions afresh under a new `clientState`: those it had are deleted
/// at the source, and the new ones stored. The endpoint must be on already (its secret is
/// replaced, its counts kept). On failure the stored subscriptions stay as they were, so the
/// renewal finds them again and retries.
pub(crate) async fn resubscribe(
    state: &AppState,
    config: &Config,
) -> Result<Vec<SourceSubscription>, ApiError> {
    let Some(public_url) = state.public_url.as_deref() else {
        return Err(no_public_url());
    };
    let credentials = credentials(state, config).await?;
    unsubscribe_at_source(state, config, &credentials).await?;
    let client_state = new_secret();
    if !state.store.replace_push_secret(config.id, &secret_digest(&client_state)).await? {
        return Err(ApiError::NotFound("push is not on for this config".into()));
    }
    let (notification_url, lifecycle_url) = notification_urls(public_url, config);
    let request = SubscriptionRequest {
        notification_url: &notification_url,
        lifecycle_url: lifecycle_url.as_deref().unwrap_or_default(),
        client_state: &client_state,
    };
    let made = state.sources.subscribe(config, &credentials, &request).await?;
    let stored: Vec<SourceSubscription> = made
        .into_iter()
        .map(|s| SourceSubscription {
            config_id: config.id,
            resource: s.resource,
            id: s.id,
            resource_id: s.resource_id,
            expires_at: s.expires_at,
            renew_at: s.renew_at,
        })
        .collect();
    state.store.set_subscriptions(config.id, &stored).await?;
    tracing::info!(config_id = %config.id, subscriptions = stored.len(), "subscribed to the source's change notifications");
    Ok(stored)
}

/// Deletes the config's stored subscriptions at the source.
async fn unsubscribe_at_source(
    state: &AppState,
    config: &Config,
    credentials: &Credentials,
) -> Result<(), ApiError> {
    for subscription in state.store.subscriptions(config.id).await? {
        let (id, resource_id) = (&subscription.id, subscription.resource_id.as_deref());
        if let Err(error) = state.sources.unsubscribe(config, credentials, id, resource_id).await {
            tracing::warn!(config_id = %config.id, %error, "could not delete a subscription at the source");
        }
    }
    Ok(())
}

/// Deletes the config's subscriptions at the source and forgets them, when its source subscribes:
/// push turned off, or the config deleted. One the source cannot be asked to delete expires on
/// its own, and its notifications then find no endpoint.
pub(crate) async fn unsubscribe(state: &AppState, org: OrgId, id: ConfigId) -> Result<(), ApiError> {
    let config = state.store.get_config(org, id).await?;
    let Some(config) = config.filter(|c| ctxsync_sources::subscribes(c.integration_type)) else {
        return Ok(());
    };
    match credentials(state, &config).await {
        Ok(credentials) => unsubscribe_at_source(state, &config, &credentials).await?,
        Err(error) => {
            tracing::warn!(config_id = %id, %error, "could not delete the subscriptions at the source")
        }
    }
    state.store.set_subscriptions(id, &[]).await?;
    Ok(())
}

pub(crate) fn no_public_url() -> ApiError {
    ApiError::bad_request(
        "push for this source needs CTXSYNC_PUBLIC_URL, the address the source reaches ctxsync at: it \
         delivers there, and checks that address before it accepts a subscription",
    )
}

/// Renews a subscription, or makes the config's subscriptions again when the source no longer
/// knows it or cannot renew it (Google), and asks for a run, for what may have changed while
/// none was delivering.
pub(crate) async fn renew(state: &AppState, config: &Config, id: &str) -> Result<(), ApiError> {
    let credentials = credentials(state, config).await?;
    match state.sources.renew_subscription(config, &credentials, id).await? {
        Some(renewed) => {
            let renewed = SourceSubscription {
                config_id: config.id,
                resource: renewed.resource,
                id: id.to_owned(),
                resource_id: renewed.resource_id,
                expires_at: renewed.expires_at,
                renew_at: renewed.renew_at,
            };
            state.store.renew_subscription(&renewed).await?;
            tracing::debug!(config_id = %config.id, "renewed a subscription");
        }
        None => {
            tracing::info!(config_id = %config.id, "the source no longer knows a subscription, or cannot renew one; making them again");
            resubscribe(state, config).await?;
            request_run(state, config.id).await?;
        }
    }
    Ok(())
}

/// Renews the subscriptions due by `now`, as [`keep_subscriptions`] does at each look.
async fn renew_due(state: &AppState, now: OffsetDateTime) -> Result<(), ApiError> {
    let due = state.store.claim_due_subscriptions(now, now + CLAIM_FOR).await?;
    for subscription in &due {
        let Some(config) = state.store.config_by_id(subscription.config_id).await? else { continue };
        // A config made again already holds new subscriptions: the others it had are gone.
        let current = state.store.subscriptions(config.id).await?;
        if !current.iter().any(|s| s.id == subscription.id) {
            continue;
        }
        if let Err(error) = renew(state, &config, &subscription.id).await {
            tracing::warn!(config_id = %config.id, %error, "could not renew a subscription; trying again later");
        }
    }
    Ok(())
}

/// Renews subscriptions before they expire and makes again those the source lost, looking every
/// `every`; `now` is the clock that decides what is due (tests run it ahead). Every replica runs
/// it; a claim in the store gives each subscription to one of them.
pub async fn keep_subscriptions(
    state: AppState,
    every: Duration,
    now: impl Fn() -> OffsetDateTime + Send + 'static,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = renew_due(&state, now()).await {
            tracing::warn!(%error, "could not look for subscriptions to renew");
        }
    }
}
