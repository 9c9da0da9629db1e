//! Change events and effective-dated history: what a run found different, and who was a member
//! or an admin when.
//!
//! Both are written by the transactions that change the entities, so they never disagree with
//! them. A [`Recorder`] gathers a page's (or a run end's) changes as the backend writes, and the
//! backend records them before committing. Events start after a config's baseline (its first
//! completed full run); history is kept from the start, so as-of questions work from the first
//! sync on. What is decided here is the same for every backend; the backends only write rows and
//! bind ids and times their own way.

use ctxsync_core::{Change, ChangeType, ConfigId, Entity, EntityKind, Membership, OrgId, entity_changes};
use serde_json::Value;
use sqlx::{ColumnIndex, Decode, Row, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::StoreError;
use crate::page::{EntityWrite, Stored};
use crate::rows::decode_kind;
use crate::values::{DbId, DbTime};

/// One recorded change event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// Grows with every event, across configs and orgs: the cursor of listings and tails.
    pub id: i64,
    pub config_id: ConfigId,
    pub run_id: Uuid,
    pub change_type: ChangeType,
    pub entity_kind: EntityKind,
    /// The entity's source id; for a membership, the group's.
    pub entity_id: String,
    /// The member (memberships), the role (admin roles) or the factor (MFA factors).
    pub related_id: Option<String>,
    /// The attribute that changed, or a membership's member kind.
    pub field: Option<String>,
    pub old: Option<Value>,
    pub new: Option<Value>,
    /// When the run saw the change.
    pub observed_at: OffsetDateTime,
    /// When the source says it happened, when it says.
    pub source_time: Option<OffsetDateTime>,
}

/// Filters of an event listing; every one is optional. Events come oldest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub config: Option<ConfigId>,
    /// Any of these types; empty means every type.
    pub types: Vec<ChangeType>,
    /// Events about this source id: as the entity, or as the related id (a member, a role).
    pub entity_id: Option<String>,
    /// Observed at or after.
    pub from: Option<OffsetDateTime>,
    /// Observed before.
    pub to: Option<OffsetDateTime>,
    /// Events with a larger id only.
    pub after: Option<i64>,
    pub limit: u32,
}

/// A stretch of time during which a member belonged to a group; `valid_to` is `None` while it
/// still does. `valid_from` is when ctxsync first saw it (the config's first sync, for
/// memberships older than that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipInterval {
    pub membership: Membership,
    pub valid_from: OffsetDateTime,
    pub valid_to: Option<OffsetDateTime>,
}

/// A stretch of time during which a user held an admin role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInterval {
    pub user_id: String,
    pub role: String,
    pub valid_from: OffsetDateTime,
    pub valid_to: Option<OffsetDateTime>,
}

/// Which intervals to read: those of one group, one member or one role, or all of a config's;
/// with `at`, only those in effect then (valid from at or before it, to after it).
#[derive(Debug, Clone, Default)]
pub struct IntervalQuery {
    pub group: Option<String>,
    pub member: Option<String>,
    /// For role intervals: the user.
    pub user: Option<String>,
    pub role: Option<String>,
    pub at: Option<OffsetDateTime>,
}

#[async_trait::async_trait]
pub trait HistoryStore: Send + Sync {
    /// Events of `org`, or of every org when `None` (the operator's own command).
    async fn list_events(
        &self,
        org: Option<OrgId>,
        query: &EventQuery,
    ) -> Result<Vec<ChangeEvent>, StoreError>;

