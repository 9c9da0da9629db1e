//! Ids and times as each backend stores them: SQLite as text (hyphenated UUIDs, [`TIMESTAMP`]),
//! PostgreSQL natively (`uuid`, `timestamptz`). Binding and reading them through [`DbId`] and
//! [`DbTime`] lets one statement and one row type serve both backends.

use std::fmt;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use uuid::Uuid;

/// Fixed width and UTC, so text order is time order; microseconds, the precision of
/// [`ctxsync_core::now`], so a timestamp reads back equal to what was written. Existing SQLite
/// databases hold this form: it must not change.
const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// An id column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbId(pub(crate) Uuid);

/// A time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbTime(pub(crate) OffsetDateTime);

/// Several ids in one parameter: a JSON array of strings on SQLite (read with `json_each`), a
/// `uuid[]` on PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DbIds<'a>(pub(crate) &'a [Uuid]);

/// A stored id or time this version cannot read; [`crate::StoreError`] reports it as corrupt data.
#[derive(Debug)]
pub(crate) struct Unreadable(pub(crate) String);

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreadable {}

/// SQLite's form of a time, for the backend's own JSON parameters.
pub(crate) fn encode_time(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(TIMESTAMP)
        .expect("a UTC date-time has every component TIMESTAMP names")
}

fn decode_time(s: &str) -> Result<OffsetDateTime, Unreadable> {
    PrimitiveDateTime::parse(s, TIMESTAMP)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| Unreadable(format!("timestamp {s:?} is not in the expected form")))
}

fn decode_id(s: &str) -> Result<Uuid, Unreadable> {
    s.parse().map_err(|_| Unreadable(format!("id {s:?} is not a UUID")))
}

/// SQLite: text, as [`String`].
macro_rules! sqlite_text {
    ($type:ty) => {
        impl Type<Sqlite> for $type {
            fn type_info() -> SqliteTypeInfo {
                <String as Type<Sqlite>>::type_info()
            }

            fn compatible(ty: &SqliteTypeInfo) -> bool {
                <String as Type<Sqlite>>::compatible(ty)
            }
        }
    };
}

sqlite_text!(DbId);
sqlite_text!(DbTime);
sqlite_text!(DbIds<'_>);

impl<'q> Encode<'q, Sqlite> for DbId {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.0.hyphenated().to_string(), buf)
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(encode_time(self.0), buf)
    }
}

impl<'q> Encode<'q, Sqlite> for DbIds<'_> {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        let ids: Vec<String> = self.0.iter().map(|id| id.hyphenated().to_string()).collect();
        <String as Encode<'q, Sqlite>>::encode(serde_json::to_string(&ids)?, buf)
    }
}

impl Decode<'_, Sqlite> for DbId {
    fn decode(value: SqliteValueRef<'_>) -> Result<Self, BoxDynError> {
        Ok(DbId(decode_id(<&str as Decode<Sqlite>>::decode(value)?)?))
    }
}

impl Decode<'_, Sqlite> for DbTime {
    fn decode(value: SqliteValueRef<'_>) -> Result<Self, BoxDynError> {
        Ok(DbTime(decode_time(<&str as Decode<Sqlite>>::decode(value)?)?))
    }
}

/// PostgreSQL: the native type.
macro_rules! postgres_native {
    ($type:ty, $native:ty) => {
        impl Type<Postgres> for $type {
            fn type_info() -> PgTypeInfo {
                <$native as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <$native as Type<Postgres>>::compatible(ty)
            }
        }
    };
}

postgres_native!(DbId, Uuid);
postgres_native!(DbTime, OffsetDateTime);
postgres_native!(DbIds<'_>, [Uuid]);

impl Encode<'_, Postgres> for DbId {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Uuid as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <OffsetDateTime as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl Encode<'_, Postgres> for DbIds<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&[Uuid] as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl Decode<'_, Postgres> for DbId {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        Ok(DbId(<Uuid as Decode<Postgres>>::decode(value)?))
    }
}

impl Decode<'_, Postgres> for DbTime {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        Ok(DbTime(<OffsetDateTime as Decode<Postgres>>::decode(value)?))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    /// Existing databases hold this exact text.
    #[test]
    fn sqlite_timestamps_keep_their_form() {
        let t = datetime!(2024-03-05 07:08:09.123456 +02:00);
        assert_eq!(encode_time(t), "2024-03-05T05:08:09.123456Z");
        assert_eq!(decode_time("2024-03-05T05:08:09.123456Z").unwrap(), t);
        assert!(decode_time("2024-03-05 05:08:09").is_err());
    }
}
