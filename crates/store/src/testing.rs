//! Fresh databases for tests, so one test suite covers both backends: SQLite by default,
//! PostgreSQL when `CTXSYNC_TEST_DATABASE_URL` names a server (`scripts/test-postgres` starts one).

use std::path::PathBuf;

use sqlx::{Connection, PgConnection, Row, SqliteConnection};
use tempfile::TempDir;

/// The server on which PostgreSQL test databases are created; unset, tests use SQLite.
const SERVER_VARIABLE: &str = "CTXSYNC_TEST_DATABASE_URL";

/// A database of its own for one test.
pub struct TestDatabase {
    /// What `ctxsync_store::connect` opens.
    pub url: String,
    backend: Backend,
}

enum Backend {
    /// The directory is deleted with the `TestDatabase`.
    Sqlite {
        _dir: TempDir,
        file: PathBuf,
    },
    Postgres,
}

impl TestDatabase {
    /// A fresh empty database on the backend the tests run against. When the environment variable
    /// `CTXSYNC_TEST_DATABASE_URL` is set to a `postgres://` URL of a server whose user may
    /// `CREATE DATABASE`, creates a new uniquely named database there (`ctxsync_test_<uuid>`) and
    /// returns its URL; otherwise a SQLite file in a fresh temporary directory.
    ///
    /// PostgreSQL databases are left behind: the server is a throwaway one.
    pub async fn create() -> TestDatabase {
        match std::env::var(SERVER_VARIABLE) {
            Ok(server) if !server.is_empty() => TestDatabase::create_postgres(&server).await,
            _ => TestDatabase::create_sqlite(),
        }
    }

    fn create_sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("a temporary directory can be created");
        let file = dir.path().join("ctxsync.db");
        TestDatabase {
            url: format!("sqlite://{}", file.display()),
            backend: Backend::Sqlite { _dir: dir, file },
        }
    }

    async fn create_postgres(server: &str) -> TestDatabase {
        let name = format!("ctxsync_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the server in {SERVER_VARIABLE}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap_or_else(|e| {
            panic!("cannot create a test database on the server in {SERVER_VARIABLE}: {e}")
        });
        admin.close().await.ok();
        let mut url =
            url::Url::parse(server).unwrap_or_else(|e| panic!("{SERVER_VARIABLE} is not a URL: {e}"));
        url.set_path(&name);
        TestDatabase { url: url.into(), backend: Backend::Postgres }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres)
    }

    /// SQLite's own consistency checks, `PRAGMA integrity_check` (`["ok"]` when the file is
    /// sound) and every foreign key finding its row (a sync defers those checks to commit).
    /// `None` on PostgreSQL, whose server keeps both whatever happens to a client.
    pub async fn sqlite_integrity_check(&self) -> Option<Vec<String>> {
        match &self.backend {
            Backend::Sqlite { .. } => {
                let mut conn = SqliteConnection::connect(&self.url).await.expect("the test database opens");
                let mut findings: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_all(&mut conn)
                    .await
                    .expect("the integrity check runs");
                let broken: Vec<(String, i64, String, i64)> = sqlx::query_as("PRAGMA foreign_key_check")
                    .fetch_all(&mut conn)
                    .await
                    .expect("the foreign key check runs");
                findings.extend(broken.iter().map(|(table, row, parent, _)| {
                    format!("{table} row {row} names a missing {parent} row")
                }));
                Some(findings)
            }
            Backend::Postgres => None,
        }
    }

    /// Every value the database holds, as bytes, for tests proving no plaintext secret is stored:
    /// the SQLite file plus its write-ahead log (where fresh writes sit until a checkpoint); for
    /// PostgreSQL, every row of every table in the schema as text, and every `bytea` value raw
    /// (text shows bytes in hex, which a search for plaintext would not match).
    pub async fn raw_contents(&self) -> Vec<u8> {
        match &self.backend {
            Backend::Sqlite { file, .. } => {
                let mut bytes = std::fs::read(file).expect("the database file is readable");
                if let Ok(wal) = std::fs::read(format!("{}-wal", file.display())) {
                    bytes.extend(wal);
                }
                bytes
            }
            Backend::Postgres => self.postgres_contents().await,
        }
    }

    async fn postgres_contents(&self) -> Vec<u8> {
        let mut conn = PgConnection::connect(&self.url).await.expect("the test database accepts connections");
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
        )
        .fetch_all(&mut conn)
        .await
        .expect("the catalog is readable");
        let mut tables: Vec<&str> = columns.iter().map(|(table, _, _)| table.as_str()).collect();
        tables.dedup();
        let mut bytes = Vec::new();
        for table in tables {
            for row in sqlx::query(&format!("SELECT t::text FROM \"{table}\" t"))
                .fetch_all(&mut conn)
                .await
                .expect("every table is readable")
            {
                bytes.extend(row.get::<String, _>(0).into_bytes());
                bytes.push(b'\n');
            }
        }
        for (table, column, _) in columns.iter().filter(|(_, _, data_type)| data_type == "bytea") {
            let values: Vec<Option<Vec<u8>>> =
                sqlx::query_scalar(&format!("SELECT \"{column}\" FROM \"{table}\""))
                    .fetch_all(&mut conn)
                    .await
                    .expect("every column is readable");
            for value in values.into_iter().flatten() {
                bytes.extend(value);
                bytes.push(b'\n');
            }
        }
        bytes
    }
}
