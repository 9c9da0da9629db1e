use std::path::PathBuf;

use ctxsync_core::ConfigId;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// Everything that can go wrong in the store.
///
/// Messages say what to do next and never carry a secret, a key or a database URL (which may
/// hold a password): they end up in logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the master key is not valid: {reason}; give 32 random bytes encoded in base64 \
         (for example the output of `openssl rand -base64 32`)"
    )]
    InvalidMasterKey { reason: String },

    #[error(
        "the master key file {} does not hold a valid key: {reason}; it must contain 32 random bytes \
         encoded in base64 (for example the output of `openssl rand -base64 32`)",
        path.display()
    )]
    InvalidMasterKeyFile { path: PathBuf, reason: String },

    #[error(
        "cannot {action} the master key file {}: {source}; check that the path is right and that \
         ctxsync may read it (and write it, to generate a key)",
        path.display()
    )]
    MasterKeyIo {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Found at start-up, before any request: the database's key check does not decrypt.
    #[error(
        "the master key does not match the one this database's secrets were written with; start \
         ctxsync with the original key (CTXSYNC_MASTER_KEY, CTXSYNC_MASTER_KEY_FILE or master.key \
         in the data dir)"
    )]
    MasterKeyMismatch,

    #[error(
        "the stored secrets of config {config} cannot be decrypted: the master key does not match the \
         one they were written with, or the row was changed outside ctxsync; start ctxsync with the \
         original key, or set the config's secrets again"
    )]
    SecretsUndecryptable { config: ConfigId },

    #[error(
        "cannot create the database directory {}: {source}; check the path in CTXSYNC_DATABASE_URL or \
         CTXSYNC_DATA_DIR and its permissions",
        path.display()
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "cannot open the database: {0}; check CTXSYNC_DATABASE_URL (or CTXSYNC_DATA_DIR), and that \
         the database file is writable or the PostgreSQL server reachable"
    )]
    Connect(#[source] sqlx::Error),

    /// The PostgreSQL server could not be connected to. `server` names it by host, port, database
    /// and user (never the URL, which may hold a password); `reason` says why and what to check.
    #[error("cannot connect to PostgreSQL at {server}: {reason}")]
    PostgresConnect { server: String, reason: String, unavailable: bool },

    #[error(
        "cannot migrate the database schema: {0}; if a newer ctxsync version wrote this database, \
         run that version or restore a backup"
    )]
    Migrate(#[from] sqlx::migrate::MigrateError),

    #[error("database error: {0}; check that the database is reachable and not full, then retry")]
    Database(sqlx::Error),

    /// A stored value this version cannot read (a newer version's data, or a hand edit).
    #[error(
        "stored data is unreadable: {0}; if a newer ctxsync version wrote this database, run that \
         version or restore a backup"
    )]
    Corrupt(String),

    /// The caller passed something the store cannot accept (an empty org name or key).
    #[error("{0}")]
    Invalid(String),

    /// The run's lease was taken over (its worker looked dead) and the run marked failed; what
    /// it listed may be stale, so it must not delete anything.
    #[error(
        "sync run {0} is no longer running: another worker took its config over, so its deletions \
         were not applied; the next run catches up"
    )]
    RunTakenOver(uuid::Uuid),

    /// A run starts only under its config's lease, and the worker starting it no longer holds
    /// it: another took it over while it stalled, or it was let go, or the config is gone.
    #[error(
        "config {config} is no longer leased to this worker (another worker took it over, or the \
         config was deleted), so no run was started"
    )]
    LeaseLost { config: ConfigId },

    /// A bootstrap key that is already registered to another org cannot be moved.
    #[error("the given {kind} is already registered to another org; choose a different key for org {org:?}")]
    KeyInOtherOrg { kind: &'static str, org: String },
}

/// Every failed query passes here, so this is where they are counted, by cause (never by query
/// text or bound value, which could hold an identifier).
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::ColumnDecode { source, .. } = &error
            && let Some(unreadable) = source.downcast_ref::<crate::values::Unreadable>()
        {
            return StoreError::Corrupt(unreadable.0.clone());
        }
        let cause = match &error {
            sqlx::Error::PoolTimedOut => "pool_timeout",
            sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed | sqlx::Error::Io(_) => "connection",
            sqlx::Error::Database(_) => "database",
            _ => "other",
        };
        metrics::counter!(QUERY_ERRORS, "cause" => cause).increment(1);
        StoreError::Database(error)
    }
}

/// Failed queries, by `cause`: `pool_timeout` (no connection came free in time: the pool is too
/// small for the load), `connection`, `database` (refused by the database), `other`.
pub const QUERY_ERRORS: &str = "ctxsync_store_query_errors_total";

impl StoreError {
    /// Whether the database is only busy or unreachable, so the same call may succeed later (a
    /// 503 rather than a 500): SQLite's lock held too long, or a PostgreSQL server that is down,
    /// restarting or out of connections. Everything else needs a fix, not a retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect(_) => true,
            StoreError::PostgresConnect { unavailable, .. } => *unavailable,
            StoreError::Database(e) => match e {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Io(_) => true,
                sqlx::Error::Database(db) => {
                    db.try_downcast_ref::<SqliteError>().is_some_and(sqlite_busy)
                        || db
                            .try_downcast_ref::<PgDatabaseError>()
                            .is_some_and(|e| postgres_unavailable(e.code()))
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), in any of their extended forms (the low byte is the
/// primary code): another connection held the lock past the busy timeout.
fn sqlite_busy(e: &SqliteError) -> bool {
    use sqlx::error::DatabaseError;
    e.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// SQLSTATEs of a server that cannot serve now but may soon: class 08 (connection exception),
/// 57P01-57P03 (shut down by an administrator, a crash, or still starting) and 53300 (too many
/// connections).
pub(crate) fn postgres_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "53300")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_unavailable() {
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(StoreError::Connect(sqlx::Error::PoolClosed).is_unavailable());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::MasterKeyMismatch.is_unavailable());
        assert!(!StoreError::Corrupt("x".into()).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolClosed).is_unavailable());
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(StoreError::Database(sqlx::Error::Io(reset)).is_unavailable());
    }

    #[test]
    fn postgres_connection_losses_are_unavailable() {
        for code in ["08000", "08003", "08006", "08001", "08004", "57P01", "57P02", "57P03", "53300"] {
            assert!(postgres_unavailable(code), "{code}");
        }
        // A unique violation, a syntax error, a serialization failure, a query cancelled by timeout.
        for code in ["23505", "42601", "40001", "57014", "53100"] {
            assert!(!postgres_unavailable(code), "{code}");
        }
    }
}
