//! What the sync engine asks of a store: leases, run records, applying pages, and completing a
//! run in one transaction.

use ctxsync_core::{Config, ConfigId, Coverage, Membership, OrgId, Record, Removal, Run, RunCounts, RunKind};
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

/// One page as the store applies it.
#[derive(Debug, Clone, Copy)]
pub struct PageWrite<'a> {
    pub records: &'a [Record],
    pub memberships: &'a [Membership],
    pub removals: &'a [Removal],
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum RunEnd {
    /// The listing completed: apply deletions for what it covered and the named removals, keep
    /// the new cursor, and schedule the next run.
    Succeeded { coverage: Coverage, cursor: Option<serde_json::Value>, next_run_at: OffsetDateTime },
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

    /// Takes the config's lease for `owner` until `until` when it is free or expired, marking
    /// runs left `running` by a previous holder as failed. `None` when someone else holds it.
    async fn acquire_lease(
        &self,
        config: ConfigId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<Option<SyncState>, StoreError>;

    /// Extends a held lease; `false` when it was lost (expired and taken by another worker).
    async fn renew_lease(
        &self,
        config: ConfigId,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    async fn release_lease(&self, config: ConfigId, owner: &str) -> Result<(), StoreError>;

    /// Records a new run as `running`.
    async fn start_run(&self, config: ConfigId, kind: RunKind) -> Result<Run, StoreError>;

    /// Applies one page in one transaction: upserts entities whose content changed (unchanged
    /// ones are not rewritten), adds memberships, and remembers what was seen and removed for
    /// the end of the run. Returns what the page counted.
    async fn apply_page(&self, run: &Run, org: OrgId, page: PageWrite<'_>) -> Result<RunCounts, StoreError>;

    /// Saves a running run's counts, so its progress is visible.
    async fn save_progress(&self, run: &Run) -> Result<(), StoreError>;

    /// Ends a run. On success, deletions and removals are applied, the cursor saved and the run
    /// marked succeeded, all in one transaction; the returned run carries the final counts.
    async fn finish_run(&self, run: &Run, end: RunEnd) -> Result<Run, StoreError>;

    async fn sync_state(&self, config: ConfigId) -> Result<SyncState, StoreError>;

    /// A config by id whatever its org, for the operator's commands (`ctxsync sync`).
    async fn config_by_id(&self, config: ConfigId) -> Result<Option<Config>, StoreError>;

    /// Makes the config due now ("sync now").
    async fn request_run(&self, org: OrgId, config: ConfigId) -> Result<bool, StoreError>;

    /// Newest first.
    async fn list_runs(&self, org: OrgId, config: ConfigId, limit: u32) -> Result<Vec<Run>, StoreError>;

    async fn get_run(&self, org: OrgId, config: ConfigId, run: Uuid) -> Result<Option<Run>, StoreError>;
}
