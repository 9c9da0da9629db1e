//! A sync run against one Workspace account: every user (`projection=full`), every group, and
//! each group's direct members, paged by `nextPageToken`.
//!
//! The Directory API has no change feed for users, groups or members, so an incremental run
//! lists everything too: its outcome covers everything and carries no cursor, and the engine
//! finds the changes by comparing. Deleted users simply stop being listed.
//!
//! Pages go to the sink as they arrive, each while the next one of its list is being fetched; a
//! groups page is followed by its groups' members (the first pages of several groups asked for
//! at once, handed over a group at a time), so nothing is held for the whole run. Each group's
//! `directMembersCount` adds up to the memberships the run should hand over, once the members it
//! deliberately leaves out (the whole account, outsiders) are taken off.
//!
//! The run marks its progress so a stopped one can be resumed (`SyncMode::Resume`): the users
//! listing with each page (the next page's token), the groups listing after each group whose
//! members were all handed over (the token of its groups page, how many of that page are done,
//! the counts so far). A token the API no longer accepts (400) means listing from the start.

use ctxsync_core::{Entity, EntityKind, Membership, Record, Removal};
use reqwest::StatusCode;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::client::{DirectoryClient, Got};
use super::map;
use crate::SourceError;
use crate::lenient;
use crate::sync::{
    Checkpoint, Coverage, Expected, MEMBERSHIP, Mark, Outcome, Page, PageSink, SyncError, SyncMode,
    overlapped,
};

/// A group's members are asked for a page of the largest size; a group deleted during the run
/// (404) or outside the admin's role (403) is skipped rather than failing the run.
const MEMBERS_QUERY: [(&str, &str); 1] = [("maxResults", GROUPS_PAGE)];
const MEMBERS_TOLERATED: [StatusCode; 2] = [StatusCode::NOT_FOUND, StatusCode::FORBIDDEN];

/// How many groups' first member pages are asked for at once. Most groups fit on one page, so
/// asking one at a time would leave the share idle while Google answers; the pacer holds them
/// back when it has no room. Their members still go to the sink a whole group at a time, in
/// order, so each mark covers whole groups, and at most this many pages wait meanwhile.
const GROUPS_AT_ONCE: usize = 4;

/// The largest pages the API serves: users 500, groups and members 200.
const USERS_PAGE: &str = "500";
const GROUPS_PAGE: &str = "200";

/// A list reply: the items, under the list's own key (left out when there are none), and the
/// token of the next page. Users, the bulk of a run, stay as their text until each is read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct List<T = Value> {
    #[serde(default = "Vec::new", alias = "users", alias = "groups", alias = "members")]
    items: Vec<T>,
    next_page_token: Option<String>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List { items: Vec::new(), next_page_token: None }
    }
}

struct Run<'h, 's> {
    client: DirectoryClient<'h>,
    out: Out<'s>,
}

/// The marks of the run's two listings.
const USERS: &str = "users";
const GROUPS: &str = "groups";

/// How far the users listing got.
#[derive(Serialize, Deserialize)]
struct UsersMark {
    /// The next page's token; `None` once the list was read to its end.
    next: Option<String>,
}

/// How far the groups listing got, and what it has tallied.
#[derive(Default, Serialize, Deserialize)]
struct GroupsMark {
    /// The token of the page being listed; `None` for the first.
    page: Option<String>,
    /// The groups of that page whose records were handed over (those it held when first read).
    listed: Vec<String>,
    /// Those of them handed over with all their members. Kept by id, not position: groups made
    /// or deleted meanwhile move the others on the page.
    done: Vec<String>,
    /// Set once every group was.
    ended: bool,
    /// The memberships the listed groups should have handed over: their `directMembersCount`
    /// less the members the listing saw and left out (`CUSTOMER`, `EXTERNAL`); `None` once a
    /// group came without a count.
    members: Option<u64>,
    /// Groups whose members the API refused or no longer found: the run covers all but them.
    unlisted: Vec<String>,
}

fn marked(listing: &'static str, at: &impl Serialize) -> Option<Mark> {
    Some(Mark::at(listing, at))
}

/// A groups or members page, which counts once the next groups mark is applied.
const IN_GROUPS: Option<Mark> = Some(Mark { listing: GROUPS, at: None });

