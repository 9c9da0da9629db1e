//! One sync of one config: lease, listing, completion. Split as `run → execute → finish` so a
//! test can drive a single run and read its [`Outcome`].

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ctxsync_core::{
    Config, ConfigId, ConfigState, Coverage, DeletionGuard, EntityKind, Expected, Run, RunCounts, RunKind,
    RunStatus, Schedule,
};
use ctxsync_sources::{Checkpoint, Credentials, Cursor, Named, SourceError, Sources, SyncError, SyncMode};
use ctxsync_store::{ResumePoint, RunEnd, SOURCE_CHANGED, Store, StoreError, SyncState};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::holder::{self, Holder};
use crate::sink::{Progress, StoreSink};

/// The engine's knobs.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// The schedule of configs whose settings do not set their own.
    pub schedule: Schedule,
    /// How long a lease lasts without renewal: a dead worker's configs are picked up after it.
    pub lease: Duration,
    /// Runs at the same time in this process.
    pub concurrency: usize,
    /// How often the scheduler looks for due configs.
    pub tick: Duration,
    /// When a run's deletions are held, for configs whose settings do not say.
    pub guard: DeletionGuard,
    /// The clock a run reads to decide whether a full run is due; tests advance one of their own.
    pub clock: Clock,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            schedule: Schedule::DEFAULT,
            lease: Duration::from_secs(60),
            concurrency: 4,
            tick: Duration::from_secs(5),
            guard: DeletionGuard::DEFAULT,
            clock: Clock::default(),
        }
    }
}

/// How one attempt to sync a config ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(Run),
    /// The listing completed; everything but its deletions was applied, which wait for a
    /// decision.
    Held(Run),
    /// The run stopped on an error; nothing was deleted.
    Failed(Run),
    /// The config was disabled or deleted, the lease was lost, or the process is stopping.
    Cancelled(Run),
    /// Another worker holds the config's lease; `holder` says which, in words.
    Busy {
        holder: String,
    },
    /// The config is gone or cannot be synced as it is, or was pointed at another source during
    /// the run, which that update cancelled (the reason says why).
    Skipped(String),
}

/// What a caller may ask of one run.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Told about every applied page (progress bars).
    pub progress: Option<Progress>,
    /// List everything even when an incremental run would do.
    pub full: bool,
    /// List everything from the start, dropping what a stopped full run kept to go on from: for
    /// an operator who doubts that listing, since a resume point otherwise comes before any mode.
    pub restart: bool,
}

/// Who held a lease that was free again when asked.
const JUST_RELEASED: &str = "a worker that has just released it";

/// Why a config deleted under its worker is skipped.
const CONFIG_GONE: &str = "the config no longer exists";

