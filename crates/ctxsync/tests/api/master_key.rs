//! `ctxsync master-key rotate` on the test database (SQLite, or PostgreSQL under
//! `scripts/test-postgres`): killed midway it loses nothing, a rerun finishes, and afterwards the
//! old key alone opens nothing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use ctxsync_core::{Config, IntegrationType, SecretValue, Settings};
use ctxsync_store::testing::TestDatabase;
use ctxsync_store::{MasterKey, MasterKeys, StoreError};
use serde_json::json;

use crate::cli::BIN;

/// Configs in the database: enough that a rotation is still under way when the test kills it.
const CONFIGS: usize = 3000;

/// Writes a key file holding `text` (32 bytes in base64).
fn key_file(dir: &std::path::Path, name: &str, text: &str) -> (std::path::PathBuf, MasterKey) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    (path, MasterKey::from_base64(text).unwrap())
}

fn rotate(database: &TestDatabase, old: &std::path::Path, new: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["master-key", "rotate", "--new-key-file"])
        .arg(new)
        .env_clear()
        .env("CTXSYNC_DATABASE_URL", &database.url)
        .env("CTXSYNC_MASTER_KEY_FILE", old);
    command
}

#[tokio::test]
async fn a_rotation_killed_midway_loses_nothing_and_a_rerun_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (old_path, old) = key_file(dir.path(), "old.key", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
    let (new_path, new) = key_file(dir.path(), "new.key", "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=");
    let database = TestDatabase::create().await;
    let store = ctxsync_store::connect(&database.url, old.clone()).await.unwrap();
    let org = store.ensure_org("default").await.unwrap();
    let mut configs = Vec::new();
    for i in 0..CONFIGS {
        let config = Config::created(
            org,
            IntegrationType::Okta,
            format!("okta {i}"),
            "acme.okta.com".into(),
            Settings::new(),
        );
        store
            .insert_config(&config, &SecretValue::new(json!({"api_token": format!("token-{i}")})))
            .await
            .unwrap();
        configs.push(config);
    }
    drop(store);
    let all_readable = |keys: MasterKeys| {
        let (url, configs) = (database.url.clone(), configs.clone());
        async move {
            let store = ctxsync_store::connect(&url, keys).await.unwrap();
            for (i, c) in configs.iter().enumerate() {
                let secrets = store.load_secrets(org, c.id).await.unwrap().unwrap();
                assert_eq!(secrets.expose()["api_token"], format!("token-{i}"));
            }
        }
    };

    // Killed once it has re-encrypted some configs.
    let mut child = rotate(&database, &old_path, &new_path).stderr(Stdio::piped()).spawn().unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.map_while(Result::ok) {
        if line.starts_with("re-encrypted 100 of") {
            break;
        }
        assert!(!line.starts_with("error"), "{line}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    ctxsync_store::connect(&database.url, old.clone())
        .await
        .expect("interrupted before the end: the old key still opens it");
    all_readable(MasterKeys { current: new.clone(), previous: vec![old.clone()] }).await;

    // The rerun finishes; then the old key alone is refused and the new one reads everything.
    let out = rotate(&database, &old_path, &new_path).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains(&format!("re-encrypted {CONFIGS} of {CONFIGS} configs")), "{log}");
    assert!(log.contains("already under the new key"), "{log}");
    let refused =
        ctxsync_store::connect(&database.url, old.clone()).await.err().expect("the old key is refused");
    assert!(matches!(refused, StoreError::MasterKeyMismatch), "{refused}");
    all_readable(new.clone().into()).await;

    // Run again with the new key as current: nothing to do, and nothing breaks.
    let out = rotate(&database, &new_path, &new_path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("0 configs re-encrypted, {CONFIGS} already"))
    );
}

/// On SQLite with the generated key in the data directory, the rotation replaces that file, so
/// `serve` and every command keep working without any setting.
#[tokio::test]
async fn the_generated_key_file_is_replaced_after_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let created = Command::new(BIN)
        .args(["keys", "create", "--json"])
        .env_clear()
        .env("CTXSYNC_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(created.status.success());
    let (new_path, new) = key_file(dir.path(), "new.key", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=");
    let out = Command::new(BIN)
        .args(["master-key", "rotate", "--new-key-file"])
        .arg(&new_path)
        .env_clear()
        .env("CTXSYNC_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(MasterKey::from_file(&data.join("master.key")).unwrap().id(), new.id());
    let listed =
        Command::new(BIN).args(["keys", "list"]).env_clear().env("CTXSYNC_DATA_DIR", &data).output().unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
}
