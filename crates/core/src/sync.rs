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
    /// Every user, group and device was listed, and every group's members but these groups'
    /// (source ids), whose member listings the source refused: their memberships stay as they
    /// were, since not seeing them says nothing.
    EverythingBut { groups_without_members: Vec<String> },
}

impl Coverage {
    /// A full listing that could not list the members of `groups_without_members`.
    pub fn full(groups_without_members: Vec<String>) -> Coverage {
        if groups_without_members.is_empty() {
            Coverage::Everything
        } else {
            Coverage::EverythingBut { groups_without_members }
        }
    }

    /// Whether every entity was listed (whatever is not seen is gone).
    pub fn is_full(&self) -> bool {
        matches!(self, Coverage::Everything | Coverage::EverythingBut { .. })
    }

    /// The groups of a full listing whose memberships must be kept as they are.
    pub fn groups_without_members(&self) -> &[String] {
        match self {
            Coverage::EverythingBut { groups_without_members } => groups_without_members,
            Coverage::Everything | Coverage::Changes { .. } => &[],
        }
    }
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
    /// The listing completed and everything but its deletions was applied: they looked like a
    /// mass deletion or the listing looked incomplete (see [`Hold`]), and wait for a decision.
    Held,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Held => "held",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled, RunStatus::Held]
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

/// The kind memberships are counted and expected under (in [`RunCounts`] and [`Expected`]),
/// and stored under where a row names a kind; entities use their [`crate::EntityKind`] name.
pub const MEMBERSHIP: &str = "membership";

/// Everything a run counted, keyed by `user`, `group`, `device` and [`MEMBERSHIP`].
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
    /// Set when the run's deletions were held back (status `held`).
    #[serde(default)]
    pub hold: Option<Hold>,
    /// What the source said a full listing holds beside what the run received.
    #[serde(default)]
    pub completeness: Option<Completeness>,
    /// The full run this one went on from: that one stopped before it completed, and this one
    /// listed only what it had not applied yet (its counts include what that one had).
    #[serde(default)]
    pub resumed_from: Option<Uuid>,
}

/// Deletions a completed run did not apply, why, and what became of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub reason: String,
    /// How many of each kind would have been deleted when the run held them.
    pub deletions: BTreeMap<String, u64>,
    /// `None` while the deletions wait for a decision.
    pub resolution: Option<HoldResolution>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub resolved_at: Option<OffsetDateTime>,
}

/// What became of held deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldResolution {
    /// Applied on an operator's request (those a later run had seen again were spared).
    Confirmed,
    /// Dropped on an operator's request: the entities stay.
    Discarded,
    /// A later full run completed and judged deletions afresh.
    Superseded,
}

impl HoldResolution {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldResolution::Confirmed => "confirmed",
            HoldResolution::Discarded => "discarded",
            HoldResolution::Superseded => "superseded",
        }
    }
}

/// Totals a source reports for what a full listing holds, by kind (`user`, `group`, `device`,
/// `membership`); kinds the source cannot count are absent.
pub type Expected = BTreeMap<String, u64>;

/// Expected beside ingested counts of a full run, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completeness {
    pub by_type: BTreeMap<String, Tally>,
}

/// One kind's totals: what the source reported and what the run received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub expected: u64,
    pub ingested: u64,
}

impl Completeness {
    /// Compares the source's totals with what a run fetched.
    pub fn new(expected: &Expected, counts: &RunCounts) -> Completeness {
        let by_type = expected
            .iter()
            .map(|(kind, &expected)| {
                let ingested = counts.by_type.get(kind).map_or(0, |c| c.fetched);
                (kind.clone(), Tally { expected, ingested })
            })
            .collect();
        Completeness { by_type }
    }

    /// Kinds whose counts differ, in words; empty when the listing matched the source's totals.
    pub fn mismatches(&self) -> Vec<String> {
        self.by_type
            .iter()
            .filter(|(_, t)| t.expected != t.ingested)
            .map(|(kind, t)| {
                format!("{kind}: the source reported {}, the run received {}", t.expected, t.ingested)
            })
            .collect()
    }

