//! A sync run: Graph delta queries over users, groups (with `members@delta`) and devices, each
//! followed from its first page to its `@odata.deltaLink`. The three delta links are the cursor
//! of the next run, which asks them for what changed since. Directory role assignments are read
//! beside them, since no delta query tracks them. A full run ends by asking Graph how many users,
//! groups and devices there are (`$count`), for the engine to check the listing against.
//!
//! Device owners (`registeredOwners`) are a relationship no delta query can expand. A full run
//! therefore lists the devices with their owners expanded and starts the devices' delta from
//! that moment (`$deltatoken=latest`); an incremental run reads the owners of each page's
//! changed devices from the device list filtered to their ids (`owners.rs`). What Graph is asked
//! for and answers is in `wire.rs`.
//!
//! The three rounds go on at the same time, so a large tenant's run is not one request at a time
//! (the pacer keeps them within the config's share of Graph's budget). Pages go to the sink as
//! they arrive, so memory stays flat whatever the tenant's size; only the role assignments
//! (admins are few) are held for the whole run.
//!
//! A full run marks each round's progress so a stopped one can be resumed (`SyncMode::Resume`):
//! users and groups with every page (the next link, or the delta link once the round ended),
//! devices once listed, and the role assignments it read (or, when the app may no longer read
//! them, those the last run's cursor holds, rather than revoking every admin's roles in the
//! store; a scheduled full run is given that cursor too). A resumed run keeps those roles, asks
//! for the totals again (three requests) and goes on with each round from its mark; a link Graph
//! no longer honours (410) means starting over.

#[path = "owners.rs"]
mod owners;
#[path = "wire.rs"]
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use ctxsync_core::{Entity, Membership, Record};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::client::{Failure, GraphClient};
use super::map::{self, GraphUser};
use crate::SourceError;
use crate::http::Reply;
use crate::lenient;
use crate::sync::{
    Coverage, Cursor, Expected, Mark, Outcome, Page, PageSink, Removal, SinkError, SyncError, SyncMode,
    overlapped, role_changes,
};
use wire::{DeltaPage, Item, Listing, Objects, RoleAssignments, USER_SELECT, decode};

/// Delta queries take no `$top`; this preference asks for Graph's largest pages.
const PAGE_SIZE: (&str, &str) = ("Prefer", "odata.maxpagesize=999");
/// `$count` on directory objects is an advanced query, and answers a bare integer.
const COUNT: [(&str, &str); 2] = [("ConsistencyLevel", "eventual"), ("Accept", "text/plain")];
/// The most ids one delta `$filter` may name.
const FILTER_IDS: usize = 50;
/// The cursor: each delta round's `@odata.deltaLink` as Graph wrote it, and who held which
/// directory role (`None` when the app may not read role assignments).
#[derive(Debug, Serialize, Deserialize)]
struct DeltaCursor {
    users: String,
    groups: String,
    devices: String,
    #[serde(default)]
    admin_roles: Option<BTreeMap<String, Vec<String>>>,
}

/// The role assignments the run that left `cursor` read; none from a cursor this connector
/// cannot read, since the run is full anyway.
fn last_roles(cursor: Option<Cursor>) -> Option<BTreeMap<String, Vec<String>>> {
    serde_json::from_value::<DeltaCursor>(cursor?.0).ok()?.admin_roles
}

/// The mark of the role assignments a full run read first.
const ROLES: &str = "roles";

/// How far a full run's round got.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RoundMark {
    /// The next page's link as Graph wrote it.
    next: Option<String>,
    /// The round's delta link, once it ended.
    delta: Option<String>,
    /// The last group handed over: the next page may repeat it with more members.
    last_group: Option<Value>,
}

/// Where a round starts: from its beginning or a mark's link, or it had ended with `Done`'s
/// delta link.
enum From {
    Start(Url),
    Done(String),
}

