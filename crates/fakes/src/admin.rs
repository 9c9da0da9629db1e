//! The fakes' admin API, under `/_fake/{source}/…` on each fake's own server: what an admin
//! would do in the vendor's console, so a newcomer running `ctxsync demo` can provoke change
//! events, held runs and incomplete listings on purpose.
//!
//! Every change goes through the tenant's own model ([`Lifecycle`] for an identity provider,
//! [`Fleet`] for an EDR, written once per source over its mutation methods), so the vendor API's
//! listings, `lastUpdated` and `modified_timestamp` filters, delta rounds and totals show it
//! exactly as they show a test's mutations. The routes sit outside the fake's rate limit and fault
//! gate: they are not part of the vendor's API.
//!
//! | route | effect |
//! |---|---|
//! | `POST /_fake/{source}/users` `{"given_name", "family_name"}` | adds an active user (201, its id) |
//! | `POST /_fake/{source}/users/{id}/suspend`, `…/unsuspend` | suspends or reactivates a user |
//! | `POST /_fake/{source}/users/{id}/rename` `{"family_name"}` | changes a user's family name |
//! | `PUT`, `DELETE /_fake/{source}/groups/{group}/members/{user}` | adds a member, removes one |
//! | `POST /_fake/{source}/clear_users` | deletes every user but the credential holders |
//! | `POST /_fake/{source}/drop_page` `{"listing"}` | the next page of that listing goes missing |
//!
//! And for `entra`'s change notifications (Graph's subscriptions, by id):
//!
//! | route | effect |
//! |---|---|
//! | `POST /_fake/entra/subscriptions/{id}/lifecycle` `{"lifecycleEvent"}` | sends `reauthorizationRequired`, `subscriptionRemoved` (removing it) or `missed` to its lifecycle URL |
//! | `POST /_fake/entra/subscriptions/{id}/expire` | it expires now: no more notifications, and Graph no longer knows it |
//!
//! And for `crowdstrike` and `sentinelone`:
//!
//! | route | effect |
//! |---|---|
//! | `POST /_fake/{source}/hosts` `{"hostname", "handle"}` | a new Windows host last used by that person (201, its id) |
//! | `POST /_fake/{source}/hosts/{id}/contain`, `…/release` | cuts a host off the network, reconnects it |
//! | `POST /_fake/{source}/hosts/{id}/logon` `{"handle"}` | that person logged on last |
//! | `POST /_fake/{source}/hosts/{id}/os` `{"build"}` | an OS update to that build |
//! | `DELETE /_fake/{source}/hosts/{id}` | hidden (Falcon) or decommissioned (SentinelOne) |
//! | `POST /_fake/{source}/drop_page` `{"listing": "devices"}` | the next page of hosts goes missing |

use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::common::Refusal;
use crate::faults::{Faults, Listing};

/// Where a user stands, in the terms every source shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Active,
    Suspended,
    /// Staged, deprovisioned, archived, locked out…: neither to suspend nor to reactivate.
    Other,
}

/// What the admin API and the churn do to one source's tenant, in that source's own model.
/// Methods taking an id expect a live one (callers check with [`Lifecycle::standing`]).
pub trait Lifecycle {
    /// Every live user whose credentials the fake does not hand out, with its standing.
    fn changeable_users(&self) -> Vec<(String, Standing)>;
    /// `None` when there is no such live user.
    fn standing(&self, user: &str) -> Option<Standing>;
    fn suspend(&mut self, user: &str);
    fn unsuspend(&mut self, user: &str);
    /// A new active user; `None` when its address would be another user's.
    fn hire(&mut self, given: &str, family: &str) -> Option<String>;
    fn rename(&mut self, user: &str, family: &str);
    fn group_ids(&self) -> Vec<String>;
    /// The groups the user is a direct member of.
    fn groups_of(&self, user: &str) -> Vec<String>;
    fn join(&mut self, group: &str, user: &str);
    fn leave(&mut self, group: &str, user: &str);
    fn remove(&mut self, user: &str);
}

/// What the admin API and the churn do to an EDR's fleet, in that source's own model. Methods
/// taking an id expect a listed host (callers check with [`Fleet::contained`]).
pub trait Fleet {
    /// Every host the console lists, and whether it is contained.
    fn hosts(&self) -> Vec<(String, bool)>;
    /// Whether the listed host `id` is contained; `None` when the console lists no such host.
    fn contained(&self, id: &str) -> Option<bool> {
        self.hosts().into_iter().find(|(h, _)| h == id).map(|(_, contained)| contained)
    }
    fn set_contained(&mut self, id: &str, contained: bool);
    /// A new Windows host last used by the person with `handle`; its id.
    fn add(&mut self, hostname: &str, handle: &str) -> String;
    fn log_on(&mut self, id: &str, handle: &str);
    fn update_os(&mut self, id: &str, build: &str);
    /// Gone from the console's listing: hidden (Falcon) or decommissioned (SentinelOne).
    fn retire(&mut self, id: &str);
}