/// Lists the account into `sink`. Whatever the mode asked, the run lists everything: Google has
/// no incremental listing; a resumed run lists what its marks say is left.
pub(crate) async fn sync(
    client: DirectoryClient<'_>,
    mode: SyncMode,
    sink: &mut dyn PageSink,
) -> Result<Outcome, SyncError> {
    let out = Out { sink, retries: 0 };
    let resume = match mode {
        SyncMode::Resume(checkpoint, _) => checkpoint,
        SyncMode::Full | SyncMode::FullAfter(_) | SyncMode::Incremental(_) => Checkpoint::default(),
    };
    let mut run = Run { client, out };
    run.users(resume.get(USERS)).await?;
    let tally = run.groups(resume.get(GROUPS)).await?;
    let expected = tally.members.map(|n| Expected::from([(MEMBERSHIP.to_string(), n)]));
    // The memberships stored for an unlisted group stay until a listing sees the group again.
    let coverage = match tally.unlisted {
        unlisted if unlisted.is_empty() => Coverage::Everything,
        groups_without_members => Coverage::EverythingBut { groups_without_members },
    };
    Ok(Outcome { cursor: None, coverage, expected: expected.unwrap_or_default() })
}

/// Reads the users `ids` one by one (`GET users/{userKey}`, as a listing reads them) into
/// `sink`: a user Google answers 404 for is gone, which is Google's own word.
pub(crate) async fn refresh_users(
    client: DirectoryClient<'_>,
    ids: &[String],
    sink: &mut dyn PageSink,
) -> Result<(), SyncError> {
    let mut run = Run { client, out: Out { sink, retries: 0 } };
    let (mut records, mut removals) = (Vec::new(), Vec::new());
    for id in ids {
        let query = [("projection", "full")];
        let tolerated = [StatusCode::NOT_FOUND];
        let got = run.get::<Box<RawValue>>(&["users", id], &query, "users", &tolerated).await?;
        let Some(raw) = got.body else {
            removals.push(Removal::Entity { kind: EntityKind::User, source_id: id.clone() });
            continue;
        };
        let mut held = None;
        if let Some(user) = map::user(&lenient::read(&raw, &mut held)) {
            records.push(Record { entity: Entity::User(user), raw });
        }
    }
    let retries = std::mem::take(&mut run.out.retries);
    if records.is_empty() && removals.is_empty() && retries == 0 {
        return Ok(());
    }
    run.out.sink.accept(Page { records, removals, retries, ..Page::default() }).await?;
    Ok(())
}

impl Run<'_, '_> {
    async fn get<T: DeserializeOwned>(
        &mut self,
        path: &[&str],
        query: &[(&str, &str)],
        what: &str,
        tolerated: &[reqwest::StatusCode],
    ) -> Result<Got<T>, SourceError> {
        let got = self.client.fetch(path, query, what, tolerated).await?;
        self.out.retries += got.retries;
        Ok(got)
    }

    /// One page of a list; `None` when a tolerated status answered instead.
    async fn page<T: DeserializeOwned>(
        &mut self,
        path: &[&str],
        query: &[(&str, &str)],
        token: Option<&str>,
        what: &str,
        tolerated: &[reqwest::StatusCode],
    ) -> Result<Option<List<T>>, SourceError> {
        let query = match token {
            Some(token) => with_token(query, token),
            None => query.to_vec(),
        };
        Ok(self.get::<List<T>>(path, &query, what, tolerated).await?.body)
    }

    /// The first page of a list, or of what is left of it from `token`: a token the API refuses
    /// means the stopped run's listing cannot be gone on with.
    async fn first_page<T: DeserializeOwned>(
        &mut self,
        path: &[&str],
        query: &[(&str, &str)],
        token: Option<&str>,
        what: &str,
    ) -> Result<List<T>, SyncError> {
        match token {
            None => Ok(self.page(path, query, None, what, &[]).await?.unwrap_or_default()),
            Some(token) => match self.page(path, query, Some(token), what, &[StatusCode::BAD_REQUEST]).await?
            {
                Some(list) => Ok(list),
                None => Err(SyncError::CursorExpired),
            },
        }
    }

