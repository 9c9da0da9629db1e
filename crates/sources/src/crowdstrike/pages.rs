//! A run: hosts with their full records from the combined endpoint, page after page (the next
//! page fetched while the sink takes one), or from the scroll query and the entities endpoint
//! where the cloud refuses the combined one (GovCloud). Full runs list every host, so the engine
//! deletes those gone; incremental runs list hosts modified since the cursor, and hosts hidden
//! since then as removals.

use ctxsync_core::EntityKind;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

use super::client::FalconClient;
use super::map;
use crate::SourceError;
use crate::sync::{
    Coverage, Cursor, Expected, Outcome, Page, PageSink, Removal, SyncError, SyncMode, overlapped,
};

const COMBINED: [&str; 4] = ["devices", "combined", "devices", "v1"];
const COMBINED_HIDDEN: [&str; 4] = ["devices", "combined", "devices-hidden", "v1"];
const SCROLL: [&str; 4] = ["devices", "queries", "devices-scroll", "v1"];
const HIDDEN_IDS: [&str; 4] = ["devices", "queries", "devices-hidden", "v1"];
const ENTITIES: [&str; 4] = ["devices", "entities", "devices", "v2"];
/// Hosts per page: the combined endpoint takes up to 10,000, the scroll query and the entities
/// endpoint up to 5,000; one size keeps pages alike whichever way a run goes.
const PAGE_SIZE: usize = 5000;
/// Where a cloud without the combined endpoints answers 404, the run takes the older way.
const REFUSED: &[StatusCode] = &[StatusCode::NOT_FOUND];

/// A page of the combined endpoints, or of the entities endpoint.
#[derive(Debug, Deserialize)]
struct Hosts {
    meta: Meta,
    #[serde(default)]
    resources: Option<Vec<Value>>,
}

/// A page of a query endpoint: host ids.
#[derive(Debug, Deserialize)]
struct Ids {
    meta: Meta,
    #[serde(default)]
    resources: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Debug, Default, Deserialize)]
struct Pagination {
    /// The combined endpoints' pointer to the next page.
    #[serde(default)]
    next: Option<String>,
    /// The scroll query's pointer (a string) or the hidden query's position (a number).
    #[serde(default)]
    offset: Option<Value>,
    #[serde(default)]
    total: Option<u64>,
}

impl Meta {
    fn pagination(&self) -> &Pagination {
        static NONE: Pagination = Pagination { next: None, offset: None, total: None };
        self.pagination.as_ref().unwrap_or(&NONE)
    }

    fn next(&self) -> Option<String> {
        self.pagination().next.clone().filter(|n| !n.is_empty())
    }
}

/// Where the next incremental run starts: the newest `modified_timestamp` seen.
#[derive(Debug, Serialize, Deserialize)]
struct FalconCursor {
    modified: String,
}

/// `2024-05-05T18:15:44Z`, as Falcon writes timestamps.
fn stamp(t: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).expect("UTC timestamps format")
}

fn read_cursor(cursor: &Cursor) -> Result<OffsetDateTime, SyncError> {
    let parsed: FalconCursor =
        serde_json::from_value(cursor.0.clone()).map_err(|_| SyncError::CursorExpired)?;
    OffsetDateTime::parse(&parsed.modified, &Rfc3339).map_err(|_| SyncError::CursorExpired)
}

