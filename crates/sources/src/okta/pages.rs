//! A sync run against one Okta org.
//!
//! A full run lists every user (the default listing, then `status eq "DEPROVISIONED"`, which
//! the default hides), every group (with `expand=stats`, whose `usersCount`s add up to the
//! memberships the run should hand over), and each group's members. An incremental run asks only
//! for what moved since the cursor: users and groups by `lastUpdated`, and the groups whose
//! `lastMembershipUpdated` moved, whose members it lists again in full.
//!
//! Admin roles come from the users with role assignments (`/iam/assignees/users`) and then
//! each one's roles: admins are few, so this stays cheap where asking every user would not.
//! Role changes do not move a user's `lastUpdated`, so the cursor keeps the roles last seen and
//! an incremental run re-reads any user whose roles differ. A token that may no longer read
//! roles keeps those the last run read (from the cursor, which scheduled full and resumed runs
//! are given too), with a warning, rather than revoking every admin's roles in the store. The
//! users a push names are read after a run, with the roles in its cursor. Factors
//! (`okta_include_factors`) cost a request per user and are read only for the users a run lists.
//!
//! Pages go to the sink as they arrive; only the admin roles are held for the whole run.
//!
//! A full run marks its progress so a stopped one can be resumed (`SyncMode::Resume`): the users
//! listing with each page (the next page's link, the newest `lastUpdated` so far), the groups
//! listing once a page of groups and all their members went to the sink (the next page, the
//! members Okta counted so far, the groups it could not list). Okta's `after` links do not
//! expire, so a resumed run asks again only for what it had not marked: the pages in flight, and
//! the members of the groups page it was in. The admin roles the first part read are kept too
//! (marked before its users, though the groups' marks may come first). Every mark keeps when the first run
//! began by Okta's clock: the cursor it ends with must not pass that.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use ctxsync_core::{Entity, EntityKind, Membership, MfaFactor, RateLimitShare, Record, Settings, User};
use futures::{Stream, StreamExt, TryStreamExt, stream};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use url::{Position, Url};

use super::OktaCredentials;
use super::client::{Got, OktaClient};
use super::cursor::{self, Newest, OktaCursor, okta_time, read_cursor};
use super::map::{self, OktaUser};
use crate::SourceError;
use crate::endpoints::Target;
use crate::http::Http;
use crate::lenient;
use crate::sync::{
    Checkpoint, Coverage, Cursor, Expected, MEMBERSHIP, Mark, Named, Outcome, Page, PageSink, Removal, Roles,
    SyncError, SyncMode, overlapped, role_changes,
};

/// Okta's largest page for users and members, and its recommendation for groups.
const PAGE_SIZE: &str = "200";

/// A full run's page of groups. A page of groups and all their members is the unit a stopped run
/// goes on from, and in a large org it is hundreds of member requests, so a stopped run would
/// ask for about half of that again; at 20 groups a page it is a few, for one more groups request
/// per 20 groups.
const GROUPS_PER_MARK: &str = "20";
/// The settings key that turns on reading each listed user's factors (default off).
use super::INCLUDE_FACTORS;

#[derive(Deserialize)]
struct Assignees {
    #[serde(default)]
    value: Vec<Id>,
    #[serde(default, rename = "_links")]
    links: Links,
}

/// An object read only for its id: a group's members are whole user objects, and decoding
/// just the id skips building the rest.
#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Default, Deserialize)]
struct Links {
    next: Option<Href>,
}

#[derive(Deserialize)]
struct Href {
    href: String,
}

/// Which groups listing a pass makes, and what it does with each group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupPass {
    /// Every group, with its members.
    Everything,
    /// Groups whose profile changed: the groups only.
    Profiles,
    /// Groups whose members changed: their members only.
    Members,
}

/// The marks of a full run's two listings, and the admin roles it read first.
const USERS: &str = "users";
const GROUPS: &str = "groups";
const ROLES: &str = "roles";

/// The full user listings: all but deprovisioned users, then those (the default hides them).
const USER_LISTINGS: [&[(&str, &str)]; 2] =
    [&[("limit", PAGE_SIZE)], &[("limit", PAGE_SIZE), ("filter", "status eq \"DEPROVISIONED\"")]];

