//! An Entra ID tenant as Microsoft Graph v1.0 names and serves it: users with their managers,
//! groups whose members are users, groups and devices, devices with their registered owner, and
//! directory role assignments.
//!
//! Every change takes the next tick of one tenant-wide clock and moves the object to that tick in
//! its collection's change log, so "what changed after tick t" is a range of that log
//! (`delta.rs`). Deleted objects stay behind as tombstones so that later delta rounds can report
//! them as `@removed`; a group's memberships carry their own tick and presence the same way.
//! `collection.rs` keeps one kind of object and its log, `render.rs` writes objects as Graph
//! does, and `generate.rs` builds a tenant from a generated directory.

mod collection;
mod delta;
mod generate;
mod render;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::admin::{Lifecycle, Standing};
use crate::common::{Seeded, now};
use collection::{Collection, tick};
pub(crate) use delta::{DeltaQuery, Kind, Position};
pub(crate) use render::{DEVICE_PROPERTIES, GROUP_PROPERTIES, USER_DEFAULT, USER_PROPERTIES, render};
use render::{device_property, group_property, user_property};

/// Built-in directory roles: template id and display name, as every tenant has them.
const ROLES: &[(&str, &str)] = &[
    ("62e90394-69f5-4237-9190-012177145e10", "Global Administrator"),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    ("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator"),
    ("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader"),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
];

/// A user's properties. The object id is the tenant's and is not part of them.
#[derive(Debug, Clone, PartialEq)]
pub struct EntraUser {
    pub user_principal_name: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// The primary SMTP address; `None` for users without a mailbox.
    pub mail: Option<String>,
    pub other_mails: Vec<String>,
    /// `SMTP:` marks the primary address, `smtp:` the aliases.
    pub proxy_addresses: Vec<String>,
    pub account_enabled: bool,
    /// A B2B guest (`userType: Guest`) rather than a member.
    pub guest: bool,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub employee_id: Option<String>,
    pub created: OffsetDateTime,
    /// Set for users synced from on-premises Active Directory.
    pub on_premises: Option<OnPremises>,
    /// The manager's object id.
    pub manager: Option<String>,
}

/// The Active Directory account a synced user comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct OnPremises {
    /// The objectGUID, base64.
    pub immutable_id: String,
    pub sam_account_name: String,
    /// The domain's DNS name.
    pub domain_name: String,
    pub security_identifier: String,
}

/// A group's properties (security groups and Microsoft 365 groups).
#[derive(Debug, Clone, PartialEq)]
pub struct EntraGroup {
    pub display_name: String,
    pub description: Option<String>,
    pub mail: Option<String>,
    pub mail_enabled: bool,
    pub mail_nickname: String,
    pub security_enabled: bool,
    /// `Unified` for Microsoft 365 groups.
    pub group_types: Vec<String>,
    pub visibility: Option<String>,
    pub created: OffsetDateTime,
    pub security_identifier: String,
}

/// A registered device's properties.
#[derive(Debug, Clone, PartialEq)]
pub struct EntraDevice {
    /// The device's own GUID, distinct from its directory object id.
    pub device_id: String,
    pub display_name: String,
    pub account_enabled: bool,
    pub operating_system: String,
    pub operating_system_version: String,
    /// `AzureAd` (joined), `Workplace` (registered) or `ServerAd` (hybrid joined).
    pub trust_type: String,
    pub is_compliant: Option<bool>,
    pub is_managed: Option<bool>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub approximate_last_sign_in: Option<OffsetDateTime>,
    pub registered: OffsetDateTime,
    /// The registered owner's object id.
    pub owner: Option<String>,
}

/// What a group member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberKind {
    User,
    Group,
    Device,
}

impl MemberKind {
    /// `user`, `group` or `device`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "user",
            MemberKind::Group => "group",
            MemberKind::Device => "device",
        }
    }

    fn odata_type(self) -> &'static str {
        match self {
            MemberKind::User => "#microsoft.graph.user",
            MemberKind::Group => "#microsoft.graph.group",
            MemberKind::Device => "#microsoft.graph.device",
        }
    }

    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        [MemberKind::User, MemberKind::Group, MemberKind::Device].into_iter().find(|k| k.code() == code)
    }
}

