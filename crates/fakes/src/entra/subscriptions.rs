//! Change notifications as Microsoft Graph runs them: `POST /v1.0/subscriptions` for `/users` or
//! `/groups`, checked by a validation handshake before the answer (Graph posts
//! `?validationToken=…` to the notification URL, and to the lifecycle URL when there is one, and
//! wants the token back as `text/plain` within 10 s); `GET`, `PATCH` (renewal), `DELETE` and
//! `POST …/reauthorize`. While a subscription lives, every change of its resource in the tenant
//! (whatever made it: a test's `mutate`, the admin API, the churn) is delivered to its
//! notification URL with its `clientState`, ids only, in batches, retried a few times when the
//! endpoint fails. An expired subscription delivers nothing and is gone for the API too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::EntraState;
use super::graph::{GROUP_READ, USER_READ, gate};
use super::query::{bad_request, error};
use super::tenant::Kind;
use crate::common::{Refusal, now};

/// Graph waits this long for the validation token to come back.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Graph wants a notification answered within this long.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts of one delivery, the first included, and the wait before the second.
const ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// Notifications in one delivery, at most.
const BATCH: usize = 100;
/// How often the fake looks for changes to deliver.
const EVERY: Duration = Duration::from_millis(50);
/// The longest a directory resource's subscription may live: 41,760 minutes.
const MAX_LIFETIME: time::Duration = time::Duration::minutes(41_760);

/// The lifecycle notifications Graph sends about a subscription itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// The app must reauthorize (or renew) the subscription, or deliveries stop.
    ReauthorizationRequired,
    /// Graph removed the subscription: it must be made again.
    SubscriptionRemoved,
    /// Some notifications could not be delivered: resynchronize.
    Missed,
}

impl LifecycleEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::ReauthorizationRequired => "reauthorizationRequired",
            LifecycleEvent::SubscriptionRemoved => "subscriptionRemoved",
            LifecycleEvent::Missed => "missed",
        }
    }

    pub(super) fn parse(name: &str) -> Option<LifecycleEvent> {
        [Self::ReauthorizationRequired, Self::SubscriptionRemoved, Self::Missed]
            .into_iter()
            .find(|e| e.as_str() == name)
    }
}

/// A live subscription as the fake keeps it.
#[derive(Debug, Clone)]
pub struct FakeSubscription {
    pub id: String,
    /// `/users` or `/groups`.
    pub resource: String,
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    pub expires: OffsetDateTime,
    /// Until reauthorized or renewed, after a `reauthorizationRequired`: nothing is delivered.
    pub needs_reauthorization: bool,
    /// The tenant's clock up to which changes were delivered.
    delivered_to: u64,
}

impl FakeSubscription {
    fn kind(&self) -> Kind {
        if self.resource == "/users" { Kind::Users } else { Kind::Groups }
    }

    fn to_json(&self, base_url: &str, with_context: bool) -> Value {
        let mut json = json!({
            "id": self.id,
            "resource": self.resource,
            "applicationId": "00000000-0000-0000-0000-000000000000",
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_time(self.expires),
            "creatorId": "00000000-0000-0000-0000-000000000000",
            "latestSupportedTlsVersion": "v1_2",
            "notificationContentType": "application/json",
        });
        if with_context {
            json["@odata.context"] = json!(format!("{base_url}/v1.0/$metadata#subscriptions/$entity"));
        }
        json
    }
}

/// `2026-01-03T11:23:00.1234567Z`, as Graph writes a subscription's expiry.
fn graph_time(t: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).expect("UTC timestamps format")
}

/// The tenant's subscriptions and the client that calls their endpoints.
pub(super) struct Subscriptions {
    live: Mutex<Vec<FakeSubscription>>,
    client: reqwest::Client,
    /// Whether the delivery task runs: it starts with the first subscription.
    delivering: AtomicBool,
}

impl Default for Subscriptions {
    fn default() -> Subscriptions {
        let client = reqwest::Client::builder().build().expect("a plain HTTP client");
        Subscriptions { live: Mutex::default(), client, delivering: AtomicBool::new(false) }
    }
}

