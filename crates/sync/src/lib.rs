//! The sync engine: a [`Scheduler`] that finds due configs and a [`Worker`] that runs one sync
//! of one config.
//!
//! A run streams the source's pages into the store as they arrive ([`sink`]), so memory stays
//! flat whatever the tenant's size. Deletions are applied only when a listing completes, in the
//! same transaction that records the run's end; a run that fails or is killed leaves the last
//! complete picture plus its upserts, and the next run catches up. A lease in the store makes
//! sure one worker, in any process, syncs a config at a time.

mod clock;
mod holder;
pub mod metrics;
mod scheduler;
mod sink;
mod worker;

pub use clock::Clock;
pub use scheduler::Scheduler;
pub use sink::Progress;
pub use worker::{Outcome, RunOptions, SyncSettings, Worker};
