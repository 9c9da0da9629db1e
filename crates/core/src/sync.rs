//! The vocabulary of sync runs, shared by the connectors (which report), the store (which
//! applies) and the engine (which decides).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{ConfigId, EntityKind, Membership};

/// Something the source said is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Entity { kind: EntityKind, source_id: String },
    Membership(Membership),
}

/// What a completed listing covered in full, so what it did not see may be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Every user, group, device and membership was listed: whatever was not seen is gone.
    Everything,
    /// Only changes were listed; the members of these groups (source ids) were listed in full,
    /// so their memberships not seen in the run are gone.
    Changes { groups_with_all_members: Vec<String> },
}

/// Whether a run listed everything or only changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Full,
    Incremental,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Full => "full",
            RunKind::Incremental => "incremental",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [RunKind::Full, RunKind::Incremental].into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    /// Stopped by an error; what it upserted stays, nothing was deleted.
    Failed,
    /// Stopped because the config was disabled or deleted, or the process shut down.
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Counts of one entity type (or of memberships) in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub fetched: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.fetched += other.fetched;
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
    }
}

/// Everything a run counted, keyed by `user`, `group`, `device` and `membership`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    pub by_type: BTreeMap<String, Counts>,
    pub pages: u64,
    pub retries: u64,
}

impl RunCounts {
    pub fn add(&mut self, other: &RunCounts) {
        for (k, c) in &other.by_type {
            self.by_type.entry(k.clone()).or_default().add(*c);
        }
        self.pages += other.pages;
        self.retries += other.retries;
    }

    pub fn entry(&mut self, key: &str) -> &mut Counts {
        self.by_type.entry(key.to_owned()).or_default()
    }

    /// Entities fetched, of every type, memberships included.
    pub fn fetched(&self) -> u64 {
        self.by_type.values().map(|c| c.fetched).sum()
    }
}

/// One sync run of a config, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: Uuid,
    pub config_id: ConfigId,
    pub kind: RunKind,
    pub status: RunStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub counts: RunCounts,
    pub error: Option<String>,
    /// The config's first completed full run: it set the picture later runs are compared with,
    /// and recorded no change events.
    #[serde(default)]
    pub baseline: bool,
}

/// How often a config syncs: an incremental run every `interval`, a full run (which also finds
/// deletions the source does not report) every `full_interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub interval: std::time::Duration,
    pub full_interval: std::time::Duration,
}

impl Schedule {
    /// The settings keys a config may set to override the operator's defaults.
    pub const INTERVAL_KEY: &'static str = "sync_interval";
    pub const FULL_INTERVAL_KEY: &'static str = "full_sync_interval";
    const MIN: std::time::Duration = std::time::Duration::from_secs(1);
    /// Hourly changes, a daily full listing.
    pub const DEFAULT: Schedule = Schedule {
        interval: std::time::Duration::from_secs(3600),
        full_interval: std::time::Duration::from_secs(86400),
    };

    /// The config's schedule: its settings where they set one, the defaults otherwise.
    pub fn for_settings(
        settings: &crate::Settings,
        defaults: Schedule,
    ) -> Result<Schedule, crate::FieldErrors> {
        let mut errors = crate::FieldErrors::default();
        let mut read = |key: &str, default| match settings.get(key) {
            None | Some(serde_json::Value::Null) => default,
            Some(v) => match v.as_str().map(humantime::parse_duration) {
                Some(Ok(d)) if d >= Self::MIN => d,
                _ => {
                    errors.push(
                        format!("data.attributes.settings.{key}"),
                        "must be a duration of at least 1s, such as \"30m\" or \"1h\"",
                    );
                    default
                }
            },
        };
        let schedule = Schedule {
            interval: read(Self::INTERVAL_KEY, defaults.interval),
            full_interval: read(Self::FULL_INTERVAL_KEY, defaults.full_interval),
        };
        errors.into_result(schedule)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    const DEFAULTS: Schedule = Schedule::DEFAULT;

    #[test]
    fn settings_override_the_defaults() {
        let settings = json!({"sync_interval": "15m"}).as_object().unwrap().clone();
        let s = Schedule::for_settings(&settings, DEFAULTS).unwrap();
        assert_eq!(s.interval, Duration::from_secs(900));
        assert_eq!(s.full_interval, DEFAULTS.full_interval);
    }

    #[test]
    fn bad_durations_are_named() {
        let settings =
            json!({"sync_interval": "often", "full_sync_interval": 5}).as_object().unwrap().clone();
        let err = Schedule::for_settings(&settings, DEFAULTS).unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert_eq!(err.0[0].path, "data.attributes.settings.sync_interval");
    }

    #[test]
    fn counts_add_up() {
        let mut a = RunCounts::default();
        a.entry("user").created = 2;
        let mut b = RunCounts { pages: 3, ..RunCounts::default() };
        b.entry("user").created = 1;
        a.add(&b);
        assert_eq!(a.by_type["user"].created, 3);
        assert_eq!(a.pages, 3);
    }
}