    /// Deletes events observed before `before`; returns how many.
    async fn delete_events_before(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Membership intervals of a config of `org`, ordered by group, member and start.
    async fn membership_intervals(
        &self,
        org: OrgId,
        config: ConfigId,
        query: &IntervalQuery,
    ) -> Result<Vec<MembershipInterval>, StoreError>;

    /// Admin role intervals of a config of `org`, ordered by user, role and start.
    async fn role_intervals(
        &self,
        org: OrgId,
        config: ConfigId,
        query: &IntervalQuery,
    ) -> Result<Vec<RoleInterval>, StoreError>;
}

/// A membership that ended, with the time it began (`first_seen_at` of the deleted row).
pub(crate) struct Ended {
    pub group_id: String,
    pub member_kind: String,
    pub member_id: String,
    pub valid_from: OffsetDateTime,
}

/// What one transaction changed, gathered while the backend writes and recorded before it
/// commits.
pub(crate) struct Recorder {
    /// Whether the config has its baseline, so that changes become events.
    events_on: bool,
    pub events: Vec<Change>,
    /// `(user, role)` intervals to open and to close.
    pub granted: Vec<(String, String)>,
    pub revoked: Vec<(String, String)>,
    /// Users gone: their open roles close.
    pub deleted_users: Vec<String>,
    pub ended: Vec<Ended>,
}

impl Recorder {
    pub(crate) fn new(events_on: bool) -> Recorder {
        Recorder {
            events_on,
            events: Vec::new(),
            granted: Vec::new(),
            revoked: Vec::new(),
            deleted_users: Vec::new(),
            ended: Vec::new(),
        }
    }

    /// Whether added memberships must be told apart from those already stored.
    pub(crate) fn events_on(&self) -> bool {
        self.events_on
    }

    /// New entities, and changed ones with what was stored for them.
    pub(crate) fn entities(
        &mut self,
        created: &[&EntityWrite],
        updated: &[&EntityWrite],
        stored: &Stored,
    ) -> Result<(), StoreError> {
        // New entities first, then changed ones, each in the page's order.
        let mut rows: Vec<(&EntityWrite, Option<&Entity>)> =
            Vec::with_capacity(created.len() + updated.len());
        rows.extend(created.iter().map(|row| (*row, None)));
        rows.extend(updated.iter().map(|row| (*row, stored.get(row))));
        for (row, old) in rows {
            match old {
                None => {
                    self.granted.extend(row.admin_roles.iter().map(|r| (row.source_id.clone(), r.clone())));
                    if self.events_on {
                        self.events.push(entity_changes(None, Some(&decode(row)?)).remove(0));
                    }
                }
                Some(old) => {
                    let changes = entity_changes(Some(old), Some(&decode(row)?));
                    for change in &changes {
                        let role =
                            || (change.entity_id.clone(), change.related_id.clone().unwrap_or_default());
                        match change.change_type {
                            ChangeType::AdminRoleGranted => self.granted.push(role()),
                            ChangeType::AdminRoleRevoked => self.revoked.push(role()),
                            _ => {}
                        }
                    }
                    if self.events_on {
                        self.events.extend(changes);
                    }
                }
            }
        }
        Ok(())
    }

    /// Memberships just inserted, as rows of `(group_id, member_kind, member_id)`; returns how many.
    /// Backends read them back only when [`Recorder::events_on`]: never on a first sync.
    pub(crate) fn memberships_added<R: Row>(&mut self, rows: &[R]) -> Result<u64, StoreError>
    where
        usize: ColumnIndex<R>,
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    {
        let mut added = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<Vec<(String, String, String)>, sqlx::Error>>()?;
        added.sort();
        for (group, kind, member) in &added {
            self.events.push(Change::membership(group, decode_kind(kind)?, member, true));
        }
        Ok(added.len() as u64)
    }

    /// Entities a completed run deleted (`(kind, source_id)`).
    pub(crate) fn entities_deleted(&mut self, mut deleted: Vec<(String, String)>) -> Result<(), StoreError> {
        deleted.sort();
        for (kind, source_id) in deleted {
            let kind = decode_kind(&kind)?;
            if kind == EntityKind::User {
                self.deleted_users.push(source_id.clone());
            }
            if self.events_on {
                self.events.push(Change::deleted(kind, &source_id));
            }
        }
        Ok(())
    }

    /// Memberships a completed run deleted, with when each began.
    pub(crate) fn memberships_removed(
        &mut self,
        removed: Vec<(String, String, String, DbTime)>,
    ) -> Result<(), StoreError> {
        let mut ended: Vec<Ended> = removed
            .into_iter()
            .map(|(group_id, member_kind, member_id, from)| Ended {
                group_id,
                member_kind,
                member_id,
                valid_from: from.0,
            })
            .collect();
        ended.sort_by(|a, b| {
            (&a.group_id, &a.member_kind, &a.member_id).cmp(&(&b.group_id, &b.member_kind, &b.member_id))
        });
        if self.events_on {
            for e in &ended {
                self.events.push(Change::membership(
                    &e.group_id,
                    decode_kind(&e.member_kind)?,
                    &e.member_id,
                    false,
                ));
            }
        }
        self.ended = ended;
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.granted.is_empty()
            && self.revoked.is_empty()
            && self.deleted_users.is_empty()
            && self.ended.is_empty()
    }

