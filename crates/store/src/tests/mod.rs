//! The store's behaviour against a fresh database per test, on the backend
//! [`TestDatabase::create`] gives: SQLite, or PostgreSQL when `CTXSYNC_TEST_DATABASE_URL` names a
//! server (`scripts/test-postgres`). The same tests run on both, so the backends cannot drift.

mod configs;
mod events;
mod holds;
mod keys;
mod persons;
mod push;
mod replicas;
mod resume;
pub(crate) mod sync;

use std::sync::Arc;

use ctxsync_core::OrgId;
use sqlx::{PgPool, SqlitePool};

use crate::testing::TestDatabase;
use crate::{MasterKey, Store, StoreError};

/// A store on a fresh database, with a connection of its own for what the traits do not offer
/// (tampering with rows, counting them).
pub(crate) struct TestStore {
    pub db: TestDatabase,
    pub store: Arc<dyn Store>,
    raw: Raw,
}

enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code on whichever pool the backend has; test SQL is written to suit both
/// (`$1` parameters, ids compared as text).
macro_rules! on_pool {
    ($raw:expr, $pool:ident => $body:expr) => {
        match $raw {
            Raw::Sqlite($pool) => $body,
            Raw::Postgres($pool) => $body,
        }
    };
}

impl TestStore {
    pub async fn new() -> TestStore {
        let db = TestDatabase::create().await;
        let store = crate::connect(&db.url, key(1)).await.unwrap();
        let raw = if db.is_postgres() {
            Raw::Postgres(PgPool::connect(&db.url).await.unwrap())
        } else {
            Raw::Sqlite(SqlitePool::connect(&db.url).await.unwrap())
        };
        TestStore { db, store, raw }
    }

    pub async fn org(&self, name: &str) -> OrgId {
        self.store.ensure_org(name).await.unwrap()
    }

    /// Another store on the same database, as a second replica or a restart would open it.
    pub async fn reopen(&self, key: impl Into<crate::MasterKeys>) -> Result<Arc<dyn Store>, StoreError> {
        crate::connect(&self.db.url, key).await
    }

    /// Runs `sql` with text parameters `$1`, `$2`, …
    pub async fn execute(&self, sql: &str, params: &[&str]) {
        on_pool!(&self.raw, pool => {
            let mut query = sqlx::query(sql);
            for p in params {
                query = query.bind(*p);
            }
            query.execute(pool).await.unwrap();
        })
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        on_pool!(&self.raw, pool => sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap())
    }

    pub async fn bytes(&self, sql: &str) -> Vec<u8> {
        on_pool!(&self.raw, pool => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap())
    }
}

pub(crate) fn key(byte: u8) -> MasterKey {
    use base64::Engine;
    MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([byte; 32])).unwrap()
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}
