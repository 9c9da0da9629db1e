//! The key lifecycle: the `/api/v2/ctxsync/keys` routes behind the `manage_keys` scope, expiry,
//! rotation with a grace period, and revocation reaching every process within five seconds.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cli::{BIN, Server};
use crate::helpers::{BASE, TestApp, spawn_app, status_json};

const KEYS: &str = "/api/v2/ctxsync/keys";

async fn as_pair(
    app: &TestApp,
    (api, app_key): (&str, &str),
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .header("DD-API-KEY", api)
        .header("DD-APPLICATION-KEY", app_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    status_json(request.send().await.unwrap()).await
}

/// Polls until the pair is refused; returns how long that took. Panics past ten seconds.
async fn refused_within(app: &TestApp, pair: (&str, &str)) -> Duration {
    let started = Instant::now();
    loop {
        let (status, _) = as_pair(app, pair, Method::GET, BASE, None).await;
        if status == StatusCode::FORBIDDEN {
            return started.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() < Duration::from_secs(10), "the key still works after ten seconds");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn keys_are_managed_through_the_api_with_the_manage_keys_scope() {
    let app = spawn_app().await;
    // A key with every permission of its org but no manage_keys cannot touch keys.
    let (status, body) = as_pair(&app, (&app.api_key, &app.app_key), Method::GET, KEYS, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["errors"][0].as_str().unwrap().contains("manage_keys"), "{body}");

    let admin = app.create_keys("default", "manage_keys").await;
    let other = app.create_keys("other", "").await;
    let admin_pair = (admin.api_key.as_str(), admin.app_key.as_str());
    let (status, listed) = as_pair(&app, admin_pair, Method::GET, KEYS, None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let ids: Vec<&str> =
        listed["data"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&admin.app_key_id.to_string().as_str()));
    assert!(!ids.contains(&other.api_key_id.to_string().as_str()), "another org's keys are not listed");
    assert!(!listed.to_string().contains(&admin.app_key), "a listing never shows a key");
    let admin_app =
        listed["data"].as_array().unwrap().iter().find(|k| k["id"] == admin.app_key_id.to_string()).unwrap();
    assert_eq!(admin_app["attributes"]["kind"], "app");
    assert_eq!(admin_app["attributes"]["scopes"], json!(["manage_keys"]));
    assert_eq!(admin_app["attributes"]["status"], "active");

    // A new read-only pair that expires.
    let create = json!({"data": {"type": "key_pair", "attributes": {"scopes": ["integrations_read"], "expires_in": "90d"}}});
    let (status, created) = as_pair(&app, admin_pair, Method::POST, KEYS, Some(create)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let attrs = &created["data"]["attributes"];
    let new_pair =
        (attrs["api_key"].as_str().unwrap().to_owned(), attrs["app_key"].as_str().unwrap().to_owned());
    let expires = time::OffsetDateTime::parse(
        attrs["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lifetime = expires - time::OffsetDateTime::now_utc();
    assert!(lifetime > time::Duration::days(89) && lifetime <= time::Duration::days(90), "{lifetime}");
    let (status, _) = as_pair(&app, (&new_pair.0, &new_pair.1), Method::GET, BASE, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = as_pair(&app, (&new_pair.0, &new_pair.1), Method::POST, BASE, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "read-only");
    let bad = json!({"data": {"type": "key_pair", "attributes": {"scopes": ["root"], "ttl": 1}}});
    let (status, body) = as_pair(&app, admin_pair, Method::POST, KEYS, Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Rotating the new application key with no grace: the old one stops at once on this replica.
    let app_key_id = attrs["app_key_id"].as_str().unwrap();
    let rotate = json!({"data": {"type": "key_rotation", "attributes": {"grace": "0s"}}});
    let (status, rotated) =
        as_pair(&app, admin_pair, Method::POST, &format!("{KEYS}/{app_key_id}/rotate"), Some(rotate.clone()))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let new_app = rotated["data"]["attributes"]["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["data"]["attributes"]["scopes"], json!(["integrations_read"]));
    let (status, _) = as_pair(&app, (&new_pair.0, &new_pair.1), Method::GET, BASE, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the rotated-out key stops");
    let (status, _) = as_pair(&app, (&new_pair.0, &new_app), Method::GET, BASE, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        as_pair(&app, admin_pair, Method::POST, &format!("{KEYS}/{app_key_id}/rotate"), Some(rotate)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an expired key is not rotated again: {body}");

    // Revoking: at once here; another org's key is a 404.
    let api_key_id = attrs["api_key_id"].as_str().unwrap();
    let (status, revoked) =
        as_pair(&app, admin_pair, Method::POST, &format!("{KEYS}/{api_key_id}/revoke"), None).await;
    assert_eq!(
        (status, revoked["data"]["attributes"]["status"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{revoked}"
    );
    let (status, _) = as_pair(&app, (&new_pair.0, &new_app), Method::GET, BASE, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let path = format!("{KEYS}/{}/revoke", other.api_key_id);
    let (status, _) = as_pair(&app, admin_pair, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Last use is recorded (at most once a minute per pair and process).
    let (_, listed) = as_pair(&app, admin_pair, Method::GET, KEYS, None).await;
    let admin_api =
        listed["data"].as_array().unwrap().iter().find(|k| k["id"] == admin.api_key_id.to_string()).unwrap();
    assert!(admin_api["attributes"]["last_used_at"].is_string(), "{admin_api}");
}

/// A key revoked behind the service's back (another replica, or `ctxsync keys revoke` on the same
/// database) stops working within five seconds although the service remembers authentications.
#[tokio::test]
async fn a_key_revoked_elsewhere_stops_within_five_seconds() {
    let app = spawn_app().await;
    let pair = app.create_keys("default", "").await;
    let (status, _) = as_pair(&app, (&pair.api_key, &pair.app_key), Method::GET, BASE, None).await;
    assert_eq!(status, StatusCode::OK, "remembered from here on");
    let store = app.store().await;
    store.revoke_key(ctxsync_store::KeyFilter::All, pair.app_key_id).await.unwrap().unwrap();
    let took = refused_within(&app, (&pair.api_key, &pair.app_key)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// The command line: list, rotate and revoke on the database a running `serve` uses (SQLite), and
/// the service follows within five seconds.
#[tokio::test]
async fn keys_commands_list_rotate_and_revoke_beside_a_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let keys = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .arg("keys")
            .args(args)
            .env_clear()
            .env("CTXSYNC_DATA_DIR", &data_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let created: Value =
        serde_json::from_str(&keys(&["create", "--org", "acme", "--expires-in", "30d", "--json"])).unwrap();
    assert!(created["expires_at"].is_string());
    let server = Server::start(&[("CTXSYNC_DATA_DIR", data_dir.clone())]);
    let client = reqwest::Client::new();
    let get = |api: String, app: String| {
        client
            .get(format!("{}{BASE}", server.address))
            .header("DD-API-KEY", api)
            .header("DD-APPLICATION-KEY", app)
            .send()
    };
    let (api, app) =
        (created["api_key"].as_str().unwrap().to_owned(), created["app_key"].as_str().unwrap().to_owned());
    assert_eq!(get(api.clone(), app.clone()).await.unwrap().status(), 200);

    let listed: Vec<Value> = keys(&["list", "--org", "acme", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|k| k["org_name"] == "acme" && k["status"] == "active" && k.get("key").is_none())
    );
    let table = keys(&["list"]);
    assert!(
        table.contains("LAST USED") && table.contains(created["app_key_id"].as_str().unwrap()),
        "{table}"
    );

    let rotated: Value = serde_json::from_str(&keys(&[
        "rotate",
        created["app_key_id"].as_str().unwrap(),
        "--grace",
        "1h",
        "--json",
    ]))
    .unwrap();
    let new_app = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(get(api.clone(), new_app.clone()).await.unwrap().status(), 200);
    assert_eq!(
        get(api.clone(), app.clone()).await.unwrap().status(),
        200,
        "the old key works during the grace"
    );

    let revoked: Value =
        serde_json::from_str(&keys(&["revoke", created["api_key_id"].as_str().unwrap(), "--json"])).unwrap();
    assert_eq!(revoked["status"], "revoked");
    let started = Instant::now();
    while get(api.clone(), new_app.clone()).await.unwrap().status() != 403 {
        assert!(started.elapsed() < Duration::from_secs(5), "the revoked key still works after five seconds");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
