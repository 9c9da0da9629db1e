//! The HTTP API of ctxsync.
//!
//! Thin by design: it authenticates, rate-limits, reads and checks request documents, and calls
//! the store and the sources. The Datadog-compatible routes live in [`integration_config`] and
//! stay exactly as the contract describes them; ctxsync's own additions get routes of their own.

mod auth;
pub mod auth_cache;
pub mod config_cache;
pub mod entities;
mod error;
mod health;
pub mod integration_config;
mod json;
mod json_errors;
pub mod keys;
pub mod observe;
pub mod openapi;
pub mod push;
pub mod rate_limit;
mod router;
mod state;
mod ttl_map;

pub use auth::{API_KEY_HEADER, APP_KEY_HEADER};
pub use error::{ApiError, ErrorBody};
pub use openapi::ApiDoc;
pub use push::keep_subscriptions;
pub use rate_limit::{RateLimitSettings, RateLimits};
pub use router::router;
pub use state::AppState;
