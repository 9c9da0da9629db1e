//! What the sync engine asks of a store: leases, run records, applying pages, and completing a
//! run in one transaction.

use ctxsync_core::{
    Completeness, Config, ConfigId, Coverage, DeletionGuard, Expected, IntegrationType, Membership, OrgId,
    Removal, Run, RunCounts, RunKind, RunStatus,
};
use std::collections::BTreeMap;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::StoreError;

/// A config's sync bookkeeping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncState {
    /// Where the next incremental run starts (the connector's cursor, JSON).
    pub cursor: Option<serde_json::Value>,
    pub last_full_at: Option<OffsetDateTime>,
    pub next_run_at: Option<OffsetDateTime>,
}

/// A config's runs as an operator watches them: when it last synced completely, and how many of
/// its runs wait for a decision on held deletions.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub config: ConfigId,
    pub integration_type: ctxsync_core::IntegrationType,
    /// When the newest run that succeeded finished.
    pub last_success: Option<OffsetDateTime>,
    pub held_runs: u64,
}

/// The query of [`SyncStore::run_summaries`], the same for both backends but for how each reads
/// `unresolved`: that run `r`'s hold has no resolution yet.
pub(crate) fn run_summaries_query(unresolved: &str) -> String {
    format!(
        "SELECT c.id, c.integration_type, \
         (SELECT r.finished_at FROM sync_runs r WHERE r.config_id = c.id AND r.status = 'succeeded' \
          ORDER BY r.started_at DESC LIMIT 1) AS last_success, \
         (SELECT COUNT(*) FROM sync_runs r WHERE r.config_id = c.id AND r.status = 'held' AND {unresolved}) \
          AS held_runs \
         FROM integration_configs c ORDER BY c.id"
    )
}

/// Who holds a config's lease, and until when.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The holder's name, as the worker that took the lease chose it.
    pub owner: String,
    pub until: OffsetDateTime,
}

/// One page as the store applies it.
#[derive(Clone, Copy)]
pub struct PageWrite<'a> {
    pub entities: &'a crate::PreparedEntities,
    pub memberships: &'a [Membership],
    /// Groups whose every member is in `memberships` (see `Page::whole_groups`).
    pub whole_groups: &'a [String],
    pub removals: &'a [Removal],
    /// Set when the page moves a full run's checkpoint: saved with the page, with the run's
    /// counts so far, so a resumed run goes on from exactly what was stored.
    pub checkpoint: Option<Checkpointed<'a>>,
}

/// A full run's checkpoint as a page moves it.
#[derive(Clone, Copy)]
pub struct Checkpointed<'a> {
    /// Each listing's last mark.
    pub marks: &'a serde_json::Map<String, serde_json::Value>,
    /// What the pages applied since their listing's last mark fetched: a resumed run lists
    /// them again, so they are not counted with the checkpoint.
    pub unmarked: &'a RunCounts,
}

/// A full run that stopped before it completed and left a checkpoint: what it had listed is
/// kept (its pages, and what it saw for the deletions), for a later full run to go on from.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumePoint {
    pub run: Uuid,
    /// When the first run of the listing began: the stopped one, or the one it went on from.
    pub listed_since: OffsetDateTime,
    /// When it stopped (was found stopped, for a run whose process died).
    pub stopped_at: OffsetDateTime,
    pub checkpoint: serde_json::Map<String, serde_json::Value>,
    /// Its counts as of the checkpoint.
    pub counts: RunCounts,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum RunEnd {
    /// The listing completed: apply deletions for what it covered and the named removals unless
    /// `guard` holds them, keep the new cursor, and schedule the next run. `expected` holds the
    /// source's totals, compared with what the run fetched.
    Succeeded {
        coverage: Coverage,
        cursor: Option<serde_json::Value>,
        next_run_at: OffsetDateTime,
        guard: DeletionGuard,
        expected: Expected,
    },
    /// Nothing is deleted; what was upserted stays; the next run is scheduled.
    Failed { error: String, next_run_at: OffsetDateTime },
    /// Stopped on purpose (disabled, deleted, shutting down); the next run is due at once.
    Cancelled { reason: String },
}

