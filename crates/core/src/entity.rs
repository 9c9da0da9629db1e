//! The normalized entity model every source maps into (after OCSF's User, Group and Device
//! objects and ECS `user.*`), with each entity's raw source JSON kept beside it so nothing the
//! source gave is lost.
//!
//! Entities are identified within their config by `(kind, source_id)`: the source's own
//! immutable id (Okta `00u…`, Google's numeric id, Graph's object GUID).

use serde::{Deserialize, Serialize};
use serde_json::value::{RawValue, to_raw_value};
use time::OffsetDateTime;

/// What kind of thing an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    User,
    Group,
    Device,
}

impl EntityKind {
    pub const ALL: [EntityKind; 3] = [EntityKind::User, EntityKind::Group, EntityKind::Device];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::User => "user",
            EntityKind::Group => "group",
            EntityKind::Device => "device",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A user's lifecycle state, normalized across sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Can sign in.
    Active,
    /// Created but not yet activated (Okta STAGED/PROVISIONED).
    Pending,
    /// Temporarily blocked by an admin (Okta SUSPENDED, Google `suspended`, Entra `accountEnabled: false`).
    Suspended,
    /// Locked out, or in password recovery or expiry (Okta LOCKED_OUT/RECOVERY/PASSWORD_EXPIRED).
    Locked,
    /// Deactivated for good (Okta DEPROVISIONED, Google `archived`).
    Deprovisioned,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Pending => "pending",
            UserStatus::Suspended => "suspended",
            UserStatus::Locked => "locked",
            UserStatus::Deprovisioned => "deprovisioned",
        }
    }
}

/// An enrolled MFA factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaFactor {
    /// The source's factor type (`push`, `token:software:totp`, `webauthn`, …).
    pub factor_type: String,
    pub provider: Option<String>,
    /// The source's status (`ACTIVE`, `PENDING_ACTIVATION`, …).
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub source_id: String,
    /// The sign-in name (Okta `login`, Google `primaryEmail`, Entra `userPrincipalName`).
    pub login: String,
    /// Every email address the source lists, the primary first, lowercase.
    pub emails: Vec<String>,
    /// The addresses the source vouches for, lowercase and sorted: its primary address and the
    /// aliases it owns, never one a user typed in (Okta `secondEmail`, Google `emails`, Entra
    /// `otherMails`). Identity resolution links accounts only by these. Absent from users stored
    /// by older versions, which a full run rewrites.
    #[serde(default)]
    pub verified_emails: Vec<String>,
    /// An id that survives renames across directories, as the source wrote it: Entra
    /// `onPremisesImmutableId` (the AD objectGUID in base64), Okta `externalId` of AD-mastered
    /// users.
    #[serde(default)]
    pub immutable_id: Option<String>,
    /// The Active Directory account the directory synced the user from, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises: Option<OnPremisesAccount>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub status: UserStatus,
    pub title: Option<String>,
    pub department: Option<String>,
    /// The manager's `source_id` when the source links it, else whatever the source gives.
    pub manager: Option<String>,
    pub employee_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    /// When the source last changed the user.
    #[serde(with = "time::serde::rfc3339::option")]
    pub source_updated_at: Option<OffsetDateTime>,
    /// Admin roles held (Okta role types, `SUPER_ADMIN`; Google `super_admin`/`delegated_admin`).
    pub admin_roles: Vec<String>,
    pub mfa_factors: Vec<MfaFactor>,
    /// Whether the user has enrolled a second factor, when the source says so.
    pub mfa_enrolled: Option<bool>,
}