/// How far a full run's users listing got.
#[derive(Debug, Serialize, Deserialize)]
struct UsersMark {
    /// Which of [`USER_LISTINGS`].
    listing: usize,
    /// Its next page, as a path and query on the org's host; `None` once it was listed to its end.
    next: Option<String>,
    newest: Newest,
    #[serde(with = "time::serde::rfc3339::option")]
    started: Option<OffsetDateTime>,
}

/// How far a full run's groups listing got: every group before `next` was handed over with all
/// its members.
#[derive(Debug, Default, Serialize, Deserialize)]
struct GroupsMark {
    /// As in [`UsersMark`]; the listing's first page on a fresh run.
    next: Option<String>,
    groups: Newest,
    memberships: Newest,
    /// The members Okta counts in the groups listed so far; `None` once one came without stats.
    members: Option<u64>,
    /// Groups whose members Okta refused or no longer found: the run keeps what it had of them.
    unlisted: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    started: Option<OffsetDateTime>,
}

/// A link as a mark keeps it: on the org's host, whichever base URL the run used.
fn on_host(url: &Url) -> String {
    url[Position::BeforePath..].to_string()
}

/// How many groups' members a run asks for at once. A group's pages still come one after
/// another; several small requests at a time keep the sink busy while Okta answers, and the
/// client's pacing holds them back when Okta's rate limit runs low. Eight rather than four leave
/// more of Okta's work queued while the run's own core is busy storing a page of users (on a
/// fake that answers at once, it was busy 92–94% of a full run's time against 81–91%).
const AT_ONCE: usize = 8;

/// How many users' factors, or admins' roles, a run asks for at once: one request per user, so
/// they set the pace unless several go at a time. Every user a run hands over waits for the
/// roles, in an incremental run most of its time when a few go at once.
const PER_USER_AT_ONCE: usize = 16;

/// One run. Its listings go on at the same time (users beside groups and their members), so
/// what they share is behind locks: the sink takes one whole page at a time.
struct Run<'h, 's> {
    client: OktaClient<'h>,
    sink: tokio::sync::Mutex<&'s mut dyn PageSink>,
    include_factors: bool,
    /// Set once the token is refused factors: the rest of the run does without them.
    factors_denied: AtomicBool,
    /// Retries since the last page went to the sink.
    retries: AtomicU32,
    /// Okta's clock when the run began (the first reply's `Date`).
    started: Mutex<Option<OffsetDateTime>>,
    /// Role types by user id; `None` when the token may not read roles and no run read them
    /// before. Read when first needed, so the listings that need no roles (groups, members)
    /// start at once.
    roles: tokio::sync::OnceCell<Option<Roles>>,
    /// The roles a previous run read, for when the token may no longer read them.
    last_roles: Option<Roles>,
}

/// The config's `rate_limit_share`; one the API would refuse never got stored, and a value
/// stored before it was read falls back to the default.
fn share(settings: &Settings) -> RateLimitShare {
    RateLimitShare::for_settings(settings).unwrap_or(RateLimitShare::DEFAULT)
}

pub(crate) async fn sync(
    http: &Http,
    target: Target,
    credentials: &OktaCredentials,
    settings: &Settings,
    mode: SyncMode,
    sink: &mut dyn PageSink,
) -> Result<Outcome, SyncError> {
    let (resume, last) = match mode {
        SyncMode::Incremental(cursor) => {
            let previous = read_cursor(&cursor)?;
            let roles = RolesFrom::Source { last: previous.0.roles.clone() };
            let run = Run::start(http, target, credentials, settings, None, roles, sink).await?;
            return run.incremental(previous).await;
        }
        SyncMode::Full => (Checkpoint::default(), None),
        // A cursor this connector cannot read keeps nothing: the run is full anyway.
        SyncMode::FullAfter(cursor) => (Checkpoint::default(), last_roles(Some(&cursor))),
        // The roles mark may not have been saved: the groups listing marks its pages meanwhile.
        SyncMode::Resume(checkpoint, after) => (checkpoint, last_roles(after.as_ref())),
    };
    let users: Option<UsersMark> = resume.get(USERS);
    let groups: Option<GroupsMark> = resume.get(GROUPS);
    let started = users.as_ref().and_then(|u| u.started).or(groups.as_ref().and_then(|g| g.started));
    let (roles, fresh_roles) = match resume.get::<Option<Roles>>(ROLES) {
        Some(kept) => (RolesFrom::Kept(kept), false),
        None => (RolesFrom::Source { last }, true),
    };
    let run = Run::start(http, target, credentials, settings, started, roles, sink).await?;
    run.full(users, groups, fresh_roles).await
}

