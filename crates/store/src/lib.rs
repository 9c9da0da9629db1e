//! Persistence for ctxsync: integration configs with their secrets encrypted at rest, orgs, and
//! hashed API and application keys.
//!
//! The service asks for what it uses through small traits ([`ConfigStore`], [`KeyStore`],
//! [`Ping`]), combined in [`Store`] so that one `Arc<dyn Store>` serves every handler; [`connect`]
//! opens the backend a database URL names. Each backend keeps its SQL and migrations to itself
//! (`src/sqlite` and `migrations/sqlite`, `src/postgres` and `migrations/postgres`); what must not
//! differ between backends lives once: encryption ([`Cipher`]), key hashing (`keys`), reading rows
//! (`rows`), preparing a page's writes (`page`), deciding which changes become events and history
//! (`history`), and the statements whose SQL suits both.

mod configs;
mod connect;
mod crypto;
mod entities;
mod error;
mod history;
mod holds;
mod keys;
mod page;
mod postgres;
mod rows;
mod sqlite;
mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use configs::ConfigStore;
pub use connect::connect;
pub use crypto::{Cipher, MasterKey, Sealed};
pub use entities::{EntityCursor, EntityQuery, EntityStore, StoredEntity, StoredMembership};
pub use error::StoreError;
pub use history::{ChangeEvent, EventQuery, HistoryStore, IntervalQuery, MembershipInterval, RoleInterval};
pub use holds::{Decided, HeldCursor, HeldDeletion, HoldStore};
pub use keys::{KeyPair, KeyStore, Principal};
pub use page::PreparedEntities;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use sync::{Lease, PageWrite, RunEnd, SyncState, SyncStore};

/// A cheap round trip to the database, for readiness checks.
#[async_trait::async_trait]
pub trait Ping: Send + Sync {
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Everything the service needs from a store.
pub trait Store: ConfigStore + KeyStore + EntityStore + SyncStore + HistoryStore + HoldStore + Ping {}

impl<T: ConfigStore + KeyStore + EntityStore + SyncStore + HistoryStore + HoldStore + Ping> Store for T {}
