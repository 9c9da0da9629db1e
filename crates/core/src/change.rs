//! Typed, field-level change events: what a sync run found different between the stored picture
//! of an entity and what the source now says.
//!
//! Lifecycle events (`user.created`, `group.deleted`, …) carry the entity alone; changes to an
//! existing entity are split by what a detection cares about: status, admin roles, MFA factors,
//! and any other attribute with its old and new value. Times the source bumps on every sign-in
//! (`last_login_at`, `source_updated_at`) are not changes of the entity and never make events.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::entity::{Device, Entity, EntityKind, Group, MfaFactor, User};

/// What kind of change an event records; its name is the event's `type` on the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChangeType {
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    #[serde(rename = "user.status_changed")]
    UserStatusChanged,
    #[serde(rename = "user.attribute_changed")]
    UserAttributeChanged,
    #[serde(rename = "group.created")]
    GroupCreated,
    #[serde(rename = "group.deleted")]
    GroupDeleted,
    #[serde(rename = "group.attribute_changed")]
    GroupAttributeChanged,
    #[serde(rename = "membership.added")]
    MembershipAdded,
    #[serde(rename = "membership.removed")]
    MembershipRemoved,
    #[serde(rename = "admin_role.granted")]
    AdminRoleGranted,
    #[serde(rename = "admin_role.revoked")]
    AdminRoleRevoked,
    #[serde(rename = "mfa_factor.enrolled")]
    MfaFactorEnrolled,
    #[serde(rename = "mfa_factor.removed")]
    MfaFactorRemoved,
    #[serde(rename = "device.created")]
    DeviceCreated,
    #[serde(rename = "device.deleted")]
    DeviceDeleted,
    #[serde(rename = "device.attribute_changed")]
    DeviceAttributeChanged,
    /// An EDR contained the host (cut it off the network) or released it.
    #[serde(rename = "device.containment_changed")]
    DeviceContainmentChanged,
}

impl ChangeType {
    pub const ALL: [ChangeType; 17] = [
        ChangeType::UserCreated,
        ChangeType::UserDeleted,
        ChangeType::UserStatusChanged,
        ChangeType::UserAttributeChanged,
        ChangeType::GroupCreated,
        ChangeType::GroupDeleted,
        ChangeType::GroupAttributeChanged,
        ChangeType::MembershipAdded,
        ChangeType::MembershipRemoved,
        ChangeType::AdminRoleGranted,
        ChangeType::AdminRoleRevoked,
        ChangeType::MfaFactorEnrolled,
        ChangeType::MfaFactorRemoved,
        ChangeType::DeviceCreated,
        ChangeType::DeviceDeleted,
        ChangeType::DeviceAttributeChanged,
        ChangeType::DeviceContainmentChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::UserCreated => "user.created",
            ChangeType::UserDeleted => "user.deleted",
            ChangeType::UserStatusChanged => "user.status_changed",
            ChangeType::UserAttributeChanged => "user.attribute_changed",
            ChangeType::GroupCreated => "group.created",
            ChangeType::GroupDeleted => "group.deleted",
            ChangeType::GroupAttributeChanged => "group.attribute_changed",
            ChangeType::MembershipAdded => "membership.added",
            ChangeType::MembershipRemoved => "membership.removed",
            ChangeType::AdminRoleGranted => "admin_role.granted",
            ChangeType::AdminRoleRevoked => "admin_role.revoked",
            ChangeType::MfaFactorEnrolled => "mfa_factor.enrolled",
            ChangeType::MfaFactorRemoved => "mfa_factor.removed",
            ChangeType::DeviceCreated => "device.created",
            ChangeType::DeviceDeleted => "device.deleted",
            ChangeType::DeviceAttributeChanged => "device.attribute_changed",
            ChangeType::DeviceContainmentChanged => "device.containment_changed",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    fn created(kind: EntityKind) -> ChangeType {
        match kind {
            EntityKind::User => ChangeType::UserCreated,
            EntityKind::Group => ChangeType::GroupCreated,
            EntityKind::Device => ChangeType::DeviceCreated,
        }
    }

    fn deleted(kind: EntityKind) -> ChangeType {
        match kind {
            EntityKind::User => ChangeType::UserDeleted,
            EntityKind::Group => ChangeType::GroupDeleted,
            EntityKind::Device => ChangeType::DeviceDeleted,
        }
    }

    fn attribute_changed(kind: EntityKind) -> ChangeType {
        match kind {
            EntityKind::User => ChangeType::UserAttributeChanged,
            EntityKind::Group => ChangeType::GroupAttributeChanged,
            EntityKind::Device => ChangeType::DeviceAttributeChanged,
        }
    }
}

/// One change of one entity (or of one membership, whose entity is the group).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub change_type: ChangeType,
    pub entity_kind: EntityKind,
    /// The entity's source id; for a membership, the group's.
    pub entity_id: String,
    /// What else the change is about: the member's source id (memberships), the role
    /// (admin roles) or the factor type (MFA factors).
    pub related_id: Option<String>,
    /// The attribute that changed (`status`, `title`, …), for status and attribute changes.
    pub field: Option<&'static str>,
    pub old: Option<Value>,
    pub new: Option<Value>,
    /// When the source says the change happened (a user's `source_updated_at`), if it does.
    pub source_time: Option<OffsetDateTime>,
}

