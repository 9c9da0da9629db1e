//! What only the SQLite backend does; the behaviour both backends share is tested in
//! `crate::tests`.

use std::sync::Arc;

use ctxsync_core::OrgId;

use super::SqliteStore;
use crate::Store;
use crate::tests::key;

#[tokio::test]
async fn connect_creates_the_directory_and_answers_ping() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data").join("ctxsync.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", file.display()), key(1)).await.unwrap();
    store.ping().await.unwrap();
    assert!(file.exists());

    let shared: Arc<dyn Store> = Arc::new(store);
    shared.ping().await.unwrap();
    assert!(shared.list_configs(OrgId::new(), None).await.unwrap().is_empty());
}