/// A fake's shared state, as far as the admin API needs it.
pub(crate) trait FakeState: Send + Sync + 'static {
    type Tenant: Send + Sync;
    fn tenant(&self) -> &RwLock<Self::Tenant>;
    fn faults(&self) -> &Faults;
}

/// The admin routes of the identity provider's fake named `source` (`okta`, `google`, `entra`).
pub(crate) fn router<S: FakeState<Tenant: Lifecycle>>(source: &str) -> Router<Arc<S>> {
    let at = |path: &str| format!("/_fake/{source}{path}");
    Router::new()
        .route(&at("/users"), post(hire::<S>))
        .route(&at("/users/{id}/suspend"), post(suspend::<S>))
        .route(&at("/users/{id}/unsuspend"), post(unsuspend::<S>))
        .route(&at("/users/{id}/rename"), post(rename::<S>))
        .route(&at("/groups/{group}/members/{user}"), put(join::<S>).delete(leave::<S>))
        .route(&at("/clear_users"), post(clear_users::<S>))
        .route(&at("/drop_page"), post(drop_page::<S>))
}

/// The admin routes of the EDR's fake named `source` (`crowdstrike`, `sentinelone`).
pub(crate) fn fleet_router<S: FakeState<Tenant: Fleet>>(source: &str) -> Router<Arc<S>> {
    let at = |path: &str| format!("/_fake/{source}{path}");
    Router::new()
        .route(&at("/hosts"), post(add_host::<S>))
        .route(&at("/hosts/{id}"), delete(retire::<S>))
        .route(&at("/hosts/{id}/contain"), post(contain::<S>))
        .route(&at("/hosts/{id}/release"), post(release::<S>))
        .route(&at("/hosts/{id}/logon"), post(log_on::<S>))
        .route(&at("/hosts/{id}/os"), post(update_os::<S>))
        .route(&at("/drop_page"), post(drop_page::<S>))
}

fn refused(status: StatusCode, message: String) -> Refusal {
    Refusal::new((status, Json(json!({"error": message}))))
}

fn no_user(id: &str) -> Refusal {
    refused(StatusCode::NOT_FOUND, format!("no user {id} in the fake tenant"))
}

fn changed(id: &str) -> Response {
    Json(json!({"id": id})).into_response()
}

/// The user's standing, or 404.
fn live<T: Lifecycle>(tenant: &T, id: &str) -> Result<Standing, Refusal> {
    tenant.standing(id).ok_or_else(|| no_user(id))
}

#[derive(Deserialize)]
struct NewUser {
    given_name: String,
    family_name: String,
}

async fn hire<S: FakeState<Tenant: Lifecycle>>(
    State(state): State<Arc<S>>,
    Json(body): Json<NewUser>,
) -> Result<Response, Refusal> {
    let mut tenant = state.tenant().write().expect("tenant lock");
    let id = tenant.hire(body.given_name.trim(), body.family_name.trim()).ok_or_else(|| {
        refused(StatusCode::CONFLICT, "another user has that name's address; pick another name".into())
    })?;
    Ok((StatusCode::CREATED, changed(&id)).into_response())
}

async fn suspend<S: FakeState<Tenant: Lifecycle>>(
    State(state): State<Arc<S>>,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let mut tenant = state.tenant().write().expect("tenant lock");
    match live(&*tenant, &id)? {
        Standing::Active => tenant.suspend(&id),
        _ => return Err(refused(StatusCode::CONFLICT, format!("user {id} is not active"))),
    }
    Ok(changed(&id))
}

async fn unsuspend<S: FakeState<Tenant: Lifecycle>>(
    State(state): State<Arc<S>>,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let mut tenant = state.tenant().write().expect("tenant lock");
    match live(&*tenant, &id)? {
        Standing::Suspended => tenant.unsuspend(&id),
        _ => return Err(refused(StatusCode::CONFLICT, format!("user {id} is not suspended"))),
    }
    Ok(changed(&id))
}

#[derive(Deserialize)]
struct Rename {
    family_name: String,
}

async fn rename<S: FakeState<Tenant: Lifecycle>>(
    State(state): State<Arc<S>>,
    Path(id): Path<String>,
    Json(body): Json<Rename>,
) -> Result<Response, Refusal> {
    let mut tenant = state.tenant().write().expect("tenant lock");
    live(&*tenant, &id)?;
    tenant.rename(&id, body.family_name.trim());
    Ok(changed(&id))
}

/// The group's and the user's existence, or 404.
fn membership<T: Lifecycle>(tenant: &T, group: &str, user: &str) -> Result<(), Refusal> {
    live(tenant, user)?;
    if tenant.group_ids().iter().any(|g| g == group) {
        Ok(())
    } else {
        Err(refused(StatusCode::NOT_FOUND, format!("no group {group} in the fake tenant")))
    }
}