/// Runs syncs. Cheap to clone; every clone shares the owner name that leases are taken under.
#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn Store>,
    sources: Sources,
    settings: SyncSettings,
    owner: Arc<str>,
    /// This process as lease holders are recorded, to recognise the leases of dead ones.
    here: Option<Arc<Holder>>,
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, sources: Sources, settings: SyncSettings) -> Worker {
        let here = Holder::this_process();
        let owner = Holder::owner_name(here.as_ref(), &uuid::Uuid::new_v4().simple().to_string());
        Worker { store, sources, settings, owner: owner.into(), here: here.map(Arc::new) }
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Syncs `config` once, holding its lease throughout; `stop` cancels the run (shutdown).
    pub async fn run(
        &self,
        config: &Config,
        options: RunOptions,
        stop: &CancellationToken,
    ) -> Result<Outcome, StoreError> {
        let state = match self.take_lease(config.id).await? {
            Ok(state) => state,
            Err(holder) => return Ok(Outcome::Busy { holder }),
        };
        self.split_limits(config).await;
        let cancel = stop.child_token();
        let heartbeat = tokio::spawn(self.clone().heartbeat(config.clone(), cancel.clone()));
        let outcome = self.execute(config, state, options, &cancel).await;
        heartbeat.abort();
        self.store.release_lease(config.id, &self.owner).await?;
        outcome
    }

    /// Takes the config's lease when it is free, expired, or held by a process of this host that
    /// no longer exists; otherwise says who holds it.
    async fn take_lease(&self, config: ConfigId) -> Result<Result<SyncState, String>, StoreError> {
        if let Some(state) = self.store.acquire_lease(config, &self.owner, self.lease_until(), None).await? {
            return Ok(Ok(state));
        }
        let Some(lease) = self.store.lease(config).await? else {
            return Ok(Err(JUST_RELEASED.into()));
        };
        let dead = self
            .here
            .as_deref()
            .is_some_and(|here| Holder::parse(&lease.owner).is_some_and(|h| h.is_gone_from(here)));
        if dead
            && let Some(state) =
                self.store.acquire_lease(config, &self.owner, self.lease_until(), Some(&lease.owner)).await?
        {
            tracing::info!(
                config_id = %config,
                holder = %holder::describe(&lease.owner),
                "took over the lease of a process of this host that no longer runs"
            );
            crate::metrics::record_takeover();
            return Ok(Ok(state));
        }
        Ok(Err(holder::describe(&lease.owner)))
    }

    /// The store refused to start a run: the config was deleted, or this worker stalled past
    /// its lease and another took the config over.
    async fn lease_lost(&self, config: &Config) -> Result<Outcome, StoreError> {
        if self.store.get_config(config.org_id, config.id).await?.is_none() {
            return Ok(Outcome::Skipped(CONFIG_GONE.into()));
        }
        let holder = match self.store.lease(config.id).await? {
            Some(lease) => holder::describe(&lease.owner),
            None => JUST_RELEASED.into(),
        };
        tracing::warn!(
            config_id = %config.id,
            holder = %holder,
            "this worker lost the config's lease before its run started; no run was started"
        );
        Ok(Outcome::Busy { holder })
    }

    fn lease_until(&self) -> OffsetDateTime {
        ctxsync_core::now() + self.settings.lease
    }

    /// Keeps this process to its part of the limits the config's source sets on all the clients
    /// of its tenant together and does not report to them (an Okta org's requests in flight, a
    /// Google domain's Directory quota, an Entra ID domain's Graph budget): each process that holds
    /// a live lease on a config of the same tenant, as the source names it, takes an equal part of
    /// the share. Asked when a run starts and at each renewal of its lease, so a process that
    /// started first gives way within a third of a lease (meanwhile two take at most one and a
    /// half shares), and one left alone takes the whole share back as soon. A lease of a process
    /// of this host that no longer exists does not count. Without the store's answer, the last
    /// split stands.
    async fn split_limits(&self, config: &Config) {
        let kind = config.integration_type;
        let Some(key) = self.sources.shared_limit(kind, &config.domain) else { return };
        let leased = match self.store.leased_domains(kind, ctxsync_core::now()).await {
            Ok(leased) => leased,
            Err(e) => {
                tracing::warn!(config_id = %config.id, error = %e, "could not read who else syncs the config's tenant");
                return;
            }
        };
        let mut processes = self.processes_syncing(config, &key, &leased);
        processes.insert(holder::process_of(&self.owner));
        let count = processes.len().try_into().unwrap_or(u32::MAX);
        // Said when it changes: an operator wondering why a run is slower than before finds why.
        if self.sources.split_limit(&key, count).max(1) != count {
            tracing::info!(
                config_id = %config.id,
                processes = count,
                "the processes syncing this config's tenant changed; each keeps to an equal part of its share of the source's limits"
            );
        }
    }

    /// The processes among `leased` (`(domain, lease owner)` of `config`'s source) whose leases
    /// are on configs of `config`'s tenant, the source's limit `key`; a process of this host that
    /// no longer exists is not among them.
    fn processes_syncing<'a>(
        &self,
        config: &Config,
        key: &str,
        leased: &'a [(String, String)],
    ) -> BTreeSet<&'a str> {
        let gone = |owner: &str| {
            self.here
                .as_deref()
                .is_some_and(|here| Holder::parse(owner).is_some_and(|h| h.is_gone_from(here)))
        };
        leased
            .iter()
            .filter(|(domain, owner)| {
                self.sources.shared_limit(config.integration_type, domain).is_some_and(|k| k == key)
                    && !gone(owner)
            })
            .map(|(_, owner)| holder::process_of(owner))
            .collect()
    }

    /// How many processes sync each of `configs`' tenants now, as [`Worker::split_limits`]
    /// counts them (0 when none does), for the configs whose source has limits to split: what
    /// each of them keeps to is its share divided by that. Replicas read the same answer, but for
    /// the lease of a dead process, which only those of its host see is dead before it expires.
    pub async fn tenant_processes(&self, configs: &[Config]) -> Result<Vec<(ConfigId, u32)>, StoreError> {
        let now = ctxsync_core::now();
        let mut leased = BTreeMap::new();
        let mut counts = Vec::new();
        for config in configs {
            let kind = config.integration_type;
            let Some(key) = self.sources.shared_limit(kind, &config.domain) else { continue };
            let leased = match leased.entry(kind) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(unread) => unread.insert(self.store.leased_domains(kind, now).await?),
            };
            let processes = self.processes_syncing(config, &key, leased);
            counts.push((config.id, processes.len().try_into().unwrap_or(u32::MAX)));
        }
        Ok(counts)
    }

    /// Renews the lease, splitting the source's limits afresh each time ([`Worker::split_limits`]),
    /// and cancels the run when the config is disabled, deleted or pointed at another source, or
    /// the lease is lost, so a disabled config stops within a third of a lease.
    async fn heartbeat(self, config: Config, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.lease / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            let keep = match self.store.get_config(config.org_id, config.id).await {
                Ok(Some(current)) if current.enabled && same_source(&current, &config) => {
                    let renewed = self
                        .store
                        .renew_lease(config.id, &self.owner, self.lease_until())
                        .await
                        .unwrap_or(false);
                    if renewed {
                        self.split_limits(&config).await;
                    }
                    renewed
                }
                Ok(_) => false,
                Err(e) => {
                    tracing::warn!(config_id = %config.id, error = %e, "could not check the config during a run");
                    true
                }
            };
            if !keep {
                cancel.cancel();
                return;
            }
        }
    }

    async fn execute(
        &self,
        config: &Config,
        state: SyncState,
        options: RunOptions,
        cancel: &CancellationToken,
    ) -> Result<Outcome, StoreError> {
        let schedule = Schedule::for_settings(&config.settings, self.settings.schedule)
            .unwrap_or(self.settings.schedule);
        // Settings are free-form, so a misspelt key is stored and ignored; say so where operators look.
        for typo in ctxsync_sources::setting_typos(&config.settings) {
            tracing::warn!(
                config_id = %config.id,
                key = ?typo.key,
                suggestion = typo.suggestion,
                "a settings key is not one ctxsync reads; check its spelling"
            );
        }
        let Some(secrets) = self.store.load_secrets(config.org_id, config.id).await? else {
            return Ok(Outcome::Skipped(CONFIG_GONE.into()));
        };
        let mut mode = if options.full || options.restart {
            full_mode(&state)
        } else {
            choose_mode(&state, &schedule, self.settings.clock.now())
        };
        // Users a push named: an incremental run reads each from the source after its listing (a
        // full one lists them anyway); a run that completes forgets them.
        let asked_at = ctxsync_core::now();
        let named = self.store.refresh_targets(config.id, EntityKind::User, asked_at).await?;
        // A source without an incremental listing lists everything at each scheduled run; between
        // two of them, a push has only the users it named read, and the next full run keeps its time.
        let full_due = state.last_full_at.map(|at| at + schedule.interval);
        // A stopped full run is gone on with before anything else: a run in between would store
        // what that listing may already have passed, and its deletions would then take it away.
        let mut resume = if options.restart { None } else { self.resume_point(config, &schedule).await? };
        let refresh_only = resume.is_none()
            && !options.full
            && !options.restart
            && matches!(mode, SyncMode::Full)
            && state.cursor.is_none()
            && !named.is_empty()
            && full_due.is_some_and(|due| self.settings.clock.now() < due);
        loop {
            let incremental = refresh_only || matches!(mode, SyncMode::Incremental(_));
            let kind = if incremental && resume.is_none() { RunKind::Incremental } else { RunKind::Full };
            let started = match resume.take() {
                Some(point) => {
                    let checkpoint = Checkpoint(point.checkpoint.clone());
                    mode = SyncMode::Resume(checkpoint.clone(), state.cursor.clone().map(Cursor));
                    let run = self.store.resume_run(config.id, &point, &self.owner).await;
                    run.map(|run| (run, checkpoint, point.counts))
                }
                None => self
                    .store
                    .start_run(config.id, kind, &self.owner)
                    .await
                    .map(|run| (run, Checkpoint::default(), RunCounts::default())),
            };
            let (run, resumed, carried) = match started {
                Ok(started) => started,
                Err(StoreError::LeaseLost { .. }) => return self.lease_lost(config).await,
                // A stopped run's marks the update cleared before this run could go on from them.
                Err(StoreError::RunTakenOver(_)) if self.source_changed(config).await => {
                    return Ok(Outcome::Skipped(SOURCE_CHANGED.into()));
                }
                Err(e) => return Err(e),
            };
            // The config was read before the run began: pointed elsewhere since, the update found
            // no run of it to cancel. Any later one finds this one.
            if self.source_changed(config).await {
                let ended =
                    self.store.finish_run(&run, RunEnd::Cancelled { reason: SOURCE_CHANGED.into() }).await;
                return self.source_changed_during(config, &run, ended, &carried).await;
            }
            let ending = Ending { due: full_due.filter(|_| refresh_only), carried };
            tracing::info!(
                config_id = %config.id,
                run_id = %run.id,
                kind = kind.as_str(),
                resumed_from = run.resumed_from.map(|id| id.to_string()).unwrap_or_default(),
                "sync run started"
            );
            let credentials = match Credentials::parse(config.integration_type, &secrets) {
                Ok(c) => c,
                Err(e) => {
                    let error = SyncError::Source(SourceError::InvalidCredentials(format!(
                        "the stored secrets are not usable: {e}"
                    )));
                    return self.finish(config, run, Err(error), &schedule, &ending, cancel).await;
                }
            };
            let mut sink = StoreSink::new(
                self.store.clone(),
                run,
                config.org_id,
                resumed,
                cancel.clone(),
                options.progress.clone(),
            );
            let refresh = if kind == RunKind::Incremental { named.as_slice() } else { &[] };
            let listing = async {
                let outcome = match refresh_only {
                    true => ctxsync_sources::Outcome {
                        cursor: None,
                        coverage: Coverage::Changes { groups_with_all_members: Vec::new() },
                        expected: Expected::new(),
                    },
                    false => self.sources.sync(config, &credentials, mode.clone(), &mut sink).await?,
                };
                if !refresh.is_empty() {
                    let named = Named { ids: refresh, after: outcome.cursor.as_ref() };
                    self.sources.refresh_users(config, &credentials, named, &mut sink).await?;
                }
                Ok(outcome)
            };
            let listed = tokio::select! {
                result = listing => result,
                () = cancel.cancelled() => Err(SyncError::Sink(ctxsync_sources::SinkError("cancelled".into()))),
            };
            let (run, write_error) = sink.finish().await;
            // A page the store refused makes the listing incomplete, whatever the source said.
            let result = match (listed, write_error) {
                (Ok(_) | Err(SyncError::Sink(_)), Some(e)) => Err(SyncError::Sink(e)),
                (result, _) => result,
            };
            let expired = match &mode {
                SyncMode::Incremental(_) => {
                    "the source no longer accepts the incremental cursor; a full sync follows"
                }
                SyncMode::Resume(..) => {
                    "the source no longer accepts where the stopped run had got to; a full sync starts over"
                }
                SyncMode::Full | SyncMode::FullAfter(_) => "",
            };
            if matches!(result, Err(SyncError::CursorExpired)) && !expired.is_empty() {
                let end = RunEnd::Failed { error: expired.into(), next_run_at: ctxsync_core::now() };
                let failed = match self.store.finish_run(&run, end).await {
                    Ok(failed) => failed,
                    Err(e @ StoreError::RunTakenOver(_)) => {
                        return self.source_changed_during(config, &run, Err(e), &ending.carried).await;
                    }
                    Err(e) => return Err(e),
                };
                crate::metrics::record_run(config.integration_type, &failed, &ending.carried);
                mode = full_mode(&state);
                continue;
            }
            let outcome = self.finish(config, run, result, &schedule, &ending, cancel).await?;
            if matches!(outcome, Outcome::Succeeded(_) | Outcome::Held(_)) && !named.is_empty() {
                self.store.clear_refresh_targets(config.id, EntityKind::User, &named, asked_at).await?;
            }
            return Ok(outcome);
        }
    }

    async fn finish(
        &self,
        config: &Config,
        run: Run,
        result: Result<ctxsync_sources::Outcome, SyncError>,
        schedule: &Schedule,
        ending: &Ending,
        cancel: &CancellationToken,
    ) -> Result<Outcome, StoreError> {
        let now = ctxsync_core::now();
        let retry_at = now + schedule.interval.min(Duration::from_secs(300));
        let (end, state) = match result {
            Ok(outcome) => (
                RunEnd::Succeeded {
                    coverage: outcome.coverage,
                    cursor: outcome.cursor.map(|Cursor(c)| c),
                    next_run_at: ending.due.unwrap_or(now + schedule.interval),
                    guard: DeletionGuard::for_settings(&config.settings, self.settings.guard)
                        .unwrap_or(self.settings.guard),
                    expected: outcome.expected,
                },
                Some(ConfigState::Valid),
            ),
            Err(_) if cancel.is_cancelled() => {
                (RunEnd::Cancelled { reason: self.cancel_reason(config).await }, None)
            }
            Err(SyncError::Source(
                e @ (SourceError::Rejected(_) | SourceError::Refused(_) | SourceError::InvalidCredentials(_)),
            )) => (
                RunEnd::Failed { error: e.to_string(), next_run_at: now + schedule.interval },
                Some(ConfigState::Invalid),
            ),
            Err(e) => (RunEnd::Failed { error: e.to_string(), next_run_at: retry_at }, None),
        };
        let finished = match self.store.finish_run(&run, end).await {
            Ok(run) => run,
            Err(e) => {
                if self.store.get_config(config.org_id, config.id).await?.is_none() {
                    return Ok(Outcome::Skipped("the config was deleted during the run".into()));
                }
                // The update that pointed it elsewhere cancelled the run: what it listed, its
                // cursor and its verdict on the credentials are the old source's.
                if let StoreError::RunTakenOver(_) = e {
                    return self.source_changed_during(config, &run, Err(e), &ending.carried).await;
                }
                return Err(e);
            }
        };
        crate::metrics::record_run(config.integration_type, &finished, &ending.carried);
        if let Some(state) = state.filter(|s| *s != config.state)
            && self.store.set_state_for(config, state).await?
        {
            tracing::info!(config_id = %config.id, state = %state, "config state changed by a sync run");
        }
        tracing::info!(
            config_id = %config.id,
            run_id = %finished.id,
            status = finished.status.as_str(),
            fetched = finished.counts.fetched(),
            pages = finished.counts.pages,
            error = finished.error.as_deref().unwrap_or(""),
            "sync run finished"
        );
        if let Some(hold) = &finished.hold {
            tracing::warn!(config_id = %config.id, run_id = %finished.id, reason = %hold.reason, "sync run held its deletions");
        }
        Ok(match finished.status {
            RunStatus::Succeeded => Outcome::Succeeded(finished),
            RunStatus::Held => Outcome::Held(finished),
            RunStatus::Cancelled => Outcome::Cancelled(finished),
            RunStatus::Failed | RunStatus::Running => Outcome::Failed(finished),
        })
    }

    /// The stopped full run to go on from, if it may still be: it stopped less than
    /// [`RESUME_WITHIN`] ago (what changes while a listing stands still can move from the part it
    /// had yet to list to the part it had passed), its listing began less than a full interval
    /// ago, and the config has not changed since (another domain or token is another listing).
    async fn resume_point(
        &self,
        config: &Config,
        schedule: &Schedule,
    ) -> Result<Option<ResumePoint>, StoreError> {
        let now = self.settings.clock.now();
        Ok(self.store.resume_point(config.id).await?.filter(|point| {
            now - point.stopped_at < RESUME_WITHIN
                && now - point.listed_since < schedule.full_interval
                && config.modified_at < point.listed_since
        }))
    }

    /// Whether the config now names another source than `config` does; not when it cannot be
    /// read, as a heartbeat goes on then.
    async fn source_changed(&self, config: &Config) -> bool {
        matches!(self.store.get_config(config.org_id, config.id).await, Ok(Some(c)) if !same_source(&c, config))
    }

    /// `run` as it ended, when the store refused it because an update pointing its config at
    /// another source cancelled it: its counts as the worker has them (the store's are those of
    /// its last saved progress), its end as stored.
    async fn cancelled_for_source(&self, config: &Config, run: &Run) -> Result<Run, StoreError> {
        match self.store.get_run(config.org_id, config.id, run.id).await? {
            Some(stored)
                if stored.status == RunStatus::Cancelled
                    && stored.error.as_deref() == Some(SOURCE_CHANGED) =>
            {
                Ok(Run {
                    status: stored.status,
                    finished_at: stored.finished_at,
                    error: stored.error,
                    ..run.clone()
                })
            }
            _ => Err(StoreError::RunTakenOver(run.id)),
        }
    }

    /// The end of a run stopped because its config was pointed at another source, counted as
    /// every run's end is: `ended` is how the store took its end, refused when the update that
    /// pointed the config elsewhere cancelled the run itself (any other refusal stays an error).
    async fn source_changed_during(
        &self,
        config: &Config,
        run: &Run,
        ended: Result<Run, StoreError>,
        carried: &RunCounts,
    ) -> Result<Outcome, StoreError> {
        let cancelled = match ended {
            Err(StoreError::RunTakenOver(_)) => self.cancelled_for_source(config, run).await?,
            ended => ended?,
        };
        crate::metrics::record_run(config.integration_type, &cancelled, carried);
        tracing::info!(config_id = %config.id, run_id = %cancelled.id, "sync run cancelled: {SOURCE_CHANGED}");
        Ok(Outcome::Skipped(SOURCE_CHANGED.into()))
    }

    async fn cancel_reason(&self, config: &Config) -> String {
        match self.store.get_config(config.org_id, config.id).await {
            Ok(None) => "the config was deleted".into(),
            Ok(Some(c)) if !c.enabled => "the config was disabled".into(),
            Ok(Some(c)) if !same_source(&c, config) => SOURCE_CHANGED.into(),
            _ => "the run was stopped (ctxsync is shutting down, or another worker took over)".into(),
        }
    }
}