    /// The events as their columns are written.
    pub(crate) fn event_rows(&self) -> Vec<EventWrite<'_>> {
        self.events
            .iter()
            .map(|c| EventWrite {
                change_type: c.change_type.as_str(),
                entity_kind: c.entity_kind.as_str(),
                entity_id: &c.entity_id,
                related_id: c.related_id.as_deref(),
                field: c.field,
                old: c.old.as_ref().map(Value::to_string),
                new: c.new.as_ref().map(Value::to_string),
                source_time: c.source_time,
            })
            .collect()
    }
}

/// An event's columns as written.
pub(crate) struct EventWrite<'a> {
    pub change_type: &'static str,
    pub entity_kind: &'static str,
    pub entity_id: &'a str,
    pub related_id: Option<&'a str>,
    pub field: Option<&'static str>,
    pub old: Option<String>,
    pub new: Option<String>,
    pub source_time: Option<OffsetDateTime>,
}

fn decode(row: &EntityWrite) -> Result<Entity, StoreError> {
    serde_json::from_str(&row.data)
        .map_err(|_| StoreError::Corrupt(format!("the {} {} does not read back", row.kind, row.source_id)))
}

/// The columns of [`EventRow`].
pub(crate) const EVENT_COLUMNS: &str = "id, config_id, run_id, type, entity_kind, entity_id, related_id, field, \
     old_value, new_value, observed_at, source_time";

/// A row of `change_events`.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    id: i64,
    config_id: DbId,
    run_id: DbId,
    #[sqlx(rename = "type")]
    change_type: String,
    entity_kind: String,
    entity_id: String,
    related_id: Option<String>,
    field: Option<String>,
    old_value: Option<String>,
    new_value: Option<String>,
    observed_at: DbTime,
    source_time: Option<DbTime>,
}

impl TryFrom<EventRow> for ChangeEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<ChangeEvent, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("event {} has an unreadable {what}", row.id));
        let json =
            |v: Option<String>| v.map(|v| serde_json::from_str(&v)).transpose().map_err(|_| corrupt("value"));
        Ok(ChangeEvent {
            id: row.id,
            config_id: ConfigId(row.config_id.0),
            run_id: row.run_id.0,
            change_type: ChangeType::parse(&row.change_type).ok_or_else(|| corrupt("type"))?,
            entity_kind: decode_kind(&row.entity_kind)?,
            entity_id: row.entity_id,
            related_id: row.related_id,
            field: row.field,
            old: json(row.old_value)?,
            new: json(row.new_value)?,
            observed_at: row.observed_at.0,
            source_time: row.source_time.map(|t| t.0),
        })
    }
}

/// Rows of a membership intervals query (`group_id, member_kind, member_id, valid_from,
/// valid_to`) as intervals.
pub(crate) fn membership_intervals(
    rows: Vec<(String, String, String, DbTime, Option<DbTime>)>,
) -> Result<Vec<MembershipInterval>, StoreError> {
    rows.into_iter()
        .map(|(group_id, kind, member_id, from, to)| {
            Ok(MembershipInterval {
                membership: Membership { group_id, member_kind: decode_kind(&kind)?, member_id },
                valid_from: from.0,
                valid_to: to.map(|t| t.0),
            })
        })
        .collect()
}

/// Rows of a role intervals query (`user_id, role, valid_from, valid_to`) as intervals.
pub(crate) fn role_intervals(
    rows: Vec<(String, String, DbTime, Option<DbTime>)>,
) -> Result<Vec<RoleInterval>, StoreError> {
    Ok(rows
        .into_iter()
        .map(|(user_id, role, from, to)| RoleInterval {
            user_id,
            role,
            valid_from: from.0,
            valid_to: to.map(|t| t.0),
        })
        .collect())
}
