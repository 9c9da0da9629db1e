//! Push end to end: an Okta event hook registered at the fake Okta with the endpoint and secret
//! ctxsync hands out, verified by the handshake, brings a suspension and a deletion to the store
//! within seconds of them happening; deliveries without the secret are refused and counted; a
//! forged or repeated delivery writes nothing the source does not say. Entra ID: the Graph
//! subscriptions ctxsync makes at the fake Graph (after its validation handshake) bring a
//! suspension within seconds; notifications without the subscriptions' clientState are counted
//! and ask for nothing; subscriptions are renewed before they expire (the clock run ahead) and
//! made again when Graph removes or loses them. Google Workspace: the `users.watch` channels
//! ctxsync opens at the fake Google bring a suspension and a deletion within seconds through a
//! refresh-only run (the next full run keeps its time); notifications without a channel's token
//! are counted and ask for nothing, and one with it cannot write what Google does not say;
//! channels are replaced before they expire (the clock run ahead), one Google lost included.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, errors, spawn_app, status_json};
use crate::sync::{OWN, create_with, wait_for_runs};

/// A config that, left alone, would not sync again within the test.
async fn okta_config(app: &TestApp) -> String {
    let id = create_with(app, app.okta_attributes(), json!({"sync_interval": "1h"})).await;
    assert_eq!(wait_for_runs(app, &id, 1).await["attributes"]["status"], "succeeded");
    id
}

async fn push(app: &TestApp, method: Method, id: &str) -> (StatusCode, Value) {
    status_json(app.request(method, &format!("{OWN}/integration_configs/{id}/push"), None).await).await
}

/// Turns push on for the config `id`; the endpoint its source is to deliver to.
async fn push_url(app: &TestApp, id: &str) -> String {
    let (_, enabled) = push(app, Method::PUT, id).await;
    enabled["data"]["attributes"]["url"].as_str().unwrap().to_string()
}