/// One run. Its rounds go on at the same time, so what they share is behind locks: the sink
/// takes one whole page at a time.
struct Run<'s> {
    sink: tokio::sync::Mutex<&'s mut dyn PageSink>,
    incremental: bool,
    /// A full run marks its pages; a resumed one goes on from marks, so a link Graph no longer
    /// honours means starting over.
    marking: bool,
    resumed: bool,
    /// Display names of the directory roles each user holds.
    roles: BTreeMap<String, Vec<String>>,
    /// Users whose roles changed since the last run and who have not come through the users
    /// delta yet: they are fetched on their own after it.
    role_changes: Mutex<BTreeSet<String>>,
    /// The last group put on a page: Graph repeats a big group on the next page with the next
    /// slice of its members, and that repeat is not a new record.
    last_group: Mutex<Option<Value>>,
    /// Graph refused to read device owners: the rest of the run does not ask again.
    owners_denied: AtomicBool,
    /// Retries of requests that bring no page (role assignments, counts, the devices' delta
    /// link), handed over with the next page so the run reports them.
    retries: AtomicU32,
}

pub(super) async fn sync(
    client: &GraphClient<'_>,
    mode: SyncMode,
    sink: &mut dyn PageSink,
) -> Result<Outcome, SyncError> {
    let (previous, resume, last_roles) = match mode {
        SyncMode::Full => (None, None, None),
        SyncMode::FullAfter(cursor) => (None, None, last_roles(Some(cursor))),
        SyncMode::Resume(checkpoint, after) => (None, Some(checkpoint), last_roles(after)),
        SyncMode::Incremental(Cursor(cursor)) => {
            let previous = serde_json::from_value::<DeltaCursor>(cursor).map_err(|error| {
                tracing::warn!(%error, "the stored Entra ID cursor is not readable; a full sync is needed");
                SyncError::CursorExpired
            })?;
            let last = previous.admin_roles.clone();
            (Some(previous), None, last)
        }
    };
    let marks = resume.clone().unwrap_or_default();
    // A resumed run's users carry the roles the first part's did, and its cursor keeps them, so
    // the next incremental run sees any change made since.
    let kept: Option<Option<BTreeMap<String, Vec<String>>>> = marks.get(ROLES);
    let fresh = kept.is_none() && previous.is_none();
    let (roles, mut retries) = match kept {
        Some(roles) => (roles, 0),
        None => admin_roles(client, last_roles).await?,
    };
    if fresh {
        sink.accept(Page { mark: Some(Mark::at(ROLES, &roles)), ..Page::default() }).await?;
    }
    let role_changes = match &previous {
        Some(previous) => role_changes(previous.admin_roles.as_ref(), roles.as_ref()),
        None => BTreeSet::new(),
    };
    let start = |listing: Listing, link: Option<&String>| -> Result<From, SyncError> {
        if let Some(mark) = marks.get::<RoundMark>(listing.name()) {
            match mark {
                RoundMark { delta: Some(delta), .. } => return Ok(From::Done(delta)),
                RoundMark { next: Some(next), .. } => return Ok(From::Start(client.rebase(&next)?)),
                _ => {}
            }
        }
        Ok(From::Start(match link {
            Some(link) => client.rebase(link)?,
            None => client.url(&[listing.name(), "delta"], &format!("$select={}", listing.select())),
        }))
    };
    let [users, groups] = [
        start(Listing::Users, previous.as_ref().map(|p| &p.users))?,
        start(Listing::Groups, previous.as_ref().map(|p| &p.groups))?,
    ];
    let devices = match (&previous, marks.get::<RoundMark>(Listing::Devices.name())) {
        (Some(previous), _) => Some(From::Start(client.rebase(&previous.devices)?)),
        (None, Some(RoundMark { delta: Some(delta), .. })) => Some(From::Done(delta)),
        (None, Some(RoundMark { next: Some(next), .. })) => Some(From::Start(client.rebase(&next)?)),
        (None, _) => None,
    };
    let last_group = marks.get::<RoundMark>(Listing::Groups.name()).and_then(|m| m.last_group);
    let expected = if previous.is_some() {
        Expected::new()
    } else {
        let (expected, counting) = totals(client).await;
        retries += counting;
        expected
    };
    for (kind, total) in &expected {
        sink.announce(kind, *total);
    }
    let run = Run {
        sink: tokio::sync::Mutex::new(sink),
        incremental: previous.is_some(),
        marking: previous.is_none(),
        resumed: resume.is_some(),
        roles: roles.clone().unwrap_or_default(),
        role_changes: Mutex::new(role_changes),
        last_group: Mutex::new(last_group),
        owners_denied: AtomicBool::new(false),
        retries: AtomicU32::new(retries),
    };
    let users = async {
        let delta = run.go_on(client, Listing::Users, users).await?;
        run.refresh_role_changes(client).await?;
        Ok(delta)
    };
    let devices = async {
        match devices {
            Some(from) => run.go_on(client, Listing::Devices, from).await,
            None => run.all_devices(client).await,
        }
    };
    let (users, groups, devices) =
        tokio::try_join!(users, run.go_on(client, Listing::Groups, groups), devices)?;
    let coverage = if run.incremental {
        Coverage::Changes { groups_with_all_members: Vec::new() }
    } else {
        Coverage::Everything
    };
    let cursor = DeltaCursor { users, groups, devices, admin_roles: roles };
    let cursor = serde_json::to_value(cursor).expect("a cursor of strings serializes");
    Ok(Outcome { cursor: Some(Cursor(cursor)), coverage, expected })
}

