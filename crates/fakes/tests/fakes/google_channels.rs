//! The fake Google's Directory push, against a receiver of our own: what a `users.watch` request
//! must hold, the channel it answers, the `sync` message, one message per user change of the
//! channel's event with the `X-Goog-*` headers and the user as the body (retried while the
//! receiver fails), `users.get`, `channels.stop`, and expiry.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ctxsync_fakes::FakeGoogle;
use serde_json::{Value, json};

use super::google::{admin_token, directory};
use super::*;

/// One message as the receiver saw it: its headers of interest and its body.
#[derive(Debug, Clone)]
struct Message {
    channel: String,
    token: Option<String>,
    state: String,
    resource_id: String,
    number: u64,
    body: Option<Value>,
}

#[derive(Default)]
struct Received {
    messages: Vec<Message>,
    /// Messages still to answer with 503.
    failing: u32,
}

type Shared = Arc<Mutex<Received>>;

async fn receive(State(received): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let mut received = received.lock().unwrap();
    if received.failing > 0 {
        received.failing -= 1;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    assert!(header("x-goog-channel-expiration").unwrap().ends_with(" GMT"));
    received.messages.push(Message {
        channel: header("x-goog-channel-id").unwrap(),
        token: header("x-goog-channel-token"),
        state: header("x-goog-resource-state").unwrap(),
        resource_id: header("x-goog-resource-id").unwrap(),
        number: header("x-goog-message-number").unwrap().parse().unwrap(),
        body: serde_json::from_str(&body).ok(),
    });
    StatusCode::OK.into_response()
}

async fn receiver() -> (String, Shared) {
    let received = Shared::default();
    let app = Router::new().route("/notify", post(receive)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// Waits (a bounded while) until the receiver holds `n` messages.
async fn messages(received: &Shared, n: usize) -> Vec<Message> {
    let started = Instant::now();
    loop {
        let now = received.lock().unwrap().messages.clone();
        if now.len() >= n {
            return now;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{n} messages: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn post_json(
    fake: &FakeGoogle,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Value,
) -> (u16, Value) {
    let url = format!("{}{path}", fake.directory_base_url());
    let response = client().post(url).query(query).bearer_auth(token).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

const WATCH: &str = "/admin/directory/v1/users/watch";
const STOP: &str = "/admin/directory_v1/channels/stop";

#[tokio::test]
async fn a_channel_opens_with_a_sync_message_and_tells_of_each_change_of_its_event() {
    let fake = FakeGoogle::start().await.unwrap();
    let token = admin_token(&fake).await;
    let (url, received) = receiver().await;
    let request = |id: &str, ttl: &str| json!({"id": id, "type": "web_hook", "address": url, "token": "s3cret", "params": {"ttl": ttl}});
    let update = [("customer", "my_customer"), ("event", "update")];

    let (status, _) = post_json(&fake, "ya29.nope", WATCH, &update, request("c-1", "600")).await;
    assert_eq!(status, 401);
    let (status, refused) = post_json(
        &fake,
        &token,
        WATCH,
        &[("customer", "my_customer"), ("event", "rename")],
        request("c-1", "600"),
    )
    .await;
    assert_eq!((status, refused["error"]["errors"][0]["reason"].as_str()), (400, Some("invalid")));
    let (status, _) = post_json(&fake, &token, WATCH, &update, json!({"id": "c-1", "address": url})).await;
    assert_eq!(status, 400, "a web_hook only");
    let url_of = format!("{}{WATCH}", fake.directory_base_url());
    let garbled = client().post(url_of).query(&update).bearer_auth(&token).body("{").send().await.unwrap();
    assert_eq!(garbled.status(), 400);
    assert_eq!(json(garbled).await["error"]["errors"][0]["reason"], "parseError");

    // Asked for more than six hours, it lives six.
    let (status, channel) = post_json(&fake, &token, WATCH, &update, request("c-1", "86400")).await;
    assert_eq!(status, 200, "{channel}");
    assert_eq!((channel["kind"].as_str(), channel["id"].as_str()), (Some("api#channel"), Some("c-1")));
    assert_eq!(channel["token"], "s3cret");
    let expiration: i64 = channel["expiration"].as_str().unwrap().parse().unwrap();
    let lives = expiration / 1000 - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((6 * 3600 - 5..=6 * 3600).contains(&lives), "{lives}");
    let resource_id = channel["resourceId"].as_str().unwrap().to_string();
    let (status, _) = post_json(&fake, &token, WATCH, &update, request("c-1", "600")).await;
    assert_eq!(status, 400, "a channel id is used once");
    let sync = messages(&received, 1).await;
    assert_eq!((sync[0].state.as_str(), sync[0].number, sync[0].body.as_ref()), ("sync", 1, None));
    assert_eq!((sync[0].channel.as_str(), sync[0].token.as_deref()), ("c-1", Some("s3cret")));
    assert_eq!(sync[0].resource_id, resource_id);

    // A suspension is an update, told with the user as the body; a failing receiver is tried
    // again. A deletion is another event, which this channel does not watch.
    let user = fake.mutate(|t| t.users().nth(5).map(|u| u.id().to_string())).unwrap();
    received.lock().unwrap().failing = 2;
    fake.mutate(|t| t.suspend_user(&user));
    let told = messages(&received, 2).await;
    assert_eq!((told[1].state.as_str(), told[1].number), ("update", 2));
    let body = told[1].body.clone().unwrap();
    assert_eq!((body["id"].as_str(), body["suspended"].as_bool()), (Some(user.as_str()), Some(true)));
    fake.mutate(|t| t.delete_user(&user));

    // users.get reads one user, and answers 404 for one deleted.
    let other = fake.mutate(|t| t.users().nth(6).map(|u| u.id().to_string())).unwrap();
    let response = directory(&fake, &token, &format!("users/{other}"), &[("projection", "full")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["id"], other.as_str());
    let response = directory(&fake, &token, &format!("users/{user}"), &[("projection", "full")]).await;
    assert_eq!(response.status(), 404);

    // A channel for deletions and restorations each: the user's return is told on its own.
    let undelete = [("customer", "my_customer"), ("event", "undelete")];
    let (status, _) = post_json(&fake, &token, WATCH, &undelete, request("c-2", "600")).await;
    assert_eq!(status, 200);
    messages(&received, 3).await;
    fake.mutate(|t| t.undelete_user(&user));
    let told = messages(&received, 4).await;
    assert_eq!((told[3].channel.as_str(), told[3].state.as_str()), ("c-2", "undelete"));
    assert_eq!(told[3].body.as_ref().unwrap()["id"], user.as_str());
    assert_eq!(received.lock().unwrap().messages.len(), 4, "the deletion went to no channel");

    // Stopped, or expired, a channel tells nothing more.
    let (status, _) = post_json(&fake, &token, STOP, &[], json!({"id": "c-1", "resourceId": "other"})).await;
    assert_eq!(status, 404, "the resourceId must match");
    let stopped = post_json(&fake, &token, STOP, &[], json!({"id": "c-1", "resourceId": resource_id})).await;
    assert_eq!(stopped.0, 204);
    assert_eq!(
        post_json(&fake, &token, STOP, &[], json!({"id": "c-1", "resourceId": resource_id})).await.0,
        404
    );
    assert!(fake.expire_channel("c-2"));
    assert!(fake.channels().is_empty());
    fake.mutate(|t| t.unsuspend_user(&user));
    fake.mutate(|t| t.delete_user(&user));
    fake.mutate(|t| t.undelete_user(&user));
    // A channel opened after them tells of a later change, and nothing came on the others.
    let delete = [("customer", "my_customer"), ("event", "delete")];
    assert_eq!(post_json(&fake, &token, WATCH, &delete, request("c-3", "600")).await.0, 200);
    fake.mutate(|t| t.delete_user(&other));
    let told = messages(&received, 6).await;
    assert!(told[4..].iter().all(|m| m.channel == "c-3"), "{told:?}");
    assert_eq!(told[5].body.as_ref().unwrap()["id"], other.as_str());
}

#[tokio::test]
async fn the_admin_api_expires_a_channel() {
    let fake = FakeGoogle::start().await.unwrap();
    let token = admin_token(&fake).await;
    let (url, _received) = receiver().await;
    let body = json!({"id": "c-9", "type": "web_hook", "address": url});
    let (status, channel) =
        post_json(&fake, &token, WATCH, &[("customer", "my_customer"), ("event", "add")], body).await;
    assert_eq!(status, 200, "{channel}");
    let expire = |id: &str| {
        client().post(format!("{}/_fake/google/channels/{id}/expire", fake.directory_base_url())).send()
    };
    assert_eq!(expire("c-9").await.unwrap().status(), 204);
    assert_eq!(expire("c-9").await.unwrap().status(), 404);
    assert!(fake.channels().is_empty());
}
