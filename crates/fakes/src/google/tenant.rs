//! A Google Workspace account's users, groups and group members, in the Directory API's JSON
//! shapes, and the changes a test makes between runs.
//!
//! Google has no change feed to list: every change moves the object's `etag`, and a change to a
//! user is also noted with its Directory push event (`add`, `delete`, `makeAdmin`, `undelete`,
//! `update`), for the `users.watch` channels to deliver.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::admin::{Lifecycle, Standing};
use crate::common::{BASE62, DIGITS, Seeded, Snapshot, fixed_width, millis, now};
use crate::directory::{ADMIN, Directory, MAIL_DOMAIN, NON_ADMIN, Status};

/// A Workspace user. Changing one through [`GoogleTenant::update_user`] moves its `etag`.
#[derive(Debug, Clone)]
pub struct GoogleUser {
    id: String,
    pub primary_email: String,
    pub given_name: String,
    pub family_name: String,
    /// A super admin.
    pub is_admin: bool,
    /// An admin with a limited (delegated) role.
    pub is_delegated_admin: bool,
    pub suspended: bool,
    pub archived: bool,
    pub enrolled_in_2sv: bool,
    pub enforced_in_2sv: bool,
    pub creation_time: OffsetDateTime,
    pub last_login_time: Option<OffsetDateTime>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub employee_id: Option<String>,
    /// The manager's primary email: Google links managers by email, in `relations`.
    pub manager_email: Option<String>,
    /// Other addresses that deliver to the user (secondary domains).
    pub aliases: Vec<String>,
    pub phone: Option<String>,
    pub org_unit_path: String,
    version: u64,
}

/// A Workspace group. Changing one through [`GoogleTenant::update_group`] moves its `etag`.
#[derive(Debug, Clone)]
pub struct GoogleGroup {
    id: String,
    pub email: String,
    pub name: String,
    pub description: String,
    members: BTreeMap<String, Member>,
    version: u64,
}

/// What a group member is, as `members.list` names it in `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberKind {
    User,
    Group,
    /// Everyone in the account; the member's id is the customer id.
    Customer,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    kind: MemberKind,
    role: &'static str,
}

/// What users and groups share: an id, a primary address, and an `etag` that every change moves.
trait Addressable {
    /// `user` or `group`, for the panic of a test that names an unknown one.
    const KIND: &str;
    fn key(&self) -> &str;
    fn address(&self) -> &str;
    fn version_mut(&mut self) -> &mut u64;
}

impl Addressable for GoogleUser {
    const KIND: &str = "user";
    fn key(&self) -> &str {
        &self.id
    }
    fn address(&self) -> &str {
        &self.primary_email
    }
    fn version_mut(&mut self) -> &mut u64 {
        &mut self.version
    }
}

impl Addressable for GoogleGroup {
    const KIND: &str = "group";
    fn key(&self) -> &str {
        &self.id
    }
    fn address(&self) -> &str {
        &self.email
    }
    fn version_mut(&mut self) -> &mut u64 {
        &mut self.version
    }
}

/// Every mutation panics for an unknown id, as a test would want.
fn unknown<T: Addressable>(id: &str) -> ! {
    panic!("no {} {id} in the fake Workspace account", T::KIND)
}

/// Users or groups by id, and by lowercase primary address, so a token's subject or a
/// `groupKey` is found without a scan.
struct Addressed<T> {
    /// Keyed by id: numeric ids of one width sort in creation order, and serve as page cursors.
    by_id: BTreeMap<String, T>,
    by_address: HashMap<String, String>,
}

impl<T: Addressable> Addressed<T> {
    fn new(by_id: BTreeMap<String, T>) -> Self {
        let by_address = by_id.values().map(|e| (e.address().to_lowercase(), e.key().to_string())).collect();
        Self { by_id, by_address }
    }

    fn by_address(&self, address: &str) -> Option<&T> {
        self.by_address.get(&address.to_lowercase()).and_then(|id| self.by_id.get(id))
    }

    fn get_mut(&mut self, id: &str) -> &mut T {
        self.by_id.get_mut(id).unwrap_or_else(|| unknown::<T>(id))
    }