impl Subscriptions {
    /// The live subscriptions, forgetting those that expired.
    pub(super) fn live(&self) -> std::sync::MutexGuard<'_, Vec<FakeSubscription>> {
        let mut live = self.live.lock().expect("subscriptions lock");
        let now = now();
        live.retain(|s| s.expires > now);
        live
    }

    pub(super) fn change(&self, id: &str, change: impl FnOnce(&mut FakeSubscription)) -> bool {
        let mut live = self.live();
        live.iter_mut().find(|s| s.id == id).map(change).is_some()
    }
}

fn not_found(id: &str) -> Refusal {
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!("The object was not found. Subscription '{id}' does not exist."),
    )
}

fn invalid(message: &str) -> Refusal {
    bad_request("InvalidRequest", message)
}

/// Any token that may read users or groups may manage subscriptions; which resource a
/// subscription may watch is checked when it is made.
fn gate_any(state: &EntraState, headers: &HeaderMap) -> Result<(), Refusal> {
    let roles: Vec<&str> = USER_READ.iter().chain(GROUP_READ).copied().collect();
    gate(state, headers, &roles)
}

/// An expiry the caller asked for: in the future and within Graph's limit.
fn expiry(body: &Value) -> Result<OffsetDateTime, Refusal> {
    let text = body
        .get("expirationDateTime")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("expirationDateTime is required."))?;
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| invalid(&format!("expirationDateTime '{text}' is not a valid DateTimeOffset.")))?;
    let now = now();
    if at <= now {
        return Err(invalid("Subscription expiration must be in the future."));
    }
    if at > now + MAX_LIFETIME {
        return Err(invalid(&format!(
            "Subscription expiration can only be {} minutes in the future.",
            MAX_LIFETIME.whole_minutes()
        )));
    }
    Ok(at)
}

fn url(body: &Value, key: &str) -> Result<Option<String>, Refusal> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(u)) if u.starts_with("https://") || u.starts_with("http://") => {
            Ok(Some(u.clone()))
        }
        Some(_) => Err(invalid(&format!("The {key} must be an https URL."))),
    }
}

/// Graph's handshake: the token posted to `url`, which must come back as the body of a 200
/// `text/plain` reply within 10 s.
async fn validate(client: &reqwest::Client, url: &str) -> bool {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let Ok(mut target) = url::Url::parse(url) else { return false };
    target.query_pairs_mut().append_pair("validationToken", &token);
    let sent = client
        .post(target)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .timeout(VALIDATION_TIMEOUT)
        .send()
        .await;
    let Ok(reply) = sent else { return false };
    let plain = reply
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    reply.status() == StatusCode::OK && plain && reply.text().await.is_ok_and(|t| t == token)
}

