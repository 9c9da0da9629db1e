//! The embedded backend: one SQLite file in WAL mode, so readers never wait for the writer.
//!
//! The SQL it shares with PostgreSQL is in `src/sql`, compiled inside `backend.rs`, which also
//! holds what SQLite does its own way; a page's writes, tuned for SQLite, are in `page_write.rs`.
//! This module opens the database: its pools and pragmas.

mod backend;
mod page_write;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{Cipher, MasterKeys, Ping, StoreError};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connections for reads: a few cover the API's reads without holding many page caches.
const POOL_SIZE: u32 = 8;

/// The write connection's page cache, in KiB: large enough to hold the hot parts of the indexes
/// a sync inserts into, fixed so memory does not grow with the tenant.
const WRITER_CACHE_KIB: u32 = 32 * 1024;

/// How much of the database file each read connection maps into memory. A lookup reads entity
/// rows scattered over the whole file; through the page cache each one is a system call copying a
/// 16 KiB page, through the map a pointer (lookups ~15% faster). Mapped pages are the kernel's
/// file cache, shared by the connections and given back under memory pressure; the writer does
/// not map, so a sync's memory is unchanged.
const READER_MMAP_BYTES: u64 = 256 * 1024 * 1024;

/// The page size of a new database. Entity rows (about 1.3 KB of JSON each) leave a third of a
/// 4 KiB page empty and split often; 16 KiB pages hold a dozen, so a sync writes fewer, fuller
/// pages. A database created before keeps its size (WAL mode cannot change it).
const PAGE_SIZE: u32 = 16 * 1024;

/// WAL pages after which a commit copies the log back into the database (SQLite's default is
/// 1000): 40 MiB. A page rewritten by many commits in between is copied once, and the fsync that
/// ends each copy comes less often.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 40 * 1024 * 1024 / PAGE_SIZE;

/// Long enough to ride out another connection's write transaction, short enough that a stuck
/// database surfaces as an error rather than a hung request.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite implementation of [`crate::Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// For reads.
    pool: SqlitePool,
    /// For every write: one connection, since SQLite has one writer at a time anyway and a
    /// connection drops its whole page cache when another connection has written, so writes
    /// that take turns on several connections would each start cold.
    writer: SqlitePool,
    cipher: Cipher,
}

impl SqliteStore {
    /// Opens (creating when missing, with its directory) the database at `url`, such as
    /// `sqlite:///var/lib/ctxsync/ctxsync.db` or `sqlite://ctxsync-data/ctxsync.db`, brings its
    /// schema up to date, and checks that `master_key` is the key its secrets were written with.
    pub async fn connect(url: &str, master_key: impl Into<MasterKeys>) -> Result<SqliteStore, StoreError> {
        let master_key: MasterKeys = master_key.into();
        let options = connect_options(url)?;
        create_parent_dir(options.get_filename())?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // The connection is ours alone; checking it before every transaction costs a round trip.
            .test_before_acquire(false)
            .connect_with(writer_options(options.clone()))
            .await
            .map_err(StoreError::Connect)?;
        MIGRATOR.run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            // A local file does not go away under an open connection as a server's socket can;
            // pinging it before each use was a round trip to its thread (a sixth of a GET's CPU).
            .test_before_acquire(false)
            .connect_with(options.pragma("mmap_size", READER_MMAP_BYTES.to_string()))
            .await
            .map_err(StoreError::Connect)?;
        let store = SqliteStore { pool, writer, cipher: Cipher::new(&master_key) };
        store.check_master_key().await?;
        Ok(store)
    }

    /// Closes every connection, waiting for them to finish: the last one to close checkpoints
    /// the log into the database and frees its page cache.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// A trivial query, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.ping_reader().await
    }
}

#[async_trait::async_trait]
impl Ping for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        SqliteStore::ping(self).await
    }

    fn pools(&self) -> Vec<crate::PoolStats> {
        vec![crate::PoolStats::of("read", &self.pool), crate::PoolStats::of("write", &self.writer)]
    }
}

/// How every connection to the database at `url` is opened.
fn connect_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(StoreError::Connect)?
        .create_if_missing(true)
        .page_size(PAGE_SIZE)
        .journal_mode(SqliteJournalMode::Wal)
        // Durable across a killed process, and consistent across power loss, with WAL.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT))
}

/// The write connection's settings on top of `options`.
fn writer_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
        .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
}

/// The options the store's write connection to the database at `url` is opened with, so a
/// benchmark can measure what SQLite itself costs with the store's settings.
#[cfg(feature = "testing")]
pub fn writer_connect_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(writer_options(connect_options(url)?))
}

/// SQLite creates a missing file but not its directory.
fn create_parent_dir(file: &Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::CreateDir { path: dir.to_owned(), source }),
        _ => Ok(()),
    }
}
