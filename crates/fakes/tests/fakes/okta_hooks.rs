//! The fake Okta's event hooks, against a receiver of our own: registration, the verification
//! handshake, deliveries of the System Log events a change makes, with the configured header,
//! and Okta's one retry.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use ctxsync_fakes::{FakeOkta, TenantSpec};
use serde_json::{Value, json};

use super::*;

/// What the receiver was sent, and how it answers deliveries.
#[derive(Default)]
struct Received {
    /// The `Authorization` header and body of each delivery.
    deliveries: Vec<(Option<String>, Value)>,
    /// Deliveries still to answer with 500.
    failing: u32,
    /// Whether the verification is answered wrongly.
    wrong_challenge: bool,
}

type Shared = Arc<Mutex<Received>>;

async fn verification(State(received): State<Shared>, headers: HeaderMap) -> axum::Json<Value> {
    let challenge = headers["x-okta-verification-challenge"].to_str().unwrap().to_string();
    let echoed = if received.lock().unwrap().wrong_challenge { "nope".to_string() } else { challenge };
    axum::Json(json!({"verification": echoed}))
}

async fn delivery(
    State(received): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> StatusCode {
    let mut received = received.lock().unwrap();
    let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
    received.deliveries.push((auth, body));
    if received.failing > 0 {
        received.failing -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn receiver() -> (String, Shared) {
    let received = Shared::default();
    let app = Router::new().route("/hook", get(verification).post(delivery)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

async fn okta(fake: &FakeOkta, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client()
        .request(method, format!("{}{path}", fake.base_url()))
        .header("Authorization", format!("SSWS {}", fake.api_token()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn hook(uri: &str) -> Value {
    json!({
        "name": "ctxsync",
        "events": {"type": "EVENT_TYPE", "items": ["user.lifecycle.suspend", "group.user_membership.add"]},
        "channel": {"type": "HTTP", "version": "1.0.0", "config": {
            "uri": uri,
            "headers": [],
            "authScheme": {"type": "HEADER", "key": "Authorization", "value": "push-secret"},
        }},
    })
}

/// Waits (a bounded while) until the receiver holds `n` deliveries.
async fn deliveries(received: &Shared, n: usize) -> Vec<(Option<String>, Value)> {
    for _ in 0..100 {
        if received.lock().unwrap().deliveries.len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    received.lock().unwrap().deliveries.clone()
}

#[tokio::test]
async fn a_verified_hook_is_sent_the_events_it_subscribes_to() {
    let fake = FakeOkta::start_with(TenantSpec { seed: 4, users: 20, groups: 3, ..TenantSpec::default() })
        .await
        .unwrap();
    let (uri, received) = receiver().await;
    let (status, created) = okta(&fake, reqwest::Method::POST, "/api/v1/eventHooks", Some(hook(&uri))).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["verificationStatus"], "UNVERIFIED");
    assert!(!created.to_string().contains("push-secret"), "the secret is never shown again: {created}");
    let id = created["id"].as_str().unwrap().to_string();

    // Not verified yet: nothing is delivered, now or later.
    let users: Vec<String> = fake.snapshot().users.keys().rev().take(2).cloned().collect();
    let (early, user) = (&users[0], &users[1]);
    fake.mutate(|t| t.suspend_user(early));
    received.lock().unwrap().wrong_challenge = true;
    let verify = format!("/api/v1/eventHooks/{id}/lifecycle/verify");
    let (status, refused) = okta(&fake, reqwest::Method::POST, &verify, None).await;
    assert_eq!((status, refused["errorCode"].as_str()), (400, Some("E0000001")), "{refused}");
    received.lock().unwrap().wrong_challenge = false;
    let (status, verified) = okta(&fake, reqwest::Method::POST, &verify, None).await;
    assert_eq!((status, verified["verificationStatus"].as_str()), (200, Some("VERIFIED")), "{verified}");

    // A suspension between unsubscribed changes: one delivery, of the suspension only.
    fake.mutate(|t| {
        t.unsuspend_user(early);
        t.suspend_user(user);
        t.update_user(user, |u| u.profile.last_name = "Renamed".into());
    });
    let got = deliveries(&received, 1).await;
    assert_eq!(got.len(), 1);
    let (auth, body) = &got[0];
    assert_eq!(auth.as_deref(), Some("push-secret"));
    assert_eq!(body["eventType"], "com.okta.event_hook");
    let events = body["data"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["eventType"], "user.lifecycle.suspend");
    assert_eq!(
        events[0]["target"][0]["id"],
        user.as_str(),
        "not the suspension from before the verification"
    );
    assert_eq!(events[0]["target"][0]["type"], "User");
    assert!(events[0]["uuid"].as_str().is_some_and(|u| u.len() == 36));

    // A failed delivery is sent once more, then given up.
    received.lock().unwrap().failing = 5;
    let group = fake.snapshot().groups.keys().next().unwrap().clone();
    let outsider = fake.mutate(|t| t.add_user("Ada", "Hookson"));
    fake.mutate(|t| t.add_member(&group, &outsider));
    let got = deliveries(&received, 3).await;
    assert_eq!(got.len(), 3, "the first attempt and one retry");
    assert_eq!(got[1].1["data"], got[2].1["data"], "the retry carries the same events");
    assert_eq!(got[2].1["data"]["events"][0]["eventType"], "group.user_membership.add");
    assert_eq!(got[2].1["data"]["events"][0]["target"][1]["id"], group.as_str());

    let (status, _) = okta(&fake, reqwest::Method::DELETE, &format!("/api/v1/eventHooks/{id}"), None).await;
    assert_eq!(status, 400, "an active hook is deactivated first");
    let deactivate = format!("/api/v1/eventHooks/{id}/lifecycle/deactivate");
    assert_eq!(okta(&fake, reqwest::Method::POST, &deactivate, None).await.0, 200);
    assert_eq!(okta(&fake, reqwest::Method::DELETE, &format!("/api/v1/eventHooks/{id}"), None).await.0, 204);
    assert_eq!(okta(&fake, reqwest::Method::GET, &format!("/api/v1/eventHooks/{id}"), None).await.0, 404);
}