/// Whether `current` still names the source a run of `config` lists: another domain or type
/// makes what the run lists another's.
fn same_source(current: &Config, config: &Config) -> bool {
    current.domain == config.domain && current.integration_type == config.integration_type
}

/// How long after it stopped a full run may be gone on with rather than started over.
const RESUME_WITHIN: Duration = Duration::from_secs(60 * 60);

/// What ending a run needs beside its result.
struct Ending {
    /// When the next run is due after a success, when not a schedule interval on.
    due: Option<OffsetDateTime>,
    /// The counts a resumed run took over from the stopped one.
    carried: RunCounts,
}

/// Incremental when the source gave a cursor and the last full run is recent enough; full
/// otherwise, since only a full listing finds deletions a source does not report.
fn choose_mode(state: &SyncState, schedule: &Schedule, now: OffsetDateTime) -> SyncMode {
    let full_is_recent = state.last_full_at.is_some_and(|at| now - at < schedule.full_interval);
    match &state.cursor {
        Some(cursor) if full_is_recent => SyncMode::Incremental(Cursor(cursor.clone())),
        _ => full_mode(state),
    }
}

/// A full run, given the last completed run's cursor when there is one: what the listing may
/// fail to read again (admin roles a token may no longer read) is kept from it, not revoked.
fn full_mode(state: &SyncState) -> SyncMode {
    match &state.cursor {
        Some(cursor) => SyncMode::FullAfter(Cursor(cursor.clone())),
        None => SyncMode::Full,
    }
}