    /// Adds an entity; returns its id.
    fn insert(&mut self, entity: T) -> String {
        let id = entity.key().to_string();
        self.by_address.insert(entity.address().to_lowercase(), id.clone());
        self.by_id.insert(id.clone(), entity);
        id
    }

    /// Applies `change` to the entity and moves its `etag`; the index follows a new address.
    fn update(&mut self, id: &str, change: impl FnOnce(&mut T)) {
        let entity = self.get_mut(id);
        let before = entity.address().to_lowercase();
        change(entity);
        *entity.version_mut() += 1;
        let after = entity.address().to_lowercase();
        if before != after {
            self.by_address.remove(&before);
            self.by_address.insert(after, id.to_string());
        }
    }

    fn remove(&mut self, id: &str) -> T {
        let entity = self.by_id.remove(id).unwrap_or_else(|| unknown::<T>(id));
        self.by_address.remove(&entity.address().to_lowercase());
        entity
    }
}

/// The account: what the fake serves, and what a test changes through
/// [`crate::FakeGoogle::mutate`].
pub struct GoogleTenant {
    pub(crate) customer_id: String,
    pub(crate) domain: String,
    users: Addressed<GoogleUser>,
    /// Deleted users, listed only with `showDeleted=true`, and when each was deleted.
    deleted: BTreeMap<String, (GoogleUser, OffsetDateTime)>,
    groups: Addressed<GoogleGroup>,
    pub(crate) admin_email: String,
    pub(crate) non_admin_email: String,
    rng: Seeded,
    next_user: u64,
    next_group: u64,
    changes: Changes,
}

/// The users' changes by the tenant's clock, each user's last change of each event only, so it
/// stays as large as the account however long it runs.
#[derive(Default)]
struct Changes {
    clock: u64,
    log: BTreeMap<u64, (String, &'static str)>,
    last: HashMap<(String, &'static str), u64>,
}

impl Changes {
    fn note(&mut self, user: &str, event: &'static str) {
        self.clock += 1;
        if let Some(before) = self.last.insert((user.to_string(), event), self.clock) {
            self.log.remove(&before);
        }
        self.log.insert(self.clock, (user.to_string(), event));
    }
}

fn user_id(n: u64, rng: &mut Seeded) -> String {
    format!("1{}{}", fixed_width(n, DIGITS, 8), rng.chars(DIGITS, 12))
}

fn group_id(n: u64, rng: &mut Seeded) -> String {
    format!("0{}{}", fixed_width(n, DIGITS, 4), rng.chars(b"0123456789abcdefghijklmnopqrstuvwxyz", 10))
}

impl GoogleTenant {
    pub(crate) fn from_directory(directory: &Directory, seed: u64, domain: &str) -> Self {
        let mut rng = Seeded::new(seed, "google");
        let customer_id = format!("C0{}", rng.chars(BASE62, 7));
        let people = &directory.people;
        let email = |i: usize| format!("{}@{domain}", people[i].handle);
        let user_ids: Vec<String> = (0..people.len()).map(|i| user_id(i as u64, &mut rng)).collect();
        let users: BTreeMap<String, GoogleUser> = people
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let user = GoogleUser {
                    id: user_ids[i].clone(),
                    primary_email: email(i),
                    given_name: p.given.clone(),
                    family_name: p.family.clone(),
                    is_admin: p.admin,
                    is_delegated_admin: p.delegated_role.is_some(),
                    suspended: p.status == Status::Suspended,
                    // Google has no deprovisioned state; archiving is how leavers are kept.
                    archived: p.status == Status::Deprovisioned,
                    enrolled_in_2sv: !p.factors.is_empty(),
                    enforced_in_2sv: p.admin,
                    creation_time: p.created,
                    last_login_time: p.last_login,
                    department: Some(p.department.to_string()),
                    title: Some(p.title.to_string()),
                    // Every fifth person is known to Google by address only: no employee id,
                    // and their address in the organisation's own domain as an alias.
                    employee_id: (i % 5 != 2).then(|| p.employee_number.clone()),
                    manager_email: p.manager.map(email),
                    aliases: (i % 6 == 1)
                        .then(|| format!("{}@example.net", p.handle))
                        .into_iter()
                        .chain((i % 5 == 2).then(|| format!("{}@{MAIL_DOMAIN}", p.handle)))
                        .chain(p.aliases.iter().cloned())
                        .collect(),
                    phone: (i % 3 == 0).then(|| format!("+1 555-01{:02}", i % 100)),
                    org_unit_path: format!("/{}", p.department),
                    version: 1,
                };
                (user.id.clone(), user)
            })
            .collect();
        let group_ids: Vec<String> =
            (0..directory.teams.len()).map(|t| group_id(t as u64, &mut rng)).collect();
        let last = directory.teams.len().checked_sub(1).filter(|&l| l > 0);
        let groups: BTreeMap<String, GoogleGroup> = directory
            .teams
            .iter()
            .enumerate()
            .map(|(t, team)| {
                let mut members: BTreeMap<String, Member> = team
                    .members
                    .iter()
                    .enumerate()
                    .map(|(k, &m)| {
                        let role = if k == 0 { "OWNER" } else { "MEMBER" };
                        (user_ids[m].clone(), Member { kind: MemberKind::User, role })
                    })
                    .collect();
                for &sub in &team.subteams {
                    members
                        .insert(group_ids[sub].clone(), Member { kind: MemberKind::Group, role: "MEMBER" });
                }
                // One group is addressed to the whole account, as "everyone" lists often are.
                if Some(t) == last {
                    members
                        .insert(customer_id.clone(), Member { kind: MemberKind::Customer, role: "MEMBER" });
                }
                let group = GoogleGroup {
                    id: group_ids[t].clone(),
                    email: format!("{}@{domain}", team.name.to_lowercase().replace(' ', "-")),
                    name: team.name.clone(),
                    description: team.description.clone(),
                    members,
                    version: 1,
                };
                (group.id.clone(), group)
            })
            .collect();
        Self {
            customer_id,
            domain: domain.to_string(),
            users: Addressed::new(users),
            deleted: BTreeMap::new(),
            groups: Addressed::new(groups),
            admin_email: email(ADMIN),
            non_admin_email: email(NON_ADMIN),
            rng,
            next_user: people.len() as u64,
            next_group: directory.teams.len() as u64,
            changes: Changes::default(),
        }
    }