pub(super) async fn create(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Refusal> {
    let resource = body.get("resource").and_then(Value::as_str).unwrap_or_default();
    let (resource, roles) = match resource.trim_start_matches('/') {
        "users" => ("/users", USER_READ),
        "groups" => ("/groups", GROUP_READ),
        _ => {
            gate_any(&state, &headers)?;
            return Err(invalid(&format!(
                "Resource '{resource}' is not supported for change notifications."
            )));
        }
    };
    gate(&state, &headers, roles)?;
    let change_type = body.get("changeType").and_then(Value::as_str).unwrap_or_default().to_string();
    let known = ["created", "updated", "deleted"];
    if change_type.is_empty() || !change_type.split(',').all(|c| known.contains(&c.trim())) {
        return Err(invalid("changeType must be a comma-separated list of created, updated and deleted."));
    }
    let notification_url =
        url(&body, "notificationUrl")?.ok_or_else(|| invalid("notificationUrl is required."))?;
    let lifecycle_url = url(&body, "lifecycleNotificationUrl")?;
    let expires = expiry(&body)?;
    let client_state = match body.get("clientState") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 128 => Some(s.clone()),
        Some(_) => return Err(invalid("clientState must be a string of at most 128 characters.")),
    };
    for target in std::iter::once(&notification_url).chain(lifecycle_url.as_ref()) {
        if !validate(&state.subscriptions.client, target).await {
            return Err(invalid(
                "Subscription validation request failed. Notification endpoint must respond with 200 OK to \
                 validation request.",
            ));
        }
    }
    let delivered_to = state.tenant.read().expect("tenant lock").clock();
    let subscription = FakeSubscription {
        id: uuid::Uuid::new_v4().to_string(),
        resource: resource.to_string(),
        change_type,
        notification_url,
        lifecycle_url,
        client_state,
        expires,
        needs_reauthorization: false,
        delivered_to,
    };
    let json = subscription.to_json(&state.base_url, true);
    state.subscriptions.live().push(subscription);
    if !state.subscriptions.delivering.swap(true, Ordering::Relaxed) {
        tokio::spawn(deliver_while_running(Arc::downgrade(&state)));
    }
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

pub(super) async fn list(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    gate_any(&state, &headers)?;
    let value: Vec<Value> =
        state.subscriptions.live().iter().map(|s| s.to_json(&state.base_url, false)).collect();
    let context = format!("{}/v1.0/$metadata#subscriptions", state.base_url);
    Ok(Json(json!({"@odata.context": context, "value": value})).into_response())
}

pub(super) async fn get(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    gate_any(&state, &headers)?;
    let live = state.subscriptions.live();
    let found = live.iter().find(|s| s.id == id).ok_or_else(|| not_found(&id))?;
    Ok(Json(found.to_json(&state.base_url, true)).into_response())
}

/// A renewal: a new `expirationDateTime`, which also ends a pending reauthorization.
pub(super) async fn update(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, Refusal> {
    gate_any(&state, &headers)?;
    let expires = expiry(&body)?;
    let mut live = state.subscriptions.live();
    let found = live.iter_mut().find(|s| s.id == id).ok_or_else(|| not_found(&id))?;
    found.expires = expires;
    found.needs_reauthorization = false;
    Ok(Json(found.to_json(&state.base_url, true)).into_response())
}

pub(super) async fn delete(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    gate_any(&state, &headers)?;
    let mut live = state.subscriptions.live();
    let at = live.iter().position(|s| s.id == id).ok_or_else(|| not_found(&id))?;
    live.remove(at);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn reauthorize(
    State(state): State<Arc<EntraState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    gate_any(&state, &headers)?;
    if !state.subscriptions.change(&id, |s| s.needs_reauthorization = false) {
        return Err(not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sends a lifecycle notification about the subscription `id` to its lifecycle URL, as Graph
/// does; `subscriptionRemoved` removes it first. The endpoint's status, or `None` when there is
/// no such live subscription or it has no lifecycle URL (or the endpoint did not answer).
pub(super) async fn send_lifecycle(
    state: &EntraState,
    id: &str,
    event: LifecycleEvent,
) -> Option<StatusCode> {
    let subscription = {
        let mut live = state.subscriptions.live();
        let at = live.iter().position(|s| s.id == id)?;
        match event {
            LifecycleEvent::SubscriptionRemoved => live.remove(at),
            LifecycleEvent::ReauthorizationRequired => {
                live[at].needs_reauthorization = true;
                live[at].clone()
            }
            LifecycleEvent::Missed => live[at].clone(),
        }
    };
    let url = subscription.lifecycle_url.as_deref()?;
    let tenant_id = state.tenant.read().expect("tenant lock").tenant_id.clone();
    let body = json!({"value": [{
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": graph_time(subscription.expires),
        "tenantId": tenant_id,
        "clientState": subscription.client_state,
        "lifecycleEvent": event.as_str(),
    }]});
    let sent = state.subscriptions.client.post(url).json(&body).timeout(DELIVERY_TIMEOUT).send().await;
    sent.ok().map(|r| r.status())
}

/// Makes the subscription `id` expire now; `false` when there is no such live subscription.
pub(super) fn expire(state: &EntraState, id: &str) -> bool {
    state.subscriptions.change(id, |s| s.expires = now() - time::Duration::seconds(1))
}

/// Delivers the tenant's changes to the live subscriptions that watch them, for as long as the
/// fake runs (it holds the fake's state only while delivering).
async fn deliver_while_running(state: Weak<EntraState>) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(state) = state.upgrade() else { return };
        let (clock, tenant_id) = {
            let tenant = state.tenant.read().expect("tenant lock");
            (tenant.clock(), tenant.tenant_id.clone())
        };
        let due: Vec<FakeSubscription> = {
            let mut live = state.subscriptions.live();
            let due =
                live.iter().filter(|s| s.delivered_to < clock && !s.needs_reauthorization).cloned().collect();
            for s in live.iter_mut().filter(|s| !s.needs_reauthorization) {
                s.delivered_to = clock;
            }
            due
        };
        for subscription in due {
            let changed = {
                let tenant = state.tenant.read().expect("tenant lock");
                tenant.changed_between(subscription.kind(), subscription.delivered_to, clock)
            };
            let notifications: Vec<Value> = changed
                .iter()
                .map(|(id, deleted)| notification(&subscription, &tenant_id, id, *deleted))
                .collect();
            for batch in notifications.chunks(BATCH) {
                deliver(&state.subscriptions.client, &subscription, batch).await;
            }
        }
    }
}

/// One change notification: ids only, as Graph sends for directory objects.
fn notification(subscription: &FakeSubscription, tenant_id: &str, id: &str, deleted: bool) -> Value {
    let (collection, odata_type) = if subscription.kind() == Kind::Users {
        ("Users", "#Microsoft.Graph.User")
    } else {
        ("Groups", "#Microsoft.Graph.Group")
    };
    json!({
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": graph_time(subscription.expires),
        "clientState": subscription.client_state,
        "changeType": if deleted { "deleted" } else { "updated" },
        "resource": format!("{collection}/{id}"),
        "tenantId": tenant_id,
        "resourceData": {
            "@odata.type": odata_type,
            "@odata.id": format!("{collection}/{id}"),
            "id": id,
            "organizationId": tenant_id,
        },
    })
}

/// One delivery, tried again with a growing wait while the endpoint fails.
async fn deliver(client: &reqwest::Client, subscription: &FakeSubscription, batch: &[Value]) {
    let body = json!({"value": batch});
    let mut wait = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        let sent =
            client.post(&subscription.notification_url).json(&body).timeout(DELIVERY_TIMEOUT).send().await;
        match sent {
            Ok(reply) if reply.status().is_success() => return,
            Ok(reply) => {
                tracing::debug!(subscription = %subscription.id, status = reply.status().as_u16(), attempt, "change notification refused")
            }
            Err(e) => {
                tracing::debug!(subscription = %subscription.id, error = %e, attempt, "change notification failed")
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
}

/// `POST /_fake/entra/subscriptions/{id}/lifecycle` `{"lifecycleEvent": …}` and
/// `POST /_fake/entra/subscriptions/{id}/expire`: the admin's knobs.
pub(super) async fn admin_lifecycle(
    State(state): State<Arc<EntraState>>,
    Path(id): Path<String>,
    Json(body): Json<HashMap<String, String>>,
) -> Response {
    let event = body.get("lifecycleEvent").and_then(|e| LifecycleEvent::parse(e));
    let Some(event) = event else {
        let message = "lifecycleEvent must be reauthorizationRequired, subscriptionRemoved or missed";
        return (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response();
    };
    match send_lifecycle(&state, &id, event).await {
        Some(status) => Json(json!({"delivered": status.as_u16()})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no live subscription {id} with a lifecycle URL")})),
        )
            .into_response(),
    }
}

pub(super) async fn admin_expire(State(state): State<Arc<EntraState>>, Path(id): Path<String>) -> Response {
    if expire(&state, &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::NOT_FOUND, Json(json!({"error": format!("no live subscription {id}")}))).into_response()
    }
}