/// Graph's own totals for a full run, asked before the listing (so they also show its
/// progress): each collection's `$count`, which counts what an initial delta round lists (every
/// object, no filter). A total Graph does not give is left out: the
/// listing is complete without it. Memberships are counted only group by group, a request per
/// group, so they go unchecked.
/// Also returns the retries the counting took.
async fn totals(client: &GraphClient<'_>) -> (Expected, u32) {
    let decode = |r: &Reply| {
        let text = std::str::from_utf8(&r.body).ok()?;
        text.trim_start_matches('\u{feff}').trim().parse::<u64>().ok()
    };
    let (mut expected, mut retries) = (Expected::new(), 0);
    for listing in [Listing::Users, Listing::Groups, Listing::Devices] {
        let url = client.url(&[listing.name(), "$count"], "");
        let what = format!("{}/$count", listing.name());
        match client.fetch(&url, &what, &COUNT, decode).await {
            Ok((total, retried)) => {
                if listing == Listing::Users {
                    client.tenant_size(total);
                }
                expected.insert(listing.kind().as_str().to_string(), total);
                retries += retried;
            }
            Err(failure) => tracing::warn!(
                error = %failure.into_source(),
                "Microsoft Graph did not count the {}; the run is not checked against a total for them",
                listing.name()
            ),
        }
    }
    (expected, retries)
}

/// Every directory role assignment, as user id → role names. When the app lacks the
/// permission, which costs the admin roles but not the run: `last` (what a previous run read),
/// so a lost permission does not revoke every admin's roles in the store, or `None`.
/// Also returns the retries the listing took.
async fn admin_roles(
    client: &GraphClient<'_>,
    last: Option<BTreeMap<String, Vec<String>>>,
) -> Result<(Option<BTreeMap<String, Vec<String>>>, u32), SyncError> {
    let mut url = client.url(&["roleManagement", "directory", "roleAssignments"], "$expand=roleDefinition");
    let mut roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut retries = 0;
    loop {
        let decode = |r: &Reply| serde_json::from_slice::<RoleAssignments>(&r.body).ok();
        let page = match client.fetch(&url, "directory role assignments", &[], decode).await {
            Ok((page, retried)) => {
                retries += retried;
                page
            }
            Err(Failure::Denied(error)) => {
                match &last {
                    Some(last) => tracing::warn!(
                        %error,
                        admins = last.len(),
                        "cannot read directory role assignments any more: keeping the roles the last run read \
                         until the app may (grant it RoleManagement.Read.Directory)"
                    ),
                    None => tracing::warn!(
                        %error,
                        "cannot read directory role assignments: users are synced without admin roles; grant the \
                         app RoleManagement.Read.Directory to include them"
                    ),
                }
                return Ok((last, retries));
            }
            Err(failure) => return Err(failure.into_source().into()),
        };
        for assignment in page.value {
            let name = assignment.role_definition.and_then(|d| d.display_name);
            if let (Some(principal), Some(name)) = (assignment.principal_id, name) {
                let held = roles.entry(principal).or_default();
                if !held.contains(&name) {
                    held.push(name);
                }
            }
        }
        match page.next_link {
            Some(next) => url = client.rebase(&next)?,
            None => break,
        }
    }
    for held in roles.values_mut() {
        held.sort();
    }
    Ok((Some(roles), retries))
}

