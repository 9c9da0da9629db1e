//! Push: the source tells ctxsync that something changed, and ctxsync asks it what.
//!
//! Okta Event Hooks deliver to `/api/v2/ctxsync/push/okta/{config_id}`: first a one-time
//! verification `GET` (the challenge echoed back), then `POST`s of System Log events. Okta sends
//! the header the operator configured with the hook; ctxsync generates that secret per config
//! (`PUT …/integration_configs/{id}/push` shows it once; only its digest is stored) and answers
//! 401 to a delivery without it, counted. Deliveries are at-least-once, so event ids are kept
//! and a repeated one counts once.
//!
//! A delivery is a hint, never the truth: it asks for a run of the config now, and the run reads
//! the source through the connector and applies what the source says through the same store path
//! as any sync page (events, history, the deletion guard). A forged or replayed delivery can
//! therefore never write what the source does not say; it can only make ctxsync look sooner. The
//! scheduled incremental and full runs remain the backstop.

mod hook;
mod status;

pub use hook::{__path_okta_delivery, __path_okta_verification};
pub use hook::{DELIVERIES, describe as describe_metrics};
pub use status::{__path_disable_push, __path_enable_push, __path_get_push};
pub(crate) use {
    hook::okta_delivery, hook::okta_verification, status::disable_push, status::enable_push, status::get_push,
};

/// Where Okta delivers a config's events, under the service's public address.
pub const OKTA_HOOK_PATH: &str = "/api/v2/ctxsync/push/okta";

/// The header whose value is the push secret.
pub const SECRET_HEADER: &str = "Authorization";
