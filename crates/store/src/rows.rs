//! Rows as the backends read them, and their conversion into domain values.
//!
//! The backends differ only in how a column holds an id or a time, which [`DbId`] and [`DbTime`]
//! read for both, so every check on a row is written once.

use ctxsync_core::{
    Config, ConfigId, ConfigState, Entity, EntityKind, IntegrationType, OrgId, Run, RunCounts, RunKind,
    RunStatus, Settings,
};

use crate::keys::scopes_from_json;
use crate::values::{DbId, DbTime};
use crate::{KeyInfo, KeyKind, StoreError, StoredEntity, SyncState};

/// A row of `integration_configs` without its secrets; the conversion checks every column a newer
/// version could have written differently.
#[derive(sqlx::FromRow)]
pub(crate) struct ConfigRow {
    id: DbId,
    org_id: DbId,
    integration_type: String,
    name: String,
    domain: String,
    enabled: bool,
    state: String,
    settings: String,
    created_at: DbTime,
    modified_at: DbTime,
}

impl TryFrom<ConfigRow> for Config {
    type Error = StoreError;

    fn try_from(row: ConfigRow) -> Result<Config, StoreError> {
        let id = ConfigId(row.id.0);
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
            org_id: OrgId(row.org_id.0),
            integration_type,
            name: row.name,
            domain: row.domain,
            enabled: row.enabled,
            state,
            settings,
            created_at: row.created_at.0,
            modified_at: row.modified_at.0,
        })
    }
}

pub(crate) fn encode_settings(settings: &Settings) -> String {
    serde_json::to_string(settings).expect("a JSON object always serializes")
}

/// A row of `entities`, as listings return it.
#[derive(sqlx::FromRow)]
pub(crate) struct EntityRow {
    config_id: DbId,
    kind: String,
    source_id: String,
    data: String,
    raw: String,
    first_seen_at: DbTime,
    updated_at: DbTime,
}

impl TryFrom<EntityRow> for StoredEntity {
    type Error = StoreError;

    fn try_from(row: EntityRow) -> Result<StoredEntity, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!("the {what} of {} {} is not readable", row.kind, row.source_id))
        };
        let entity: Entity = serde_json::from_str(&row.data).map_err(|_| corrupt("entity"))?;
        let raw = serde_json::from_str(&row.raw).map_err(|_| corrupt("raw JSON"))?;
        Ok(StoredEntity {
            config_id: ConfigId(row.config_id.0),
            raw,
            entity,
            first_seen_at: row.first_seen_at.0,
            updated_at: row.updated_at.0,
        })
    }
}

/// An entity found by a lookup, with the identifier that found it.
#[derive(sqlx::FromRow)]
pub(crate) struct FoundRow {
    identifier: String,
    #[sqlx(flatten)]
    entity: EntityRow,
}

impl TryFrom<FoundRow> for (String, StoredEntity) {
    type Error = StoreError;

    fn try_from(row: FoundRow) -> Result<(String, StoredEntity), StoreError> {
        Ok((row.identifier, row.entity.try_into()?))
    }
}

pub(crate) fn decode_kind(s: &str) -> Result<EntityKind, StoreError> {
    EntityKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown entity kind {s:?}")))
}

/// A row of `sync_runs`.
#[derive(sqlx::FromRow)]
pub(crate) struct RunRow {
    id: DbId,
    config_id: DbId,
    kind: String,
    status: String,
    started_at: DbTime,
    finished_at: Option<DbTime>,
    counts: String,
    error: Option<String>,
    baseline: bool,
    hold: Option<String>,
    completeness: Option<String>,
    resumed_from: Option<DbId>,
}

impl TryFrom<RunRow> for Run {
    type Error = StoreError;

