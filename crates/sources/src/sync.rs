//! What a connector hands the sync engine: pages of normalized records, streamed into a
//! [`PageSink`] as they arrive, so memory does not grow with the size of the tenant.
//!
//! A connector never deletes anything itself. It reports explicit removals when the source
//! names them (Graph `@removed`), and says in its [`Outcome`] what its listing covered in full;
//! the engine applies deletions only when the run completes.

pub use ctxsync_core::{Coverage, Expected, Removal};
use ctxsync_core::{Membership, Record};
use serde::{Deserialize, Serialize};

use crate::SourceError;

pub(crate) use ctxsync_core::MEMBERSHIP;

/// Works on a page while the next one is fetched, so the source's latency overlaps the work on
/// our side. Both run to their end and the work's error comes first: a page that could not be
/// handed on ends the run whatever the fetch said, and a failed fetch never cuts a page's
/// storing short. The fetch's result is returned as it came.
pub(crate) async fn overlapped<W, T, E>(
    work: impl Future<Output = Result<W, E>>,
    fetch: impl Future<Output = T>,
) -> Result<(W, T), E> {
    let (worked, fetched) = tokio::join!(work, fetch);
    Ok((worked?, fetched))
}

/// Admin roles by user id, as a run read them.
pub(crate) type Roles = std::collections::BTreeMap<String, Vec<String>>;

/// The users an incremental run must read again because their admin roles changed, which moves
/// no change time at the source: those whose roles differ from the last run's or, when the last
/// run could not read roles, everyone holding one now. Nothing when this run cannot read them,
/// nor when it keeps the roles the last run read (the token may no longer read them).
pub(crate) fn role_changes(
    before: Option<&Roles>,
    now: Option<&Roles>,
) -> std::collections::BTreeSet<String> {
    match (before, now) {
        (_, None) => Default::default(),
        (None, Some(now)) => now.keys().cloned().collect(),
        (Some(before), Some(now)) => {
            before.keys().chain(now.keys()).filter(|id| before.get(*id) != now.get(*id)).cloned().collect()
        }
    }
}

/// The users a push named, for a run to read one by one.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    pub ids: &'a [String],
    /// The cursor of the run they are read after, if any: what that run has just read for
    /// every user (admin roles) is taken from it rather than read again.
    pub after: Option<&'a Cursor>,
}

/// Which listing a run does.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncMode {
    /// List everything.
    Full,
    /// List everything, as `Full`, after a run that returned this cursor. The connector takes
    /// from it only what the listing may fail to read again and must not lose: the admin roles
    /// last read, kept when the token may no longer read roles, so every admin's roles are not
    /// revoked in the store because of a permission.
    FullAfter(Cursor),
    /// List what changed since the cursor a previous run returned.
    Incremental(Cursor),
    /// Go on with a full listing that stopped before it completed, from where its marks say: the
    /// pages before them were applied within the same run, so listing the rest completes it.
    /// The cursor, when there is one, is the last completed run's, as `FullAfter`'s: the stopped
    /// run may have saved no mark of what it kept from it yet.
    Resume(Checkpoint, Option<Cursor>),
}

/// Which listing of a full run a page belongs to, and how far that listing has got with it.
/// Once a page with `at` is applied, the listing never needs what came before again; the pages
/// in between marks are listed again by a resumed run, so the engine does not count them as
/// fetched in the checkpoint. `at` is the connector's own (a next-page link, what it has
/// tallied so far); the engine keeps the last one applied of each listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub listing: &'static str,
    pub at: Option<serde_json::Value>,
}

impl Mark {
    /// How far `listing` got, as the connector writes it.
    pub fn at(listing: &'static str, at: &impl Serialize) -> Mark {
        Mark { listing, at: Some(serde_json::to_value(at).expect("marks serialize")) }
    }

    /// A page of `listing` that does not move its mark.
    pub fn within(listing: &'static str) -> Mark {
        Mark { listing, at: None }
    }
}

/// Where a full run had got to: each listing's last applied [`Mark`], by listing name. Opaque
/// to the engine, which stores it with the pages it covers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint(pub serde_json::Map<String, serde_json::Value>);

