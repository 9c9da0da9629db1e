//! A sync run against one console: agents listed by `updatedAt`, oldest first, a thousand a
//! page, following `pagination.nextCursor` until it is null.
//!
//! Decommissioned agents are hidden by default, so every listing asks for them
//! (`isDecommissioned=true,false`): a decommissioned host is then stored as such instead of
//! being deleted by a full run. A full run lists every agent (the engine deletes those not
//! seen, which is how agents deleted at the source go); an incremental run asks only for agents
//! updated after the cursor (`updatedAt__gt`).

use ctxsync_core::{EntityKind, Record};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::client::{Got, SentinelOneClient};
use super::cursor::{self, s1_time};
use super::map;
use crate::SourceError;
use crate::sync::{Coverage, Expected, Outcome, Page, PageSink, SyncError, SyncMode, overlapped};

/// The largest page the agents listing allows.
const PAGE_SIZE: &str = "1000";

/// One page of `/agents`. `data` is required: a 2xx without it is not SentinelOne's listing,
/// and reading it as an empty page would let a full run delete every agent.
#[derive(Deserialize)]
struct AgentsPage {
    data: Vec<Value>,
    #[serde(default)]
    pagination: Pagination,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    next_cursor: Option<String>,
    total_items: Option<u64>,
}

pub(super) async fn sync(
    client: &SentinelOneClient<'_>,
    mode: SyncMode,
    sink: &mut dyn PageSink,
) -> Result<Outcome, SyncError> {
    let since = match &mode {
        // These listings leave no marks, so no run of theirs is resumed; were one, listing
        // everything again would still complete it.
        SyncMode::Full | SyncMode::FullAfter(_) | SyncMode::Resume(..) => None,
        SyncMode::Incremental(cursor) => Some(cursor::read(cursor)?),
    };
    let since_text = since.map(s1_time);
    let mut query = vec![
        ("limit", PAGE_SIZE),
        ("sortBy", "updatedAt"),
        ("sortOrder", "asc"),
        ("isDecommissioned", "true,false"),
    ];
    if let Some(since) = &since_text {
        query.push(("updatedAt__gt", since));
    }
    let device = EntityKind::Device.as_str();
    let mut got = page(client, &query, None).await?;
    let started = got.date;
    let mut expected = Expected::new();
    if let Some(total) = got.body.pagination.total_items {
        sink.announce(device, total);
        // Only a full listing's total says how many agents exist.
        if since.is_none() {
            expected.insert(device.to_string(), total);
        }
    }
    let mut newest: Option<OffsetDateTime> = None;
    loop {
        let AgentsPage { data, pagination } = got.body;
        let mut records: Vec<Record> = Vec::with_capacity(data.len());
        for agent in &data {
            newest = newest.max(map::timestamp(agent, "updatedAt"));
            match map::agent(agent) {
                Some(record) => records.push(record),
                None => tracing::warn!(source = "SentinelOne", "skipped an agent without an id"),
            }
        }
        let retries = got.retries;
        let this_page = async {
            if !records.is_empty() {
                sink.accept(Page { records, retries, ..Page::default() }).await?;
            }
            Ok::<_, SyncError>(())
        };
        let following = async {
            match pagination.next_cursor.as_deref() {
                Some(next) => page(client, &query, Some(next)).await.map(Some),
                None => Ok(None),
            }
        };
        let ((), following) = overlapped(this_page, following).await?;
        match following? {
            Some(following) => got = following,
            None => break,
        }
    }
    let coverage = match since {
        None => Coverage::Everything,
        Some(_) => Coverage::Changes { groups_with_all_members: Vec::new() },
    };
    Ok(Outcome { cursor: Some(cursor::write(newest, started, since)), coverage, expected })
}

/// The page of agents `cursor` names (the first without one).
async fn page(
    client: &SentinelOneClient<'_>,
    query: &[(&str, &str)],
    cursor: Option<&str>,
) -> Result<Got<AgentsPage>, SourceError> {
    let mut query = query.to_vec();
    query.extend(cursor.map(|c| ("cursor", c)));
    client.fetch(&["agents"], &query, "list agents").await
}
