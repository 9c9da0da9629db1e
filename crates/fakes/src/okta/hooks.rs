//! Event hooks as Okta runs them: registered through `/api/v1/eventHooks`, verified once by a
//! `GET` to their URI carrying `X-Okta-Verification-Challenge`, which must come back as
//! `{"verification": …}`, and then sent the System Log events they subscribe to, in batches of at
//! most 50, with the header the hook was configured with. A delivery that fails (no answer within
//! 3 s, an error status, no connection) is sent once more, as Okta does.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::OktaState;
use super::routes::{authenticate, error, error_with_causes};
use super::tenant::LogEvent;
use crate::common::{BASE62, Refusal, millis, now, secret};

/// Okta waits this long for an answer before it gives up on a delivery.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Events in one delivery, at most.
const BATCH: usize = 50;
/// How often the fake looks for new events to deliver.
const EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub(crate) struct EventHook {
    id: String,
    name: String,
    uri: String,
    /// The `authScheme` header (name, value) and the other headers.
    headers: Vec<(String, String)>,
    auth_key: Option<String>,
    events: BTreeSet<String>,
    /// Once verified, the first log event it is sent: Okta sends a hook the events that come
    /// after its verification, never those from before.
    verified_from: Option<u64>,
    active: bool,
    created: String,
}

impl EventHook {
    /// As the API answers: the auth header's value is never shown again.
    fn to_json(&self) -> Value {
        let headers: Vec<Value> = self
            .headers
            .iter()
            .filter(|(k, _)| Some(k) != self.auth_key.as_ref())
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        json!({
            "id": self.id,
            "status": if self.active { "ACTIVE" } else { "INACTIVE" },
            "verificationStatus": if self.verified_from.is_some() { "VERIFIED" } else { "UNVERIFIED" },
            "name": self.name,
            "created": self.created,
            "lastUpdated": self.created,
            "events": {"type": "EVENT_TYPE", "items": self.events},
            "channel": {
                "type": "HTTP",
                "version": "1.0.0",
                "config": {
                    "uri": self.uri,
                    "headers": headers,
                    "authScheme": self.auth_key.as_ref().map(|k| json!({"type": "HEADER", "key": k})),
                },
            },
        })
    }
}

/// The registered hooks and the client that calls them.
pub(crate) struct Hooks {
    hooks: Mutex<Vec<EventHook>>,
    client: reqwest::Client,
    /// Whether the delivery task runs: it starts with the first hook.
    delivering: AtomicBool,
}

impl Default for Hooks {
    fn default() -> Hooks {
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().expect("a plain HTTP client");
        Hooks { hooks: Mutex::default(), client, delivering: AtomicBool::new(false) }
    }
}

#[derive(Deserialize)]
struct NewHook {
    name: String,
    events: Events,
    channel: Channel,
}

#[derive(Deserialize)]
struct Events {
    items: Vec<String>,
}

