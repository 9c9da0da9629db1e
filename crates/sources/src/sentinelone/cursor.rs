//! Where an incremental run starts: the newest `updatedAt` the last run saw, by the console's
//! clock, never ours.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

use crate::sync::{Cursor, SyncError};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SentinelOneCursor {
    updated_at: String,
}

/// `2018-02-27T04:49:26.257525Z`, as SentinelOne writes timestamps and reads them in filters.
pub(super) fn s1_time(t: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).expect("UTC timestamps format")
}

/// A cursor this connector did not write, or cannot read any more, means a full run.
pub(super) fn read(cursor: &Cursor) -> Result<OffsetDateTime, SyncError> {
    let parsed: SentinelOneCursor =
        serde_json::from_value(cursor.0.clone()).map_err(|_| SyncError::CursorExpired)?;
    OffsetDateTime::parse(&parsed.updated_at, &Rfc3339).map_err(|_| SyncError::CursorExpired)
}

/// Where the next run starts: the newest `updatedAt` seen, but never later than the run's start
/// by the console's clock, since an agent updated while the run went on may already have been
/// passed and must be listed again. That start is a `Date`, whole seconds rounded down, so the
/// cursor stays just before it (the next run asks for `updatedAt__gt`). A run that saw nothing
/// keeps where it started.
pub(super) fn write(
    seen: Option<OffsetDateTime>,
    started: Option<OffsetDateTime>,
    since: Option<OffsetDateTime>,
) -> Cursor {
    let before_start = started.map(|s| s - Duration::microseconds(1));
    let at = match (seen, before_start) {
        (Some(seen), Some(cap)) => seen.min(cap),
        (Some(seen), None) => seen,
        (None, cap) => since.or(cap).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    };
    let cursor = SentinelOneCursor { updated_at: s1_time(at) };
    Cursor(serde_json::to_value(cursor).expect("the cursor serializes"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_mean_a_full_run() {
        let t = datetime!(2018-02-27 04:49:26.257525 UTC);
        assert_eq!(s1_time(t), "2018-02-27T04:49:26.257525Z");
        assert_eq!(read(&write(Some(t), None, None)).unwrap(), t);
        for foreign in [json!({"users": "x"}), json!({"updatedAt": "yesterday"})] {
            assert_eq!(read(&Cursor(foreign)).unwrap_err(), SyncError::CursorExpired);
        }
    }

    #[test]
    fn the_cursor_never_passes_the_runs_start() {
        let (before, start, after) = (
            datetime!(2024-01-01 0:00 UTC),
            datetime!(2024-01-02 0:00 UTC),
            datetime!(2024-01-02 0:00:01 UTC),
        );
        let at = |seen, started, since| read(&write(seen, started, since)).unwrap();
        assert_eq!(at(Some(before), Some(start), None), before);
        let just_before = datetime!(2024-01-01 23:59:59.999999 UTC);
        assert_eq!(at(Some(after), Some(start), None), just_before, "changed during the run: listed again");
        assert_eq!(at(None, Some(start), Some(before)), before);
        assert_eq!(at(None, Some(start), None), just_before);
        assert_eq!(at(None, None, None), OffsetDateTime::UNIX_EPOCH);
    }
}