/// The newest timestamp seen, but never later than a second before the run began by
/// CrowdStrike's clock: a host changed while the run went on, or in the second it began (Falcon
/// writes whole seconds and the filter is strict), is listed again next time. A listing that saw
/// nothing keeps where it started.
fn high_water(
    seen: Option<OffsetDateTime>,
    started: Option<OffsetDateTime>,
    since: Option<OffsetDateTime>,
) -> OffsetDateTime {
    let started = started.map(|s| s - Duration::SECOND);
    match (seen, started) {
        (Some(seen), Some(started)) => seen.min(started),
        (Some(seen), None) => seen,
        (None, started) => since.or(started).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}

/// Proves the API client may list hosts: a token, then one host.
pub(super) async fn probe(client: &mut FalconClient<'_>) -> Result<(), SourceError> {
    let query = [("limit", "1".to_string())];
    let got = client.get::<Hosts>(&COMBINED, &query, "list hosts", REFUSED).await?;
    if got.body.is_none() {
        client.get::<Ids>(&SCROLL, &query, "list hosts", &[]).await?;
    }
    Ok(())
}

struct Run<'c, 's> {
    client: FalconClient<'c>,
    sink: &'s mut dyn PageSink,
    filter: Option<String>,
    sort: &'static str,
    newest: Option<OffsetDateTime>,
}

pub(super) async fn sync(
    client: FalconClient<'_>,
    mode: SyncMode,
    sink: &mut dyn PageSink,
) -> Result<Outcome, SyncError> {
    let since = match &mode {
        // These listings leave no marks, so no run of theirs is resumed; were one, listing
        // everything again would still complete it.
        SyncMode::Full | SyncMode::FullAfter(_) | SyncMode::Resume(..) => None,
        SyncMode::Incremental(cursor) => Some(read_cursor(cursor)?),
    };
    let mut run = Run {
        client,
        sink,
        filter: since.map(|t| format!("modified_timestamp:>\"{}\"", stamp(t))),
        sort: if since.is_some() { "modified_timestamp.asc" } else { "device_id.asc" },
        newest: None,
    };
    let total = match run.combined().await? {
        Some(total) => total,
        None => run.scrolled().await?,
    };
    let mut expected = Expected::new();
    let coverage = if since.is_some() {
        let removals = run.hidden().await?;
        if !removals.is_empty() {
            run.sink.accept(Page { removals, ..Page::default() }).await?;
        }
        Coverage::Changes { groups_with_all_members: Vec::new() }
    } else {
        if let Some(total) = total {
            expected.insert(EntityKind::Device.as_str().to_string(), total);
        }
        Coverage::Everything
    };
    let modified = stamp(high_water(run.newest, run.client.started(), since));
    let cursor = Cursor(serde_json::to_value(FalconCursor { modified }).expect("the cursor serializes"));
    Ok(Outcome { cursor: Some(cursor), coverage, expected })
}

impl Run<'_, '_> {
    fn query(&self, offset: Option<(&'static str, String)>) -> Vec<(&'static str, String)> {
        let mut query = vec![("limit", PAGE_SIZE.to_string()), ("sort", self.sort.to_string())];
        query.extend(self.filter.clone().map(|f| ("filter", f)));
        query.extend(offset);
        query
    }

    /// Hosts as records, noting the newest change among them.
    fn page(&mut self, hosts: Vec<Value>, retries: u32) -> Page {
        let mut records = Vec::with_capacity(hosts.len());
        for host in &hosts {
            self.newest = self.newest.max(map::modified(host));
            records.extend(map::device(host));
        }
        Page { records, retries, ..Page::default() }
    }

    /// The combined endpoint's listing and its total; `None` where the cloud refuses it.
    async fn combined(&mut self) -> Result<Option<Option<u64>>, SyncError> {
        let first = self.client.get::<Hosts>(&COMBINED, &self.query(None), "list hosts", REFUSED).await?;
        let Some(mut body) = first.body else {
            tracing::info!("the combined hosts endpoint is refused; listing through the scroll query");
            return Ok(None);
        };
        let total = body.meta.pagination().total;
        if let Some(total) = total {
            self.sink.announce(EntityKind::Device.as_str(), total);
        }
        let mut retries = first.retries;
        loop {
            let hosts = body.resources.take().unwrap_or_default();
            let next = body.meta.next().filter(|_| !hosts.is_empty());
            let page = self.page(hosts, retries);
            let Some(next) = next else {
                self.sink.accept(page).await?;
                return Ok(Some(total));
            };
            let query = self.query(Some(("offset", next)));
            let (sink, client) = (&mut *self.sink, &mut self.client);
            let ((), fetched) =
                overlapped(sink.accept(page), client.get::<Hosts>(&COMBINED, &query, "list hosts", &[]))
                    .await?;
            let got = fetched?;
            retries = got.retries;
            body = got.body.expect("a successful reply has a body");
        }
    }

    /// The scroll query's ids, each batch read through the entities endpoint; and the total. The
    /// listing ends where the scroll pointer does, whatever the size of the pages before.
    async fn scrolled(&mut self) -> Result<Option<u64>, SyncError> {
        let mut offset = None;
        let mut total = None;
        loop {
            let query = self.query(offset.take().map(|o| ("offset", o)));
            let got = self.client.get::<Ids>(&SCROLL, &query, "list hosts", &[]).await?;
            let ids = got.body.expect("a successful reply has a body");
            let pagination = ids.meta.pagination();
            if total.is_none()
                && let Some(all) = pagination.total
            {
                total = Some(all);
                self.sink.announce(EntityKind::Device.as_str(), all);
            }
            offset = pagination
                .offset
                .as_ref()
                .and_then(Value::as_str)
                .filter(|o| !o.is_empty())
                .map(str::to_string);
            let ids = ids.resources.unwrap_or_default();
            let mut retries = got.retries;
            for batch in ids.chunks(PAGE_SIZE) {
                let got =
                    self.client.post::<Hosts>(&ENTITIES, &json!({ "ids": batch }), "read hosts").await?;
                let hosts = got.body.and_then(|b| b.resources).unwrap_or_default();
                let page = self.page(hosts, retries + got.retries);
                retries = 0;
                self.sink.accept(page).await?;
            }
            if ids.is_empty() || offset.is_none() {
                return Ok(total);
            }
        }
    }

    /// The ids of hosts hidden since the cursor, as removals.
    async fn hidden(&mut self) -> Result<Vec<Removal>, SyncError> {
        let removal = |source_id: String| Removal::Entity { kind: EntityKind::Device, source_id };
        let mut removals = Vec::new();
        let mut offset = None;
        loop {
            let query = self.query(offset.take().map(|o| ("offset", o)));
            let got =
                self.client.get::<Hosts>(&COMBINED_HIDDEN, &query, "list hidden hosts", REFUSED).await?;
            let Some(body) = got.body else {
                return Ok(self.hidden_ids().await?.into_iter().map(removal).collect());
            };
            offset = body.meta.next();
            let hosts = body.resources.unwrap_or_default();
            for host in &hosts {
                self.newest = self.newest.max(map::modified(host));
            }
            let count = hosts.len();
            removals.extend(
                hosts.iter().filter_map(|h| h.get("device_id")?.as_str()).map(|id| removal(id.to_string())),
            );
            if offset.is_none() || count == 0 {
                return Ok(removals);
            }
        }
    }

    /// The hidden hosts' ids through the query endpoint, where the combined one is refused.
    async fn hidden_ids(&mut self) -> Result<Vec<String>, SyncError> {
        let mut all = Vec::new();
        loop {
            let query = self.query(Some(("offset", all.len().to_string())));
            let got = self.client.get::<Ids>(&HIDDEN_IDS, &query, "list hidden hosts", &[]).await?;
            let ids = got.body.expect("a successful reply has a body");
            let total = ids.meta.pagination().total;
            let page = ids.resources.unwrap_or_default();
            let count = page.len();
            all.extend(page);
            if count == 0 || total.is_none_or(|t| all.len() as u64 >= t) {
                return Ok(all);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_cursor_never_passes_the_runs_start() {
        let (before, start, after) = (
            datetime!(2024-01-01 0:00 UTC),
            datetime!(2024-01-02 0:00 UTC),
            datetime!(2024-01-02 0:00:05 UTC),
        );
        assert_eq!(high_water(Some(before), Some(start), None), before);
        assert_eq!(high_water(Some(after), Some(start), None), start - Duration::SECOND);
        assert_eq!(high_water(None, Some(start), Some(before)), before);
        assert_eq!(high_water(None, None, None), OffsetDateTime::UNIX_EPOCH);
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_mean_a_full_run() {
        let t = datetime!(2024-05-05 18:15:44 UTC);
        let cursor = Cursor(json!({ "modified": stamp(t) }));
        assert_eq!(read_cursor(&cursor).unwrap(), t);
        for foreign in [json!({"users": "x"}), json!({"modified": "yesterday"})] {
            assert_eq!(read_cursor(&Cursor(foreign)).unwrap_err(), SyncError::CursorExpired);
        }
    }
}
