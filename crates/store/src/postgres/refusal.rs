//! Why a connection to the PostgreSQL server failed, in words that point at the fix.
//!
//! The pool retries a refused connection until its timeout and then reports only the timeout, and
//! sqlx's own messages say neither which server nor what to check. What is named here (host, port,
//! user, database) comes from the parsed options; the URL, which may hold a password, never is.

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError};

use super::ACQUIRE_TIMEOUT;
use crate::StoreError;
use crate::error::postgres_unavailable;

/// The error for a pool that could not connect. A timeout hides the cause, so one more direct
/// connection is tried to learn it.
pub(super) async fn connect_failure(options: &PgConnectOptions, error: sqlx::Error) -> StoreError {
    let error = match error {
        sqlx::Error::PoolTimedOut => {
            match tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(options)).await {
                Ok(Err(cause)) => cause,
                Ok(Ok(connection)) => {
                    // The server came up meanwhile: the timeout is all there is to report.
                    let _ = connection.close().await;
                    error
                }
                Err(_) => error,
            }
        }
        other => other,
    };
    let (reason, unavailable) = explain(options, &error);
    StoreError::PostgresConnect { server: server(options), reason, unavailable }
}

/// `host:port (database …, user …)`.
fn server(options: &PgConnectOptions) -> String {
    format!(
        "{}:{} (database {}, user {})",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username()),
        options.get_username()
    )
}

/// What went wrong and what to check, and whether it may pass by itself (a server starting up).
fn explain(options: &PgConnectOptions, error: &sqlx::Error) -> (String, bool) {
    match error {
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => (
            "connection refused: no server listens there; check the host and port in \
             CTXSYNC_DATABASE_URL and that PostgreSQL is running"
                .into(),
            true,
        ),
        sqlx::Error::Io(e) => {
            (format!("{e}; check the host name and port in CTXSYNC_DATABASE_URL and the network"), true)
        }
        sqlx::Error::PoolTimedOut => (
            format!(
                "no connection within {}s; check the host and port in CTXSYNC_DATABASE_URL and that \
                 PostgreSQL accepts connections",
                ACQUIRE_TIMEOUT.as_secs()
            ),
            true,
        ),
        sqlx::Error::Tls(e) => (format!("TLS failed: {e}; check sslmode in CTXSYNC_DATABASE_URL"), false),
        sqlx::Error::Database(db) => match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => (refused(options, pg.code(), pg.message()), postgres_unavailable(pg.code())),
            None => (db.message().to_owned(), false),
        },
        other => (other.to_string(), false),
    }
}

/// The server's refusal (`code` is its SQLSTATE), with what to check.
fn refused(options: &PgConnectOptions, code: &str, message: &str) -> String {
    let user = options.get_username();
    let database = options.get_database().unwrap_or(user);
    match code {
        "28P01" => format!(
            "authentication failed: the server refused the password of user {user}; check the user \
             and password in CTXSYNC_DATABASE_URL"
        ),
        "28000" => format!(
            "authentication failed: {message}; check the user in CTXSYNC_DATABASE_URL and that the \
             server's pg_hba.conf lets it connect from here"
        ),
        "3D000" => format!(
            "the database {database} does not exist; create it (CREATE DATABASE {database}) or fix the \
             database name in CTXSYNC_DATABASE_URL: ctxsync creates its tables, not the database"
        ),
        "53300" => format!(
            "{message}; raise the server's max_connections (each replica holds up to {} connections)",
            super::MAX_CONNECTIONS
        ),
        "57P03" => format!("{message}; the server is starting up or shutting down, retry shortly"),
        _ => format!("{message} (SQLSTATE {code})"),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn options() -> PgConnectOptions {
        PgConnectOptions::from_str("postgres://bob:pw-5e1f9c@db.internal:5433/ctxsync").unwrap()
    }

    #[test]
    fn the_server_is_named_without_the_password() {
        assert_eq!(server(&options()), "db.internal:5433 (database ctxsync, user bob)");
    }

    #[test]
    fn a_refused_connection_says_so_and_may_pass() {
        let refused = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        let (reason, unavailable) = explain(&options(), &refused);
        assert!(reason.starts_with("connection refused: no server listens there;"), "{reason}");
        assert!(unavailable);
    }

    #[test]
    fn refusals_by_the_server_say_what_to_fix() {
        let o = options();
        assert_eq!(
            refused(&o, "28P01", "password authentication failed for user \"bob\""),
            "authentication failed: the server refused the password of user bob; check the user and \
             password in CTXSYNC_DATABASE_URL"
        );
        assert!(refused(&o, "28000", "role \"bob\" does not exist").contains("role \"bob\" does not exist"));
        assert!(
            refused(&o, "3D000", "database \"ctxsync\" does not exist").contains("CREATE DATABASE ctxsync")
        );
        assert!(
            refused(&o, "53300", "sorry, too many clients already")
                .contains("raise the server's max_connections")
        );
        assert_eq!(refused(&o, "XX000", "internal error"), "internal error (SQLSTATE XX000)");
    }
}