/// The roles the run that left `cursor` read; none from a cursor this connector cannot read.
fn last_roles(cursor: Option<&Cursor>) -> Option<Roles> {
    cursor.and_then(|cursor| read_cursor(cursor).ok()).and_then(|(previous, _)| previous.roles)
}

/// Where a run's admin roles come from.
enum RolesFrom {
    /// Read from Okta; `last` (the roles a previous run read) stands in when the token may no
    /// longer read them, so a lost permission does not revoke every admin's roles in the store.
    Source { last: Option<Roles> },
    /// Those a run before this one had: the stopped run it goes on from, or the run whose named
    /// users it reads (`None`: it could not read them).
    Kept(Option<Roles>),
}

/// Reads the users a push named one by one: each as Okta has it now, with its roles and, when
/// the config reads them, factors; or a removal when Okta answers 404, which only a deleted user
/// gets. After a run, the roles are those its cursor holds, which it has just read (or kept, when
/// the token may no longer read them): reading every admin's again would cost a request an admin.
pub(crate) async fn refresh_users(
    http: &Http,
    target: Target,
    credentials: &OktaCredentials,
    settings: &Settings,
    named: Named<'_>,
    sink: &mut dyn PageSink,
) -> Result<(), SyncError> {
    let roles = match named.after.and_then(|cursor| read_cursor(cursor).ok()) {
        Some((previous, _)) => RolesFrom::Kept(previous.roles),
        None => RolesFrom::Source { last: None },
    };
    let run = Run::start(http, target, credentials, settings, None, roles, sink).await?;
    let mut gone = Vec::new();
    for id in named.ids {
        if !run.user_by_id(id).await? {
            gone.push(Removal::Entity { kind: EntityKind::User, source_id: id.clone() });
        }
    }
    if !gone.is_empty() {
        let mut sink = run.sink.lock().await;
        let retries = run.retries.swap(0, Ordering::Relaxed);
        sink.accept(Page { removals: gone, retries, ..Page::default() }).await?;
    }
    Ok(())
}

impl<'h, 's> Run<'h, 's> {
    /// A run of the org at `target`, with the admin roles read first: every user it hands over
    /// carries its roles. A resumed run takes when the run it goes on from began (by Okta's
    /// clock) and the roles that one read.
    async fn start(
        http: &'h Http,
        target: Target,
        credentials: &OktaCredentials,
        settings: &Settings,
        started: Option<OffsetDateTime>,
        roles: RolesFrom,
        sink: &'s mut dyn PageSink,
    ) -> Result<Run<'h, 's>, SyncError> {
        let (roles, last_roles) = match roles {
            RolesFrom::Source { last } => (tokio::sync::OnceCell::new(), last),
            RolesFrom::Kept(kept) => (tokio::sync::OnceCell::new_with(Some(kept)), None),
        };
        Ok(Run {
            client: OktaClient::new(http, target, credentials, share(settings)),
            sink: tokio::sync::Mutex::new(sink),
            include_factors: settings.get(INCLUDE_FACTORS).and_then(Value::as_bool).unwrap_or(false),
            factors_denied: AtomicBool::new(false),
            retries: AtomicU32::new(0),
            started: Mutex::new(started),
            roles,
            last_roles,
        })
    }
}

impl Run<'_, '_> {
    async fn get<T: DeserializeOwned>(
        &self,
        url: &Url,
        action: &str,
        tolerated: &[StatusCode],
    ) -> Result<Got<T>, SourceError> {
        let got = self.client.fetch(url, action, tolerated).await?;
        self.retries.fetch_add(got.retries, Ordering::Relaxed);
        let mut started = self.started.lock().expect("clock lock");
        if started.is_none() {
            *started = got.date;
        }
        Ok(got)
    }