    fn try_from(row: RunRow) -> Result<Run, StoreError> {
        let id = row.id.0;
        let corrupt = |what: &str| StoreError::Corrupt(format!("sync run {id} has an unreadable {what}"));
        Ok(Run {
            id,
            config_id: ConfigId(row.config_id.0),
            kind: RunKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
            status: RunStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            started_at: row.started_at.0,
            finished_at: row.finished_at.map(|t| t.0),
            counts: serde_json::from_str(&row.counts).map_err(|_| corrupt("counts"))?,
            error: row.error,
            baseline: row.baseline,
            hold: row.hold.map(|h| serde_json::from_str(&h)).transpose().map_err(|_| corrupt("hold"))?,
            completeness: row
                .completeness
                .map(|c| serde_json::from_str(&c))
                .transpose()
                .map_err(|_| corrupt("completeness"))?,
            resumed_from: row.resumed_from.map(|id| id.0),
        })
    }
}

/// The columns of [`RunRow`], for a query that names the runs table `r`.
pub(crate) const RUN_COLUMNS: &str = "r.id, r.config_id, r.kind, r.status, r.started_at, r.finished_at, r.counts, \
     r.error, r.baseline, r.hold, r.completeness, r.resumed_from";

pub(crate) fn encode_counts(counts: &RunCounts) -> String {
    serde_json::to_string(counts).expect("counts serialize")
}

/// A row of [`crate::sync::run_summaries_query`].
#[derive(sqlx::FromRow)]
pub(crate) struct SummaryRow {
    id: DbId,
    integration_type: String,
    last_success: Option<DbTime>,
    held_runs: i64,
}

impl TryFrom<SummaryRow> for crate::RunSummary {
    type Error = StoreError;

    fn try_from(row: SummaryRow) -> Result<crate::RunSummary, StoreError> {
        let config = ConfigId(row.id.0);
        let integration_type = IntegrationType::parse(&row.integration_type).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "config {config} has unknown integration type {:?}",
                row.integration_type
            ))
        })?;
        Ok(crate::RunSummary {
            config,
            integration_type,
            last_success: row.last_success.map(|t| t.0),
            held_runs: u64::try_from(row.held_runs).unwrap_or_default(),
        })
    }
}

/// What a `sync_state` row tells the engine.
#[derive(sqlx::FromRow)]
pub(crate) struct StateRow {
    cursor: Option<String>,
    last_full_at: Option<DbTime>,
    next_run_at: Option<DbTime>,
}

impl TryFrom<StateRow> for SyncState {
    type Error = StoreError;

    fn try_from(row: StateRow) -> Result<SyncState, StoreError> {
        Ok(SyncState {
            cursor: row
                .cursor
                .map(|c| serde_json::from_str(&c))
                .transpose()
                .map_err(|_| StoreError::Corrupt("a sync cursor is not JSON".into()))?,
            last_full_at: row.last_full_at.map(|t| t.0),
            next_run_at: row.next_run_at.map(|t| t.0),
        })
    }
}

/// A row of [`crate::keys::keys_query`].
#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    id: DbId,
    org_id: DbId,
    org_name: String,
    kind: String,
    scopes: Option<String>,
    created_at: DbTime,
    last_used_at: Option<DbTime>,
    expires_at: Option<DbTime>,
    revoked_at: Option<DbTime>,
}

impl TryFrom<KeyRow> for KeyInfo {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<KeyInfo, StoreError> {
        let kind = match row.kind.as_str() {
            "api" => KeyKind::Api,
            _ => KeyKind::App,
        };
        Ok(KeyInfo {
            id: row.id.0,
            org_id: OrgId(row.org_id.0),
            org_name: row.org_name,
            kind,
            scopes: (kind == KeyKind::App).then(|| scopes_from_json(row.scopes.as_deref())).transpose()?,
            created_at: row.created_at.0,
            last_used_at: row.last_used_at.map(|t| t.0),
            expires_at: row.expires_at.map(|t| t.0),
            revoked_at: row.revoked_at.map(|t| t.0),
        })
    }
}
