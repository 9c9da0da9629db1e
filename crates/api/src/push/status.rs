//! A config's push endpoint: its status, turning it on and off. For Okta, turning it on makes a
//! new secret, shown once, for the operator to give the Event Hook; for Entra ID it makes Graph
//! subscriptions, and for Google Workspace `users.watch` channels, whose secret (`clientState`,
//! the channel token) is never shown.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use ctxsync_core::{Config, ConfigId, IntegrationType};
use ctxsync_store::{PushEndpoint, SourceSubscription, new_secret, secret_digest};
use serde::Serialize;
use utoipa::ToSchema;

use super::subscriptions::{no_public_url, notification_urls, resubscribe, unsubscribe};
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
    /// Where the source delivers: give it to the source's console (Okta: Workflow → Event Hooks);
    /// Entra ID's subscriptions and Google's channels name it themselves.
    pub url: String,
    /// Okta: the header the source must send, its value the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<&'static str>,
    /// Entra ID: where Graph tells of the subscriptions themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_url: Option<String>,
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
    /// Entra ID: the subscriptions ctxsync keeps at Graph; Google Workspace: its `users.watch`
    /// channels, one per event. Each is renewed (Google: replaced) before it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<Vec<SubscriptionAttributes>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionAttributes {
    /// The source's id of the subscription (Graph) or channel (Google).
    pub id: String,
    /// `/users` or `/groups` (Graph); `users?event=update` and the like (Google).
    pub resource: String,
    pub expires_at: String,
}

fn config_id(raw: &str) -> Result<ConfigId, ApiError> {
    raw.parse().map_err(|_| ApiError::config_not_found())
}

/// Whether configs of the type push through subscriptions ctxsync makes (Graph's change
/// notifications) rather than a hook their admin registers (Okta's).
fn subscribes(config: &Config) -> bool {
    ctxsync_sources::subscribes(config.integration_type)
}

/// The config, when its source can push.
async fn pushing_config(state: &AppState, org: ctxsync_core::OrgId, id: &str) -> Result<Config, ApiError> {
    let config = state.store.get_config(org, config_id(id)?).await?.ok_or_else(ApiError::config_not_found)?;
    if config.integration_type != IntegrationType::Okta && !subscribes(&config) {
        let mut pushing = vec!["OKTA (Okta Event Hooks)".to_string()];
        pushing.extend(
            IntegrationType::ALL
                .into_iter()
                .filter(|t| ctxsync_sources::subscribes(*t))
                .map(|t| format!("{} (change notifications)", t.as_str())),
        );
        return Err(ApiError::bad_request(format!(
            "push is available for {} configs; {} configs are synced on their schedule",
            pushing.join(" and "),
            config.integration_type.as_str()
        )));
    }
    Ok(config)
}

/// The address the source reaches this service at: `CTXSYNC_PUBLIC_URL`, else the `Host` the
/// request came to.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    state.public_url.clone().unwrap_or_else(|| {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        format!("http://{host}")
    })
}

fn hook_url(state: &AppState, headers: &HeaderMap, config: ConfigId) -> String {
    format!("{}{OKTA_HOOK_PATH}/{config}", base_url(state, headers).trim_end_matches('/'))
}

/// What a config's push looks like from outside: where the source delivers, and for a source
/// that subscribes, its subscriptions.
struct Shown {
    url: String,
    header: Option<&'static str>,
    lifecycle_url: Option<String>,
    subscriptions: Option<Vec<SourceSubscription>>,
}

/// Where the source delivers, under [`base_url`] (turning Graph's push on needs
/// `CTXSYNC_PUBLIC_URL`, since Graph is given the address rather than an operator).
async fn shown(state: &AppState, headers: &HeaderMap, config: &Config) -> Result<Shown, ApiError> {
    if !subscribes(config) {
        return Ok(Shown {
            url: hook_url(state, headers, config.id),
            header: Some(SECRET_HEADER),
            lifecycle_url: None,
            subscriptions: None,
        });
    }
    let (url, lifecycle_url) = notification_urls(&base_url(state, headers), config);
    let subscriptions = state.store.subscriptions(config.id).await?;
    Ok(Shown { url, header: None, lifecycle_url, subscriptions: Some(subscriptions) })
}

fn response(
    shown: Shown,
    config: ConfigId,
    endpoint: Option<&PushEndpoint>,
    secret: Option<String>,
) -> PushResponse {
    let subscriptions = shown.subscriptions.map(|all| {
        all.into_iter()
            .map(|s| SubscriptionAttributes {
                id: s.id,
                resource: s.resource,
                expires_at: rfc3339(s.expires_at),
            })
            .collect()
    });
    PushResponse {
        data: PushData {
            id: config.to_string(),
            resource_type: "push_endpoint",
            attributes: PushAttributes {
                header: shown.header,
                url: shown.url,
                lifecycle_url: shown.lifecycle_url,
                subscriptions,
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
    Ok(Json(response(shown(&state, &headers, &config).await?, config.id, endpoint.as_ref(), None)))
}

/// Turns push on with a new secret, or replaces the secret (the old one stops working at once).
/// Okta: the answer is the only place the secret is ever shown. Entra ID: Graph subscriptions
/// for users and groups are made (again), after Graph's handshake with this service at
/// `CTXSYNC_PUBLIC_URL`; Google Workspace: a `users.watch` channel per event, delivering there.
/// The secret they carry is never shown.
#[utoipa::path(
    put,
    path = "/api/v2/ctxsync/integration_configs/{config_id}/push",
    operation_id = "EnablePushEndpoint",
    tag = "ctxsync",
    params(("config_id" = String, Path, description = "The integration config's ID.")),
    responses(
        (status = 200, description = "OK: the secret is in `attributes.secret`", body = PushResponse),
        (status = 400, description = "The config's source cannot push, CTXSYNC_PUBLIC_URL is unset, or the source refused the subscriptions", body = ErrorBody),
        (status = 403, description = "Not Authorized", body = ErrorBody),
        (status = 404, description = "Not Found", body = ErrorBody),
        (status = 429, description = "Too many requests", body = ErrorBody),
        (status = 502, description = "The source could not be reached; push stays off", body = ErrorBody),
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
    if subscribes(&config) && state.public_url.is_none() {
        return Err(no_public_url());
    }
    let secret = new_secret();
    let now = ctxsync_core::now();
    if !state.store.set_push_secret(auth.org_id, config.id, &secret_digest(&secret), now).await? {
        return Err(ApiError::config_not_found());
    }
    let shown_secret = if subscribes(&config) {
        // The endpoint is on, so it answers Graph's handshake; the subscriptions carry a secret
        // of their own.
        if let Err(error) = resubscribe(&state, &config).await {
            state.store.set_subscriptions(config.id, &[]).await?;
            state.store.delete_push_secret(auth.org_id, config.id).await?;
            return Err(error);
        }
        None
    } else {
        Some(secret)
    };
    let endpoint = state.store.push_endpoint(config.id).await?;
    tracing::info!(config_id = %config.id, "push turned on");
    Ok(Json(response(shown(&state, &headers, &config).await?, config.id, endpoint.as_ref(), shown_secret)))
}

/// Turns push off: deliveries are refused (404) until it is turned on again; an Entra ID
/// config's subscriptions are deleted at Graph, a Google Workspace config's channels stopped.
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
    unsubscribe(&state, auth.org_id, id).await?;
    if !state.store.delete_push_secret(auth.org_id, id).await? {
        return Err(ApiError::NotFound("push is not on for this config".into()));
    }
    Ok(StatusCode::NO_CONTENT)
}
