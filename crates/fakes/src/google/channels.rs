//! Directory push as Google runs it: `POST /admin/directory/v1/users/watch?customer=…&event=…`
//! opens a channel for one event (`add`, `delete`, `makeAdmin`, `undelete`, `update`), answered
//! with the channel and followed by a `sync` message; `POST /admin/directory_v1/channels/stop`
//! ends one. While a channel lives, every user change of its event in the account (whatever made
//! it: a test's `mutate`, the admin API, the churn) is posted to its address, one message per
//! change, with the `X-Goog-*` headers and the user as the body, retried with a growing wait
//! while the address fails. A channel lives at most six hours and then delivers nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::HashMap;
use time::OffsetDateTime;

use super::GoogleState;
use super::directory_api::{Collection, authenticate, authorize, error};
use crate::common::{Refusal, http_date, now};

/// The events a channel may watch.
const EVENTS: [&str; 5] = ["add", "delete", "makeAdmin", "undelete", "update"];
/// The longest a channel lives, and what one asking for no `ttl` gets.
const MAX_TTL: Duration = Duration::from_secs(6 * 3600);
/// Attempts of one message, the first included, and the wait before the second.
const ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// How long a message waits for its answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the fake looks for changes to deliver.
const EVERY: Duration = Duration::from_millis(50);

/// A live channel as the fake keeps it.
#[derive(Debug, Clone)]
pub struct FakeChannel {
    pub id: String,
    /// The watched resource: the account's users, for one event.
    pub resource_id: String,
    pub event: String,
    pub address: String,
    pub token: Option<String>,
    pub expires: OffsetDateTime,
    /// The tenant's clock up to which changes were delivered.
    delivered_to: u64,
    /// The number of the last message sent (the `sync` message is 1).
    messages: u64,
}

impl FakeChannel {
    fn resource_uri(&self, base_url: &str) -> String {
        format!("{base_url}/admin/directory/v1/users?customer=my_customer&event={}&alt=json", self.event)
    }
}

/// The account's channels and the client that posts their messages.
pub(super) struct Channels {
    live: Mutex<Vec<FakeChannel>>,
    client: reqwest::Client,
    /// Whether the delivery task runs: it starts with the first channel.
    delivering: AtomicBool,
}

impl Default for Channels {
    fn default() -> Channels {
        let client = reqwest::Client::builder().build().expect("a plain HTTP client");
        Channels { live: Mutex::default(), client, delivering: AtomicBool::new(false) }
    }
}

impl Channels {
    /// The live channels, forgetting those that expired.
    pub(super) fn live(&self) -> MutexGuard<'_, Vec<FakeChannel>> {
        let mut live = self.live.lock().expect("channels lock");
        let now = now();
        live.retain(|c| c.expires > now);
        live
    }
}

fn invalid(reason: &str, message: &str) -> Refusal {
    error(StatusCode::BAD_REQUEST, reason, message)
}

/// The `ttl` asked for, in seconds (a string, as Google's `params` are, or a number), within
/// what Google allows.
fn ttl(body: &Value) -> Result<Duration, Refusal> {
    let asked = match body.get("params").and_then(|p| p.get("ttl")) {
        None | Some(Value::Null) => return Ok(MAX_TTL),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(other) => other.as_u64(),
    };
    let asked = asked.ok_or_else(|| invalid("invalid", "Invalid value for params.ttl"))?;
    Ok(Duration::from_secs(asked).min(MAX_TTL))
}

/// A request body, or Google's `parseError` for one that is not JSON.
fn parsed(body: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(body).map_err(|_| invalid("parseError", "Parse Error"))
}

