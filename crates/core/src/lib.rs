//! Domain types of ctxsync, shared by every other crate.
//!
//! This crate does no I/O on purpose: the rules that decide whether a configuration or a scope is
//! acceptable, how entities change and which accounts are one person live here as plain functions
//! and newtypes with a `parse` constructor, so they can be unit-tested without a server, a
//! database or a network.

mod change;
mod config;
mod entity;
mod field;
mod identity;
mod ids;
mod integration;
mod scope;
mod secret;
mod setting_keys;
mod sync;

pub use change::{Change, ChangeType, entity_changes};
pub use config::{Config, ConfigName, ConfigPatch, Domain, NewConfig, PatchPlan, Settings};
pub use entity::{
    Device, Entity, EntityKind, Group, Membership, MfaFactor, OnPremisesAccount, Record, User, UserStatus,
};
pub use field::{FieldError, FieldErrors};
pub use identity::{Account, AccountRef, Link, LinkReason, Person, resolve, windows_sid};
pub use ids::{ConfigId, OrgId};
pub use integration::{ConfigState, IntegrationType};
pub use scope::{Scope, Scopes};
pub use secret::SecretValue;
pub use setting_keys::{SettingTypo, setting_typos};
pub use sync::{
    Completeness, Counts, Coverage, DeletionGuard, Expected, Hold, HoldResolution, MEMBERSHIP,
    RateLimitShare, Removal, Run, RunCounts, RunKind, RunStatus, Schedule, Tally,
};

/// The current time at the precision every store keeps (microseconds), so a value read back
/// equals the value written.
pub fn now() -> time::OffsetDateTime {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000).expect("a truncated nanosecond is in range")
}
