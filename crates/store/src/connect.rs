//! Opening the store a database URL names, on the backend its scheme names.

use std::sync::Arc;

use crate::{MasterKeys, PostgresStore, SqliteStore, Store, StoreError};

/// Opens the store at `url`: `sqlite:…` is an embedded database file, `postgres://…` or
/// `postgresql://…` a PostgreSQL server. The schema is brought up to date and `master_key` checked
/// against the database's secrets (any of the keys, during a rotation).
pub async fn connect(url: &str, master_key: impl Into<MasterKeys>) -> Result<Arc<dyn Store>, StoreError> {
    // Only the scheme is looked at or reported: the rest of the URL may hold a password.
    match url.split_once(':').map(|(scheme, _)| scheme) {
        Some("sqlite") => Ok(Arc::new(SqliteStore::connect(url, master_key).await?)),
        Some("postgres" | "postgresql") => Ok(Arc::new(PostgresStore::connect(url, master_key).await?)),
        _ => Err(StoreError::Invalid(
            "the database URL must start with sqlite: (a database file, such as \
             sqlite:///var/lib/ctxsync/ctxsync.db) or postgres:// or postgresql:// (a PostgreSQL server, \
             such as postgres://ctxsync@db.internal/ctxsync); check CTXSYNC_DATABASE_URL"
                .into(),
        )),
    }
}