impl Checkpoint {
    /// The last mark of `listing`, read as the connector wrote it; `None` when that listing had
    /// not got anywhere, or left a mark this build cannot read (it then starts over, which only
    /// costs requests).
    pub fn get<T: serde::de::DeserializeOwned>(&self, listing: &str) -> Option<T> {
        serde_json::from_value(self.0.get(listing)?.clone()).ok()
    }

    pub fn set(&mut self, listing: &str, at: serde_json::Value) {
        self.0.insert(listing.to_owned(), at);
    }
}

/// Where a source left off (Okta: the newest `lastUpdated` seen; Graph: the delta links).
/// Opaque to the engine, which stores it between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor(pub serde_json::Value);

/// What one page (or a few requests' worth) of the source said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub records: Vec<Record>,
    pub memberships: Vec<Membership>,
    /// Groups (source ids) whose every member is in this page's `memberships`: the store
    /// compares them with what it has, so a run over unchanged groups rewrites none of their
    /// memberships, where a member it only marks as seen is a row rewritten every full run.
    pub whole_groups: Vec<String>,
    /// Removals the source named explicitly; applied by the engine when the run completes.
    pub removals: Vec<Removal>,
    /// Requests retried (429, 5xx, timeouts) before this page came through.
    pub retries: u32,
    /// Set by a connector that can resume a full listing.
    pub mark: Option<Mark>,
}

/// The end of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Where the next incremental run starts; `None` when the source has no incremental
    /// listing (the next run is full again).
    pub cursor: Option<Cursor>,
    pub coverage: Coverage,
    /// The source's own totals for a full listing (Graph `$count`, Okta group `usersCount`,
    /// Google `directMembersCount`), by kind; the engine compares them with what it received.
    pub expected: Expected,
}

/// Where a connector puts its pages. Implemented by the engine (upserting in batches) and by
/// benchmarks (counting only).
#[async_trait::async_trait]
pub trait PageSink: Send {
    /// Takes one page. An error stops the listing: the store failed, or the run was cancelled.
    async fn accept(&mut self, page: Page) -> Result<(), SinkError>;

    /// Told, as the source reveals it, how many more of a kind (an entity kind's name, or
    /// `membership`) the listing will hand over; announcements add up. Only for showing progress:
    /// nothing is checked against them.
    fn announce(&mut self, _kind: &str, _more: u64) {}
}

/// The sink refused a page; the message says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Why a listing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("the sync stopped: {0}")]
    Sink(#[from] SinkError),
    /// The source no longer knows the cursor (Graph 410 Gone, an expired delta token): the
    /// engine runs a full listing instead.
    #[error("the source no longer accepts the incremental cursor; a full sync is needed")]
    CursorExpired,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(entries: &[(&str, &[&str])]) -> Roles {
        entries.iter().map(|(id, r)| (id.to_string(), r.iter().map(|r| r.to_string()).collect())).collect()
    }

    #[test]
    fn role_changes_are_the_holders_whose_roles_differ() {
        let before = roles(&[("a", &["SUPER_ADMIN"]), ("b", &["HELP_DESK_ADMIN"])]);
        let now = roles(&[("a", &["SUPER_ADMIN"]), ("b", &["ORG_ADMIN"]), ("c", &["READ_ONLY_ADMIN"])]);
        let changed: Vec<String> = role_changes(Some(&before), Some(&now)).into_iter().collect();
        assert_eq!(changed, ["b", "c"]);
        let revoked = roles(&[("a", &["SUPER_ADMIN"])]);
        assert_eq!(role_changes(Some(&before), Some(&revoked)).into_iter().collect::<Vec<_>>(), ["b"]);
    }

    /// A run after one that could not read roles (the permission was granted since) must give
    /// every current admin their roles: their change times did not move, so nothing else would
    /// bring them.
    #[test]
    fn after_a_run_without_roles_every_holder_is_read_again() {
        let now = roles(&[("a", &["SUPER_ADMIN"]), ("c", &["READ_ONLY_ADMIN"])]);
        assert_eq!(role_changes(None, Some(&now)).into_iter().collect::<Vec<_>>(), ["a", "c"]);
        assert!(role_changes(Some(&now), None).is_empty(), "a run that cannot read roles changes none");
    }
}
