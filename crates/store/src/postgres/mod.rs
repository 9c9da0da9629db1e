//! The server backend: PostgreSQL, for several replicas on one database.
//!
//! The SQL it shares with SQLite is in `crate::sql`, included here as [`sql`]; this module holds
//! what is PostgreSQL's own: its pool, its dialect, and the statements that take many rows as
//! arrays (`batch.rs`, and a page's writes in `page_write.rs`). Values are stored in native types
//! (`uuid`, `timestamptz`, `bytea`, `boolean`).

mod batch;
mod page_write;
mod refusal;
#[path = "../sql/mod.rs"]
mod sql;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::time::Duration;

use ctxsync_core::{ConfigId, Coverage, OrgId, Run, RunCounts};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::history::Recorder;
use crate::{Cipher, MasterKeys, PageWrite, Ping, StoreError, StoredEntity};

/// The database the shared SQL in [`sql`] runs on.
type Db = sqlx::Postgres;
/// The store the shared SQL in [`sql`] implements the traits for.
type Store = PostgresStore;

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

impl sql::Backend for PostgresStore {
    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    const ROW_LOCKS: bool = true;

    const SCRATCH_TABLES: &'static [&'static str] =
        &["run_seen_entities", "run_seen_memberships", "run_removals"];

    /// Identifiers are keyed by the entity's key, with its org.
    const IDENTIFIER_MATCH: &'static str = "EXISTS (SELECT 1 FROM entity_identifiers i WHERE i.org_id = e.org_id \
         AND i.config_id = e.config_id AND i.kind = e.kind AND i.source_id = e.source_id AND i.identifier = ";

    /// `(column::jsonb #>> '{a,b}')`: the columns hold JSON as text.
    fn json_text(column: &str, path: &[&str]) -> String {
        format!("({column}::jsonb #>> '{{{}}}')", path.join(","))
    }

    fn any_id(column: &str, param: &str) -> String {
        format!("{column} = ANY({param})")
    }

    async fn find_identifiers(
        &self,
        org: OrgId,
        identifiers: &[String],
    ) -> Result<Vec<(String, StoredEntity)>, StoreError> {
        batch::find_identifiers(&self.pool, org, identifiers).await
    }

    async fn write_page(
        conn: &mut PgConnection,
        run: &Run,
        org: OrgId,
        page: &PageWrite<'_>,
        counts: &mut RunCounts,
        recorder: &mut Recorder,
    ) -> Result<(), StoreError> {
        page_write::write_page(conn, run, org, page, counts, recorder).await
    }

    async fn unstage_seen(conn: &mut PgConnection, config: ConfigId, page: &PageWrite<'_>) -> Result<(), StoreError> {
        batch::unstage_seen(conn, config, page).await
    }

    async fn stage_unseen_memberships(
        conn: &mut PgConnection,
        run: &Run,
        coverage: &Coverage,
    ) -> Result<(), StoreError> {
        batch::stage_unseen_memberships(conn, run, coverage).await
    }

    async fn record(
        conn: &mut PgConnection,
        run: &Run,
        recorder: &Recorder,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        batch::record(conn, run, recorder, now).await
    }

    async fn after_run(&self, _run: &Run) -> Result<(), StoreError> {
        Ok(())
    }
}