impl Change {
    fn of(change_type: ChangeType, entity: &Entity) -> Change {
        Change {
            change_type,
            entity_kind: entity.kind(),
            entity_id: entity.source_id().to_owned(),
            related_id: None,
            field: None,
            old: None,
            new: None,
            source_time: source_time(entity),
        }
    }

    fn related(mut self, id: impl Into<String>) -> Change {
        self.related_id = Some(id.into());
        self
    }

    fn field(mut self, field: &'static str, old: Value, new: Value) -> Change {
        self.field = Some(field);
        self.old = Some(old);
        self.new = Some(new);
        self
    }

    /// The entity is gone; what it was is not needed to say so.
    pub fn deleted(kind: EntityKind, source_id: &str) -> Change {
        Change {
            change_type: ChangeType::deleted(kind),
            entity_kind: kind,
            entity_id: source_id.to_owned(),
            related_id: None,
            field: None,
            old: None,
            new: None,
            source_time: None,
        }
    }

    /// A member joined (`added`) or left a group.
    pub fn membership(group_id: &str, member_kind: EntityKind, member_id: &str, added: bool) -> Change {
        Change {
            change_type: if added { ChangeType::MembershipAdded } else { ChangeType::MembershipRemoved },
            entity_kind: EntityKind::Group,
            entity_id: group_id.to_owned(),
            related_id: Some(member_id.to_owned()),
            field: Some(member_kind.as_str()),
            old: None,
            new: None,
            source_time: None,
        }
    }
}

fn source_time(entity: &Entity) -> Option<OffsetDateTime> {
    match entity {
        Entity::User(u) => u.source_updated_at,
        Entity::Group(_) | Entity::Device(_) => None,
    }
}

/// The changes from `old` (the stored entity, `None` when new) to `new` (what the source says,
/// `None` when it is gone), in a fixed order: lifecycle, status, attributes by name, roles,
/// factors.
pub fn entity_changes(old: Option<&Entity>, new: Option<&Entity>) -> Vec<Change> {
    match (old, new) {
        (None, None) => Vec::new(),
        (None, Some(new)) => vec![Change::of(ChangeType::created(new.kind()), new)],
        (Some(old), None) => vec![Change::of(ChangeType::deleted(old.kind()), old)],
        (Some(Entity::User(a)), Some(new @ Entity::User(b))) => user_changes(a, b, new),
        (Some(Entity::Group(a)), Some(new @ Entity::Group(b))) => {
            attribute_changes(group_fields(a), group_fields(b), new)
        }
        (Some(Entity::Device(a)), Some(new @ Entity::Device(b))) => device_changes(a, b, new),
        // One source id never changes kind; treat it as a replacement.
        (Some(old), Some(new)) => vec![
            Change::of(ChangeType::deleted(old.kind()), old),
            Change::of(ChangeType::created(new.kind()), new),
        ],
    }
}

fn user_changes(a: &User, b: &User, new: &Entity) -> Vec<Change> {
    let mut changes = Vec::new();
    if a.status != b.status {
        changes.push(Change::of(ChangeType::UserStatusChanged, new).field(
            "status",
            Value::from(a.status.as_str()),
            Value::from(b.status.as_str()),
        ));
    }
    changes.extend(attribute_changes(user_fields(a), user_fields(b), new));
    for role in b.admin_roles.iter().filter(|r| !a.admin_roles.contains(r)) {
        changes.push(Change::of(ChangeType::AdminRoleGranted, new).related(role.as_str()));
    }
    for role in a.admin_roles.iter().filter(|r| !b.admin_roles.contains(r)) {
        changes.push(Change::of(ChangeType::AdminRoleRevoked, new).related(role.as_str()));
    }
    let same_factor =
        |x: &MfaFactor, y: &MfaFactor| x.factor_type == y.factor_type && x.provider == y.provider;
    for f in b.mfa_factors.iter().filter(|f| !a.mfa_factors.iter().any(|g| same_factor(f, g))) {
        changes.push(Change::of(ChangeType::MfaFactorEnrolled, new).related(factor_name(f)));
    }
    for f in a.mfa_factors.iter().filter(|f| !b.mfa_factors.iter().any(|g| same_factor(f, g))) {
        changes.push(Change::of(ChangeType::MfaFactorRemoved, new).related(factor_name(f)));
    }
    changes
}