impl Run<'_> {
    /// A round from where `from` says; its delta link.
    async fn go_on(
        &self,
        client: &GraphClient<'_>,
        listing: Listing,
        from: From,
    ) -> Result<String, SyncError> {
        match from {
            From::Start(start) => self.round(client, listing, start).await,
            From::Done(delta) => Ok(delta),
        }
    }

    /// A full run's mark of `listing`: its next link, or the delta link it ended with.
    fn mark(&self, listing: Listing, next: Option<&str>, delta: Option<&str>) -> Option<Mark> {
        self.marking.then(|| {
            let mark = RoundMark {
                next: next.map(str::to_owned),
                delta: delta.map(str::to_owned),
                last_group: (listing == Listing::Groups)
                    .then(|| self.last_group.lock().expect("last group lock").clone())
                    .flatten(),
            };
            Mark::at(listing.name(), &mark)
        })
    }

    /// Follows one delta round from `start` to its end, handing each page to the sink; returns
    /// the round's delta link. The next page is requested before this one is mapped and stored,
    /// so Graph's latency overlaps the work on our side.
    async fn round(
        &self,
        client: &GraphClient<'_>,
        listing: Listing,
        start: Url,
    ) -> Result<String, SyncError> {
        let decode = decode(listing);
        let mut fetched = client.fetch(&start, listing.name(), &[PAGE_SIZE], &decode).await;
        let mut pages = 0u32;
        loop {
            let (page, mut retries) = fetched.map_err(|f| self.failure(f))?;
            pages += 1;
            let DeltaPage { mut value, next_link, delta_link } = page;
            if let Objects::Devices(devices) = &mut value {
                retries += self.attach_owners(client, devices).await?;
            }
            let next = match (&next_link, &delta_link) {
                (Some(next), _) => Some(client.rebase(next)?),
                (None, Some(_)) => None,
                (None, None) => {
                    return Err(SourceError::Unreachable(format!(
                        "{} ended a page of {} with neither @odata.nextLink nor @odata.deltaLink; try again",
                        client.graph().display(),
                        listing.name()
                    ))
                    .into());
                }
            };
            let store = async {
                let mut out = self.page(value);
                out.mark = self.mark(listing, next_link.as_deref(), delta_link.as_deref());
                self.hand_over(out, retries).await
            };
            let Some(next) = next else {
                store.await?;
                tracing::debug!(listing = listing.name(), pages, "delta round complete");
                return Ok(delta_link.expect("a round without a next link has a delta link"));
            };
            let ((), next_page) =
                overlapped(store, client.fetch(&next, listing.name(), &[PAGE_SIZE], &decode)).await?;
            fetched = next_page;
        }
    }

    /// Hands `out` to the sink with the retries of its request, `retries`, and those of requests
    /// that brought no page since the last one went.
    async fn hand_over(&self, mut out: Page, retries: u32) -> Result<(), SinkError> {
        let mut sink = self.sink.lock().await;
        out.retries = retries + self.retries.swap(0, Ordering::Relaxed);
        sink.accept(out).await
    }

    /// A token Graph no longer knows means a full sync, unless this already is one that
    /// started from the beginning.
    fn failure(&self, failure: Failure) -> SyncError {
        match failure {
            Failure::Gone if self.incremental || self.resumed => SyncError::CursorExpired,
            other => SyncError::Source(other.into_source()),
        }
    }

    /// One delta page in the entity model: objects as records, `@removed` objects and members
    /// as removals, `members@delta` as memberships.
    fn page(&self, objects: Objects) -> Page {
        let mut page = Page::default();
        match objects {
            Objects::Users(users) => {
                for raw in users {
                    let mut held = None;
                    let user: GraphUser = lenient::read(&raw, &mut held);
                    let Some(id) = self.changed(Listing::Users, user.id(), user.removed(), &mut page) else {
                        continue;
                    };
                    let roles = self.roles.get(&id).map_or(&[][..], Vec::as_slice);
                    let user = map::user(&id, &user, roles);
                    page.records.push(Record { entity: Entity::User(user), raw });
                }
            }
            Objects::Groups(items) => {
                for Item { object, members } in items {
                    let id = object.get("id").and_then(Value::as_str);
                    let Some(id) =
                        self.changed(Listing::Groups, id, object.contains_key("@removed"), &mut page)
                    else {
                        continue;
                    };
                    memberships(&id, members.unwrap_or_default(), &mut page);
                    let group = map::group(&id, &object);
                    let raw = Value::Object(object);
                    let mut last_group = self.last_group.lock().expect("last group lock");
                    if last_group.as_ref() == Some(&raw) {
                        continue;
                    }
                    page.records.push(Record::from_value(Entity::Group(group), &raw));
                    *last_group = Some(raw);
                }
            }
            Objects::Devices(items) => {
                for Item { object, .. } in items {
                    let id = object.get("id").and_then(Value::as_str);
                    let Some(id) =
                        self.changed(Listing::Devices, id, object.contains_key("@removed"), &mut page)
                    else {
                        continue;
                    };
                    let device = map::device(&id, &object);
                    page.records.push(Record::from_value(Entity::Device(device), &Value::Object(object)));
                }
            }
        }
        page
    }

    /// The id of a delta entry to map; `None` for an entry without one (skipped) or one saying
    /// the object was deleted (a removal on `page`).
    fn changed(&self, listing: Listing, id: Option<&str>, removed: bool, page: &mut Page) -> Option<String> {
        let Some(id) = id else {
            tracing::warn!(listing = listing.name(), "skipped an object without an id");
            return None;
        };
        if listing == Listing::Users {
            self.role_changes.lock().expect("role changes lock").remove(id);
        }
        if removed {
            page.removals.push(Removal::Entity { kind: listing.kind(), source_id: id.to_string() });
            return None;
        }
        Some(id.to_string())
    }

    /// Users whose roles changed but who did not change themselves, read through a delta query
    /// filtered to their ids: the same shape as the round's, with their current state.
    async fn refresh_role_changes(&self, client: &GraphClient<'_>) -> Result<(), SyncError> {
        let ids: Vec<String> =
            std::mem::take(&mut *self.role_changes.lock().expect("role changes lock")).into_iter().collect();
        for chunk in ids.chunks(FILTER_IDS) {
            let filter = chunk
                .iter()
                .map(|id| format!("id eq '{}'", id.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(" or ");
            let filter: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
            let url = client.url(&["users", "delta"], &format!("$filter={filter}&$select={USER_SELECT}"));
            // The filtered round's own delta link is of no use: the main round's is the cursor.
            self.round(client, Listing::Users, url).await?;
        }
        Ok(())
    }
}

/// `members@delta` entries as memberships, or as removals when they carry `@removed`.
fn memberships(group: &str, members: Vec<map::Member>, page: &mut Page) {
    for member in members {
        let (Some(kind), removed) = (member.kind(), member.removed()) else { continue };
        let Some(member_id) = member.id else { continue };
        let membership = Membership { group_id: group.to_string(), member_kind: kind, member_id };
        if removed {
            page.removals.push(Removal::Membership(membership));
        } else {
            page.memberships.push(membership);
        }
    }
}

#[cfg(test)]
#[path = "proptests.rs"]
mod proptests;
