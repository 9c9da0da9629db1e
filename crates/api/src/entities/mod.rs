//! ctxsync's own routes, beside the Datadog-compatible ones: the synced entities, lookups for
//! enrichment, persons resolved across sources, each config's sync runs and health, held
//! deletions, change events and entity history.

mod events;
mod holds;
mod list;
mod lookup;
mod params;
mod persons;
pub(crate) mod response;
mod runs;

pub use events::EventData;
pub use events::{__path_entity_history, __path_list_events};
pub use holds::HeldDeletionData;
pub use holds::{
    __path_confirm_deletions, __path_discard_deletions, __path_get_health, __path_list_held_deletions,
};
pub use list::{__path_get_entity, __path_list_entities};
pub use lookup::__path_lookup;
pub use persons::{__path_get_persons, __path_lookup_persons};
pub use response::RunData;
pub use runs::{__path_get_run, __path_list_runs, __path_sync_now};
pub(crate) use {
    events::entity_history, events::list_events, holds::confirm_deletions, holds::discard_deletions,
    holds::get_health, holds::list_held_deletions, list::get_entity, list::list_entities, lookup::lookup,
    persons::get_persons, persons::lookup_persons, runs::get_run, runs::list_runs, runs::sync_now,
};

/// The prefix of every ctxsync-specific route.
pub const BASE_PATH: &str = "/api/v2/ctxsync";
