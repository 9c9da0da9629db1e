//! What only the PostgreSQL backend does: replicas starting together, errors that keep the URL to
//! themselves, and a pool that outlives its connections. Tests that need a server are ignored
//! unless asked for (`scripts/test-postgres` asks, with `CTXSYNC_TEST_DATABASE_URL` set).

use sqlx::{Connection, PgConnection};

use super::PostgresStore;
use crate::testing::TestDatabase;
use crate::tests::key;
use crate::{ConfigStore, KeyStore, Ping, StoreError};

/// A fresh PostgreSQL database, for the tests ignored unless asked for (scripts/test-postgres
/// asks), so on SQLite they show as skipped rather than passing without running.
async fn postgres() -> TestDatabase {
    let db = TestDatabase::create().await;
    assert!(
        db.is_postgres(),
        "needs PostgreSQL (CTXSYNC_TEST_DATABASE_URL): run it with scripts/test-postgres"
    );
    db
}

/// Ends every other session on the store's database, as a server restart or failover would.
async fn drop_connections(db: &TestDatabase) {
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_an_unavailable_error_naming_the_cause_without_the_password() {
    let url = "postgres://ctxsync:pw-5e1f9c@127.0.0.1:1/ctxsync";
    let err = PostgresStore::connect(url, key(1)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        err.to_string().starts_with(
            "cannot connect to PostgreSQL at 127.0.0.1:1 (database ctxsync, user ctxsync): connection refused"
        ),
        "{err}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("pw-5e1f9c"), "{shown}");

    for malformed in
        ["postgres://ctxsync:pw-5e1f9c@127.0.0.1:port/ctxsync", "postgres://ctxsync:pw-5e1f9c@[::1/ctxsync"]
    {
        let err = PostgresStore::connect(malformed, key(1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Connect(_)), "{err}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("pw-5e1f9c"), "{shown}");
    }

    let err = crate::connect("mysql://root:pw-5e1f9c@localhost/ctxsync", key(1)).await.err().unwrap();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("postgres://") && !err.to_string().contains("pw-5e1f9c"), "{err}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-postgres runs it"]
async fn an_unknown_user_or_database_is_named_as_the_cause() {
    let db = postgres().await;
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_path("ctxsync_no_such_database");
    let err = PostgresStore::connect(url.as_str(), key(1)).await.unwrap_err();
    assert!(!err.is_unavailable(), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("the database ctxsync_no_such_database does not exist; create it"), "{shown}");

    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username("ctxsync_no_such_user").unwrap();
    url.set_password(Some("pw-5e1f9c")).unwrap();
    let err = PostgresStore::connect(url.as_str(), key(1)).await.unwrap_err();
    assert!(!err.is_unavailable(), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("authentication failed: role \"ctxsync_no_such_user\" does not exist"), "{shown}");
    assert!(!shown.contains("pw-5e1f9c"), "{shown}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-postgres runs it"]
async fn the_store_reads_committed_rows_whatever_the_database_default() {
    let db = postgres().await;
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L', \
                 current_database(), 'repeatable read'); END $$",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let mut other = PgConnection::connect(&db.url).await.unwrap();
    let default: String =
        sqlx::query_scalar("SHOW transaction_isolation").fetch_one(&mut other).await.unwrap();
    assert_eq!(default, "repeatable read", "the database default applies to other clients");

    let store = PostgresStore::connect(&db.url, key(1)).await.unwrap();
    assert_eq!(
        store.write_isolation().await,
        "read committed",
        "a lease takeover must see a run started while it waited"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-postgres runs it"]
async fn replicas_starting_together_on_a_new_database_agree() {
    let db = postgres().await;
    let starts: Vec<_> = (0..8)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url, key(1)).await })
        })
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().unwrap());
    }
    let org = stores[0].ensure_org("default").await.unwrap();
    for store in &stores {
        assert_eq!(store.ensure_org("default").await.unwrap(), org);
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test-postgres runs it"]
async fn the_pool_replaces_connections_the_server_dropped() {
    let db = postgres().await;
    let store = PostgresStore::connect(&db.url, key(1)).await.unwrap();
    let org = store.ensure_org("default").await.unwrap();

    // A connection in use when the server drops it fails with an error worth retrying.
    let mut tx = store.pool.begin().await.unwrap();
    drop_connections(&db).await;
    let err = StoreError::from(sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap_err());
    assert!(err.is_unavailable(), "{err}");
    drop(tx);

    // Idle connections the server dropped are replaced before they are used.
    drop_connections(&db).await;
    store.ping().await.unwrap();
    assert!(store.list_configs(org, None).await.unwrap().is_empty());
}
