//! The server backend: PostgreSQL, for several replicas on one database.
//!
//! One file per trait (`configs.rs`, `keys.rs`, `entities.rs`, `sync.rs`), like the SQLite
//! backend. Values are stored in native types (`uuid`, `timestamptz`, `bytea`, `boolean`), so rows
//! decode without the text encodings SQLite needs. Many rows go into one statement as arrays
//! (`UNNEST($1::text[], …)`), so the statement text does not depend on the page's size and no
//! page comes near the bind-parameter limit.

mod configs;
mod entities;
mod history;
mod holds;
mod keys;
mod refusal;
mod sync;
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

    /// The first start seals a check value; every later start must open it. Insert-then-read in
    /// two statements, so the read sees a value another replica inserted meanwhile and replicas
    /// starting together on a new database agree on one value.
    async fn check_master_key(&self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO store_meta (name, value) VALUES ('master_key_check', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(self.cipher.seal_key_check())
        .execute(&self.pool)
        .await?;
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM store_meta WHERE name = 'master_key_check'")
                .fetch_one(&self.pool)
                .await?;
        self.cipher.verify_key_check(&stored)
    }
}

/// A trivial query; through the pool, so it also proves a connection can be had.
#[async_trait::async_trait]
impl Ping for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pools(&self) -> Vec<crate::PoolStats> {
        vec![crate::PoolStats::of("main", &self.pool)]
    }
}