#[cfg(test)]
mod tests {
    use ctxsync_core::{IntegrationType, SecretValue, Settings};
    use ctxsync_sources::Endpoints;
    use ctxsync_store::MasterKey;
    use ctxsync_store::testing::TestDatabase;

    use super::*;

    const SUCCESSOR: &str = "another-worker";

    /// A worker whose lease expired (it stalled after taking it) and was taken over, on a
    /// config that exists.
    async fn taken_over(db: &TestDatabase) -> (Worker, Config) {
        let key = MasterKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let store = ctxsync_store::connect(&db.url, key).await.unwrap();
        let org = store.ensure_org("default").await.unwrap();
        let config = Config::created(
            org,
            IntegrationType::Okta,
            "okta".into(),
            "acme.okta.com".into(),
            Settings::new(),
        );
        let secrets = SecretValue::new(serde_json::json!({"api_token": "00token"}));
        store.insert_config(&config, &secrets).await.unwrap();
        let worker =
            Worker::new(store.clone(), Sources::new(Endpoints::default()).unwrap(), SyncSettings::default());
        let expired = ctxsync_core::now() - Duration::from_secs(1);
        assert!(store.acquire_lease(config.id, &worker.owner, expired, None).await.unwrap().is_some());
        let later = ctxsync_core::now() + Duration::from_secs(60);
        assert!(store.acquire_lease(config.id, SUCCESSOR, later, None).await.unwrap().is_some());
        (worker, config)
    }

