//! Rows as the backends read them, and their conversion into domain values.
//!
//! The backends differ only in how a column holds an id or a time (SQLite: text; PostgreSQL:
//! `uuid` and `timestamptz`), so each row is generic over those two and every check on the other
//! columns is written once.

use ctxsync_core::{
    Config, ConfigId, ConfigState, Entity, EntityKind, IntegrationType, OrgId, Run, RunCounts, RunKind,
    RunStatus, Settings,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{StoreError, StoredEntity, SyncState};

/// A column value as a backend stores it, decoded into what it stands for.
pub(crate) trait Column<T> {
    fn decode(self) -> Result<T, StoreError>;
}

/// A backend that stores the value natively.
impl<T> Column<T> for T {
    fn decode(self) -> Result<T, StoreError> {
        Ok(self)
    }
}

/// A row of `integration_configs` without its secrets; the conversion checks every column a newer
/// version could have written differently.
#[derive(sqlx::FromRow)]
pub(crate) struct ConfigRow<I, T> {
    id: I,
    org_id: I,
    integration_type: String,
    name: String,
    domain: String,
    enabled: bool,
    state: String,
    settings: String,
    created_at: T,
    modified_at: T,
}

impl<I: Column<Uuid>, T: Column<OffsetDateTime>> TryFrom<ConfigRow<I, T>> for Config {
    type Error = StoreError;

    fn try_from(row: ConfigRow<I, T>) -> Result<Config, StoreError> {
        let id = ConfigId(row.id.decode()?);
        let integration_type = IntegrationType::parse(&row.integration_type).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "config {id} has unknown integration type {:?}",
                row.integration_type
            ))
        })?;
        let state = ConfigState::parse(&row.state)
            .ok_or_else(|| StoreError::Corrupt(format!("config {id} has unknown state {:?}", row.state)))?;
        let settings: Settings = serde_json::from_str(&row.settings)
            .map_err(|_| StoreError::Corrupt(format!("the settings of config {id} are not a JSON object")))?;
        Ok(Config {
            id,
            org_id: OrgId(row.org_id.decode()?),
            integration_type,
            name: row.name,
            domain: row.domain,
            enabled: row.enabled,
            state,
            settings,
            created_at: row.created_at.decode()?,
            modified_at: row.modified_at.decode()?,
        })
    }
}

pub(crate) fn encode_settings(settings: &Settings) -> String {
    serde_json::to_string(settings).expect("a JSON object always serializes")
}

/// A row of `entities`, as listings return it.
#[derive(sqlx::FromRow)]
pub(crate) struct EntityRow<I, T> {
    config_id: I,
    kind: String,
    source_id: String,
    data: String,
    raw: String,
    first_seen_at: T,
    updated_at: T,
}

impl<I: Column<Uuid>, T: Column<OffsetDateTime>> TryFrom<EntityRow<I, T>> for StoredEntity {
    type Error = StoreError;

    fn try_from(row: EntityRow<I, T>) -> Result<StoredEntity, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!("the {what} of {} {} is not readable", row.kind, row.source_id))
        };
        let entity: Entity = serde_json::from_str(&row.data).map_err(|_| corrupt("entity"))?;
        let raw = serde_json::from_str(&row.raw).map_err(|_| corrupt("raw JSON"))?;
        Ok(StoredEntity {
            config_id: ConfigId(row.config_id.decode()?),
            raw,
            entity,
            first_seen_at: row.first_seen_at.decode()?,
            updated_at: row.updated_at.decode()?,
        })
    }
}

/// An entity found by a lookup, with the identifier that found it.
#[derive(sqlx::FromRow)]
pub(crate) struct FoundRow<I, T> {
    identifier: String,
    #[sqlx(flatten)]
    entity: EntityRow<I, T>,
}

impl<I: Column<Uuid>, T: Column<OffsetDateTime>> TryFrom<FoundRow<I, T>> for (String, StoredEntity) {
    type Error = StoreError;