async fn join<S: FakeState<Tenant: Lifecycle>>(
    State(state): State<Arc<S>>,
    Path((group, user)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let mut tenant = state.tenant().write().expect("tenant lock");
    membership(&*tenant, &group, &user)?;
    tenant.join(&group, &user);
    Ok(changed(&user))
}

async fn leave<S: FakeState<Tenant: Lifecycle>>(
    State(state): State<Arc<S>>,
    Path((group, user)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let mut tenant = state.tenant().write().expect("tenant lock");
    membership(&*tenant, &group, &user)?;
    tenant.leave(&group, &user);
    Ok(changed(&user))
}

/// Deletes every changeable user: the next full run would delete nearly everything, which the
/// deletion guard holds for review.
async fn clear_users<S: FakeState<Tenant: Lifecycle>>(State(state): State<Arc<S>>) -> Response {
    let mut tenant = state.tenant().write().expect("tenant lock");
    let users = tenant.changeable_users();
    for (id, _) in &users {
        tenant.remove(id);
    }
    Json(json!({"deleted": users.len()})).into_response()
}

#[derive(Deserialize)]
struct DropPage {
    listing: String,
}

/// The next page of the listing is skipped, its items never served: the run's count falls
/// short of the source's totals, so its deletions are held.
async fn drop_page<S: FakeState>(
    State(state): State<Arc<S>>,
    Json(body): Json<DropPage>,
) -> Result<Response, Refusal> {
    let listing = match body.listing.as_str() {
        "users" => Listing::Users,
        "groups" => Listing::Groups,
        "members" => Listing::Members,
        "devices" => Listing::Devices,
        other => {
            let message = format!("listing must be users, groups, members or devices, not {other:?}");
            return Err(refused(StatusCode::BAD_REQUEST, message));
        }
    };
    state.faults().drop_page(listing, 0);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn no_host(id: &str) -> Refusal {
    refused(StatusCode::NOT_FOUND, format!("no host {id} in the fake fleet"))
}

#[derive(Deserialize)]
struct NewHost {
    hostname: String,
    handle: String,
}

async fn add_host<S: FakeState<Tenant: Fleet>>(
    State(state): State<Arc<S>>,
    Json(body): Json<NewHost>,
) -> Response {
    let id = state.tenant().write().expect("tenant lock").add(body.hostname.trim(), body.handle.trim());
    (StatusCode::CREATED, changed(&id)).into_response()
}

/// Contains (`contain`) or releases the host: 409 when it already is.
fn set_contained<F: Fleet>(fleet: &mut F, id: &str, contain: bool) -> Result<Response, Refusal> {
    match fleet.contained(id) {
        None => Err(no_host(id)),
        Some(now) if now == contain => {
            let state = if contain { "contained" } else { "not contained" };
            Err(refused(StatusCode::CONFLICT, format!("host {id} is already {state}")))
        }
        Some(_) => {
            fleet.set_contained(id, contain);
            Ok(changed(id))
        }
    }
}

async fn contain<S: FakeState<Tenant: Fleet>>(
    State(state): State<Arc<S>>,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    set_contained(&mut *state.tenant().write().expect("tenant lock"), &id, true)
}

async fn release<S: FakeState<Tenant: Fleet>>(
    State(state): State<Arc<S>>,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    set_contained(&mut *state.tenant().write().expect("tenant lock"), &id, false)
}

#[derive(Deserialize)]
struct LogOn {
    handle: String,
}

async fn log_on<S: FakeState<Tenant: Fleet>>(
    State(state): State<Arc<S>>,
    Path(id): Path<String>,
    Json(body): Json<LogOn>,
) -> Result<Response, Refusal> {
    let mut fleet = state.tenant().write().expect("tenant lock");
    fleet.contained(&id).ok_or_else(|| no_host(&id))?;
    fleet.log_on(&id, body.handle.trim());
    Ok(changed(&id))
}

#[derive(Deserialize)]
struct OsUpdate {
    build: String,
}

async fn update_os<S: FakeState<Tenant: Fleet>>(
    State(state): State<Arc<S>>,
    Path(id): Path<String>,
    Json(body): Json<OsUpdate>,
) -> Result<Response, Refusal> {
    let mut fleet = state.tenant().write().expect("tenant lock");
    fleet.contained(&id).ok_or_else(|| no_host(&id))?;
    fleet.update_os(&id, body.build.trim());
    Ok(changed(&id))
}

async fn retire<S: FakeState<Tenant: Fleet>>(
    State(state): State<Arc<S>>,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let mut fleet = state.tenant().write().expect("tenant lock");
    fleet.contained(&id).ok_or_else(|| no_host(&id))?;
    fleet.retire(&id);
    Ok(changed(&id))
}