/// The tenant as Graph would serve it, for tests to compare a sync against.
#[derive(Debug, Clone, PartialEq)]
pub struct EntraSnapshot {
    /// Keyed by object id: every property, as `GET /v1.0/users/{id}` answers with all of them
    /// selected (unset ones as `null`).
    pub users: BTreeMap<String, Value>,
    pub groups: BTreeMap<String, Value>,
    pub devices: BTreeMap<String, Value>,
    /// `(group id, member kind, member id)`.
    pub memberships: BTreeSet<(String, MemberKind, String)>,
    /// User id → manager id.
    pub managers: BTreeMap<String, String>,
    /// Device id → registered owner id.
    pub device_owners: BTreeMap<String, String>,
    /// User id → display names of the directory roles assigned to the user.
    pub admin_roles: BTreeMap<String, BTreeSet<String>>,
}

/// A group member: its kind and its slot in that kind's collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Member {
    pub kind: MemberKind,
    pub slot: u32,
}

#[derive(Debug, Clone, Copy)]
struct MemberChange {
    version: u64,
    present: bool,
}

struct GroupEntry {
    group: EntraGroup,
    members: BTreeMap<Member, MemberChange>,
}

struct RoleAssignment {
    role: usize,
    principal: Uuid,
}

/// A generated or mutated Entra ID tenant. Changed through [`crate::FakeEntra::mutate`]; every
/// method taking an object id panics when no live object has it, as a test would want.
pub struct EntraTenant {
    pub(crate) tenant_id: String,
    pub(crate) domain: String,
    users: Collection<EntraUser>,
    groups: Collection<GroupEntry>,
    devices: Collection<EntraDevice>,
    roles: Vec<RoleAssignment>,
    clock: u64,
    /// Part of every delta token; bumping it makes every token issued before unknown.
    pub(crate) token_epoch: u32,
    /// Ids of objects added after generation: seeded too, so a test's mutations repeat.
    ids: Seeded,
}

