//! Persistence for ctxsync: integration configs with their secrets encrypted at rest, orgs, and
//! hashed API and application keys.
//!
//! The service asks for what it uses through small traits ([`ConfigStore`], [`KeyStore`],
//! [`Ping`]), combined in [`Store`] so that one `Arc<dyn Store>` serves every handler. Each
//! backend keeps its SQL and migrations to itself (`src/sqlite`, `migrations/sqlite`); what must
//! not differ between backends (encryption, key hashing) lives once, in [`Cipher`] and
//! `keys`.

mod configs;
mod crypto;
mod entities;
mod error;
mod keys;
mod sqlite;
mod sync;

pub use configs::ConfigStore;
pub use crypto::{Cipher, MasterKey, Sealed};
pub use entities::{EntityCursor, EntityQuery, EntityStore, StoredEntity, StoredMembership};
pub use error::StoreError;
pub use keys::{KeyPair, KeyStore, Principal};
pub use sqlite::SqliteStore;
pub use sync::{PageWrite, RunEnd, SyncState, SyncStore};

/// A cheap round trip to the database, for readiness checks.
#[async_trait::async_trait]
pub trait Ping: Send + Sync {
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Everything the service needs from a store.
pub trait Store: ConfigStore + KeyStore + EntityStore + SyncStore + Ping {}

impl<T: ConfigStore + KeyStore + EntityStore + SyncStore + Ping> Store for T {}