    /// Whether the run received fewer of some kind than the source reported: what it did not
    /// see may still exist, so its deletions cannot be trusted.
    pub fn is_short(&self) -> bool {
        self.by_type.values().any(|t| t.ingested < t.expected)
    }
}

/// When a completed run's deletions are held back instead of applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeletionGuard {
    /// Hold when a kind would lose more than this share of its stored entities...
    pub share: f64,
    /// ...and more than this many of them.
    pub floor: u64,
}

/// How much of each of the source's rate-limit buckets a config's requests may use, so the
/// organisation's other integrations keep the rest (`settings.rate_limit_share`, in percent).
/// Configs of one tenant share one budget: the share is of the bucket, not of each config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitShare(u8);

impl RateLimitShare {
    pub const KEY: &'static str = "rate_limit_share";
    pub const DEFAULT: RateLimitShare = RateLimitShare(50);

    /// The config's share: its setting, or the default.
    pub fn for_settings(settings: &crate::Settings) -> Result<RateLimitShare, crate::FieldErrors> {
        let mut errors = crate::FieldErrors::default();
        let share = match settings.get(Self::KEY) {
            None | Some(serde_json::Value::Null) => Self::DEFAULT,
            Some(v) => match v.as_u64().and_then(|p| u8::try_from(p).ok()) {
                Some(p @ 1..=100) => RateLimitShare(p),
                _ => {
                    errors.push(
                        format!("data.attributes.settings.{}", Self::KEY),
                        "must be a whole number from 1 to 100 (the percent of each of the source's rate limits ctxsync may use)",
                    );
                    Self::DEFAULT
                }
            },
        };
        errors.into_result(share)
    }

    pub fn percent(self) -> u8 {
        self.0
    }

    /// Of a bucket that allows `limit` requests a window, how many this share may take: at least
    /// one, so a sync never stops altogether.
    pub fn of(self, limit: u32) -> u32 {
        (u64::from(limit) * u64::from(self.0) / 100).max(1) as u32
    }
}

impl DeletionGuard {
    /// The settings keys a config may set to override the operator's defaults.
    pub const PERCENT_KEY: &'static str = "deletion_guard_percent";
    pub const FLOOR_KEY: &'static str = "deletion_guard_min";
    pub const DEFAULT: DeletionGuard = DeletionGuard { share: 0.2, floor: 10 };
    /// Applies every deletion: what `deletion_guard_percent: 100` asks for.
    pub const OFF: DeletionGuard = DeletionGuard { share: 1.0, floor: 0 };

    /// The config's guard: its settings where they set one, the defaults otherwise.
    pub fn for_settings(
        settings: &crate::Settings,
        defaults: DeletionGuard,
    ) -> Result<DeletionGuard, crate::FieldErrors> {
        let mut errors = crate::FieldErrors::default();
        let mut guard = defaults;
        match settings.get(Self::PERCENT_KEY) {
            None | Some(serde_json::Value::Null) => {}
            Some(v) => match v.as_f64() {
                Some(p) if (0.0..=100.0).contains(&p) => guard.share = p / 100.0,
                _ => errors.push(
                    format!("data.attributes.settings.{}", Self::PERCENT_KEY),
                    "must be a number from 0 to 100 (the share of a kind's entities a run may delete)",
                ),
            },
        }
        match settings.get(Self::FLOOR_KEY) {
            None | Some(serde_json::Value::Null) => {}
            Some(v) => match v.as_u64() {
                Some(n) => guard.floor = n,
                _ => errors.push(
                    format!("data.attributes.settings.{}", Self::FLOOR_KEY),
                    "must be a whole number of at least 0",
                ),
            },
        }
        errors.into_result(guard)
    }

