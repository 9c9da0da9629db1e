//! The server backend: PostgreSQL, for several replicas on one database.
//!
//! The SQL it shares with SQLite is in `src/sql`, compiled inside `backend.rs`, which also holds
//! what PostgreSQL does its own way; a page's writes, tuned for PostgreSQL, are in
//! `page_write.rs`. This module opens the pool. Values are stored in native types (`uuid`,
//! `timestamptz`, `bytea`, `boolean`).

mod backend;
mod page_write;
mod refusal;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{Cipher, MasterKeys, Ping, StoreError};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Enough for the API's reads and the sync workers' writes of one replica, few enough that
/// several replicas fit under the server's `max_connections` (100 by default).
const MAX_CONNECTIONS: u32 = 16;

/// How long a request waits for a connection, including reconnecting to a server that went away:
/// long enough to ride out a restart's first seconds, short enough that a lost database surfaces
/// as an error (a 503) rather than as hung requests.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle connections are closed after this, so a quiet replica holds no server connections.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The PostgreSQL implementation of [`crate::Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    cipher: Cipher,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:5432/ctxsync`), brings its
    /// schema up to date, and checks that `master_key` is the key its secrets were written with.
    ///
    /// Migrations hold a database-wide advisory lock, so replicas starting together apply each
    /// one once. The database must exist; ctxsync creates only its tables.
    pub async fn connect(url: &str, master_key: impl Into<MasterKeys>) -> Result<PostgresStore, StoreError> {
        let master_key: MasterKeys = master_key.into();
        let options = PgConnectOptions::from_str(url).map_err(StoreError::Connect)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(IDLE_TIMEOUT)
            // A connection the server dropped (a restart, a failover) is found and replaced
            // before a query runs on it, rather than failing that query.
            .test_before_acquire(true)
            .connect_with(options.clone())
            .await;
        let pool = match pool {
            Ok(pool) => pool,
            Err(e) => return Err(refusal::connect_failure(&options, e).await),
        };
        MIGRATOR.run(&pool).await?;
        let store = PostgresStore { pool, cipher: Cipher::new(&master_key) };
        store.check_master_key().await?;
        Ok(store)
    }
}

/// A trivial query; through the pool, so it also proves a connection can be had.
#[async_trait::async_trait]
impl Ping for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.ping_reader().await
    }

    fn pools(&self) -> Vec<crate::PoolStats> {
        vec![crate::PoolStats::of("main", &self.pool)]
    }
}
