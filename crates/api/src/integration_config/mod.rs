//! The Datadog-compatible `integration_config` routes: one file per action.

mod activate;
mod app_registrations;
mod body;
mod create;
mod delete;
mod get;
mod list;
pub mod response;
pub mod schema;
mod update;
mod validate;

#[cfg(test)]
mod proptests;

pub use activate::{__path_activate, __path_deactivate};
pub use app_registrations::__path_app_registrations;
pub use create::__path_create;
pub use delete::__path_delete;
pub use get::__path_get;
pub use list::__path_list;
pub use update::__path_update;
pub use validate::{__path_validate_config, __path_validate_credentials};
pub(crate) use validate::{validate_config, validate_credentials};
pub(crate) use {activate::activate, activate::deactivate, app_registrations::app_registrations};
pub(crate) use {create::create, delete::delete, get::get, list::list, update::update};

use ctxsync_core::{Config, ConfigId};

use crate::error::ApiError;

/// The path of the family; every route of this module lives under it.
pub const BASE_PATH: &str = "/api/v2/security_monitoring/configuration/integration_config";

/// A path id that is not a UUID names no config: 404, as the contract declares for unknown ids.
fn parse_id(raw: &str) -> Result<ConfigId, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::NotFound("integration config not found: integration_config_id must be a UUID".into())
    })
}

/// Logs the settings keys that look like typos of keys ctxsync reads: `settings` is free-form, so
/// such a key is accepted, and would otherwise do nothing without a word.
fn warn_setting_typos(config: &Config) {
    for typo in ctxsync_sources::setting_typos(&config.settings) {
        tracing::warn!(
            config_id = %config.id,
            key = ?typo.key,
            suggestion = typo.suggestion,
            "a settings key is not one ctxsync reads; check its spelling"
        );
    }
}