/// `factor_type`, or `factor_type/provider` when the source names a provider, so two tokens of
/// one type from different providers stay apart.
fn factor_name(f: &MfaFactor) -> String {
    match &f.provider {
        Some(p) => format!("{}/{}", f.factor_type, p.to_lowercase()),
        None => f.factor_type.clone(),
    }
}

type Fields = Vec<(&'static str, Value)>;

fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("entity fields always serialize")
}

fn user_fields(u: &User) -> Fields {
    vec![
        ("department", json(&u.department)),
        ("display_name", json(&u.display_name)),
        ("emails", json(&u.emails)),
        ("employee_id", json(&u.employee_id)),
        ("family_name", json(&u.family_name)),
        ("given_name", json(&u.given_name)),
        ("login", json(&u.login)),
        ("manager", json(&u.manager)),
        ("mfa_enrolled", json(&u.mfa_enrolled)),
        ("title", json(&u.title)),
    ]
}

fn group_fields(g: &Group) -> Fields {
    vec![
        ("description", json(&g.description)),
        ("email", json(&g.email)),
        ("group_type", json(&g.kind)),
        ("name", json(&g.name)),
    ]
}

/// Containment first, since a detection acts on it, then the attributes by name.
fn device_changes(a: &Device, b: &Device, new: &Entity) -> Vec<Change> {
    let mut changes = Vec::new();
    if a.containment != b.containment {
        changes.push(Change::of(ChangeType::DeviceContainmentChanged, new).field(
            "containment",
            json(&a.containment),
            json(&b.containment),
        ));
    }
    changes.extend(attribute_changes(device_fields(a), device_fields(b), new));
    changes
}

/// Not `last_seen_at`, the addresses or the agent's version: a check-in, a new network or an
/// agent's update is not a change of the device. `last_user` is: for a host without an owner it
/// says whose it is.
fn device_fields(d: &Device) -> Fields {
    vec![
        ("compliant", json(&d.compliant)),
        ("last_user", json(&d.last_user)),
        ("managed", json(&d.managed)),
        ("name", json(&d.name)),
        ("os", json(&d.os)),
        ("os_build", json(&d.os_build)),
        ("os_version", json(&d.os_version)),
        ("owner", json(&d.owner)),
        ("serial_number", json(&d.serial_number)),
        ("site", json(&d.site)),
        ("status", json(&d.status)),
        ("tags", json(&d.tags)),
        ("trust_type", json(&d.trust_type)),
    ]
}