#[derive(Deserialize)]
struct Channel {
    config: ChannelConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelConfig {
    uri: String,
    #[serde(default)]
    headers: Vec<KeyValue>,
    auth_scheme: Option<KeyValue>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    value: String,
}

fn no_hook(id: &str) -> Refusal {
    error(StatusCode::NOT_FOUND, "E0000007", &format!("Not found: Resource not found: {id} (EventHook)"))
}

pub(super) async fn create(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Refusal> {
    authenticate(&state, &headers)?;
    let invalid = |cause: &str| {
        error_with_causes(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: eventHook",
            &[cause.to_string()],
        )
    };
    let new: NewHook = serde_json::from_value(body).map_err(|e| invalid(&e.to_string()))?;
    if !new.channel.config.uri.starts_with("https://") && !new.channel.config.uri.starts_with("http://") {
        return Err(invalid("channel.config.uri: must be an http(s) URL"));
    }
    let mut headers: Vec<(String, String)> =
        new.channel.config.headers.into_iter().map(|h| (h.key, h.value)).collect();
    let auth_key = new.channel.config.auth_scheme.map(|a| {
        headers.push((a.key.clone(), a.value));
        a.key
    });
    let hook = EventHook {
        id: format!("who{}", secret(BASE62, 17)),
        name: new.name,
        uri: new.channel.config.uri,
        headers,
        auth_key,
        events: new.events.items.into_iter().collect(),
        verified_from: None,
        active: true,
        created: millis(now()),
    };
    let body = hook.to_json();
    state.hooks.hooks.lock().expect("hooks lock").push(hook);
    if !state.hooks.delivering.swap(true, Ordering::Relaxed) {
        tokio::spawn(deliver_while_running(Arc::downgrade(&state)));
    }
    Ok(Json(body).into_response())
}

pub(super) async fn list(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    authenticate(&state, &headers)?;
    let hooks: Vec<Value> =
        state.hooks.hooks.lock().expect("hooks lock").iter().map(EventHook::to_json).collect();
    Ok(Json(hooks).into_response())
}

fn find(state: &OktaState, id: &str) -> Result<EventHook, Refusal> {
    state
        .hooks
        .hooks
        .lock()
        .expect("hooks lock")
        .iter()
        .find(|h| h.id == id)
        .cloned()
        .ok_or_else(|| no_hook(id))
}

fn update(state: &OktaState, id: &str, change: impl FnOnce(&mut EventHook)) -> Option<Value> {
    let mut hooks = state.hooks.hooks.lock().expect("hooks lock");
    let hook = hooks.iter_mut().find(|h| h.id == id)?;
    change(hook);
    Some(hook.to_json())
}

pub(super) async fn get(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    authenticate(&state, &headers)?;
    Ok(Json(find(&state, &id)?.to_json()).into_response())
}

/// Okta's one-time verification: the endpoint must echo the challenge.
pub(super) async fn verify(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    authenticate(&state, &headers)?;
    let hook = find(&state, &id)?;
    let challenge = secret(BASE62, 40);
    let mut request = state.hooks.client.get(&hook.uri).header("X-Okta-Verification-Challenge", &challenge);
    for (key, value) in &hook.headers {
        request = request.header(key, value);
    }
    let echoed = match request.send().await {
        Ok(reply) if reply.status().is_success() => reply.json::<Value>().await.ok(),
        _ => None,
    };
    if echoed.as_ref().and_then(|b| b["verification"].as_str()) != Some(challenge.as_str()) {
        return Err(error_with_causes(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: Verification of the event hook failed",
            &["The endpoint did not answer the verification challenge".to_string()],
        ));
    }
    // The tenant stays locked until the hook is marked, so no change falls between the two; a
    // hook verified again keeps the events it was owed.
    let tenant = state.tenant.read().expect("tenant lock");
    let from = tenant.logged();
    let body =
        update(&state, &id, |h| _ = h.verified_from.get_or_insert(from)).ok_or_else(|| no_hook(&id))?;
    drop(tenant);
    Ok(Json(body).into_response())
}

pub(super) async fn deactivate(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    authenticate(&state, &headers)?;
    let body = update(&state, &id, |h| h.active = false).ok_or_else(|| no_hook(&id))?;
    Ok(Json(body).into_response())
}

pub(super) async fn delete(
    State(state): State<Arc<OktaState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    authenticate(&state, &headers)?;
    let mut hooks = state.hooks.hooks.lock().expect("hooks lock");
    match hooks.iter().position(|h| h.id == id) {
        Some(i) if !hooks[i].active => {
            hooks.remove(i);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Some(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: deactivate the event hook first",
        )),
        None => Err(no_hook(&id)),
    }
}

/// Delivers the tenant's new System Log events to the verified, active hooks that subscribe to
/// them, for as long as the fake runs (it holds the fake's state only while delivering).
async fn deliver_while_running(state: Weak<OktaState>) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(state) = state.upgrade() else { return };
        let events = state.tenant.write().expect("tenant lock").take_log();
        if events.is_empty() {
            continue;
        }
        let hooks: Vec<EventHook> =
            state.hooks.hooks.lock().expect("hooks lock").iter().filter(|h| h.active).cloned().collect();
        for hook in hooks {
            let Some(from) = hook.verified_from else { continue };
            let wanted: Vec<&LogEvent> =
                events.iter().filter(|e| e.seq >= from && hook.events.contains(e.event_type)).collect();
            for batch in wanted.chunks(BATCH) {
                deliver(&state.hooks.client, &hook, batch, &state.base_url).await;
            }
        }
    }
}

/// One delivery, sent once more when the first attempt fails.
async fn deliver(client: &reqwest::Client, hook: &EventHook, events: &[&LogEvent], base_url: &str) {
    let body = json!({
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1",
        "source": format!("{base_url}/api/v1/eventHooks/{}", hook.id),
        "eventId": uuid::Uuid::new_v4().to_string(),
        "eventTime": millis(now()),
        "contentType": "application/json",
        "data": {"events": events.iter().map(|e| e.to_json()).collect::<Vec<_>>()},
    });
    for attempt in 1..=2 {
        let mut request = client.post(&hook.uri).json(&body);
        for (key, value) in &hook.headers {
            request = request.header(key, value);
        }
        match request.send().await {
            Ok(reply) if reply.status().is_success() => return,
            Ok(reply) => {
                tracing::debug!(hook = %hook.id, status = reply.status().as_u16(), attempt, "event hook delivery refused")
            }
            Err(e) => tracing::debug!(hook = %hook.id, error = %e, attempt, "event hook delivery failed"),
        }
    }
}