    #[tokio::test]
    async fn a_worker_that_lost_its_lease_before_its_run_started_reports_the_holder_and_starts_none() {
        let db = TestDatabase::create().await;
        let (worker, config) = taken_over(&db).await;
        let state = SyncState::default();
        let outcome =
            worker.execute(&config, state, RunOptions::default(), &CancellationToken::new()).await.unwrap();
        assert_eq!(outcome, Outcome::Busy { holder: holder::describe(SUCCESSOR) });
        assert!(worker.store.list_runs(config.org_id, config.id, 10).await.unwrap().is_empty());
        assert_eq!(worker.store.lease(config.id).await.unwrap().unwrap().owner, SUCCESSOR);
    }

    #[tokio::test]
    async fn a_config_deleted_before_its_run_started_is_skipped_not_busy() {
        let db = TestDatabase::create().await;
        let (worker, config) = taken_over(&db).await;
        assert!(worker.store.delete_config(config.org_id, config.id).await.unwrap());
        assert_eq!(worker.lease_lost(&config).await.unwrap(), Outcome::Skipped(CONFIG_GONE.into()));
    }

    /// The lease of a process of this host that no longer runs does not split the org's requests
    /// in flight: a run beside it takes the whole share.
    #[tokio::test]
    async fn the_lease_of_a_dead_process_of_this_host_does_not_split_the_orgs_requests_in_flight() {
        use ctxsync_fakes::{FakeOkta, FaultKnobs, TenantSpec};

        let okta = FakeOkta::start_with(TenantSpec { users: 600, groups: 4, ..TenantSpec::default() })
            .await
            .unwrap();
        okta.slow_pages(Duration::from_millis(20));
        let db = TestDatabase::create().await;
        let key = MasterKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let store = ctxsync_store::connect(&db.url, key).await.unwrap();
        let org = store.ensure_org("default").await.unwrap();
        let settings: Settings =
            serde_json::from_value(serde_json::json!({"okta_include_factors": true})).unwrap();
        let configs = ["okta a", "okta b"].map(|name| {
            Config::created(org, IntegrationType::Okta, name.into(), okta.domain(), settings.clone())
        });
        let secrets = SecretValue::new(serde_json::json!({"api_token": okta.api_token()}));
        for config in &configs {
            store.insert_config(config, &secrets).await.unwrap();
        }
        // This process's identity with another start time: a process that has since exited.
        let alive = Holder::owner_name(Holder::this_process().as_ref(), "w");
        let dead: Vec<String> = alive
            .split(';')
            .map(|part| match part.strip_prefix("started=") {
                Some(ticks) => format!("started={}", ticks.parse::<u64>().unwrap() + 1),
                None => part.to_owned(),
            })
            .collect();
        let until = ctxsync_core::now() + Duration::from_secs(60);
        assert!(store.acquire_lease(configs[1].id, &dead.join(";"), until, None).await.unwrap().is_some());

        let sources = Sources::new(Endpoints::overridden(okta.base_urls())).unwrap();
        let worker = Worker::new(store, sources, SyncSettings::default());
        let full = RunOptions { full: true, ..RunOptions::default() };
        let outcome = worker.run(&configs[0], full, &CancellationToken::new()).await.unwrap();
        assert!(matches!(outcome, Outcome::Succeeded(_)), "{outcome:?}");
        assert_eq!(okta.most_in_flight(), ctxsync_core::RateLimitShare::DEFAULT.of(35));
    }

    #[test]
    fn incremental_only_with_a_cursor_and_a_recent_full_run() {
        let schedule = Schedule::DEFAULT;
        let now = ctxsync_core::now();
        let mut state = SyncState::default();
        assert_eq!(choose_mode(&state, &schedule, now), SyncMode::Full);
        let cursor = serde_json::json!({"users": "x"});
        state.cursor = Some(cursor.clone());
        // A full run after one that left a cursor is given it, for what it must not lose.
        let after = SyncMode::FullAfter(Cursor(cursor));
        assert_eq!(choose_mode(&state, &schedule, now), after, "never a full run yet");
        state.last_full_at = Some(now - time::Duration::hours(1));
        assert!(matches!(choose_mode(&state, &schedule, now), SyncMode::Incremental(_)));
        state.last_full_at = Some(now - time::Duration::days(2));
        assert_eq!(choose_mode(&state, &schedule, now), after, "the full run is due");
        state.last_full_at = Some(now);
        let later = now + schedule.full_interval;
        assert_eq!(choose_mode(&state, &schedule, later), after, "due once the interval has passed");
    }
}