/// `ada.lovelace7` → `Ada.Lovelace7`: how mail addresses are usually capitalised.
fn capitalised(handle: &str) -> String {
    handle
        .split('.')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl EntraTenant {
    pub(crate) fn clock(&self) -> u64 {
        self.clock
    }

    fn tick(&mut self) -> u64 {
        tick(&mut self.clock)
    }

    fn new_id(&mut self) -> Uuid {
        self.ids.uuid()
    }

    fn user_slot(&self, id: &str) -> u32 {
        self.users.find(id).unwrap_or_else(|| panic!("no user {id} in the fake tenant"))
    }

    fn group_slot(&self, id: &str) -> u32 {
        self.groups.find(id).unwrap_or_else(|| panic!("no group {id} in the fake tenant"))
    }

    fn device_slot(&self, id: &str) -> u32 {
        self.devices.find(id).unwrap_or_else(|| panic!("no device {id} in the fake tenant"))
    }

    fn member(&self, id: &str) -> Member {
        let (kind, slot) = if let Some(slot) = self.users.find(id) {
            (MemberKind::User, slot)
        } else if let Some(slot) = self.groups.find(id) {
            (MemberKind::Group, slot)
        } else {
            (MemberKind::Device, self.device_slot(id))
        };
        Member { kind, slot }
    }

    fn member_id(&self, member: Member) -> Uuid {
        let slot = member.slot as usize;
        match member.kind {
            MemberKind::User => self.users.slots[slot].id,
            MemberKind::Group => self.groups.slots[slot].id,
            MemberKind::Device => self.devices.slots[slot].id,
        }
    }

    /// Adds an enabled member user with a mailbox, named after `given` and `surname`; returns
    /// its object id.
    pub fn add_user(&mut self, given: &str, surname: &str) -> String {
        let base = format!("{}.{}", given.to_lowercase(), surname.to_lowercase()).replace(' ', "");
        let taken = |handle: &str| {
            let upn = format!("{handle}@{}", self.domain);
            self.users.live().any(|s| s.value.user_principal_name == upn)
        };
        let handle = (0..)
            .map(|n| if n == 0 { base.clone() } else { format!("{base}{n}") })
            .find(|h| !taken(h))
            .unwrap();
        let mail = format!("{}@contoso.com", capitalised(&handle));
        let user = EntraUser {
            user_principal_name: format!("{handle}@{}", self.domain),
            display_name: format!("{given} {surname}"),
            given_name: Some(given.to_string()),
            surname: Some(surname.to_string()),
            proxy_addresses: vec![format!("SMTP:{mail}"), format!("smtp:{handle}@{}", self.domain)],
            mail: Some(mail),
            other_mails: Vec::new(),
            account_enabled: true,
            guest: false,
            job_title: None,
            department: None,
            employee_id: None,
            created: now(),
            on_premises: None,
            manager: None,
        };
        let id = self.new_id();
        self.users.add(id, user, &mut self.clock)
    }

    /// Changes a user's properties; a change that changes nothing is not a change.
    pub fn update_user(&mut self, id: &str, change: impl FnOnce(&mut EntraUser)) {
        let slot = self.user_slot(id);
        self.users.update(slot, &mut self.clock, |u| u, change);
    }

    pub fn disable_user(&mut self, id: &str) {
        self.update_user(id, |u| u.account_enabled = false);
    }

    pub fn enable_user(&mut self, id: &str) {
        self.update_user(id, |u| u.account_enabled = true);
    }

    /// Deletes a user for good: it leaves its groups, its reports lose their manager, its
    /// devices their owner and its role assignments go.
    pub fn delete_user(&mut self, id: &str) {
        let slot = self.user_slot(id);
        self.delete_member(Member { kind: MemberKind::User, slot });
        for report in self.users.live_slots(|u| u.manager.as_deref() == Some(id)) {
            self.users.update(report, &mut self.clock, |u| &mut u.manager, |m| *m = None);
        }
        // Owners are not among the properties a device delta serves: losing one moves no tick.
        for device in self.devices.live_slots(|d| d.owner.as_deref() == Some(id)) {
            self.devices.slots[device as usize].value.owner = None;
        }
        let principal = self.users.slots[slot as usize].id;
        self.roles.retain(|r| r.principal != principal);
        self.users.delete(slot, &mut self.clock);
    }

    /// Adds a security group; returns its object id.
    pub fn add_group(&mut self, name: &str) -> String {
        let sid = format!("S-1-12-1-{}", self.ids.next_u64() % 4_000_000_000);
        let group = EntraGroup {
            display_name: name.to_string(),
            description: None,
            mail: None,
            mail_enabled: false,
            mail_nickname: name.to_lowercase().replace(' ', "-"),
            security_enabled: true,
            group_types: Vec::new(),
            visibility: None,
            created: now(),
            security_identifier: sid,
        };
        let id = self.new_id();
        self.groups.add(id, GroupEntry { group, members: BTreeMap::new() }, &mut self.clock)
    }

    pub fn update_group(&mut self, id: &str, change: impl FnOnce(&mut EntraGroup)) {
        let slot = self.group_slot(id);
        self.groups.update(slot, &mut self.clock, |e| &mut e.group, change);
    }

    /// Deletes a group for good; it leaves the groups it was nested in.
    pub fn delete_group(&mut self, id: &str) {
        let slot = self.group_slot(id);
        self.delete_member(Member { kind: MemberKind::Group, slot });
        self.groups.delete(slot, &mut self.clock);
    }

    /// Adds a user, group or device (by object id) to a group; adding a member twice is no change.
    pub fn add_member(&mut self, group: &str, member: &str) {
        let member = self.member(member);
        let slot = self.group_slot(group);
        self.set_membership(slot, member, true);
    }

    pub fn remove_member(&mut self, group: &str, member: &str) {
        let member = self.member(member);
        let slot = self.group_slot(group);
        self.set_membership(slot, member, false);
    }

    fn set_membership(&mut self, group: u32, member: Member, present: bool) {
        let was = self.groups.slots[group as usize].value.members.get(&member).is_some_and(|c| c.present);
        if was == present {
            return;
        }
        let version = self.tick();
        self.groups.slots[group as usize].value.members.insert(member, MemberChange { version, present });
        self.groups.touch(group, version);
    }

    /// Takes a member that is being deleted out of every group.
    fn delete_member(&mut self, member: Member) {
        for group in 0..self.groups.slots.len() as u32 {
            let entry = &self.groups.slots[group as usize];
            if !entry.deleted && entry.value.members.get(&member).is_some_and(|c| c.present) {
                self.set_membership(group, member, false);
            }
        }
    }

    /// Registers a Windows laptop named `name`, owned by the user `owner`; returns its object id.
    pub fn add_device(&mut self, name: &str, owner: Option<&str>) -> String {
        if let Some(owner) = owner {
            self.user_slot(owner);
        }
        let device = EntraDevice {
            device_id: self.new_id().to_string(),
            display_name: name.to_string(),
            account_enabled: true,
            operating_system: "Windows".to_string(),
            operating_system_version: "10.0.22631.3447".to_string(),
            trust_type: "AzureAd".to_string(),
            is_compliant: Some(true),
            is_managed: Some(true),
            manufacturer: Some("Dell Inc.".to_string()),
            model: Some("Latitude 7440".to_string()),
            approximate_last_sign_in: None,
            registered: now(),
            owner: owner.map(str::to_string),
        };
        let id = self.new_id();
        self.devices.add(id, device, &mut self.clock)
    }

    /// Changes a device's properties. Its registered owner is not one of them: Graph's device
    /// delta does not track `registeredOwners`, so a change of owner alone moves no tick.
    pub fn update_device(&mut self, id: &str, change: impl FnOnce(&mut EntraDevice)) {
        let slot = self.device_slot(id);
        let device = &mut self.devices.slots[slot as usize].value;
        let before = EntraDevice { owner: None, ..device.clone() };
        change(device);
        let owner = device.owner.clone();
        let moved = EntraDevice { owner: None, ..device.clone() } != before;
        if let Some(owner) = owner {
            self.user_slot(&owner);
        }
        if moved {
            let version = self.tick();
            self.devices.touch(slot, version);
        }
    }

    /// Makes the user `owner` (or nobody) the device's registered owner, as an admin replacing
    /// it does. Only plain reads see it: no device delta reports it.
    pub fn set_device_owner(&mut self, device: &str, owner: Option<&str>) {
        self.update_device(device, |d| d.owner = owner.map(str::to_string));
    }

    /// Deletes a device for good; it leaves its groups.
    pub fn delete_device(&mut self, id: &str) {
        let slot = self.device_slot(id);
        self.delete_member(Member { kind: MemberKind::Device, slot });
        self.devices.delete(slot, &mut self.clock);
    }

    /// Assigns a built-in directory role (by display name, such as `User Administrator`) to a
    /// user, tenant-wide. Role assignments are not tracked by user delta queries, as in Graph.
    pub fn assign_role(&mut self, user: &str, role: &str) {
        let principal = self.users.slots[self.user_slot(user) as usize].id;
        let role =
            ROLES.iter().position(|(_, name)| *name == role).unwrap_or_else(|| panic!("no role {role}"));
        if !self.roles.iter().any(|r| r.role == role && r.principal == principal) {
            self.roles.push(RoleAssignment { role, principal });
        }
    }

    pub fn remove_role(&mut self, user: &str, role: &str) {
        let principal = self.users.slots[self.user_slot(user) as usize].id;
        self.roles.retain(|r| !(ROLES[r.role].1 == role && r.principal == principal));
    }

    pub fn user(&self, id: &str) -> Option<&EntraUser> {
        self.users.find(id).map(|s| &self.users.slots[s as usize].value)
    }

    /// Live users with their object ids, in creation order.
    pub fn users(&self) -> impl Iterator<Item = (String, &EntraUser)> {
        self.users.live().map(|s| (s.id.to_string(), &s.value))
    }

    pub fn groups(&self) -> impl Iterator<Item = (String, &EntraGroup)> {
        self.groups.live().map(|s| (s.id.to_string(), &s.value.group))
    }

    pub fn devices(&self) -> impl Iterator<Item = (String, &EntraDevice)> {
        self.devices.live().map(|s| (s.id.to_string(), &s.value))
    }

    /// A group's direct members.
    pub fn members(&self, group: &str) -> Vec<(MemberKind, String)> {
        let entry = &self.groups.slots[self.group_slot(group) as usize].value;
        entry
            .members
            .iter()
            .filter(|(_, c)| c.present)
            .map(|(m, _)| (m.kind, self.member_id(*m).to_string()))
            .collect()
    }

    pub fn snapshot(&self) -> EntraSnapshot {
        let users = self.users.render_all(USER_PROPERTIES, user_property);
        let groups = self.groups.render_all(GROUP_PROPERTIES, group_property);
        let devices = self.devices.render_all(DEVICE_PROPERTIES, device_property);
        let memberships = self
            .groups
            .live()
            .flat_map(|s| {
                s.value
                    .members
                    .iter()
                    .filter(|(_, c)| c.present)
                    .map(move |(m, _)| (s.id.to_string(), m.kind, self.member_id(*m).to_string()))
            })
            .collect();
        let managers =
            self.users.live().filter_map(|s| Some((s.id.to_string(), s.value.manager.clone()?))).collect();
        let device_owners =
            self.devices.live().filter_map(|s| Some((s.id.to_string(), s.value.owner.clone()?))).collect();
        let mut admin_roles: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in &self.roles {
            admin_roles.entry(r.principal.to_string()).or_default().insert(ROLES[r.role].1.to_string());
        }
        EntraSnapshot { users, groups, devices, memberships, managers, device_owners, admin_roles }
    }

    /// One page of `GET /v1.0/{users,groups,devices}` (with the given properties), continuing
    /// after a slot.
    pub(crate) fn list(
        &self,
        kind: Kind,
        properties: &[String],
        after: Option<u32>,
        limit: usize,
    ) -> (Vec<Value>, Option<u32>) {
        match kind {
            Kind::Users => self.users.render_page(properties, after, limit, user_property),
            Kind::Groups => self.groups.render_page(properties, after, limit, group_property),
            Kind::Devices => self.devices.render_page(properties, after, limit, device_property),
        }
    }

    /// One page of `GET /v1.0/devices`: the devices named by `ids` (all of them, on one page) or
    /// those after a slot; with `owners` (the owners' properties to serve), each carries its
    /// expanded `registeredOwners`.
    pub(crate) fn list_devices(
        &self,
        properties: &[String],
        owners: Option<&[String]>,
        ids: Option<&[String]>,
        after: Option<u32>,
        limit: usize,
    ) -> (Vec<Value>, Option<u32>) {
        let (slots, next) = match ids {
            Some(ids) => {
                let slots = ids.iter().filter_map(|id| self.devices.find(id));
                (slots.map(|s| &self.devices.slots[s as usize]).collect(), None)
            }
            None => self.devices.page(after, limit),
        };
        let value = slots
            .into_iter()
            .map(|s| {
                let mut json = render(properties, true, |p| device_property(&s.id, &s.value, p));
                if let Some(selected) = owners {
                    let owner = s.value.owner.as_deref().and_then(|id| self.users.find(id));
                    let expanded = owner.map(|slot| {
                        let user = &self.users.slots[slot as usize];
                        let mut json =
                            Map::from_iter([("@odata.type".to_string(), json!("#microsoft.graph.user"))]);
                        json.extend(render(selected, true, |p| user_property(&user.id, &user.value, p)));
                        Value::Object(json)
                    });
                    json.insert("registeredOwners".into(), Value::Array(expanded.into_iter().collect()));
                }
                Value::Object(json)
            })
            .collect();
        (value, next)
    }

    /// The objects of `kind` changed after tick `since` up to tick `until`, by id, and whether
    /// each is deleted: what change notifications tell of.
    pub(crate) fn changed_between(&self, kind: Kind, since: u64, until: u64) -> Vec<(String, bool)> {
        let changed = match kind {
            Kind::Users => self.users.changed_between(since, until),
            Kind::Groups => self.groups.changed_between(since, until),
            Kind::Devices => self.devices.changed_between(since, until),
        };
        changed.into_iter().map(|(id, deleted)| (id.to_string(), deleted)).collect()
    }

    /// How many live objects `GET /v1.0/{users,groups,devices}/$count` counts.
    pub(crate) fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Users => self.users.live().count(),
            Kind::Groups => self.groups.live().count(),
            Kind::Devices => self.devices.live().count(),
        }
    }

    /// Role assignments from `offset`, with their role definition expanded when asked; and the
    /// offset of the next page.
    pub(crate) fn role_assignments(
        &self,
        offset: usize,
        limit: usize,
        expand: bool,
    ) -> (Vec<Value>, Option<usize>) {
        let value = self
            .roles
            .iter()
            .skip(offset)
            .take(limit)
            .map(|r| {
                let (template, name) = ROLES[r.role];
                let mut id_bytes =
                    Uuid::parse_str(template).expect("role templates are GUIDs").as_bytes().to_vec();
                id_bytes.extend_from_slice(r.principal.as_bytes());
                let mut json = json!({
                    "id": format!("{}-1", URL_SAFE_NO_PAD.encode(id_bytes)),
                    "principalId": r.principal.to_string(),
                    "directoryScopeId": "/",
                    "resourceScope": "/",
                    "roleDefinitionId": template,
                });
                if expand {
                    json["roleDefinition"] = json!({
                        "id": template,
                        "templateId": template,
                        "displayName": name,
                        "description": format!("Built-in role: {name}."),
                        "isBuiltIn": true,
                        "isEnabled": true,
                    });
                }
                json
            })
            .collect();
        let next = (offset + limit < self.roles.len()).then_some(offset + limit);
        (value, next)
    }
}