    async fn users(&mut self, from: Option<UsersMark>) -> Result<(), SyncError> {
        let query = [("customer", "my_customer"), ("maxResults", USERS_PAGE), ("projection", "full")];
        let mut token = match from {
            Some(UsersMark { next: None }) => return Ok(()),
            Some(UsersMark { next }) => next,
            None => None,
        };
        let mut list: List<Box<RawValue>> =
            self.first_page(&["users"], &query, token.as_deref(), "users").await?;
        loop {
            token = next(token, list.next_page_token.take())?;
            let records = list.items.into_iter().filter_map(|raw| {
                let mut held = None;
                let user = map::user(&lenient::read(&raw, &mut held))?;
                Some(Record { entity: Entity::User(user), raw })
            });
            let records: Vec<Record> = records.collect();
            let mark = marked(USERS, &UsersMark { next: token.clone() });
            let Some(token) = &token else { return self.out.emit(records, Vec::new(), mark).await };
            let query = with_token(&query, token);
            let fetch = self.client.fetch::<List<Box<RawValue>>>(&["users"], &query, "users", &[]);
            let ((), following) = overlapped(self.out.emit(records, Vec::new(), mark), fetch).await?;
            let following = following?;
            self.out.retries += following.retries;
            list = following.body.unwrap_or_default();
        }
    }

    /// Lists groups and each one's members from where `from` says, marking each group done;
    /// returns what the listing tallied.
    async fn groups(&mut self, from: Option<GroupsMark>) -> Result<GroupsMark, SyncError> {
        let query = [("customer", "my_customer"), ("maxResults", GROUPS_PAGE)];
        let mut tally = from.unwrap_or(GroupsMark { members: Some(0), ..GroupsMark::default() });
        if tally.ended {
            return Ok(tally);
        }
        let mut token = tally.page.clone();
        let mut list: List = self.first_page(&["groups"], &query, token.as_deref(), "groups").await?;
        loop {
            let ids: Vec<(String, Option<u64>)> = list
                .items
                .iter()
                .filter_map(|g| Some((g.get("id")?.as_str()?.to_string(), direct_members_count(g))))
                .collect();
            // On the page a resumed run starts on, what the stopped one handed over is not again.
            let (listed, done) = (std::mem::take(&mut tally.listed), std::mem::take(&mut tally.done));
            let groups = list.items.into_iter().filter(|g| {
                g.get("id").and_then(Value::as_str).is_none_or(|id| !listed.iter().any(|l| l == id))
            });
            self.out.emit(groups.filter_map(map::group).collect(), Vec::new(), IN_GROUPS).await?;
            let new: Vec<String> =
                ids.iter().map(|(id, _)| id.clone()).filter(|id| !listed.contains(id)).collect();
            (tally.listed, tally.done) = ([listed, new].concat(), done);
            let todo = ids.into_iter().filter(|(id, _)| !tally.done.contains(id)).collect();
            self.members_of(todo, &mut tally, token.as_deref()).await?;
            (tally.listed, tally.done) = (Vec::new(), Vec::new());
            token = next(token, list.next_page_token)?;
            let Some(following) = &token else {
                (tally.page, tally.ended) = (None, true);
                self.out.emit(Vec::new(), Vec::new(), marked(GROUPS, &tally)).await?;
                return Ok(tally);
            };
            list = self.page(&["groups"], &query, Some(following), "groups", &[]).await?.unwrap_or_default();
        }
    }

    /// Lists the members of the `groups` (ids and member counts) of the groups page `page`
    /// names, several groups' first pages at a time, and marks each group done in turn.
    async fn members_of(
        &mut self,
        groups: Vec<(String, Option<u64>)>,
        tally: &mut GroupsMark,
        page: Option<&str>,
    ) -> Result<(), SyncError> {
        let (client, out) = (&self.client, &mut self.out);
        // A chunk's first pages are all read before any group's further pages are asked for: a
        // request left unpolled meanwhile would hold its place in the pacer, could hold the
        // token's lock, and would time out unread behind a large group.
        for chunk in groups.chunks(GROUPS_AT_ONCE) {
            let firsts = chunk.iter().map(|(id, _)| {
                let path = ["groups", id.as_str(), "members"];
                async move {
                    client.fetch::<List>(&path, &MEMBERS_QUERY, "group members", &MEMBERS_TOLERATED).await
                }
            });
            for ((id, count), first) in chunk.iter().zip(futures::future::join_all(firsts).await) {
                let first = first?;
                out.retries += first.retries;
                match members(client, out, id, first.body).await? {
                    Some(left_out) => {
                        tally.members = tally
                            .members
                            .zip(*count)
                            .map(|(sum, count)| sum + count.saturating_sub(left_out));
                    }
                    None => tally.unlisted.push(id.clone()),
                }
                tally.page = page.map(str::to_owned);
                tally.done.push(id.clone());
                out.emit(Vec::new(), Vec::new(), marked(GROUPS, tally)).await?;
            }
        }
        Ok(())
    }
}