/// A delivery as Okta sends it: `events` are `(uuid, eventType, user id)`.
fn delivery(events: &[(&str, &str, &str)]) -> Value {
    let events: Vec<Value> = events
        .iter()
        .map(|(uuid, kind, user)| json!({"uuid": uuid, "eventType": kind, "target": [{"id": user, "type": "User"}]}))
        .collect();
    json!({"eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "data": {"events": events}})
}

async fn deliver(app: &TestApp, url: &str, secret: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut request = app.client.post(url).json(body);
    if let Some(secret) = secret {
        request = request.header("Authorization", secret);
    }
    status_json(request.send().await.unwrap()).await
}

async fn user_status(app: &TestApp, config: &str, user: &str) -> String {
    let path = format!("{OWN}/integration_configs/{config}/entities/user/{user}");
    let (status, body) = status_json(app.request(Method::GET, &path, None).await).await;
    match status {
        StatusCode::NOT_FOUND => "gone".to_string(),
        StatusCode::OK => body["data"]["attributes"]["status"].as_str().unwrap().to_string(),
        _ => panic!("{status}: {body}"),
    }
}

/// Waits until the store shows `user` as `want` (a bounded while: no scheduled run comes within
/// the test, so only a push can bring it); how long it took.
async fn until_user(app: &TestApp, config: &str, user: &str, want: &str) -> Duration {
    let changed = Instant::now();
    while user_status(app, config, user).await != want {
        assert!(changed.elapsed() < Duration::from_secs(20), "{user} did not become {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    changed.elapsed()
}

async fn run_count(app: &TestApp, config: &str) -> usize {
    let path = format!("{OWN}/integration_configs/{config}/sync_runs");
    let (_, body) = status_json(app.request(Method::GET, &path, None).await).await;
    body["data"].as_array().unwrap().len()
}

/// A plain active user of the fake org (not one the credentials act as).
fn active_user(app: &TestApp) -> String {
    let truth = app.fakes.okta.snapshot();
    truth.users.iter().rev().find(|(_, u)| u["status"] == "ACTIVE").map(|(id, _)| id.clone()).unwrap()
}

#[tokio::test]
async fn an_okta_suspension_reaches_the_store_through_the_event_hook() {
    let app = spawn_app().await;
    let id = okta_config(&app).await;
    let (status, enabled) = push(&app, Method::PUT, &id).await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    let attributes = &enabled["data"]["attributes"];
    let url = attributes["url"].as_str().unwrap().to_string();
    let secret = attributes["secret"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}/api/v2/ctxsync/push/okta/{id}", app.address));
    assert_eq!(attributes["header"], "Authorization");

    // The operator's part, in the fake Okta's admin API: register the hook and verify it.
    let events = [
        "user.lifecycle.suspend",
        "user.lifecycle.unsuspend",
        "user.lifecycle.delete.initiated",
        "group.user_membership.add",
    ];
    app.fakes.okta.register_event_hook(&url, &secret, &events).await;

    let user = active_user(&app);
    assert_eq!(user_status(&app, &id, &user).await, "active");
    app.fakes.okta.mutate(|t| t.suspend_user(&user));
    println!(
        "suspension in the store {:?} after the change",
        until_user(&app, &id, &user, "suspended").await
    );
    let run = wait_for_runs(&app, &id, 2).await;
    assert_eq!(run["attributes"]["kind"], "incremental", "{run}");
    let events =
        app.list_all(&format!("{OWN}/events?filter[config_id]={id}&filter[type]=user.status_changed")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["attributes"]["entity_id"], user.as_str());

    // An incremental listing cannot see a deletion; the run reads the user the push named, and
    // Okta no longer knows it.
    app.fakes.okta.mutate(|t| t.delete_user(&user));
    println!("deletion in the store {:?} after the change", until_user(&app, &id, &user, "gone").await);
    let deleted =
        app.list_all(&format!("{OWN}/events?filter[config_id]={id}&filter[type]=user.deleted")).await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["attributes"]["entity_id"], user.as_str());

    let (_, status) = push(&app, Method::GET, &id).await;
    let attributes = &status["data"]["attributes"];
    assert_eq!((attributes["enabled"].as_bool(), attributes["rejected"].as_u64()), (Some(true), Some(0)));
    assert!(attributes["deliveries"].as_u64() >= Some(1), "{status}");
    assert!(attributes["last_delivery_at"].is_string() && attributes.get("secret").is_none(), "{status}");
}

#[tokio::test]
async fn deliveries_without_the_secret_are_refused_counted_and_ask_for_nothing() {
    let app = spawn_app().await;
    let id = okta_config(&app).await;
    let (_, first) = push(&app, Method::PUT, &id).await;
    let url = first["data"]["attributes"]["url"].as_str().unwrap().to_string();
    let old = first["data"]["attributes"]["secret"].as_str().unwrap().to_string();
    let (_, rotated) = push(&app, Method::PUT, &id).await;
    let secret = rotated["data"]["attributes"]["secret"].as_str().unwrap().to_string();
    assert_ne!(secret, old);

    let body = delivery(&[("3f1c6a3e-0000-4000-8000-000000000001", "user.lifecycle.suspend", "00unobody")]);
    for presented in [None, Some(old.as_str()), Some("Bearer whatever")] {
        let (status, refused) = deliver(&app, &url, presented, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{presented:?}: {refused}");
        assert!(errors(&refused)[0].contains("secret"), "{refused}");
        assert!(!refused.to_string().contains(&old), "the presented value is not echoed");
    }
    // The handshake takes the secret too, and wants its challenge.
    let handshake = |secret: Option<&str>, challenge: Option<&str>| {
        let mut request = app.client.get(&url);
        if let Some(s) = secret {
            request = request.header("Authorization", s);
        }
        if let Some(c) = challenge {
            request = request.header("X-Okta-Verification-Challenge", c);
        }
        request.send()
    };
    assert_eq!(handshake(None, Some("c")).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(handshake(Some(&secret), None).await.unwrap().status(), StatusCode::BAD_REQUEST);
    let (status, echoed) = status_json(handshake(Some(&secret), Some("c-123")).await.unwrap()).await;
    assert_eq!((status, echoed), (StatusCode::OK, json!({"verification": "c-123"})));

    let (_, status) = push(&app, Method::GET, &id).await;
    assert_eq!(status["data"]["attributes"]["rejected"], 4, "{status}");
    assert_eq!(status["data"]["attributes"]["deliveries"], 0, "{status}");
    assert_eq!(run_count(&app, &id).await, 1, "no refused delivery asked for a run");

    // Off: the endpoint is not there for anyone; unknown configs neither.
    assert_eq!(push(&app, Method::DELETE, &id).await.0, StatusCode::NO_CONTENT);
    assert_eq!(deliver(&app, &url, Some(&secret), &body).await.0, StatusCode::NOT_FOUND);
    assert_eq!(push(&app, Method::DELETE, &id).await.0, StatusCode::NOT_FOUND);
    let nowhere = format!("{}/api/v2/ctxsync/push/okta/{}", app.address, uuid::Uuid::new_v4());
    assert_eq!(deliver(&app, &nowhere, Some(&secret), &body).await.0, StatusCode::NOT_FOUND);

    // An EDR does not push.
    let edr = app.create_ok(app.crowdstrike_attributes()).await["id"].as_str().unwrap().to_string();
    let (status, refused) = push(&app, Method::PUT, &edr).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(errors(&refused)[0].contains("OKTA") && errors(&refused)[0].contains("ENTRA_ID"), "{refused}");
}

#[tokio::test]
async fn a_forged_or_repeated_delivery_writes_nothing_the_source_does_not_say() {
    let app = spawn_app().await;
    let id = okta_config(&app).await;
    let (_, enabled) = push(&app, Method::PUT, &id).await;
    let url = enabled["data"]["attributes"]["url"].as_str().unwrap().to_string();
    let secret = enabled["data"]["attributes"]["secret"].as_str().unwrap().to_string();
    let user = active_user(&app);

    // Someone holding the secret claims a suspension and a deletion Okta never made.
    let forged = delivery(&[
        ("3f1c6a3e-0000-4000-8000-0000000000aa", "user.lifecycle.suspend", &user),
        ("3f1c6a3e-0000-4000-8000-0000000000ab", "user.lifecycle.delete.initiated", &user),
    ]);
    let (status, taken) = deliver(&app, &url, Some(&secret), &forged).await;
    assert_eq!((status, taken), (StatusCode::OK, json!({"accepted": 2, "duplicates": 0})));
    let run = wait_for_runs(&app, &id, 2).await;
    assert_eq!(run["attributes"]["status"], "succeeded", "the delivery asked for a run: {run}");
    assert_eq!(user_status(&app, &id, &user).await, "active", "the run asked Okta, which says active");
    let events = app.list_all(&format!("{OWN}/events?filter[config_id]={id}")).await;
    assert_eq!(events, Vec::<Value>::new(), "nothing changed");

    // Okta delivers at least once: the same event again asks for nothing.
    let (status, taken) = deliver(&app, &url, Some(&secret), &forged).await;
    assert_eq!((status, taken), (StatusCode::OK, json!({"accepted": 0, "duplicates": 2})));
    let (_, status) = push(&app, Method::GET, &id).await;
    let attributes = &status["data"]["attributes"];
    assert_eq!(
        (attributes["deliveries"].as_u64(), attributes["duplicate_events"].as_u64()),
        (Some(2), Some(2))
    );

    // Not a delivery at all.
    let (status, refused) =
        deliver(&app, &url, Some(&secret), &json!({"data": {"events": [{"uuid": 1}]}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
}

#[tokio::test]
async fn a_flood_of_deliveries_stops_at_the_address_rate_limit() {
    let app =
        crate::helpers::spawn_app_with(crate::helpers::Options { rate_limit: 3, ..Default::default() }).await;
    let url = format!("{}/api/v2/ctxsync/push/okta/{}", app.address, uuid::Uuid::new_v4());
    let body = delivery(&[("3f1c6a3e-0000-4000-8000-000000000001", "user.lifecycle.suspend", "00u1")]);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(deliver(&app, &url, Some("guess"), &body).await.0);
    }
    assert_eq!(statuses[..3], [StatusCode::NOT_FOUND; 3]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "the address's budget is spent");
}

/// A config of `attributes` that, left alone, would not sync again within the test.
async fn quiet_config(app: &TestApp, attributes: Value) -> String {
    let id = create_with(app, attributes, json!({"sync_interval": "1h"})).await;
    assert_eq!(wait_for_runs(app, &id, 1).await["attributes"]["status"], "succeeded");
    id
}

async fn entra_config(app: &TestApp) -> String {
    quiet_config(app, app.entra_attributes()).await
}

/// Waits (a bounded while) until what `read` reads passes `check`; what it read.
async fn until<T: std::fmt::Debug>(
    what: &str,
    read: impl Fn() -> Vec<T>,
    check: impl Fn(&[T]) -> bool,
) -> Vec<T> {
    let started = Instant::now();
    loop {
        let now = read();
        if check(&now) {
            return now;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{what}: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the config's push status lists subscriptions that pass `check`.
async fn until_status(app: &TestApp, id: &str, what: &str, check: impl Fn(&[Value]) -> bool) {
    let started = Instant::now();
    loop {
        let (_, status) = push(app, Method::GET, id).await;
        if check(status["data"]["attributes"]["subscriptions"].as_array().unwrap()) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{what}: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the fake Graph's subscriptions pass `check`; them.
async fn until_subscriptions(
    app: &TestApp,
    what: &str,
    check: impl Fn(&[ctxsync_fakes::FakeSubscription]) -> bool,
) -> Vec<ctxsync_fakes::FakeSubscription> {
    until(what, || app.fakes.entra.subscriptions(), check).await
}

fn expiry_of(subscriptions: &[ctxsync_fakes::FakeSubscription], id: &str) -> time::OffsetDateTime {
    subscriptions.iter().find(|s| s.id == id).unwrap().expires
}

#[tokio::test]
async fn an_entra_suspension_reaches_the_store_through_graph_change_notifications() {
    let app = spawn_app().await;
    let id = entra_config(&app).await;
    let (status, enabled) = push(&app, Method::PUT, &id).await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    let attributes = &enabled["data"]["attributes"];
    let url = format!("{}/api/v2/ctxsync/push/entra_id/{id}", app.address);
    assert_eq!(attributes["url"], url.as_str());
    assert_eq!(attributes["lifecycle_url"], format!("{url}/lifecycle"));
    assert!(attributes.get("secret").is_none() && attributes.get("header").is_none(), "{enabled}");
    let resources: Vec<&str> = attributes["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["resource"].as_str().unwrap())
        .collect();
    assert_eq!(resources, ["/groups", "/users"]);

    // Graph made them after the handshake, with a clientState the answer never showed.
    let made = app.fakes.entra.subscriptions();
    assert_eq!(made.len(), 2);
    for subscription in &made {
        assert_eq!(subscription.notification_url, url);
        let client_state = subscription.client_state.as_deref().unwrap();
        assert!(client_state.len() >= 32 && !enabled.to_string().contains(client_state));
        let expires_in = subscription.expires - time::OffsetDateTime::now_utc();
        assert!(expires_in > time::Duration::days(28) && expires_in <= time::Duration::minutes(41_760));
    }

    let user =
        app.fakes.entra.mutate(|t| t.users().find(|(_, u)| u.account_enabled).map(|(id, _)| id)).unwrap();
    assert_eq!(user_status(&app, &id, &user).await, "active");
    app.fakes.entra.mutate(|t| t.disable_user(&user));
    println!(
        "suspension in the store {:?} after the change",
        until_user(&app, &id, &user, "suspended").await
    );
    let run = wait_for_runs(&app, &id, 2).await;
    assert_eq!(run["attributes"]["kind"], "incremental", "{run}");

    let (_, status) = push(&app, Method::GET, &id).await;
    let attributes = &status["data"]["attributes"];
    assert_eq!((attributes["enabled"].as_bool(), attributes["rejected"].as_u64()), (Some(true), Some(0)));
    assert!(attributes["deliveries"].as_u64() >= Some(1), "{status}");
    assert!(attributes["last_delivery_at"].is_string(), "{status}");
    assert_eq!(attributes["subscriptions"].as_array().unwrap().len(), 2, "{status}");

    // Off: the subscriptions go at Graph too, and the endpoint is not there for anyone.
    assert_eq!(push(&app, Method::DELETE, &id).await.0, StatusCode::NO_CONTENT);
    assert!(app.fakes.entra.subscriptions().is_empty());
    let (status, _) =
        status_json(app.client.post(&url).json(&json!({"value": []})).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A deleted config's subscriptions go at Graph too.
    let deleted = app.request(Method::DELETE, &format!("{}/{id}", crate::helpers::BASE), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(app.fakes.entra.subscriptions().is_empty());
}

#[tokio::test]
async fn graph_notifications_without_the_client_state_write_nothing_and_are_counted() {
    let app = spawn_app().await;
    let id = entra_config(&app).await;
    let url = push_url(&app, &id).await;
    let subscription = app.fakes.entra.subscriptions()[0].clone();
    let user = app.fakes.entra.mutate(|t| t.users().next().map(|(id, _)| id)).unwrap();

    // Someone who knows the endpoint and the subscription, but not its clientState.
    let forged = |client_state: Option<&str>| {
        let mut notification = json!({
            "subscriptionId": subscription.id, "changeType": "deleted", "resource": format!("Users/{user}"),
            "resourceData": {"@odata.type": "#Microsoft.Graph.User", "@odata.id": format!("Users/{user}"), "id": user},
        });
        if let Some(c) = client_state {
            notification["clientState"] = json!(c);
        }
        json!({"value": [notification]})
    };
    for client_state in [None, Some("guessed"), Some("")] {
        let sent = app.client.post(&url).json(&forged(client_state)).send().await.unwrap();
        assert_eq!(sent.status(), StatusCode::ACCEPTED, "Graph is answered as ever: {client_state:?}");
    }
    let (_, status) = push(&app, Method::GET, &id).await;
    assert_eq!(status["data"]["attributes"]["rejected"], 3, "{status}");
    assert_eq!(status["data"]["attributes"]["deliveries"], 0, "{status}");
    assert_eq!(run_count(&app, &id).await, 1, "no refused notification asked for a run");
    assert_eq!(user_status(&app, &id, &user).await, "active");

    // The handshake answers with the token, decoded, as text/plain; a body that is no delivery
    // is refused.
    let handshake =
        app.client.post(format!("{url}?validationToken=Validation%3A%20a+b%2Bc")).send().await.unwrap();
    assert_eq!(handshake.status(), StatusCode::OK);
    assert!(handshake.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(handshake.text().await.unwrap(), "Validation: a b+c");
    let (status, refused) = status_json(app.client.post(&url).body("nonsense").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let nowhere =
        format!("{}/api/v2/ctxsync/push/entra_id/{}?validationToken=x", app.address, uuid::Uuid::new_v4());
    assert_eq!(app.client.post(nowhere).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn entra_push_needs_the_public_url_graph_reaches() {
    let app =
        crate::helpers::spawn_app_with(crate::helpers::Options { public_url: false, ..Default::default() })
            .await;
    let id = entra_config(&app).await;
    let (status, refused) = push(&app, Method::PUT, &id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(errors(&refused)[0].contains("CTXSYNC_PUBLIC_URL"), "{refused}");
    assert!(app.fakes.entra.subscriptions().is_empty());
    assert_eq!(push(&app, Method::GET, &id).await.1["data"]["attributes"]["enabled"], false);
}

#[tokio::test]
async fn graph_subscriptions_are_renewed_in_time_and_made_again_when_graph_loses_them() {
    let app = spawn_app().await;
    let id = entra_config(&app).await;
    assert_eq!(push(&app, Method::PUT, &id).await.0, StatusCode::OK);
    let first = app.fakes.entra.subscriptions();
    let users = first.iter().find(|s| s.resource == "/users").unwrap().id.clone();

    // 27 days on, both are within the renewal margin: renewed at Graph, not made again.
    app.clock.advance(Duration::from_secs(27 * 86_400));
    let renewed = until_subscriptions(&app, "renewed", |now| {
        now.len() == 2 && first.iter().all(|s| now.iter().any(|n| n.id == s.id && n.expires > s.expires))
    })
    .await;
    // The store records each renewal once Graph has answered it.
    until_status(&app, &id, "the renewed expiries stored", |shown| {
        shown.len() == 2
            && shown.iter().all(|s| {
                let stored = time::OffsetDateTime::parse(
                    s["expires_at"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap();
                (stored - expiry_of(&renewed, s["id"].as_str().unwrap())).abs() < time::Duration::seconds(1)
            })
    })
    .await;

    // Graph removed one: both are made again (a new clientState), and a run catches up.
    let removed =
        app.fakes.entra.send_lifecycle(&users, ctxsync_fakes::LifecycleEvent::SubscriptionRemoved).await;
    assert_eq!(removed, Some(StatusCode::ACCEPTED));
    let remade = until_subscriptions(&app, "made again", |now| {
        now.len() == 2 && now.iter().all(|n| first.iter().all(|f| f.id != n.id))
    })
    .await;
    assert_eq!(wait_for_runs(&app, &id, 2).await["attributes"]["status"], "succeeded");

    // Missed notifications ask for a run; reauthorization is answered.
    let users = remade.iter().find(|s| s.resource == "/users").unwrap().id.clone();
    let missed = app.fakes.entra.send_lifecycle(&users, ctxsync_fakes::LifecycleEvent::Missed).await;
    assert_eq!(missed, Some(StatusCode::ACCEPTED));
    assert_eq!(wait_for_runs(&app, &id, 3).await["attributes"]["status"], "succeeded");
    let asked =
        app.fakes.entra.send_lifecycle(&users, ctxsync_fakes::LifecycleEvent::ReauthorizationRequired).await;
    assert_eq!(asked, Some(StatusCode::ACCEPTED));
    until_subscriptions(&app, "reauthorized", |now| now.iter().all(|n| !n.needs_reauthorization)).await;

    // One Graph lost without a word is made again at the next renewal.
    assert!(app.fakes.entra.expire_subscription(&users));
    app.clock.advance(Duration::from_secs(3_600));
    until_subscriptions(&app, "made again after it expired", |now| {
        now.len() == 2 && now.iter().all(|n| n.id != users && remade.iter().all(|r| r.id != n.id))
    })
    .await;
    let (_, status) = push(&app, Method::GET, &id).await;
    assert_eq!(status["data"]["attributes"]["rejected"], 0, "{status}");
}

async fn google_config(app: &TestApp) -> String {
    quiet_config(app, app.google_attributes()).await
}

/// Waits until the fake Google's channels pass `check`; them.
async fn until_channels(
    app: &TestApp,
    what: &str,
    check: impl Fn(&[ctxsync_fakes::FakeChannel]) -> bool,
) -> Vec<ctxsync_fakes::FakeChannel> {
    until(what, || app.fakes.google.channels(), check).await
}

/// A plain active user of the fake Workspace account (not the admin the credentials act as).
fn active_google_user(app: &TestApp) -> String {
    let admin = app.fakes.google.admin_email();
    app.fakes
        .google
        .mutate(|t| {
            t.users()
                .find(|u| !u.suspended && !u.archived && u.primary_email != admin)
                .map(|u| u.id().to_string())
        })
        .unwrap()
}

/// A notification as Google posts it; `token` absent when `None`.
async fn notify_google(
    app: &TestApp,
    url: &str,
    channel: &ctxsync_fakes::FakeChannel,
    token: Option<&str>,
    state: &str,
    user: Option<Value>,
) -> StatusCode {
    let mut request = app
        .client
        .post(url)
        .header("X-Goog-Channel-ID", &channel.id)
        .header("X-Goog-Resource-ID", &channel.resource_id)
        .header("X-Goog-Resource-State", state)
        .header("X-Goog-Message-Number", "4242");
    if let Some(token) = token {
        request = request.header("X-Goog-Channel-Token", token);
    }
    if let Some(user) = user {
        request = request.json(&user);
    }
    request.send().await.unwrap().status()
}

async fn next_run_at(app: &TestApp, config: &str) -> time::OffsetDateTime {
    let state = app.store().await.sync_state(config.parse().unwrap()).await.unwrap();
    state.next_run_at.unwrap()
}

#[tokio::test]
async fn a_google_suspension_reaches_the_store_through_a_users_watch_channel() {
    let app = spawn_app().await;
    let id = google_config(&app).await;
    let full_run_due = next_run_at(&app, &id).await;
    let (status, enabled) = push(&app, Method::PUT, &id).await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    let attributes = &enabled["data"]["attributes"];
    let url = format!("{}/api/v2/ctxsync/push/google_workspace/{id}", app.address);
    assert_eq!(attributes["url"], url.as_str());
    for absent in ["secret", "header", "lifecycle_url"] {
        assert!(attributes.get(absent).is_none(), "{absent}: {enabled}");
    }
    let resources: Vec<&str> = attributes["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["resource"].as_str().unwrap())
        .collect();
    let events = ["add", "delete", "makeAdmin", "undelete", "update"];
    assert_eq!(resources, events.map(|e| format!("users?event={e}")));

    // Google opened one channel per event, with a token the answer never showed, for six hours.
    let channels = app.fakes.google.channels();
    assert_eq!(channels.len(), 5);
    for channel in &channels {
        assert_eq!(channel.address, url);
        let token = channel.token.as_deref().unwrap();
        assert!(token.len() >= 32 && !enabled.to_string().contains(token));
        let expires_in = channel.expires - time::OffsetDateTime::now_utc();
        assert!(expires_in > time::Duration::hours(5) && expires_in <= time::Duration::hours(6));
    }
    // A channel's first message says it is open: acknowledged, and counted as nothing.
    let token = channels[0].token.clone();
    assert_eq!(notify_google(&app, &url, &channels[0], token.as_deref(), "sync", None).await, StatusCode::OK);

    let user = active_google_user(&app);
    assert_eq!(user_status(&app, &id, &user).await, "active");
    app.fakes.google.mutate(|t| t.suspend_user(&user));
    println!(
        "suspension in the store {:?} after the change",
        until_user(&app, &id, &user, "suspended").await
    );
    // Only the user was read: a refresh-only run, and the next full run is due when it was.
    let run = wait_for_runs(&app, &id, 2).await;
    assert_eq!(run["attributes"]["kind"], "incremental", "{run}");
    // (The engine reckons it from when the full run began: a few microseconds apart.)
    let due_now = next_run_at(&app, &id).await;
    assert!((due_now - full_run_due).abs() < time::Duration::seconds(1), "{due_now} against {full_run_due}");
    let changed =
        app.list_all(&format!("{OWN}/events?filter[config_id]={id}&filter[type]=user.status_changed")).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["attributes"]["entity_id"], user.as_str());

    // A deleted user: Google answers 404 for it, its own word that the user is gone.
    app.fakes.google.mutate(|t| t.delete_user(&user));
    println!("deletion in the store {:?} after the change", until_user(&app, &id, &user, "gone").await);

    let (_, status) = push(&app, Method::GET, &id).await;
    let attributes = &status["data"]["attributes"];
    assert_eq!((attributes["enabled"].as_bool(), attributes["rejected"].as_u64()), (Some(true), Some(0)));
    assert!(attributes["deliveries"].as_u64() >= Some(2), "{status}");
    assert!(attributes["last_delivery_at"].is_string(), "{status}");
    let shown = attributes["subscriptions"].as_array().unwrap();
    assert!(shown.iter().all(|s| s["expires_at"].is_string()), "{status}");

    // Off: the channels are stopped at Google, and the endpoint is not there for anyone.
    assert_eq!(push(&app, Method::DELETE, &id).await.0, StatusCode::NO_CONTENT);
    assert!(app.fakes.google.channels().is_empty());
    assert_eq!(
        notify_google(&app, &url, &channels[0], token.as_deref(), "update", Some(json!({"id": user}))).await,
        StatusCode::NOT_FOUND
    );

    // A deleted config's channels are stopped too.
    assert_eq!(push(&app, Method::PUT, &id).await.0, StatusCode::OK);
    assert_eq!(app.fakes.google.channels().len(), 5);
    let deleted = app.request(Method::DELETE, &format!("{}/{id}", crate::helpers::BASE), None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(app.fakes.google.channels().is_empty());
}

#[tokio::test]
async fn google_notifications_without_the_token_or_against_the_source_write_nothing() {
    let app = spawn_app().await;
    let id = google_config(&app).await;
    let url = push_url(&app, &id).await;
    let channel = app.fakes.google.channels().into_iter().find(|c| c.event == "update").unwrap();
    let user = active_google_user(&app);
    let suspended = json!({"kind": "admin#directory#user", "id": user, "suspended": true});

    // Someone who knows the endpoint and the channel, but not its token.
    for token in [None, Some("guessed"), Some("")] {
        let status = notify_google(&app, &url, &channel, token, "update", Some(suspended.clone())).await;
        assert_eq!(status, StatusCode::OK, "Google is answered as ever: {token:?}");
    }
    let (_, status) = push(&app, Method::GET, &id).await;
    assert_eq!(status["data"]["attributes"]["rejected"], 3, "{status}");
    assert_eq!(status["data"]["attributes"]["deliveries"], 0, "{status}");
    assert_eq!(run_count(&app, &id).await, 1, "no refused notification asked for a run");

    // Someone holding the token claims a suspension Google never made: the run asks Google.
    let token = channel.token.as_deref();
    assert_eq!(notify_google(&app, &url, &channel, token, "update", Some(suspended)).await, StatusCode::OK);
    let run = wait_for_runs(&app, &id, 2).await;
    assert_eq!(
        (run["attributes"]["status"].as_str(), run["attributes"]["kind"].as_str()),
        (Some("succeeded"), Some("incremental"))
    );
    assert_eq!(user_status(&app, &id, &user).await, "active", "Google says active");
    let events = app.list_all(&format!("{OWN}/events?filter[config_id]={id}")).await;
    assert_eq!(events, Vec::<Value>::new(), "nothing changed");
    // The same message again (its channel and number) counts once and asks for nothing.
    let again = json!({"kind": "admin#directory#user", "id": user});
    assert_eq!(notify_google(&app, &url, &channel, token, "update", Some(again)).await, StatusCode::OK);
    let (_, status) = push(&app, Method::GET, &id).await;
    let attributes = &status["data"]["attributes"];
    assert_eq!(
        (attributes["deliveries"].as_u64(), attributes["duplicate_events"].as_u64()),
        (Some(2), Some(1)),
        "{status}"
    );
    assert_eq!(run_count(&app, &id).await, 2);
    // Not a user notification at all.
    assert_eq!(
        notify_google(&app, &url, &channel, token, "update", Some(json!({"kind": "x"}))).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn google_push_needs_the_public_url_google_delivers_to() {
    let app =
        crate::helpers::spawn_app_with(crate::helpers::Options { public_url: false, ..Default::default() })
            .await;
    let id = google_config(&app).await;
    let (status, refused) = push(&app, Method::PUT, &id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(errors(&refused)[0].contains("CTXSYNC_PUBLIC_URL"), "{refused}");
    assert!(app.fakes.google.channels().is_empty());
}

#[tokio::test]
async fn google_channels_are_replaced_before_they_expire_and_when_google_loses_one() {
    let app = spawn_app().await;
    let id = google_config(&app).await;
    assert_eq!(push(&app, Method::PUT, &id).await.0, StatusCode::OK);
    let first = app.fakes.google.channels();

    // Five hours on, within an hour of their expiry: replaced by new ones, the old ones stopped.
    app.clock.advance(Duration::from_secs(5 * 3600 + 60));
    let replaced = until_channels(&app, "replaced", |now| {
        now.len() == 5 && now.iter().all(|n| first.iter().all(|f| f.id != n.id))
    })
    .await;
    // The store records the new channels once Google has made the last of them.
    until_status(&app, &id, "the new channels stored", |shown| {
        let ids: Vec<&str> = shown.iter().map(|s| s["id"].as_str().unwrap()).collect();
        replaced.iter().all(|c| ids.contains(&c.id.as_str()))
    })
    .await;

    // One Google lost (expired early) is made again at the next renewal, and delivers.
    let update = replaced.iter().find(|c| c.event == "update").unwrap().id.clone();
    assert!(app.fakes.google.expire_channel(&update));
    app.clock.advance(Duration::from_secs(5 * 3600 + 60));
    let remade = until_channels(&app, "made again", |now| {
        now.len() == 5 && now.iter().all(|n| replaced.iter().all(|r| r.id != n.id))
    })
    .await;
    assert!(remade.iter().any(|c| c.event == "update"));
    let runs = run_count(&app, &id).await;
    let user = active_google_user(&app);
    app.fakes.google.mutate(|t| t.suspend_user(&user));
    until_user(&app, &id, &user, "suspended").await;
    assert!(run_count(&app, &id).await > runs);
    let (_, status) = push(&app, Method::GET, &id).await;
    assert_eq!(status["data"]["attributes"]["rejected"], 0, "{status}");
}