fn attribute_changes(old: Fields, new: Fields, entity: &Entity) -> Vec<Change> {
    old.into_iter()
        .zip(new)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, a), (_, b))| {
            Change::of(ChangeType::attribute_changed(entity.kind()), entity).field(field, a, b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::UserStatus;

    fn user(id: &str) -> User {
        User {
            source_id: id.into(),
            login: format!("{id}@example.com"),
            emails: vec![format!("{id}@example.com")],
            verified_emails: vec![format!("{id}@example.com")],
            immutable_id: None,
            on_premises: None,
            display_name: Some("Ada Lovelace".into()),
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            status: UserStatus::Active,
            title: Some("Engineer".into()),
            department: None,
            manager: None,
            employee_id: Some("E1".into()),
            created_at: None,
            last_login_at: None,
            source_updated_at: None,
            admin_roles: vec!["READ_ONLY_ADMIN".into()],
            mfa_factors: vec![MfaFactor {
                factor_type: "push".into(),
                provider: Some("OKTA".into()),
                status: None,
            }],
            mfa_enrolled: Some(true),
        }
    }

    fn types(changes: &[Change]) -> Vec<&'static str> {
        changes.iter().map(|c| c.change_type.as_str()).collect()
    }

    #[test]
    fn names_round_trip() {
        for t in ChangeType::ALL {
            assert_eq!(ChangeType::parse(t.as_str()), Some(t));
            assert_eq!(json(&t), Value::from(t.as_str()));
        }
    }

    #[test]
    fn lifecycle_events_carry_the_entity_alone() {
        let u = Entity::User(user("u1"));
        assert_eq!(types(&entity_changes(None, Some(&u))), ["user.created"]);
        assert_eq!(types(&entity_changes(Some(&u), None)), ["user.deleted"]);
        assert!(entity_changes(Some(&u), Some(&u)).is_empty());
    }

    #[test]
    fn each_kind_of_user_change_is_its_own_event_in_a_fixed_order() {
        let before = user("u1");
        let mut after = before.clone();
        after.status = UserStatus::Suspended;
        after.title = Some("Staff Engineer".into());
        after.emails.push("ada@alias.example.com".into());
        after.admin_roles = vec!["SUPER_ADMIN".into()];
        after.mfa_factors.push(MfaFactor { factor_type: "webauthn".into(), provider: None, status: None });
        after.mfa_factors.remove(0);
        after.last_login_at = Some(OffsetDateTime::UNIX_EPOCH);
        after.source_updated_at = Some(OffsetDateTime::UNIX_EPOCH);
        let changes = entity_changes(Some(&Entity::User(before)), Some(&Entity::User(after)));
        assert_eq!(
            types(&changes),
            [
                "user.status_changed",
                "user.attribute_changed",
                "user.attribute_changed",
                "admin_role.granted",
                "admin_role.revoked",
                "mfa_factor.enrolled",
                "mfa_factor.removed",
            ]
        );
        assert_eq!(changes[0].old, Some(Value::from("active")));
        assert_eq!(changes[0].new, Some(Value::from("suspended")));
        assert_eq!((changes[1].field, changes[2].field), (Some("emails"), Some("title")));
        assert_eq!(changes[2].new, Some(Value::from("Staff Engineer")));
        assert_eq!(changes[3].related_id.as_deref(), Some("SUPER_ADMIN"));
        assert_eq!(changes[4].related_id.as_deref(), Some("READ_ONLY_ADMIN"));
        assert_eq!(changes[5].related_id.as_deref(), Some("webauthn"));
        assert_eq!(changes[6].related_id.as_deref(), Some("push/okta"));
        assert!(changes.iter().all(|c| c.source_time == Some(OffsetDateTime::UNIX_EPOCH)));
    }

    #[test]
    fn sign_ins_and_check_ins_are_not_changes() {
        let before = user("u1");
        let mut after = before.clone();
        after.last_login_at = Some(OffsetDateTime::UNIX_EPOCH);
        after.source_updated_at = Some(OffsetDateTime::UNIX_EPOCH);
        assert!(entity_changes(Some(&Entity::User(before)), Some(&Entity::User(after))).is_empty());

        let device = Device {
            source_id: "d1".into(),
            name: Some("laptop".into()),
            os: None,
            os_version: None,
            status: None,
            managed: Some(true),
            compliant: Some(true),
            trust_type: None,
            owner: None,
            last_seen_at: None,
            created_at: None,
            ..Device::default()
        };
        let seen = Device { last_seen_at: Some(OffsetDateTime::UNIX_EPOCH), ..device.clone() };
        assert!(
            entity_changes(Some(&Entity::Device(device.clone())), Some(&Entity::Device(seen))).is_empty()
        );
        let noncompliant = Device { compliant: Some(false), ..device.clone() };
        let changes = entity_changes(Some(&Entity::Device(device)), Some(&Entity::Device(noncompliant)));
        assert_eq!(types(&changes), ["device.attribute_changed"]);
        assert_eq!(changes[0].field, Some("compliant"));
    }

    #[test]
    fn memberships_name_the_group_and_the_member() {
        let c = Change::membership("g1", EntityKind::User, "u1", false);
        assert_eq!(c.change_type, ChangeType::MembershipRemoved);
        assert_eq!((c.entity_id.as_str(), c.related_id.as_deref()), ("g1", Some("u1")));
        assert_eq!(c.field, Some("user"));
    }

    #[test]
    fn a_host_contained_moved_to_another_user_and_upgraded_says_each() {
        let host = Device {
            source_id: "aid1".into(),
            name: Some("LAPTOP-ADA".into()),
            os_build: Some("22631".into()),
            last_user: Some("ACME\\ada".into()),
            containment: Some("normal".into()),
            local_ips: vec!["10.0.0.5".into()],
            agent_version: Some("7.10".into()),
            ..Device::default()
        };
        let mut later = host.clone();
        later.containment = Some("contained".into());
        later.last_user = Some("ACME\\grace".into());
        later.os_build = Some("26100".into());
        later.local_ips = vec!["10.0.0.9".into()];
        later.agent_version = Some("7.11".into());
        let changes = entity_changes(Some(&Entity::Device(host.clone())), Some(&Entity::Device(later)));
        assert_eq!(
            types(&changes),
            ["device.containment_changed", "device.attribute_changed", "device.attribute_changed"]
        );
        assert_eq!(
            (changes[0].old.clone(), changes[0].new.clone()),
            (Some(Value::from("normal")), Some(Value::from("contained")))
        );
        let fields: Vec<_> = changes[1..].iter().map(|c| c.field.unwrap()).collect();
        assert_eq!(fields, ["last_user", "os_build"], "a new address or agent version is no change");
        let mut contained = host.clone();
        contained.containment = Some("contained".into());
        let released = entity_changes(Some(&Entity::Device(contained)), Some(&Entity::Device(host)));
        assert_eq!(types(&released), ["device.containment_changed"]);
        assert_eq!(released[0].new, Some(Value::from("normal")));
    }
}
