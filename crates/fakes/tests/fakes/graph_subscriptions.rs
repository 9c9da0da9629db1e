//! The fake Graph's change notifications, against a receiver of our own: what a subscription
//! request must hold, the validation handshake, notifications of the tenant's changes with the
//! clientState (retried when the receiver fails), renewal, lifecycle notifications, and expiry.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ctxsync_fakes::{FakeEntra, LifecycleEvent};
use serde_json::{Value, json};
use std::collections::HashMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::entra::access_token;
use super::*;

/// What the receiver was sent, and how it answers.
#[derive(Default)]
struct Received {
    notifications: Vec<Value>,
    /// Deliveries still to answer with 503.
    failing: u32,
    /// Whether the validation token comes back wrong.
    wrong_token: bool,
}

type Shared = Arc<Mutex<Received>>;

async fn receive(
    State(received): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let mut received = received.lock().unwrap();
    if let Some(token) = query.get("validationToken") {
        let token = if received.wrong_token { "nope".to_string() } else { token.clone() };
        return ([(header::CONTENT_TYPE, "text/plain")], token).into_response();
    }
    if received.failing > 0 {
        received.failing -= 1;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    received.notifications.extend(body["value"].as_array().unwrap().iter().cloned());
    StatusCode::ACCEPTED.into_response()
}

async fn receiver() -> (String, Shared) {
    let received = Shared::default();
    let app = Router::new().route("/notify", post(receive)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn in_minutes(minutes: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::minutes(minutes)).format(&Rfc3339).unwrap()
}

async fn graph(fake: &FakeEntra, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let token = access_token(fake).await;
    let mut request =
        client().request(method, format!("{}/v1.0{path}", fake.graph_base_url())).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits (a bounded while) until the receiver holds `n` notifications.
async fn notifications(received: &Shared, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let now = received.lock().unwrap().notifications.clone();
        if now.len() >= n {
            return now;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{n} notifications: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_subscription_is_made_after_the_handshake_and_tells_of_every_change() {
    let fake = FakeEntra::start().await.unwrap();
    let (url, received) = receiver().await;
    let request = |resource: &str, minutes: i64| {
        json!({"changeType": "updated,deleted", "notificationUrl": url, "lifecycleNotificationUrl": url,
               "resource": resource, "expirationDateTime": in_minutes(minutes), "clientState": "s3cret"})
    };

    let unauthenticated = client()
        .post(format!("{}/v1.0/subscriptions", fake.graph_base_url()))
        .json(&request("/users", 60))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let (status, too_long) =
        graph(&fake, reqwest::Method::POST, "/subscriptions", Some(request("/users", 41_761))).await;
    assert_eq!(status, 400);
    assert_eq!(too_long["error"]["code"], "InvalidRequest");
    assert!(too_long["error"]["message"].as_str().unwrap().contains("41760 minutes"), "{too_long}");
    let (status, _) =
        graph(&fake, reqwest::Method::POST, "/subscriptions", Some(request("/devices", 60))).await;
    assert_eq!(status, 400, "devices are not watchable");
    received.lock().unwrap().wrong_token = true;
    let (status, failed) =
        graph(&fake, reqwest::Method::POST, "/subscriptions", Some(request("/users", 60))).await;
    assert_eq!(status, 400);
    assert!(
        failed["error"]["message"].as_str().unwrap().starts_with("Subscription validation request failed")
    );
    received.lock().unwrap().wrong_token = false;

    let (status, made) =
        graph(&fake, reqwest::Method::POST, "/subscriptions", Some(request("/users", 60))).await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["resource"], "/users");

    // A change, then a failing receiver: Graph tries again.
    let user = fake.mutate(|t| t.users().next().map(|(id, _)| id)).unwrap();
    fake.mutate(|t| t.disable_user(&user));
    let first = notifications(&received, 1).await;
    assert_eq!(first[0]["subscriptionId"], id.as_str());
    assert_eq!(first[0]["clientState"], "s3cret");
    assert_eq!(first[0]["changeType"], "updated");
    assert_eq!(first[0]["resource"], format!("Users/{user}"));
    assert_eq!(first[0]["resourceData"]["id"], user.as_str());
    assert_eq!(first[0]["tenantId"], fake.tenant_id());
    received.lock().unwrap().failing = 2;
    fake.mutate(|t| t.delete_user(&user));
    let deleted = |all: &[Value]| {
        all.iter().any(|n| n["changeType"] == "deleted" && n["resourceData"]["id"] == user.as_str())
    };
    let started = Instant::now();
    while !deleted(&received.lock().unwrap().notifications) {
        assert!(started.elapsed() < Duration::from_secs(10), "no deletion told");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(received.lock().unwrap().failing, 0, "the failed attempts were tried again");

    // Renewal, lifecycle, deletion.
    let (status, renewed) = graph(
        &fake,
        reqwest::Method::PATCH,
        &format!("/subscriptions/{id}"),
        Some(json!({"expirationDateTime": in_minutes(600)})),
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    let expires = fake.subscriptions()[0].expires - OffsetDateTime::now_utc();
    assert!(expires > time::Duration::minutes(590), "{expires}");
    assert_eq!(
        fake.send_lifecycle(&id, LifecycleEvent::ReauthorizationRequired).await,
        Some(StatusCode::ACCEPTED)
    );
    assert!(fake.subscriptions()[0].needs_reauthorization);
    let (status, _) =
        graph(&fake, reqwest::Method::POST, &format!("/subscriptions/{id}/reauthorize"), None).await;
    assert_eq!(status, 204);
    assert!(!fake.subscriptions()[0].needs_reauthorization);
    let told = received.lock().unwrap().notifications.clone();
    assert_eq!(told.last().unwrap()["lifecycleEvent"], "reauthorizationRequired");
    assert_eq!(graph(&fake, reqwest::Method::DELETE, &format!("/subscriptions/{id}"), None).await.0, 204);
    let (status, gone) = graph(&fake, reqwest::Method::GET, &format!("/subscriptions/{id}"), None).await;
    assert_eq!((status, gone["error"]["code"].as_str()), (404, Some("ResourceNotFound")));
}

#[tokio::test]
async fn an_expired_subscription_tells_of_nothing() {
    let fake = FakeEntra::start().await.unwrap();
    let (url, received) = receiver().await;
    let body = json!({"changeType": "updated", "notificationUrl": url, "resource": "/groups",
                      "expirationDateTime": in_minutes(60), "clientState": "c"});
    let (status, made) = graph(&fake, reqwest::Method::POST, "/subscriptions", Some(body)).await;
    assert_eq!(status, 201);
    let id = made["id"].as_str().unwrap();
    assert!(fake.expire_subscription(id));
    let group = fake.mutate(|t| t.groups().next().map(|(id, _)| id)).unwrap();
    fake.mutate(|t| t.update_group(&group, |g| g.display_name = "Renamed".into()));
    let (status, listed) = graph(&fake, reqwest::Method::GET, "/subscriptions", None).await;
    assert_eq!((status, listed["value"].as_array().unwrap().len()), (200, 0));
    // A live subscription made after it does tell: the expired one would have come first.
    let body = json!({"changeType": "updated", "notificationUrl": url, "resource": "/groups",
                      "expirationDateTime": in_minutes(60), "clientState": "d"});
    assert_eq!(graph(&fake, reqwest::Method::POST, "/subscriptions", Some(body)).await.0, 201);
    fake.mutate(|t| t.update_group(&group, |g| g.display_name = "Renamed again".into()));
    let told = notifications(&received, 1).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["clientState"], "d");
}