    /// The page `next` names, if any: asked for while the current page goes to the sink, since
    /// Okta names the next page in a header, before the body it comes with is read.
    async fn next_page<T: DeserializeOwned>(
        &self,
        next: Option<&Url>,
        action: &str,
        tolerated: &[StatusCode],
    ) -> Result<Option<Got<T>>, SyncError> {
        match next {
            Some(url) => Ok(Some(self.get(url, action, tolerated).await?)),
            None => Ok(None),
        }
    }

    async fn emit(
        &self,
        records: Vec<Record>,
        memberships: Vec<Membership>,
        mark: Option<Mark>,
    ) -> Result<(), SyncError> {
        self.emit_page(Page { records, memberships, mark, ..Page::default() }).await
    }

    async fn emit_page(&self, mut page: Page) -> Result<(), SyncError> {
        if page.records.is_empty() && page.memberships.is_empty() && page.mark.is_none() {
            return Ok(());
        }
        let mut sink = self.sink.lock().await;
        page.retries = self.retries.swap(0, Ordering::Relaxed);
        sink.accept(page).await?;
        Ok(())
    }

    fn started(&self) -> Option<OffsetDateTime> {
        *self.started.lock().expect("clock lock")
    }

    /// Where a mark's link leads, on this run's host.
    fn resumed_at(&self, next: &str) -> Result<Url, SourceError> {
        self.client.follow(&self.client.url(&[], &[]), next)
    }

    /// Users are listed beside groups and their members, so the many small member pages are
    /// fetched while the sink is still busy with users. Each listing starts where its mark says
    /// (at the beginning on a fresh run).
    async fn full(
        &self,
        from: Option<UsersMark>,
        groups_from: Option<GroupsMark>,
        fresh_roles: bool,
    ) -> Result<Outcome, SyncError> {
        let users = async {
            if fresh_roles {
                // Kept for a resumed run, whose users must carry the roles the first part's did.
                let roles = self.roles().await?;
                self.emit(Vec::new(), Vec::new(), Some(Mark::at(ROLES, roles))).await?;
            }
            let (first, mut next, mut users) = match from {
                Some(UsersMark { listing, next: Some(next), newest, .. }) => {
                    (listing, Some(self.resumed_at(&next)?), newest)
                }
                Some(UsersMark { listing, next: None, newest, .. }) => (listing + 1, None, newest),
                None => (0, None, Newest::default()),
            };
            for (listing, query) in USER_LISTINGS.iter().enumerate().skip(first) {
                let url = next.take().unwrap_or_else(|| self.client.url(&["api", "v1", "users"], query));
                self.users(url, Some(listing), &mut users, &mut BTreeSet::new()).await?;
            }
            Ok::<_, SyncError>(users)
        };
        let groups = async {
            let mut tally = match groups_from {
                Some(mark) => mark,
                None => {
                    let query = [("limit", GROUPS_PER_MARK), ("expand", "stats")];
                    let first = self.client.url(&["api", "v1", "groups"], &query);
                    GroupsMark { next: Some(on_host(&first)), members: Some(0), ..GroupsMark::default() }
                }
            };
            if let Some(next) = tally.next.take() {
                let url = self.resumed_at(&next)?;
                let (mut groups, mut memberships) = (tally.groups.clone(), tally.memberships.clone());
                self.groups(url, GroupPass::Everything, &mut groups, &mut memberships, Some(&mut tally))
                    .await?;
            }
            Ok(tally)
        };
        let (users, tally) = tokio::try_join!(users, groups)?;
        let cursor = self.cursor(users, tally.groups, tally.memberships, None);
        // Every member of a listed group is handed over, whatever its status, so the members
        // Okta counts are the memberships the run should have; a group without stats leaves
        // the total unknown.
        let mut expected = Expected::new();
        if let Some(total) = tally.members {
            expected.insert(MEMBERSHIP.to_string(), total);
        }
        Ok(Outcome { cursor: Some(cursor), coverage: Coverage::full(tally.unlisted), expected })
    }