pub(super) async fn watch(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, Refusal> {
    authorize(&state, &headers, &query, Collection::Users)?;
    let body = parsed(&body)?;
    let event = query.get("event").map(String::as_str).unwrap_or_default();
    if !EVENTS.contains(&event) {
        let message = format!("Invalid value '{event}'. Values must be one of: {}", EVENTS.join(", "));
        return Err(invalid("invalid", &message));
    }
    let text = |key: &str| body.get(key).and_then(Value::as_str).filter(|v| !v.is_empty());
    let id = text("id").ok_or_else(|| invalid("required", "Required parameter: id"))?.to_owned();
    if text("type") != Some("web_hook") {
        return Err(invalid("invalid", "Invalid value for type: only web_hook is supported"));
    }
    let address = text("address")
        .filter(|a| a.starts_with("https://") || a.starts_with("http://"))
        .ok_or_else(|| invalid("push.webhookUrlNotHttps", "WebHook callback must be HTTPS"))?
        .to_owned();
    let token = text("token").map(str::to_owned);
    let expires = now() + ttl(&body)?;
    let (customer, delivered_to) = {
        let tenant = state.tenant.read().expect("tenant lock");
        (tenant.customer_id.clone(), tenant.clock())
    };
    let channel = FakeChannel {
        resource_id: URL_SAFE_NO_PAD.encode(format!("{customer}/users/{event}")),
        event: event.to_owned(),
        id,
        address,
        token,
        expires,
        delivered_to,
        messages: 1,
    };
    {
        let mut live = state.channels.live();
        if live.iter().any(|c| c.id == channel.id) {
            return Err(invalid("channelIdNotUnique", &format!("Channel id {} not unique", channel.id)));
        }
        live.push(channel.clone());
    }
    let answer = json!({
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri(&state.base_url),
        "token": channel.token,
        "expiration": (channel.expires.unix_timestamp_nanos() / 1_000_000).to_string(),
    });
    let (client, base_url) = (state.channels.client.clone(), state.base_url.clone());
    tokio::spawn(async move { deliver(&client, &base_url, &channel, "sync", 1, None).await });
    if !state.channels.delivering.swap(true, Ordering::Relaxed) {
        tokio::spawn(deliver_while_running(Arc::downgrade(&state)));
    }
    Ok(Json(answer).into_response())
}

/// `channels.stop`: the channel named by its id and its `resourceId`; 204, or 404 when there is
/// no such live channel.
pub(super) async fn stop(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    authenticate(&state, &headers, Collection::Users)?;
    let body = parsed(&body)?;
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (id, resource_id) = (text("id"), text("resourceId"));
    let mut live = state.channels.live();
    let at = live.iter().position(|c| c.id == id && c.resource_id == resource_id).ok_or_else(|| {
        error(StatusCode::NOT_FOUND, "notFound", &format!("Channel '{id}' not found for project"))
    })?;
    live.remove(at);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Makes the channel `id` expire now; `false` when there is no such live channel.
pub(super) fn expire(state: &GoogleState, id: &str) -> bool {
    let mut live = state.channels.live();
    let found = live.iter_mut().find(|c| c.id == id);
    found.map(|c| c.expires = now() - time::Duration::seconds(1)).is_some()
}

/// `POST /_fake/google/channels/{id}/expire`: the admin's knob.
pub(super) async fn admin_expire(State(state): State<Arc<GoogleState>>, Path(id): Path<String>) -> Response {
    if expire(&state, &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::NOT_FOUND, Json(json!({"error": format!("no live channel {id}")}))).into_response()
    }
}

/// Delivers the account's user changes to the live channels that watch them, for as long as the
/// fake runs (it holds the fake's state only while delivering).
async fn deliver_while_running(state: Weak<GoogleState>) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(state) = state.upgrade() else { return };
        let clock = state.tenant.read().expect("tenant lock").clock();
        let due: Vec<(FakeChannel, Vec<(String, Value)>)> = {
            let tenant = state.tenant.read().expect("tenant lock");
            let mut live = state.channels.live();
            live.iter_mut()
                .filter(|c| c.delivered_to < clock)
                .map(|c| {
                    let changed = tenant.changed_between(&c.event, c.delivered_to, clock);
                    let users: Vec<(String, Value)> = changed
                        .into_iter()
                        .filter_map(|u| Some((u.clone(), tenant.user_json(&u)?)))
                        .collect();
                    let before = c.clone();
                    c.delivered_to = clock;
                    c.messages += users.len() as u64;
                    (before, users)
                })
                .collect()
        };
        for (channel, users) in due {
            for (n, (_, user)) in users.iter().enumerate() {
                let number = channel.messages + 1 + n as u64;
                deliver(
                    &state.channels.client,
                    &state.base_url,
                    &channel,
                    &channel.event,
                    number,
                    Some(user),
                )
                .await;
            }
        }
    }
}

/// One message, tried again with a growing wait while the address fails.
async fn deliver(
    client: &reqwest::Client,
    base_url: &str,
    channel: &FakeChannel,
    state: &str,
    number: u64,
    user: Option<&Value>,
) {
    let expiration = http_date(channel.expires.unix_timestamp().max(0) as u64);
    let mut wait = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        let mut request = client
            .post(&channel.address)
            .header("X-Goog-Channel-ID", &channel.id)
            .header("X-Goog-Channel-Expiration", expiration.clone())
            .header("X-Goog-Resource-State", state)
            .header("X-Goog-Resource-ID", &channel.resource_id)
            .header("X-Goog-Resource-URI", channel.resource_uri(base_url))
            .header("X-Goog-Message-Number", number.to_string())
            .timeout(DELIVERY_TIMEOUT);
        if let Some(token) = &channel.token {
            request = request.header("X-Goog-Channel-Token", token);
        }
        if let Some(user) = user {
            request = request.json(user);
        }
        match request.send().await {
            Ok(reply) if reply.status().is_success() => return,
            Ok(reply) => {
                tracing::debug!(channel = %channel.id, status = reply.status().as_u16(), attempt, "push notification refused")
            }
            Err(e) => tracing::debug!(channel = %channel.id, error = %e, attempt, "push notification failed"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
}
