//! Push: the source tells ctxsync that something changed, and ctxsync asks it what.
//!
//! Okta Event Hooks deliver to `/api/v2/ctxsync/push/okta/{config_id}`: first a one-time
//! verification `GET` (the challenge echoed back), then `POST`s of System Log events. Okta sends
//! the header the operator configured with the hook; ctxsync generates that secret per config
//! (`PUT …/integration_configs/{id}/push` shows it once; only its digest is stored) and answers
//! 401 to a delivery without it, counted. Deliveries are at-least-once, so event ids are kept
//! and a repeated one counts once.
//!
//! Microsoft Graph's change notifications (Entra ID configs) work the other way round: ctxsync
//! makes the subscriptions itself when push is turned on (`subscriptions.rs`), for users and
//! groups, delivering to `/api/v2/ctxsync/push/entra_id/{config_id}` (and `…/lifecycle` for
//! news of the subscriptions themselves) with a `clientState` that is the config's secret.
//! Graph checks those URLs before it answers (`graph.rs` echoes its `validationToken`), and
//! subscriptions expire within 29 days: `keep_subscriptions`, run by `ctxsync serve`, renews
//! them and makes again those Graph lost.
//!
//! Google Workspace pushes through Directory `users.watch` channels, also made by ctxsync when
//! push is turned on (one per event: add, delete, makeAdmin, undelete, update; Google has none
//! for groups), delivering to `/api/v2/ctxsync/push/google_workspace/{config_id}` with the
//! config's secret as the channel token and the user as the body (`google.rs`). Google cannot
//! renew a channel: `keep_subscriptions` replaces them before their six hours run out.
//!
//! A delivery is a hint, never the truth: it asks for a run of the config now, and the run reads
//! the source through the connector and applies what the source says through the same store path
//! as any sync page (events, history, the deletion guard). A forged or replayed delivery can
//! therefore never write what the source does not say; it can only make ctxsync look sooner. The
//! scheduled incremental and full runs remain the backstop.

mod google;
mod graph;
mod hook;
mod status;
mod subscriptions;

use ctxsync_core::{Config, ConfigId, ConfigState, IntegrationType};
use ctxsync_store::PushEndpoint;

use crate::error::ApiError;
use crate::state::AppState;
pub use google::__path_google_notification;
pub use graph::{__path_entra_lifecycle, __path_entra_notifications};
pub use hook::{__path_okta_delivery, __path_okta_verification};
pub use hook::{DELIVERIES, describe as describe_metrics};
pub use status::{__path_disable_push, __path_enable_push, __path_get_push};
pub use subscriptions::keep_subscriptions;
pub(crate) use subscriptions::unsubscribe;
pub(crate) use {
    google::google_notification, graph::entra_lifecycle, graph::entra_notifications, hook::okta_delivery,
    hook::okta_verification, status::disable_push, status::enable_push, status::get_push,
};

/// Where Okta delivers a config's events, under the service's public address.
pub const OKTA_HOOK_PATH: &str = "/api/v2/ctxsync/push/okta";

/// Where Graph delivers an Entra ID config's change notifications, under the service's public
/// address.
pub const ENTRA_PUSH_PATH: &str = "/api/v2/ctxsync/push/entra_id";

/// Where Google delivers a Google Workspace config's channel notifications, under the service's
/// public address.
pub const GOOGLE_PUSH_PATH: &str = "/api/v2/ctxsync/push/google_workspace";

/// The header whose value is the push secret.
pub const SECRET_HEADER: &str = "Authorization";

/// The config of `integration_type` whose push is on, with its endpoint. Unknown ids, other
/// sources and push turned off all answer the same 404, so a caller learns nothing of the configs.
async fn pushing(
    state: &AppState,
    id: &str,
    integration_type: IntegrationType,
) -> Result<(Config, PushEndpoint), ApiError> {
    let not_found = || ApiError::NotFound("no push endpoint here".into());
    let id: ConfigId = id.parse().map_err(|_| not_found())?;
    let config = state.store.config_by_id(id).await?.filter(|c| c.integration_type == integration_type);
    let Some(config) = config else { return Err(not_found()) };
    let Some(endpoint) = state.store.push_endpoint(config.id).await? else {
        return Err(not_found());
    };
    Ok((config, endpoint))
}

/// Asks for a run of the config now, as "sync now" does, and wakes this replica's scheduler; a
/// run already under way is followed by another as soon as it ends.
async fn request_run(state: &AppState, config: ConfigId) -> Result<(), ApiError> {
    let Some(current) = state.store.config_by_id(config).await? else { return Ok(()) };
    if !current.enabled || current.state == ConfigState::Invalid {
        tracing::info!(config_id = %config, "a push for a config that is disabled or invalid asks for no run");
        return Ok(());
    }
    state.store.request_run(current.org_id, config).await?;
    state.runs_due.notify_one();
    tracing::debug!(config_id = %config, "a push asked for a run");
    Ok(())
}
