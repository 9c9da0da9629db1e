//! ctxsync's own routes, beside the Datadog-compatible ones: the synced entities, lookups for
//! enrichment, and each config's sync runs.

mod list;
mod lookup;
mod response;
mod runs;

pub use list::{__path_get_entity, __path_list_entities};
pub use lookup::__path_lookup;
pub use runs::{__path_get_run, __path_list_runs, __path_sync_now};
pub(crate) use {
    list::get_entity, list::list_entities, lookup::lookup, runs::get_run, runs::list_runs, runs::sync_now,
};

/// The prefix of every ctxsync-specific route.
pub const BASE_PATH: &str = "/api/v2/ctxsync";