impl User {
    /// Addresses as [`User::verified_emails`] holds them: trimmed, lowercase, sorted, each once.
    pub fn verified_emails<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut out: Vec<String> =
            addresses.into_iter().map(|a| a.trim().to_lowercase()).filter(|a| !a.is_empty()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// An id as [`User::immutable_id`] holds it: trimmed, `None` when blank.
    pub fn immutable_id(id: Option<&str>) -> Option<String> {
        id.map(str::trim).filter(|i| !i.is_empty()).map(str::to_owned)
    }
}

/// An Active Directory account as a directory that syncs from it reports it (Entra
/// `onPremisesSamAccountName`, `onPremisesDomainName`, `onPremisesSecurityIdentifier`): the
/// names a Windows host writes for the user who logged on, `DOMAIN\sam` and the SID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnPremisesAccount {
    pub sam_account_name: String,
    /// The AD domain's DNS name (`corp.acme.com`); a host writes its NetBIOS name, usually one
    /// of these labels.
    pub domain: Option<String>,
    /// `S-1-5-21-…`.
    pub sid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub source_id: String,
    pub name: String,
    pub email: Option<String>,
    pub description: Option<String>,
    /// The source's kind of group (Okta `OKTA_GROUP`/`APP_GROUP`, Entra `security`/`unified`, …).
    /// Serialized as `group_type`: `kind` is the entity's own tag.
    #[serde(rename = "group_type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub source_id: String,
    pub name: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    /// The source's state (`enabled`/`disabled`, or its own status word).
    pub status: Option<String>,
    pub managed: Option<bool>,
    pub compliant: Option<bool>,
    pub trust_type: Option<String>,
    /// The `source_id` of the user the device belongs to, when the source says.
    pub owner: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// What an EDR agent knows of its host. Left out of the stored JSON when the source does not
    /// say, so a directory's devices are stored as they were before these existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Lowercase, colon-separated (`14:7d:da:ad:ac:71`), each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mac_addresses: Vec<String>,
    /// The addresses the host reported on its own interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_ips: Vec<String>,
    /// The address the source saw the host connect from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_build: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// The last user to log on, as the host named them (`ACME\ada`, `ada@acme.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_user: Option<String>,
    /// That user's id where the source gives one (a Windows SID, a uid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_user_id: Option<String>,
    /// Whether the EDR has cut the host off the network (`contained`) or not (`normal`), in the
    /// source's own words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Where the source files the host (a CrowdStrike site, a SentinelOne site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

impl Device {
    /// A MAC address as [`Device::mac_addresses`] holds it: `14-7D-DA-AD-AC-71` and
    /// `147d.daad.ac71` become `14:7d:da:ad:ac:71`; `None` for anything but 12 hex digits, or
    /// all zeros.
    pub fn mac_address(raw: &str) -> Option<String> {
        let hex: String = raw.chars().filter(|c| !matches!(c, ':' | '-' | '.' | ' ')).collect();
        if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) || hex.chars().all(|c| c == '0') {
            return None;
        }
        let hex = hex.to_ascii_lowercase();
        Some((0..6).map(|i| &hex[2 * i..2 * i + 2]).collect::<Vec<_>>().join(":"))
    }
}

/// Who is a member of a group: a user, a nested group or a device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Membership {
    pub group_id: String,
    pub member_kind: EntityKind,
    pub member_id: String,
}

/// One normalized entity with the source's raw JSON for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entity {
    User(User),
    Group(Group),
    Device(Device),
}

impl Entity {
    pub fn kind(&self) -> EntityKind {
        match self {
            Entity::User(_) => EntityKind::User,
            Entity::Group(_) => EntityKind::Group,
            Entity::Device(_) => EntityKind::Device,
        }
    }

    pub fn source_id(&self) -> &str {
        match self {
            Entity::User(u) => &u.source_id,
            Entity::Group(g) => &g.source_id,
            Entity::Device(d) => &d.source_id,
        }
    }
}

/// An entity as a connector hands it over: normalized, plus the raw object the source returned,
/// kept as the source's own text so storing it needs no second serialization.
#[derive(Debug, Clone)]
pub struct Record {
    pub entity: Entity,
    pub raw: Box<RawValue>,
}

impl Record {
    /// A record of an object held as a JSON value, written out compactly.
    pub fn from_value(entity: Entity, raw: &serde_json::Value) -> Record {
        Record { entity, raw: to_raw_value(raw).expect("a JSON value always serializes") }
    }
}

/// Records are equal when their entities are and their raw objects are the same text.
impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.entity == other.entity && self.raw.get() == other.raw.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_are_written_one_way() {
        for raw in ["14-7D-DA-AD-AC-71", "14:7d:da:ad:ac:71", "147d.daad.ac71", " 147DDAADAC71 "] {
            assert_eq!(Device::mac_address(raw).as_deref(), Some("14:7d:da:ad:ac:71"), "{raw}");
        }
        for junk in ["", "00-00-00-00-00-00", "14-7d-da-ad-ac", "zz-7d-da-ad-ac-71"] {
            assert_eq!(Device::mac_address(junk), None, "{junk}");
        }
    }

    /// A directory's device, which knows none of an EDR's fields, is stored as before they
    /// existed: its digest, and so whether a run rewrites it, does not change.
    #[test]
    fn fields_a_source_does_not_give_are_left_out() {
        let d = Device { source_id: "d1".into(), name: Some("LAPTOP-1".into()), ..Device::default() };
        let json = serde_json::to_value(Entity::Device(d.clone())).unwrap();
        assert!(json.get("serial_number").is_none() && json.get("mac_addresses").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<Entity>(json).unwrap(), Entity::Device(d));
    }
}