    fn try_from(row: FoundRow<I, T>) -> Result<(String, StoredEntity), StoreError> {
        Ok((row.identifier, row.entity.try_into()?))
    }
}

pub(crate) fn decode_kind(s: &str) -> Result<EntityKind, StoreError> {
    EntityKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown entity kind {s:?}")))
}

/// A row of `sync_runs`.
#[derive(sqlx::FromRow)]
pub(crate) struct RunRow<I, T> {
    id: I,
    config_id: I,
    kind: String,
    status: String,
    started_at: T,
    finished_at: Option<T>,
    counts: String,
    error: Option<String>,
    baseline: bool,
    hold: Option<String>,
    completeness: Option<String>,
}

impl<I: Column<Uuid>, T: Column<OffsetDateTime>> TryFrom<RunRow<I, T>> for Run {
    type Error = StoreError;

    fn try_from(row: RunRow<I, T>) -> Result<Run, StoreError> {
        let id = row.id.decode()?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("sync run {id} has an unreadable {what}"));
        Ok(Run {
            id,
            config_id: ConfigId(row.config_id.decode()?),
            kind: RunKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
            status: RunStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            started_at: row.started_at.decode()?,
            finished_at: row.finished_at.map(Column::decode).transpose()?,
            counts: serde_json::from_str(&row.counts).map_err(|_| corrupt("counts"))?,
            error: row.error,
            baseline: row.baseline,
            hold: row.hold.map(|h| serde_json::from_str(&h)).transpose().map_err(|_| corrupt("hold"))?,
            completeness: row
                .completeness
                .map(|c| serde_json::from_str(&c))
                .transpose()
                .map_err(|_| corrupt("completeness"))?,
        })
    }
}

/// The columns of [`RunRow`], for a query that names the runs table `r`.
pub(crate) const RUN_COLUMNS: &str = "r.id, r.config_id, r.kind, r.status, r.started_at, r.finished_at, r.counts, \
     r.error, r.baseline, r.hold, r.completeness";

pub(crate) fn encode_counts(counts: &RunCounts) -> String {
    serde_json::to_string(counts).expect("counts serialize")
}

/// A row of [`crate::sync::run_summaries_query`].
#[derive(sqlx::FromRow)]
pub(crate) struct SummaryRow<I, T> {
    id: I,
    integration_type: String,
    last_success: Option<T>,
    held_runs: i64,
}

impl<I: Column<Uuid>, T: Column<OffsetDateTime>> TryFrom<SummaryRow<I, T>> for crate::RunSummary {
    type Error = StoreError;

    fn try_from(row: SummaryRow<I, T>) -> Result<crate::RunSummary, StoreError> {
        let config = ConfigId(row.id.decode()?);
        let integration_type = IntegrationType::parse(&row.integration_type).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "config {config} has unknown integration type {:?}",
                row.integration_type
            ))
        })?;
        Ok(crate::RunSummary {
            config,
            integration_type,
            last_success: row.last_success.map(Column::decode).transpose()?,
            held_runs: u64::try_from(row.held_runs).unwrap_or_default(),
        })
    }
}

/// What a `sync_state` row tells the engine.
#[derive(sqlx::FromRow)]
pub(crate) struct StateRow<T> {
    cursor: Option<String>,
    last_full_at: Option<T>,
    next_run_at: Option<T>,
}

impl<T: Column<OffsetDateTime>> TryFrom<StateRow<T>> for SyncState {
    type Error = StoreError;

    fn try_from(row: StateRow<T>) -> Result<SyncState, StoreError> {
        Ok(SyncState {
            cursor: row
                .cursor
                .map(|c| serde_json::from_str(&c))
                .transpose()
                .map_err(|_| StoreError::Corrupt("a sync cursor is not JSON".into()))?,
            last_full_at: row.last_full_at.map(Column::decode).transpose()?,
            next_run_at: row.next_run_at.map(Column::decode).transpose()?,
        })
    }
}
