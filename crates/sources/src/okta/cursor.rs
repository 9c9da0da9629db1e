//! Where an incremental run starts: for users, groups and memberships, the newest `lastUpdated`
//! the last run saw (Okta's clock, never ours), and the admin roles it read.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::sync::{Cursor, Roles, SyncError};

/// Where the next incremental run starts. Timestamps are Okta's own (`lastUpdated`), so no
/// clock but Okta's is involved.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct OktaCursor {
    users: String,
    groups: String,
    memberships: String,
    /// Role types by user id as last seen; `None` when the token could not read roles.
    pub(super) roles: Option<Roles>,
}

/// `2024-05-05T18:15:44.000Z`, as Okta writes timestamps and reads them in filters.
pub(super) fn okta_time(t: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).expect("UTC timestamps format")
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// The newest of what a listing saw, tracked as it goes (and kept in a full run's marks).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(super) struct Newest(#[serde(with = "time::serde::rfc3339::option")] Option<OffsetDateTime>);

impl Newest {
    pub(super) fn see(&mut self, t: Option<OffsetDateTime>) {
        self.0 = self.0.max(t);
    }
}

/// Where a listing's next run starts: the newest timestamp it saw, but never later than the
/// run's start by Okta's clock, since an object changed while the run went on may already have
/// been passed and must be listed again. A listing that saw nothing keeps where it started.
fn high_water(
    seen: Option<OffsetDateTime>,
    started: Option<OffsetDateTime>,
    since: Option<OffsetDateTime>,
) -> OffsetDateTime {
    match (seen, started) {
        (Some(seen), Some(started)) => seen.min(started),
        (Some(seen), None) => seen,
        (None, started) => since.or(started).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}

/// A cursor this connector did not write, or cannot read any more, means a full run.
pub(super) fn read_cursor(cursor: &Cursor) -> Result<(OktaCursor, [OffsetDateTime; 3]), SyncError> {
    let parsed: OktaCursor =
        serde_json::from_value(cursor.0.clone()).map_err(|_| SyncError::CursorExpired)?;
    let times = [&parsed.users, &parsed.groups, &parsed.memberships].map(|t| parse_time(t));
    match times {
        [Some(users), Some(groups), Some(memberships)] => Ok((parsed, [users, groups, memberships])),
        _ => Err(SyncError::CursorExpired),
    }
}

/// The cursor of a run that began at `started` (Okta's clock) and saw `newest` of users, groups
/// and memberships, from `since` when it was incremental.
pub(super) fn write(
    newest: [Newest; 3],
    started: Option<OffsetDateTime>,
    since: Option<[OffsetDateTime; 3]>,
    roles: Option<Roles>,
) -> Cursor {
    let [users, groups, memberships] = newest;
    let pick =
        |newest: Newest, since: Option<OffsetDateTime>| okta_time(high_water(newest.0, started, since));
    let cursor = OktaCursor {
        users: pick(users, since.map(|s| s[0])),
        groups: pick(groups, since.map(|s| s[1])),
        memberships: pick(memberships, since.map(|s| s[2])),
        roles,
    };
    Cursor(serde_json::to_value(cursor).expect("the cursor serializes"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_mean_a_full_run() {
        let cursor = Cursor(json!({
            "users": "2024-01-02T03:04:05.006Z",
            "groups": "2024-01-02T03:04:05.000Z",
            "memberships": "2024-01-03T00:00:00.000Z",
            "roles": {"00u1": ["SUPER_ADMIN"]},
        }));
        let (parsed, times) = read_cursor(&cursor).unwrap();
        assert_eq!(times[0], datetime!(2024-01-02 03:04:05.006 UTC));
        assert_eq!(okta_time(times[0]), parsed.users);
        for foreign in
            [json!({"deltaLink": "x"}), json!({"users": "yesterday", "groups": "", "memberships": ""})]
        {
            assert_eq!(read_cursor(&Cursor(foreign)).unwrap_err(), SyncError::CursorExpired);
        }
    }

    #[test]
    fn the_cursor_never_passes_the_runs_start() {
        let (before, start, after) = (
            datetime!(2024-01-01 0:00 UTC),
            datetime!(2024-01-02 0:00 UTC),
            datetime!(2024-01-02 0:00:01 UTC),
        );
        assert_eq!(high_water(Some(before), Some(start), None), before);
        // Changed during the run: listed again next time.
        assert_eq!(high_water(Some(after), Some(start), None), start);
        assert_eq!(high_water(Some(after), None, None), after);
        assert_eq!(high_water(None, Some(start), Some(before)), before);
        assert_eq!(high_water(None, Some(start), None), start);
        assert_eq!(high_water(None, None, None), OffsetDateTime::UNIX_EPOCH);
    }
}