    async fn incremental(
        &self,
        (previous, since): (OktaCursor, [OffsetDateTime; 3]),
    ) -> Result<Outcome, SyncError> {
        let changed = |attribute: &str, t: OffsetDateTime| format!("{attribute} gt \"{}\"", okta_time(t));
        // Only users wait for the admins' roles (one request an admin): groups and their members
        // are listed meanwhile.
        let users = async {
            let mut role_changes = role_changes(previous.roles.as_ref(), self.roles().await?.as_ref());
            let mut users = Newest::default();
            let filter = changed("lastUpdated", since[0]);
            let url = self.client.url(&["api", "v1", "users"], &[("limit", PAGE_SIZE), ("filter", &filter)]);
            self.users(url, None, &mut users, &mut role_changes).await?;
            for id in &role_changes {
                self.user_by_id(id).await?;
            }
            Ok::<_, SyncError>(users)
        };
        let groups = async {
            let (mut groups, mut memberships) = (Newest::default(), Newest::default());
            let filter = changed("lastUpdated", since[1]);
            let url = self.client.url(&["api", "v1", "groups"], &[("limit", PAGE_SIZE), ("filter", &filter)]);
            self.groups(url, GroupPass::Profiles, &mut groups, &mut memberships, None).await?;
            let filter = changed("lastMembershipUpdated", since[2]);
            let url = self.client.url(&["api", "v1", "groups"], &[("limit", PAGE_SIZE), ("filter", &filter)]);
            let (listed, _) =
                self.groups(url, GroupPass::Members, &mut groups, &mut memberships, None).await?;
            Ok((groups, memberships, listed.into_iter().map(|(id, _)| id).collect()))
        };
        let (users, (groups, memberships, relisted)) = tokio::try_join!(users, groups)?;
        let cursor = self.cursor(users, groups, memberships, Some(since));
        Ok(Outcome {
            cursor: Some(cursor),
            coverage: Coverage::Changes { groups_with_all_members: relisted },
            expected: Expected::new(),
        })
    }

    fn cursor(
        &self,
        users: Newest,
        groups: Newest,
        memberships: Newest,
        since: Option<[OffsetDateTime; 3]>,
    ) -> Cursor {
        // Every run has its roles by now, read or kept: no roles in the cursor must mean the token
        // could not read them, since the users a push names are read with the cursor's.
        debug_assert!(self.roles.initialized(), "a run ends with its roles read or kept");
        let roles = self.roles.get().cloned().flatten();
        cursor::write([users, groups, memberships], self.started(), since, roles)
    }

    async fn roles(&self) -> Result<&Option<Roles>, SyncError> {
        self.roles.get_or_try_init(|| self.admin_roles()).await
    }

    /// Role types by user id. When the token may not read roles (with a warning): those a
    /// previous run read, or `None` when none did.
    async fn admin_roles(&self) -> Result<Option<Roles>, SyncError> {
        let denied = || {
            match &self.last_roles {
                Some(last) => tracing::warn!(
                    source = "Okta",
                    admins = last.len(),
                    "the API token may no longer read admin roles; keeping the roles the last run read \
                     until it may (give the token's admin a role allowed to view roles, such as Read-only \
                     Administrator)"
                ),
                None => tracing::warn!(
                    source = "Okta",
                    "the API token may not read admin roles; syncing without them (create the token as an \
                     admin allowed to view roles, such as a Read-only Administrator)"
                ),
            }
            Ok(self.last_roles.clone())
        };
        let mut roles = BTreeMap::new();
        let mut assigned = std::pin::pin!(
            self.assignees()
                .map_ok(|assignee| async move {
                    let Some(id) = assignee else { return Ok(None) };
                    let url = self.client.url(&["api", "v1", "users", &id, "roles"], &[]);
                    let tolerated = [StatusCode::FORBIDDEN, StatusCode::NOT_FOUND];
                    let got: Got<Vec<Value>> =
                        self.get(&url, "read a user's admin roles", &tolerated).await?;
                    Ok::<_, SourceError>(Some((id, got)))
                })
                .try_buffered(PER_USER_AT_ONCE)
        );
        while let Some(read) = assigned.try_next().await? {
            let Some((id, got)) = read else { return denied() };
            match got.body {
                Some(assignments) => {
                    roles.insert(id, map::role_types(&assignments));
                }
                None if got.status == StatusCode::FORBIDDEN => return denied(),
                None => {}
            }
        }
        Ok(Some(roles))
    }