fn standing(user: &EntraUser) -> Standing {
    if user.account_enabled { Standing::Active } else { Standing::Suspended }
}

/// No Entra user holds the fake's credentials (an app registration does), so every user may
/// change.
impl Lifecycle for EntraTenant {
    fn changeable_users(&self) -> Vec<(String, Standing)> {
        self.users().map(|(id, u)| (id, standing(u))).collect()
    }

    fn standing(&self, user: &str) -> Option<Standing> {
        self.user(user).map(standing)
    }

    fn suspend(&mut self, user: &str) {
        self.disable_user(user);
    }

    fn unsuspend(&mut self, user: &str) {
        self.enable_user(user);
    }

    fn hire(&mut self, given: &str, family: &str) -> Option<String> {
        Some(self.add_user(given, family))
    }

    fn rename(&mut self, user: &str, family: &str) {
        self.update_user(user, |u| {
            u.surname = Some(family.to_string());
            u.display_name = format!("{} {family}", u.given_name.as_deref().unwrap_or_default());
        });
    }

    fn group_ids(&self) -> Vec<String> {
        self.groups().map(|(id, _)| id).collect()
    }

    fn groups_of(&self, user: &str) -> Vec<String> {
        let Some(slot) = self.users.find(user) else { return Vec::new() };
        let member = Member { kind: MemberKind::User, slot };
        self.groups
            .live()
            .filter(|s| s.value.members.get(&member).is_some_and(|c| c.present))
            .map(|s| s.id.to_string())
            .collect()
    }

    fn join(&mut self, group: &str, user: &str) {
        self.add_member(group, user);
    }

    fn leave(&mut self, group: &str, user: &str) {
        self.remove_member(group, user);
    }

    fn remove(&mut self, user: &str) {
        self.delete_user(user);
    }
}