/// A group's direct members from its `first` page on (`None`: the API refused the group);
/// returns how many of those listed name no entity and were left out, or `None` for a group
/// deleted during the run or outside the admin's role (skipped).
async fn members(
    client: &DirectoryClient<'_>,
    out: &mut Out<'_>,
    group_id: &str,
    first: Option<List>,
) -> Result<Option<u64>, SyncError> {
    let Some(mut list) = first else { return Ok(None) };
    let path = ["groups", group_id, "members"];
    let mut token = None;
    let mut left_out = 0;
    let mut first_page = true;
    loop {
        token = next(token, list.next_page_token.take())?;
        let memberships: Vec<Membership> =
            list.items.iter().filter_map(|m| map::member(group_id, m)).collect();
        left_out += (list.items.len() - memberships.len()) as u64;
        let Some(token) = &token else {
            // A group's only page names it whole; an empty group's stored members are simply
            // not seen.
            let whole = first_page && !memberships.is_empty();
            let whole_groups = if whole { vec![group_id.to_string()] } else { Vec::new() };
            out.send(Page { memberships, whole_groups, mark: IN_GROUPS, ..Page::default() }).await?;
            return Ok(Some(left_out));
        };
        first_page = false;
        let query = with_token(&MEMBERS_QUERY, token);
        let fetch = client.fetch::<List>(&path, &query, "group members", &MEMBERS_TOLERATED);
        let ((), following) = overlapped(out.emit(Vec::new(), memberships, IN_GROUPS), fetch).await?;
        let following = following?;
        out.retries += following.retries;
        // Gone or out of reach between two of its pages: as if it had been so from the start.
        let Some(following) = following.body else { return Ok(None) };
        list = following;
    }
}

/// Where pages go: the sink, with the retries since the last page went.
struct Out<'s> {
    sink: &'s mut dyn PageSink,
    retries: u32,
}

impl Out<'_> {
    /// Hands a page to the sink; one with nothing in it only to report retries, which would
    /// otherwise be lost when no page follows.
    async fn emit(
        &mut self,
        records: Vec<Record>,
        memberships: Vec<Membership>,
        mark: Option<Mark>,
    ) -> Result<(), SyncError> {
        self.send(Page { records, memberships, mark, ..Page::default() }).await
    }

    async fn send(&mut self, mut page: Page) -> Result<(), SyncError> {
        if page.records.is_empty()
            && page.memberships.is_empty()
            && self.retries == 0
            && page.mark.as_ref().is_none_or(|m| m.at.is_none())
        {
            return Ok(());
        }
        page.retries = std::mem::take(&mut self.retries);
        self.sink.accept(page).await?;
        Ok(())
    }
}

/// `query` asking for the page `token` names.
fn with_token<'a>(query: &[(&'a str, &'a str)], token: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut query = query.to_vec();
    query.push(("pageToken", token));
    query
}

/// A group's `directMembersCount`: an int64, which the API writes as a JSON string.
fn direct_members_count(group: &Value) -> Option<u64> {
    match group.get("directMembersCount")? {
        Value::String(count) => count.parse().ok(),
        count => count.as_u64(),
    }
}

/// The next page's token: absent or empty ends the list; the same token again would loop
/// forever, so it is an error.
fn next(previous: Option<String>, token: Option<String>) -> Result<Option<String>, SyncError> {
    match token.filter(|t| !t.is_empty()) {
        Some(t) if previous.as_deref() == Some(t.as_str()) => {
            Err(SyncError::Source(SourceError::Unreachable(
                "Google Workspace returned the same page token twice; try again later".to_string(),
            )))
        }
        token => Ok(token),
    }
}

#[cfg(test)]
#[path = "proptests.rs"]
mod proptests;
