//! Persistence for ctxsync: integration configs with their secrets encrypted at rest, orgs, and
//! hashed API and application keys.
//!
//! The service asks for what it uses through small traits ([`ConfigStore`], [`KeyStore`],
//! [`Ping`]), combined in [`Store`] so that one `Arc<dyn Store>` serves every handler; [`connect`]
//! opens the backend a database URL names. The SQL both backends run is written once (`src/sql`,
//! compiled inside each backend, see its module doc); each backend keeps to itself its
//! migrations (`migrations/sqlite`, `migrations/postgres`), its dialect's differences, its
//! statements over many rows and its tuned page writes (`src/sqlite`, `src/postgres`). What must
//! not differ between backends lives once too: encryption ([`Cipher`]), key hashing (`keys`),
//! reading rows (`rows`) with ids and times as each backend stores them (`values`), preparing a
//! page's writes (`page`), and deciding which changes become events and history (`history`).

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
mod push;
mod rows;
mod sqlite;
mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod values;

pub use configs::{ConfigStore, Reencrypted};
pub use connect::connect;
pub use crypto::{Cipher, MasterKey, MasterKeys, Sealed};
pub use entities::{EntityCursor, EntityQuery, EntityStore, StoredEntity, StoredMembership};
pub use error::{QUERY_ERRORS, StoreError};
pub use history::{ChangeEvent, EventQuery, HistoryStore, IntervalQuery, MembershipInterval, RoleInterval};
pub use holds::{Decided, HeldCursor, HeldDeletion, HoldStore};
pub use keys::{Authenticated, IssuedKey, KeyFilter, KeyInfo, KeyKind, KeyPair, KeyStore, Principal};
pub use page::{LOGON, PreparedEntities};
pub use postgres::PostgresStore;
pub use push::{Delivery, PushEndpoint, PushStore, SourceSubscription, new_secret, secret_digest};
pub use sqlite::SqliteStore;
#[cfg(feature = "testing")]
pub use sqlite::writer_connect_options;
pub use sync::{
    Checkpointed, Lease, PageWrite, ResumePoint, RunEnd, RunSummary, SOURCE_CHANGED, SyncState, SyncStore,
};

/// A cheap round trip to the database, for readiness checks, and the state of its connection
/// pools, for metrics.
#[async_trait::async_trait]
pub trait Ping: Send + Sync {
    async fn ping(&self) -> Result<(), StoreError>;

    /// Each pool's connections now: a pool whose connections are all busy makes queries wait.
    fn pools(&self) -> Vec<PoolStats>;
}

/// One connection pool's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// `read` and `write` for SQLite (one writer connection); `main` for PostgreSQL.
    pub pool: &'static str,
    /// Connections open, busy or idle.
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl PoolStats {
    fn of<DB: sqlx::Database>(pool: &'static str, of: &sqlx::Pool<DB>) -> PoolStats {
        // `num_idle` counts without a lock, so it can briefly exceed `size`.
        let open = of.size();
        let idle = u32::try_from(of.num_idle()).unwrap_or(u32::MAX).min(open);
        PoolStats { pool, open, idle, max: of.options().get_max_connections() }
    }
}

/// Everything the service needs from a store.
pub trait Store:
    ConfigStore + KeyStore + EntityStore + SyncStore + HistoryStore + HoldStore + PushStore + Ping
{
}

impl<T: ConfigStore + KeyStore + EntityStore + SyncStore + HistoryStore + HoldStore + PushStore + Ping> Store
    for T
{
}
