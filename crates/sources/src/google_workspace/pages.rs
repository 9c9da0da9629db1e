//! A sync run against one Workspace account: every user (`projection=full`), every group, and
//! each group's direct members, paged by `nextPageToken`.
//!
//! The Directory API has no change feed for users, groups or members, so an incremental run
//! lists everything too: its outcome covers everything and carries no cursor, and the engine
//! finds the changes by comparing. Deleted users simply stop being listed.
//!
//! Pages go to the sink as they arrive, each while the next one of its list is being fetched; a
//! groups page is followed by its groups' members, so nothing is held for the whole run. Each group's `directMembersCount` adds up to the
//! memberships the run should hand over, once the members it deliberately leaves out (the
//! whole account, outsiders) are taken off.

use ctxsync_core::{Entity, Membership, Record};

use super::credentials::GoogleWorkspaceCredentials;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use super::auth::ServiceAccount;
use super::client::{DirectoryClient, Got};
use super::map;
use crate::SourceError;
use crate::endpoints::Target;
use crate::http::Http;
use crate::lenient;
use crate::sync::{Coverage, Expected, MEMBERSHIP, Outcome, Page, PageSink, SyncError, overlapped};

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
    /// The memberships the listed groups should have handed over: their `directMembersCount`
    /// less the members the listing saw and left out (`CUSTOMER`, `EXTERNAL`); `None` once a
    /// group came without a count.
    memberships_expected: Option<u64>,
    /// Groups whose members the API refused or no longer found: the run covers all but them.
    unlisted: Vec<String>,
}

/// Lists the account into `sink`. Whatever the mode asked, the run lists everything: Google has
/// no incremental listing.
pub(crate) async fn sync(
    http: &Http,
    token_target: Target,
    directory_target: Target,
    credentials: &GoogleWorkspaceCredentials,
    sink: &mut dyn PageSink,
) -> Result<Outcome, SyncError> {
    let account = ServiceAccount::new(credentials);
    let client = DirectoryClient::new(http, token_target, directory_target, account);
    let out = Out { sink, retries: 0 };
    let mut run = Run { client, out, memberships_expected: Some(0), unlisted: Vec::new() };
    run.users().await?;
    run.groups().await?;
    let expected = run.memberships_expected.map(|n| Expected::from([(MEMBERSHIP.to_string(), n)]));
    // The memberships stored for an unlisted group stay until a listing sees the group again.
    let coverage = match run.unlisted {
        unlisted if unlisted.is_empty() => Coverage::Everything,
        groups_without_members => Coverage::EverythingBut { groups_without_members },
    };
    Ok(Outcome { cursor: None, coverage, expected: expected.unwrap_or_default() })
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

    async fn users(&mut self) -> Result<(), SyncError> {
        let query = [("customer", "my_customer"), ("maxResults", USERS_PAGE), ("projection", "full")];
        let mut list: List<Box<RawValue>> =
            self.page(&["users"], &query, None, "users", &[]).await?.unwrap_or_default();
        let mut token = None;
        loop {
            token = next(token, list.next_page_token.take())?;
            let records = list.items.into_iter().filter_map(|raw| {
                let mut held = None;
                let user = map::user(&lenient::read(&raw, &mut held))?;
                Some(Record { entity: Entity::User(user), raw })
            });
            let records: Vec<Record> = records.collect();
            let Some(token) = &token else { return self.out.emit(records, Vec::new()).await };
            let query = with_token(&query, token);
            let fetch = self.client.fetch::<List<Box<RawValue>>>(&["users"], &query, "users", &[]);
            let ((), following) = overlapped(self.out.emit(records, Vec::new()), fetch).await?;
            let following = following?;
            self.out.retries += following.retries;
            list = following.body.unwrap_or_default();
        }
    }

    async fn groups(&mut self) -> Result<(), SyncError> {
        let query = [("customer", "my_customer"), ("maxResults", GROUPS_PAGE)];
        let mut token = None;
        loop {
            let list: List =
                self.page(&["groups"], &query, token.as_deref(), "groups", &[]).await?.unwrap_or_default();
            let ids: Vec<(String, Option<u64>)> = list
                .items
                .iter()
                .filter_map(|g| Some((g.get("id")?.as_str()?.to_string(), direct_members_count(g))))
                .collect();
            self.out.emit(list.items.into_iter().filter_map(map::group).collect(), Vec::new()).await?;
            for (id, count) in ids {
                match self.members(&id).await? {
                    Some(left_out) => {
                        self.memberships_expected = self
                            .memberships_expected
                            .zip(count)
                            .map(|(sum, count)| sum + count.saturating_sub(left_out));
                    }
                    None => self.unlisted.push(id),
                }
            }
            token = next(token, list.next_page_token)?;
            if token.is_none() {
                return Ok(());
            }
        }
    }

    /// A group's direct members; returns how many of those listed name no entity and were left
    /// out, or `None` for a group deleted during the run or outside the admin's role (skipped).
    async fn members(&mut self, group_id: &str) -> Result<Option<u64>, SyncError> {
        let path = ["groups", group_id, "members"];
        let query = [("maxResults", GROUPS_PAGE)];
        let tolerated = [reqwest::StatusCode::NOT_FOUND, reqwest::StatusCode::FORBIDDEN];
        let Some(mut list) = self.page::<Value>(&path, &query, None, "group members", &tolerated).await?
        else {
            return Ok(None);
        };
        let mut token = None;
        let mut left_out = 0;
        loop {
            token = next(token, list.next_page_token.take())?;
            let memberships: Vec<Membership> =
                list.items.iter().filter_map(|m| map::member(group_id, m)).collect();
            left_out += (list.items.len() - memberships.len()) as u64;
            let Some(token) = &token else {
                self.out.emit(Vec::new(), memberships).await?;
                return Ok(Some(left_out));
            };
            let query = with_token(&query, token);
            let fetch = self.client.fetch::<List>(&path, &query, "group members", &tolerated);
            let ((), following) = overlapped(self.out.emit(Vec::new(), memberships), fetch).await?;
            let following = following?;
            self.out.retries += following.retries;
            // Gone or out of reach between two of its pages: as if it had been so from the start.
            let Some(following) = following.body else { return Ok(None) };
            list = following;
        }
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
    async fn emit(&mut self, records: Vec<Record>, memberships: Vec<Membership>) -> Result<(), SyncError> {
        if records.is_empty() && memberships.is_empty() && self.retries == 0 {
            return Ok(());
        }
        let retries = std::mem::take(&mut self.retries);
        self.sink.accept(Page { records, memberships, retries, ..Page::default() }).await?;
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