    /// Why deletions of this size must be held, or `None` when they may be applied. `stored`
    /// counts each kind before the deletions. Losing every stored entity of a kind is held
    /// whatever the floor (a source that suddenly lists nothing must not empty the store),
    /// unless the guard is off.
    pub fn check(&self, deletions: &BTreeMap<String, u64>, stored: &BTreeMap<String, u64>) -> Option<String> {
        if self.share >= 1.0 {
            return None;
        }
        let reasons: Vec<String> = deletions
            .iter()
            .filter(|&(_, &n)| n > 0)
            .filter_map(|(kind, &n)| {
                let total = stored.get(kind).copied().unwrap_or(0);
                if n >= total {
                    Some(format!("{kind}: all {n} would be deleted"))
                } else if n > self.floor && n as f64 > self.share * total as f64 {
                    Some(format!(
                        "{kind}: {n} of {total} ({:.1}%) would be deleted, more than the {}% allowed",
                        100.0 * n as f64 / total as f64,
                        self.share * 100.0
                    ))
                } else {
                    None
                }
            })
            .collect();
        (!reasons.is_empty()).then(|| format!("mass deletion: {}", reasons.join("; ")))
    }
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

    fn kinds(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    }

    #[test]
    fn the_guard_holds_large_shares_above_the_floor_and_any_wipe() {
        let guard = DeletionGuard::DEFAULT;
        let stored = kinds(&[("user", 1000), ("group", 40), ("membership", 5)]);
        assert_eq!(guard.check(&kinds(&[("user", 200)]), &stored), None, "20% exactly is allowed");
        let held = guard.check(&kinds(&[("user", 201)]), &stored).unwrap();
        assert!(held.contains("user: 201 of 1000 (20.1%)"), "{held}");
        assert_eq!(guard.check(&kinds(&[("group", 10)]), &stored), None, "25% but not above the floor");
        assert!(guard.check(&kinds(&[("group", 11)]), &stored).is_some());
        let wiped = guard.check(&kinds(&[("membership", 5)]), &stored).unwrap();
        assert!(wiped.contains("membership: all 5"), "{wiped}");
        assert_eq!(guard.check(&kinds(&[("user", 0)]), &kinds(&[])), None);
        assert_eq!(DeletionGuard::OFF.check(&kinds(&[("membership", 5)]), &stored), None);
    }

    #[test]
    fn the_guard_reads_its_settings() {
        let settings =
            json!({"deletion_guard_percent": 50, "deletion_guard_min": 0}).as_object().unwrap().clone();
        let g = DeletionGuard::for_settings(&settings, DeletionGuard::DEFAULT).unwrap();
        assert_eq!(g, DeletionGuard { share: 0.5, floor: 0 });
        let bad =
            json!({"deletion_guard_percent": 120, "deletion_guard_min": -1}).as_object().unwrap().clone();
        assert_eq!(DeletionGuard::for_settings(&bad, DeletionGuard::DEFAULT).unwrap_err().0.len(), 2);
    }

    #[test]
    fn the_rate_limit_share_is_a_whole_percent_of_each_bucket() {
        let share = |v: serde_json::Value| {
            RateLimitShare::for_settings(&serde_json::Map::from_iter([(RateLimitShare::KEY.to_string(), v)]))
        };
        assert_eq!(RateLimitShare::for_settings(&Default::default()), Ok(RateLimitShare::DEFAULT));
        assert_eq!(share(json!(100)).map(RateLimitShare::percent), Ok(100));
        for bad in [json!(0), json!(101), json!(50.5), json!("50"), json!(-1)] {
            assert!(share(bad.clone()).is_err(), "{bad}");
        }
        let half = share(json!(50)).unwrap();
        assert_eq!((half.of(600), half.of(1), half.of(0)), (300, 1, 1), "never nothing");
        assert_eq!(share(json!(33)).unwrap().of(100), 33);
    }

    #[test]
    fn completeness_compares_totals_with_what_was_fetched() {
        let mut counts = RunCounts::default();
        counts.entry("user").fetched = 95;
        counts.entry("group").fetched = 10;
        let c = Completeness::new(&kinds(&[("user", 100), ("group", 10), ("device", 3)]), &counts);
        assert!(c.is_short());
        assert_eq!(
            c.mismatches(),
            [
                "device: the source reported 3, the run received 0",
                "user: the source reported 100, the run received 95"
            ]
        );
        let whole = Completeness::new(&kinds(&[("group", 10)]), &counts);
        assert!(!whole.is_short() && whole.mismatches().is_empty());
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