    /// The ids of the users with admin roles, page after page; `None` when the token may not
    /// list them. The next page is asked for once the last one's ids are all taken (while their
    /// roles are still being read), so role reads go on across pages as within one.
    fn assignees(&self) -> impl Stream<Item = Result<Option<String>, SourceError>> + '_ {
        let first = self.client.url(&["api", "v1", "iam", "assignees", "users"], &[("limit", "100")]);
        stream::try_unfold(Some(first), move |next| async move {
            let Some(url) = next else { return Ok(None) };
            let got: Got<Assignees> =
                self.get(&url, "list the users with admin roles", &[StatusCode::FORBIDDEN]).await?;
            let Some(page) = got.body else { return Ok(Some((vec![None], None))) };
            let next = page.links.next.map(|link| self.client.follow(&url, &link.href)).transpose()?;
            Ok(Some((page.value.into_iter().map(|assignee| Some(assignee.id)).collect::<Vec<_>>(), next)))
        })
        .map_ok(|ids| stream::iter(ids).map(Ok))
        .try_flatten()
    }

    /// The user's factors; `None` once the token is refused them.
    async fn factors(&self, user_id: &str) -> Result<Option<Vec<MfaFactor>>, SyncError> {
        if !self.include_factors || self.factors_denied.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let url = self.client.url(&["api", "v1", "users", user_id, "factors"], &[]);
        let tolerated = [StatusCode::FORBIDDEN, StatusCode::NOT_FOUND];
        let got: Got<Vec<Value>> = self.get(&url, "list a user's factors", &tolerated).await?;
        match got.body {
            Some(factors) => Ok(Some(factors.iter().filter_map(map::factor).collect())),
            None if got.status == StatusCode::FORBIDDEN => {
                if !self.factors_denied.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        source = "Okta",
                        "the API token may not read factors; syncing without them (turn off {INCLUDE_FACTORS} or \
                         create the token as an admin allowed to view factors)"
                    );
                }
                Ok(None)
            }
            // Deleted during the run: nothing enrolled any more.
            None => Ok(Some(Vec::new())),
        }
    }

    /// The factors of each user of a page that has an id, read several at a time: a request per
    /// user is most of a run that reads them, and the pacer keeps them within the rate limit.
    /// Empty when the run does not read factors.
    async fn page_factors(
        &self,
        users: &[Box<RawValue>],
    ) -> Result<HashMap<String, Option<Vec<MfaFactor>>>, SyncError> {
        if !self.include_factors {
            return Ok(HashMap::new());
        }
        let ids: Vec<String> = users
            .iter()
            .filter_map(|raw| {
                let mut held = None;
                let user: OktaUser = lenient::read(raw, &mut held);
                user.id().map(str::to_owned)
            })
            .collect();
        stream::iter(ids)
            .map(|id| async move {
                let factors = self.factors(&id).await?;
                Ok::<_, SyncError>((id, factors))
            })
            .buffer_unordered(PER_USER_AT_ONCE)
            .try_collect()
            .await
    }

    /// A user as the entity model has it, with its admin roles and `factors`.
    async fn user(
        &self,
        user: &OktaUser<'_>,
        factors: Option<Vec<MfaFactor>>,
    ) -> Result<Option<User>, SyncError> {
        let Some(id) = user.id() else {
            tracing::warn!(source = "Okta", "skipped a user without an id");
            return Ok(None);
        };
        let roles = self.roles().await?.as_ref().and_then(|r| r.get(id)).cloned().unwrap_or_default();
        Ok(map::user(user, roles, factors))
    }

    /// Lists users from `first` on into the sink, noting the newest `lastUpdated` and crossing
    /// each listed user off `role_changes`; a full run's `listing` (of [`USER_LISTINGS`]) marks
    /// each page. Users are the bulk of a run, so each is read from the page's text straight
    /// into what the mapping needs, and that text is its raw JSON.
    async fn users(
        &self,
        first: Url,
        listing: Option<usize>,
        newest: &mut Newest,
        role_changes: &mut BTreeSet<String>,
    ) -> Result<(), SyncError> {
        let mut got: Got<Vec<Box<RawValue>>> = self.get(&first, "list users", &[]).await?;
        loop {
            let users = got.body.take().unwrap_or_default();
            let next = got.next.take();
            let this_page = async {
                let mut factors = self.page_factors(&users).await?;
                let mut records = Vec::with_capacity(users.len());
                for raw in users {
                    let mut held = None;
                    let user: OktaUser = lenient::read(&raw, &mut held);
                    newest.see(user.last_updated());
                    let mut enrolled = None;
                    if let Some(id) = user.id() {
                        role_changes.remove(id);
                        enrolled = factors.remove(id).flatten();
                    }
                    let user = self.user(&user, enrolled).await?;
                    records.extend(user.map(|user| Record { entity: Entity::User(user), raw }));
                }
                let mark = listing.map(|listing| UsersMark {
                    listing,
                    next: next.as_ref().map(on_host),
                    newest: newest.clone(),
                    started: self.started(),
                });
                self.emit(records, Vec::new(), mark.map(|m| Mark::at(USERS, &m))).await
            };
            let ((), following) =
                overlapped(this_page, self.next_page(next.as_ref(), "list users", &[])).await?;
            match following? {
                Some(following) => got = following,
                None => return Ok(()),
            }
        }
    }

    /// One user, for a role change its `lastUpdated` does not show; gone users are skipped.
    /// Hands over the user `id` as Okta has it now; `false` when Okta no longer knows it.
    async fn user_by_id(&self, id: &str) -> Result<bool, SyncError> {
        let url = self.client.url(&["api", "v1", "users", id], &[]);
        let got: Got<Box<RawValue>> = self.get(&url, "read a user", &[StatusCode::NOT_FOUND]).await?;
        let Some(raw) = got.body else { return Ok(false) };
        let mut held = None;
        let user: OktaUser = lenient::read(&raw, &mut held);
        let factors = self.factors(id).await?;
        let user = self.user(&user, factors).await?;
        let record = user.map(|user| Record { entity: Entity::User(user), raw });
        self.emit(record.into_iter().collect(), Vec::new(), None).await?;
        Ok(true)
    }

    /// Lists groups from `first` on, doing what `pass` says with each; returns the groups whose
    /// members were listed in full, each with its `usersCount` when the listing asked for stats,
    /// and the groups whose member listing Okta refused or no longer found.
    /// A group's members are asked for only once the page naming the group went to the sink.
    /// A full run's `tally` adds up what it needs at the end, and is marked after each page.
    async fn groups(
        &self,
        first: Url,
        pass: GroupPass,
        updated: &mut Newest,
        membership_updated: &mut Newest,
        mut tally: Option<&mut GroupsMark>,
    ) -> Result<(Vec<(String, Option<u64>)>, Vec<String>), SyncError> {
        let (mut relisted, mut unlisted) = (Vec::new(), Vec::new());
        let mut got: Got<Vec<Value>> = self.get(&first, "list groups", &[]).await?;
        loop {
            let mut groups = got.body.take().unwrap_or_default();
            let next = got.next.take();
            let ids: Vec<(String, Option<u64>)> = groups
                .iter_mut()
                .filter_map(|g| {
                    let users_count = take_users_count(g);
                    Some((g.get("id")?.as_str()?.to_string(), users_count))
                })
                .collect();
            for group in &groups {
                if pass != GroupPass::Members {
                    updated.see(map::timestamp(group, "lastUpdated"));
                }
                if pass != GroupPass::Profiles {
                    membership_updated.see(map::timestamp(group, "lastMembershipUpdated"));
                }
            }
            if pass == GroupPass::Everything {
                let members: u64 = ids.iter().filter_map(|(_, users_count)| *users_count).sum();
                self.sink.lock().await.announce(MEMBERSHIP, members);
            }
            // A full run's groups and members count only once their page's mark is applied.
            let part = tally.is_some().then_some(GROUPS);
            if pass != GroupPass::Members {
                let mark = part.map(Mark::within);
                self.emit(groups.into_iter().filter_map(map::group).collect(), Vec::new(), mark).await?;
            }
            let members = async {
                if pass == GroupPass::Profiles {
                    return Ok(Vec::new());
                }
                stream::iter(ids)
                    .map(|(id, users_count)| async move {
                        let listed = self.members(&id, part).await?;
                        Ok::<_, SyncError>((id, users_count, listed))
                    })
                    .buffered(AT_ONCE)
                    .try_collect::<Vec<_>>()
                    .await
            };
            let (listed, following) =
                overlapped(members, self.next_page(next.as_ref(), "list groups", &[])).await?;
            for (id, users_count, listed) in listed {
                if let Some(tally) = tally.as_deref_mut() {
                    match listed {
                        true => tally.members = tally.members.zip(users_count).map(|(a, b)| a + b),
                        false => tally.unlisted.push(id.clone()),
                    }
                }
                if listed {
                    relisted.push((id, users_count));
                } else {
                    unlisted.push(id);
                }
            }
            if let Some(tally) = tally.as_deref_mut() {
                tally.next = next.as_ref().map(on_host);
                (tally.groups, tally.memberships) = (updated.clone(), membership_updated.clone());
                tally.started = self.started();
                self.emit(Vec::new(), Vec::new(), Some(Mark::at(GROUPS, tally))).await?;
            }
            match following? {
                Some(following) => got = following,
                None => return Ok((relisted, unlisted)),
            }
        }
    }

    /// Lists a group's members into the sink, as part of the full run's listing `part` if any;
    /// `false` when the group was deleted meanwhile.
    async fn members(&self, group_id: &str, part: Option<&'static str>) -> Result<bool, SyncError> {
        let action = "list a group's members";
        // A group deleted since it was listed (404), or one the token's admin role does not
        // cover (403): the run goes on without its members, and keeps those it stored.
        let tolerated = [StatusCode::NOT_FOUND, StatusCode::FORBIDDEN];
        let first = self.client.url(&["api", "v1", "groups", group_id, "users"], &[("limit", PAGE_SIZE)]);
        let mut got: Got<Vec<Id>> = self.get(&first, action, &tolerated).await?;
        let mut first_page = true;
        loop {
            let Some(users) = got.body.take() else { return Ok(false) };
            let next = got.next.take();
            // An empty group's stored members are simply not seen: only a page with members
            // stands for its group.
            let whole = std::mem::take(&mut first_page) && next.is_none() && !users.is_empty();
            let memberships = users
                .into_iter()
                .map(|user| Membership {
                    group_id: group_id.to_string(),
                    member_kind: EntityKind::User,
                    member_id: user.id,
                })
                .collect();
            let page = Page {
                memberships,
                whole_groups: if whole { vec![group_id.to_string()] } else { Vec::new() },
                mark: part.map(Mark::within),
                ..Page::default()
            };
            let ((), following) =
                overlapped(self.emit_page(page), self.next_page(next.as_ref(), action, &tolerated)).await?;
            match following? {
                Some(following) => got = following,
                None => return Ok(true),
            }
        }
    }
}

/// Takes `_embedded.stats` (`expand=stats`) out of a group and returns its `usersCount`. The
/// stats move with every membership change and are not the group's own attributes, so its
/// record is kept as an incremental run (which asks for no stats) sees it.
fn take_users_count(group: &mut Value) -> Option<u64> {
    let embedded = group.get_mut("_embedded")?.as_object_mut()?;
    let stats = embedded.remove("stats");
    if embedded.is_empty() {
        group.as_object_mut()?.remove("_embedded");
    }
    stats?.get("usersCount")?.as_u64()
}

#[cfg(test)]
#[path = "proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stats_are_taken_out_of_the_group() {
        let mut group = json!({"id": "00g1", "_embedded": {"stats": {"usersCount": 7, "appsCount": 2}}});
        assert_eq!(take_users_count(&mut group), Some(7));
        assert_eq!(group, json!({"id": "00g1"}));
        let mut group = json!({"id": "00g2", "_embedded": {"app": {}, "stats": {}}});
        assert_eq!(take_users_count(&mut group), None);
        assert_eq!(group, json!({"id": "00g2", "_embedded": {"app": {}}}));
        assert_eq!(take_users_count(&mut json!({"id": "00g3"})), None);
    }
}