#[async_trait::async_trait]
pub trait SyncStore: Send + Sync {
    /// Enabled configs whose credentials are not known bad, whose next run is due, and that no
    /// live lease holds; oldest due first. Across every org: the scheduler serves them all.
    async fn due_configs(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Config>, StoreError>;

    /// Takes the config's lease for `owner` until `until` when it is free, expired or held by
    /// `replacing` (a holder known to be dead), marking runs left `running` by a previous holder
    /// as failed. `None` when someone else holds it.
    async fn acquire_lease(
        &self,
        config: ConfigId,
        owner: &str,
        until: OffsetDateTime,
        replacing: Option<&str>,
    ) -> Result<Option<SyncState>, StoreError>;

    /// The config's lease as stored, expired or not; `None` when nobody holds it.
    async fn lease(&self, config: ConfigId) -> Result<Option<Lease>, StoreError>;

    /// Extends a held lease; `false` when it was lost (expired and taken by another worker).
    async fn renew_lease(
        &self,
        config: ConfigId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    async fn release_lease(&self, config: ConfigId, owner: &str) -> Result<(), StoreError>;

    /// The configs of `integration_type` under a lease live at `now`, as `(domain, owner)`: who
    /// syncs which tenant of the source right now, so replicas syncing one tenant can split the
    /// limits the source sets on all of its clients together.
    async fn leased_domains(
        &self,
        integration_type: IntegrationType,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Records a new run as `running`, under the id "sync now" promised when one waits. What
    /// stopped full runs kept for resuming is dropped: a run that does not go on from them would
    /// leave their record of what was seen behind the store. [`StoreError::LeaseLost`] unless
    /// `owner` holds the config's lease (expired but not taken over still counts: a takeover
    /// marks the run failed): a worker that stalled past it must not start a run beside the new
    /// holder's.
    async fn start_run(&self, config: ConfigId, kind: RunKind, owner: &str) -> Result<Run, StoreError>;

    /// The newest unfinished full run of the config that a full run may go on from.
    async fn resume_point(&self, config: ConfigId) -> Result<Option<ResumePoint>, StoreError>;

    /// Records a new full run that goes on from `from`: it takes over what `from` saw and its
    /// counts, so its deletions are decided by both listings together, as if one run had made
    /// them. Like [`SyncStore::start_run`], it drops what any other unfinished run kept, and
    /// needs `owner` to hold the lease.
    async fn resume_run(&self, config: ConfigId, from: &ResumePoint, owner: &str) -> Result<Run, StoreError>;

    /// Applies one page in one transaction: upserts entities whose content changed (unchanged
    /// ones are not rewritten), adds memberships, and remembers what was seen and removed for
    /// the end of the run. Returns what the page counted; [`StoreError::RunTakenOver`] once the
    /// run is no longer running (another worker took the config over), writing nothing.
    async fn apply_page(&self, run: &Run, org: OrgId, page: PageWrite<'_>) -> Result<RunCounts, StoreError>;

    /// Saves a running run's counts, so its progress is visible.
    async fn save_progress(&self, run: &Run) -> Result<(), StoreError>;

    /// Ends a run. On success, deletions and removals are applied (or held, see
    /// [`crate::HoldStore`]), the cursor saved and the run marked succeeded (or held), all in one
    /// transaction; the returned run carries the final counts.
    async fn finish_run(&self, run: &Run, end: RunEnd) -> Result<Run, StoreError>;

    async fn sync_state(&self, config: ConfigId) -> Result<SyncState, StoreError>;

    /// A config by id whatever its org, for the operator's commands (`ctxsync sync`).
    async fn config_by_id(&self, config: ConfigId) -> Result<Option<Config>, StoreError>;

    /// Makes the config due now ("sync now") and returns the id its next run will have (the one
    /// already promised when a request is waiting); `None` when the org has no such config.
    async fn request_run(&self, org: OrgId, config: ConfigId) -> Result<Option<Uuid>, StoreError>;

    /// Newest first.
    async fn list_runs(&self, org: OrgId, config: ConfigId, limit: u32) -> Result<Vec<Run>, StoreError>;

    async fn get_run(&self, org: OrgId, config: ConfigId, run: Uuid) -> Result<Option<Run>, StoreError>;

    /// Every config's [`RunSummary`], whatever its org, in one query: read at each metrics scrape,
    /// so it is the same on every replica and survives restarts.
    async fn run_summaries(&self) -> Result<Vec<RunSummary>, StoreError>;
}

/// The error of a run cancelled because its config was pointed at another domain or type.
pub const SOURCE_CHANGED: &str = "the config now names another source";

/// The error of a run found `running` when its config's lease is taken over.
pub(crate) const INTERRUPTED: &str =
    "interrupted: the worker running it stopped before it completed; nothing was deleted";

/// A run as [`SyncStore::start_run`] records it.
pub(crate) fn new_run(config: ConfigId, kind: RunKind) -> Run {
    Run {
        id: Uuid::new_v4(),
        config_id: config,
        kind,
        status: RunStatus::Running,
        started_at: ctxsync_core::now(),
        finished_at: None,
        counts: RunCounts::default(),
        error: None,
        baseline: false,
        hold: None,
        completeness: None,
        resumed_from: None,
    }
}

/// What [`SyncStore::finish_run`] writes, decided the same way by every backend.
pub(crate) struct Ending<'a> {
    /// The run as it is recorded; the deletions add their counts.
    pub run: Run,
    pub next_run_at: OffsetDateTime,
    /// Set when the listing completed: what it covered and the new cursor (JSON).
    pub completed: Option<(&'a Coverage, Option<String>)>,
    /// Set when a completed run was full: the new `last_full_at`.
    pub last_full_at: Option<OffsetDateTime>,
    /// Set when the listing completed: when its deletions are held.
    pub guard: Option<DeletionGuard>,
}

impl<'a> Ending<'a> {
    pub(crate) fn new(run: &Run, end: &'a RunEnd, now: OffsetDateTime) -> Ending<'a> {
        let mut finished = Run { finished_at: Some(now), ..run.clone() };
        let mut guard = None;
        let (next_run_at, completed) = match end {
            RunEnd::Succeeded { coverage, cursor, next_run_at, guard: run_guard, expected } => {
                finished.status = RunStatus::Succeeded;
                guard = Some(*run_guard);
                if !expected.is_empty() {
                    finished.completeness = Some(Completeness::new(expected, &run.counts));
                }
                let cursor = cursor.as_ref().map(|c| serde_json::to_string(c).expect("JSON serializes"));
                (*next_run_at, Some((coverage, cursor)))
            }
            RunEnd::Failed { error, next_run_at } => {
                finished.status = RunStatus::Failed;
                finished.error = Some(error.clone());
                (*next_run_at, None)
            }
            RunEnd::Cancelled { reason } => {
                finished.status = RunStatus::Cancelled;
                finished.error = Some(reason.clone());
                (now, None)
            }
        };
        let last_full_at = (completed.is_some() && run.kind == RunKind::Full).then_some(now);
        Ending { run: finished, next_run_at, completed, last_full_at, guard }
    }

    /// Decides whether the staged deletions wait (the run becomes `held`); `stored` counts each
    /// kind before them. Returns whether they may be applied now.
    pub(crate) fn may_delete(
        &mut self,
        staged: &BTreeMap<String, u64>,
        stored: &BTreeMap<String, u64>,
    ) -> bool {
        let Some(guard) = &self.guard else { return true };
        match crate::holds::judge(&self.run, guard, staged, stored) {
            Some(hold) => {
                self.run.status = RunStatus::Held;
                self.run.hold = Some(hold);
                false
            }
            None => true,
        }
    }

    /// The run's hold and completeness as stored (JSON).
    pub(crate) fn findings(&self) -> (Option<String>, Option<String>) {
        let hold = self.run.hold.as_ref().map(crate::holds::encode_hold);
        let completeness = self
            .run
            .completeness
            .as_ref()
            .map(|c| serde_json::to_string(c).expect("completeness serializes"));
        (hold, completeness)
    }

    /// Marks the run as the config's baseline when it is the first full listing to complete
    /// (`baselined` says whether one already did); returns whether it is.
    pub(crate) fn baseline(&mut self, baselined: bool) -> bool {
        self.run.baseline = !baselined && self.last_full_at.is_some();
        self.run.baseline
    }
}