    /// The tenant's clock: it moves with every change to a user.
    pub(crate) fn clock(&self) -> u64 {
        self.changes.clock
    }

    /// The users changed after `since` up to `until` with `event`, in the order of their last
    /// such change.
    pub(crate) fn changed_between(&self, event: &str, since: u64, until: u64) -> Vec<String> {
        let changed = self.changes.log.range(since + 1..=until);
        changed.filter(|(_, (_, e))| *e == event).map(|(_, (user, _))| user.clone()).collect()
    }

    /// The user as `users.get` would have shown it, or as a deleted user, for a notification's
    /// body.
    pub(crate) fn user_json(&self, id: &str) -> Option<Value> {
        match self.users.by_id.get(id) {
            Some(user) => Some(user.to_json(&self.customer_id, &self.domain, None)),
            None => {
                let (user, at) = self.deleted.get(id)?;
                Some(user.to_json(&self.customer_id, &self.domain, Some(*at)))
            }
        }
    }

    pub fn users(&self) -> impl Iterator<Item = &GoogleUser> {
        self.users.by_id.values()
    }

    pub fn user(&self, id: &str) -> Option<&GoogleUser> {
        self.users.by_id.get(id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &GoogleGroup> {
        self.groups.by_id.values()
    }

    pub fn group(&self, id: &str) -> Option<&GoogleGroup> {
        self.groups.by_id.get(id)
    }

    pub(crate) fn users_by_id(&self) -> &BTreeMap<String, GoogleUser> {
        &self.users.by_id
    }

    pub(crate) fn deleted_users(&self) -> &BTreeMap<String, (GoogleUser, OffsetDateTime)> {
        &self.deleted
    }

    pub(crate) fn groups_by_id(&self) -> &BTreeMap<String, GoogleGroup> {
        &self.groups.by_id
    }

    pub(crate) fn user_by_email(&self, email: &str) -> Option<&GoogleUser> {
        self.users.by_address(email)
    }

    /// A group by its `groupKey`: the id or the email address.
    pub(crate) fn group_by_key(&self, key: &str) -> Option<&GoogleGroup> {
        self.groups.by_id.get(key).or_else(|| self.groups.by_address(key))
    }

    /// Creates an active user `given.family@{domain}`; returns its id.
    pub fn add_user(&mut self, given_name: &str, family_name: &str) -> String {
        let id = user_id(self.next_user, &mut self.rng);
        self.next_user += 1;
        let email = format!("{given_name}.{family_name}@{}", self.domain).to_lowercase().replace(' ', "");
        let user = GoogleUser {
            id,
            primary_email: email,
            given_name: given_name.to_string(),
            family_name: family_name.to_string(),
            is_admin: false,
            is_delegated_admin: false,
            suspended: false,
            archived: false,
            enrolled_in_2sv: false,
            enforced_in_2sv: false,
            creation_time: now(),
            last_login_time: None,
            department: None,
            title: None,
            employee_id: None,
            manager_email: None,
            aliases: Vec::new(),
            phone: None,
            org_unit_path: "/".to_string(),
            version: 1,
        };
        let id = self.users.insert(user);
        self.changes.note(&id, "add");
        id
    }

    /// Applies `change` to the user and moves its `etag`.
    ///
    /// # Panics
    /// When there is no such user, as every mutation does for an unknown id.
    pub fn update_user(&mut self, id: &str, change: impl FnOnce(&mut GoogleUser)) {
        let was_admin = self.users.get_mut(id).is_admin;
        self.users.update(id, change);
        let event = if self.users.get_mut(id).is_admin != was_admin { "makeAdmin" } else { "update" };
        self.changes.note(id, event);
    }

    pub fn suspend_user(&mut self, id: &str) {
        self.update_user(id, |u| u.suspended = true);
    }

    pub fn unsuspend_user(&mut self, id: &str) {
        self.update_user(id, |u| u.suspended = false);
    }

    /// Archives the user: Google's state for leavers whose data is kept.
    pub fn deprovision_user(&mut self, id: &str) {
        self.update_user(id, |u| u.archived = true);
    }

    /// Deletes the user: it leaves every group and the normal listing, and appears only with
    /// `showDeleted=true`.
    pub fn delete_user(&mut self, id: &str) {
        let user = self.users.remove(id);
        self.leave_every_group(id);
        self.deleted.insert(id.to_string(), (user, now()));
        self.changes.note(id, "delete");
    }

    /// Restores a deleted user (within Google's 20 days), with the groups it had left left.
    ///
    /// # Panics
    /// When no user of that id was deleted.
    pub fn undelete_user(&mut self, id: &str) {
        let (user, _) = self.deleted.remove(id).unwrap_or_else(|| unknown::<GoogleUser>(id));
        self.users.insert(user);
        self.changes.note(id, "undelete");
    }

    fn leave_every_group(&mut self, member_id: &str) {
        for group in self.groups.by_id.values_mut() {
            if group.members.remove(member_id).is_some() {
                group.version += 1;
            }
        }
    }

    /// Creates a group `name@{domain}` without members; returns its id.
    pub fn add_group(&mut self, name: &str) -> String {
        let id = group_id(self.next_group, &mut self.rng);
        self.next_group += 1;
        let email = format!("{}@{}", name.to_lowercase().replace(' ', "-"), self.domain);
        let group = GoogleGroup {
            id,
            email,
            name: name.to_string(),
            description: String::new(),
            members: BTreeMap::new(),
            version: 1,
        };
        self.groups.insert(group)
    }

    /// Applies `change` to the group and moves its `etag`.
    pub fn update_group(&mut self, id: &str, change: impl FnOnce(&mut GoogleGroup)) {
        self.groups.update(id, change);
    }

    /// Deletes the group; it also leaves the groups it was nested in.
    pub fn delete_group(&mut self, id: &str) {
        self.groups.remove(id);
        self.leave_every_group(id);
    }

    /// Adds a user or a group (by id) as a `MEMBER` of the group.
    pub fn add_member(&mut self, group_id: &str, member_id: &str) {
        let kind = if self.users.by_id.contains_key(member_id) {
            MemberKind::User
        } else if self.groups.by_id.contains_key(member_id) {
            MemberKind::Group
        } else {
            panic!("no user or group {member_id} in the fake Workspace account")
        };
        let group = self.groups.get_mut(group_id);
        group.members.insert(member_id.to_string(), Member { kind, role: "MEMBER" });
        group.version += 1;
    }

    pub fn remove_member(&mut self, group_id: &str, member_id: &str) {
        let group = self.groups.get_mut(group_id);
        if group.members.remove(member_id).is_some() {
            group.version += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for user in self.users.by_id.values() {
            snapshot.users.insert(user.id.clone(), user.to_json(&self.customer_id, &self.domain, None));
        }
        for group in self.groups.by_id.values() {
            snapshot.groups.insert(group.id.clone(), group.to_json(&self.domain));
            for (id, member) in &group.members {
                let pair = (group.id.clone(), id.clone());
                match member.kind {
                    MemberKind::User => snapshot.user_members.insert(pair),
                    MemberKind::Group => snapshot.group_members.insert(pair),
                    MemberKind::Customer => false,
                };
            }
        }
        snapshot
    }

    /// A `members.list` entry.
    pub(crate) fn member_json(&self, group: &GoogleGroup, member_id: &str, member: Member) -> Value {
        let etag = format!("\"{}/{member_id}-{}\"", group.id, group.version);
        let mut json = json!({
            "kind": "admin#directory#member",
            "etag": etag,
            "id": member_id,
            "role": member.role,
        });
        match member.kind {
            MemberKind::User => {
                if let Some(user) = self.users.by_id.get(member_id) {
                    json["email"] = json!(user.primary_email);
                    json["status"] = json!(if user.suspended { "SUSPENDED" } else { "ACTIVE" });
                }
                json["type"] = json!("USER");
            }
            MemberKind::Group => {
                if let Some(nested) = self.groups.by_id.get(member_id) {
                    json["email"] = json!(nested.email);
                }
                json["type"] = json!("GROUP");
                json["status"] = json!("ACTIVE");
            }
            MemberKind::Customer => json["type"] = json!("CUSTOMER"),
        }
        json
    }
}

impl GoogleUser {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The user as `users.list` serves it with `projection=full`; `deleted` adds `deletionTime`
    /// for `showDeleted=true`.
    pub(crate) fn to_json(&self, customer_id: &str, domain: &str, deleted: Option<OffsetDateTime>) -> Value {
        let mut json = Map::new();
        let mut put = |key: &str, value: Value| {
            json.insert(key.to_string(), value);
        };
        put("kind", json!("admin#directory#user"));
        put("id", json!(self.id));
        put("etag", json!(format!("\"{}-{}\"", self.id, self.version)));
        put("primaryEmail", json!(self.primary_email));
        put(
            "name",
            json!({
                "givenName": self.given_name,
                "familyName": self.family_name,
                "fullName": format!("{} {}", self.given_name, self.family_name),
            }),
        );
        put("isAdmin", json!(self.is_admin));
        put("isDelegatedAdmin", json!(self.is_delegated_admin));
        // Google writes the epoch for "never signed in".
        put(
            "lastLoginTime",
            json!(self.last_login_time.map_or_else(|| "1970-01-01T00:00:00.000Z".to_string(), millis)),
        );
        put("creationTime", json!(millis(self.creation_time)));
        if let Some(at) = deleted {
            put("deletionTime", json!(millis(at)));
        }
        put("agreedToTerms", json!(true));
        put("suspended", json!(self.suspended));
        if self.suspended {
            put("suspensionReason", json!("ADMIN"));
        }
        put("archived", json!(self.archived));
        put("changePasswordAtNextLogin", json!(false));
        put("ipWhitelisted", json!(false));
        let mut emails = vec![json!({"address": self.primary_email, "primary": true})];
        emails.extend(self.aliases.iter().map(|a| json!({"address": a})));
        put("emails", Value::Array(emails));
        if !self.aliases.is_empty() {
            put("aliases", json!(self.aliases));
        }
        let local = self.primary_email.split('@').next().unwrap_or_default();
        put("nonEditableAliases", json!([format!("{local}@{domain}.test-google-a.com")]));
        if let Some(phone) = &self.phone {
            put("phones", json!([{"value": phone, "type": "work"}]));
        }
        if self.title.is_some() || self.department.is_some() {
            let mut organization = json!({"primary": true, "customType": ""});
            if let Some(title) = &self.title {
                organization["title"] = json!(title);
            }
            if let Some(department) = &self.department {
                organization["department"] = json!(department);
            }
            put("organizations", json!([organization]));
        }
        if let Some(manager) = &self.manager_email {
            put("relations", json!([{"value": manager, "type": "manager"}]));
        }
        if let Some(employee_id) = &self.employee_id {
            put("externalIds", json!([{"value": employee_id, "type": "organization"}]));
        }
        put("customerId", json!(customer_id));
        put("orgUnitPath", json!(self.org_unit_path));
        put("isMailboxSetup", json!(true));
        put("isEnrolledIn2Sv", json!(self.enrolled_in_2sv));
        put("isEnforcedIn2Sv", json!(self.enforced_in_2sv));
        put("includeInGlobalAddressList", json!(true));
        Value::Object(json)
    }
}

impl GoogleGroup {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Member ids with their `type` (`USER`, `GROUP` or `CUSTOMER`).
    pub fn members(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.members.iter().map(|(id, m)| {
            let kind = match m.kind {
                MemberKind::User => "USER",
                MemberKind::Group => "GROUP",
                MemberKind::Customer => "CUSTOMER",
            };
            (id.as_str(), kind)
        })
    }

    pub(crate) fn member_map(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    pub(crate) fn to_json(&self, domain: &str) -> Value {
        let local = self.email.split('@').next().unwrap_or_default();
        json!({
            "kind": "admin#directory#group",
            "id": self.id,
            "etag": format!("\"{}-{}\"", self.id, self.version),
            "email": self.email,
            "name": self.name,
            "directMembersCount": self.members.len().to_string(),
            "description": self.description,
            "adminCreated": true,
            "nonEditableAliases": [format!("{local}@{domain}.test-google-a.com")],
        })
    }
}

fn standing(user: &GoogleUser) -> Standing {
    match (user.suspended, user.archived) {
        (_, true) => Standing::Other,
        (true, false) => Standing::Suspended,
        (false, false) => Standing::Active,
    }
}

impl Lifecycle for GoogleTenant {
    fn changeable_users(&self) -> Vec<(String, Standing)> {
        let holders = [&self.admin_email, &self.non_admin_email];
        self.users
            .by_id
            .values()
            .filter(|u| !holders.contains(&&u.primary_email))
            .map(|u| (u.id.clone(), standing(u)))
            .collect()
    }

    fn standing(&self, user: &str) -> Option<Standing> {
        self.users.by_id.get(user).map(standing)
    }

    fn suspend(&mut self, user: &str) {
        self.suspend_user(user);
    }

    fn unsuspend(&mut self, user: &str) {
        self.unsuspend_user(user);
    }

    fn hire(&mut self, given: &str, family: &str) -> Option<String> {
        let email = format!("{given}.{family}@{}", self.domain).to_lowercase().replace(' ', "");
        self.users.by_address(&email).is_none().then(|| self.add_user(given, family))
    }

    fn rename(&mut self, user: &str, family: &str) {
        self.update_user(user, |u| u.family_name = family.to_string());
    }

    fn group_ids(&self) -> Vec<String> {
        self.groups.by_id.keys().cloned().collect()
    }

    fn groups_of(&self, user: &str) -> Vec<String> {
        self.groups.by_id.values().filter(|g| g.members.contains_key(user)).map(|g| g.id.clone()).collect()
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
