//! An Okta org's users, groups, admin role assignments and enrolled factors, in the Management
//! API's JSON shapes, and the changes a test makes between runs.
//!
//! Every change stamps what Okta stamps: a user's `lastUpdated` moves when its profile or status
//! changes, a group's `lastMembershipUpdated` when a member joins or leaves, so the API's
//! `filter=lastUpdated gt "…"` finds exactly what changed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use crate::admin::{Lifecycle, Standing};
use crate::common::{BASE62, Seeded, Snapshot, fixed_width, millis, now};
use crate::directory::{ADMIN, DelegatedRole, Directory, Factor, NON_ADMIN, Status};

/// An Okta user. Changing one through [`OktaTenant::update_user`] moves its `lastUpdated`.
#[derive(Debug, Clone)]
pub struct OktaUser {
    id: String,
    /// `ACTIVE`, `STAGED`, `PROVISIONED`, `RECOVERY`, `LOCKED_OUT`, `PASSWORD_EXPIRED`,
    /// `SUSPENDED` or `DEPROVISIONED`.
    pub status: &'static str,
    pub created: OffsetDateTime,
    pub activated: Option<OffsetDateTime>,
    pub status_changed: Option<OffsetDateTime>,
    pub last_login: Option<OffsetDateTime>,
    pub last_updated: OffsetDateTime,
    pub password_changed: Option<OffsetDateTime>,
    pub profile: OktaProfile,
    factors: Vec<OktaFactor>,
    roles: Vec<OktaRole>,
}

/// The base profile attributes Okta serves under `profile`.
#[derive(Debug, Clone, Default)]
pub struct OktaProfile {
    pub login: String,
    pub email: String,
    pub second_email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub display_name: Option<String>,
    pub mobile_phone: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub employee_number: Option<String>,
    /// The manager's user id, as orgs that link managers store it.
    pub manager_id: Option<String>,
    /// The manager's name.
    pub manager: Option<String>,
}

/// An Okta group. Changing one through [`OktaTenant::update_group`] moves its `lastUpdated`;
/// members change only through [`OktaTenant::add_member`] and [`OktaTenant::remove_member`].
#[derive(Debug, Clone)]
pub struct OktaGroup {
    id: String,
    /// `OKTA_GROUP`, `APP_GROUP` or `BUILT_IN`.
    pub kind: &'static str,
    pub name: String,
    pub description: Option<String>,
    pub created: OffsetDateTime,
    pub last_updated: OffsetDateTime,
    pub last_membership_updated: OffsetDateTime,
    members: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct OktaFactor {
    id: String,
    factor_type: String,
    provider: &'static str,
    status: &'static str,
    created: OffsetDateTime,
}

#[derive(Debug, Clone)]
struct OktaRole {
    id: String,
    role_type: String,
    created: OffsetDateTime,
}

/// The org: what the fake serves, and what a test changes through [`crate::FakeOkta::mutate`].
pub struct OktaTenant {
    /// Keyed by id: ids sort in creation order, so the id doubles as the `after` cursor.
    users: BTreeMap<String, OktaUser>,
    groups: BTreeMap<String, OktaGroup>,
    /// Users holding at least one role: what `/iam/assignees/users` lists.
    assignees: BTreeSet<String>,
    pub(crate) admin_id: String,
    pub(crate) non_admin_id: String,
    org_id: String,
    mail_domain: String,
    rng: Seeded,
    next_user: u64,
    next_group: u64,
    /// The last time handed to a change, so changes are stamped in the order they were made.
    clock: OffsetDateTime,
}

/// `00u` + 17 characters, like `00ubfjQEMYBLRUWIEDKK`: a sortable counter, then seeded noise.
fn okta_id(prefix: &str, n: u64, rng: &mut Seeded) -> String {
    format!("{prefix}{}{}", fixed_width(n, BASE62, 5), rng.chars(BASE62, 12))
}

/// Okta's factor type for each of the directory's kinds of second factor.
fn factor_type(factor: Factor) -> &'static str {
    match factor {
        Factor::Push => "push",
        Factor::Totp => "token:software:totp",
        Factor::WebAuthn => "webauthn",
        Factor::Sms => "sms",
        Factor::Email => "email",
    }
}

fn provider_of(factor_type: &str) -> &'static str {
    match factor_type {
        "token:software:totp" => "GOOGLE",
        "webauthn" | "u2f" => "FIDO",
        "token:hardware" => "YUBICO",
        _ => "OKTA",
    }
}

fn role_type(role: DelegatedRole) -> &'static str {
    match role {
        DelegatedRole::ReadOnly => "READ_ONLY_ADMIN",
        DelegatedRole::HelpDesk => "HELP_DESK_ADMIN",
        DelegatedRole::UserAdmin => "USER_ADMIN",
        DelegatedRole::GroupMembership => "GROUP_MEMBERSHIP_ADMIN",
    }
}

fn role_label(role_type: &str) -> &str {
    match role_type {
        "SUPER_ADMIN" => "Super Administrator",
        "ORG_ADMIN" => "Organizational Administrator",
        "READ_ONLY_ADMIN" => "Read-only Administrator",
        "HELP_DESK_ADMIN" => "Help Desk Administrator",
        "USER_ADMIN" => "Group Administrator",
        "GROUP_MEMBERSHIP_ADMIN" => "Group Membership Administrator",
        "APP_ADMIN" => "Application Administrator",
        "REPORT_ADMIN" => "Report Administrator",
        other => other,
    }
}

/// The status Okta shows for a person: the directory's lifecycle, plus Okta's own transient
/// states (locked out, password expired, in recovery, provisioned but not activated) for a few
/// active people. The two people whose credentials the fake hands out stay active.
fn okta_status(i: usize, status: Status, rng: &mut Seeded) -> &'static str {
    match status {
        Status::Staged => "STAGED",
        Status::Suspended => "SUSPENDED",
        Status::Deprovisioned => "DEPROVISIONED",
        Status::Active if i == ADMIN || i == NON_ADMIN => "ACTIVE",
        Status::Active => match rng.below(50) {
            0 => "LOCKED_OUT",
            1 => "PASSWORD_EXPIRED",
            2 => "RECOVERY",
            3 => "PROVISIONED",
            _ => "ACTIVE",
        },
    }
}

impl OktaTenant {
    pub(crate) fn from_directory(directory: &Directory, seed: u64, mail_domain: &str) -> Self {
        let mut rng = Seeded::new(seed, "okta");
        let people = &directory.people;
        let org_id = format!("00o{}", rng.chars(BASE62, 17));
        let user_ids: Vec<String> = (0..people.len()).map(|i| okta_id("00u", i as u64, &mut rng)).collect();
        let mut users = BTreeMap::new();
        let mut assignees = BTreeSet::new();
        for (i, p) in people.iter().enumerate() {
            let status = okta_status(i, p.status, &mut rng);
            let activated =
                (!matches!(status, "STAGED" | "PROVISIONED")).then(|| p.created + Duration::minutes(10));
            let status_changed = match status {
                "ACTIVE" | "STAGED" | "PROVISIONED" => activated,
                _ => Some(p.created + Duration::days(30 + rng.below(60) as i64)),
            };
            let profile_updated = p.created + Duration::days(rng.below(90) as i64);
            let login = format!("{}@{mail_domain}", p.handle);
            let email = match &p.okta_email {
                Some(email) => email.clone(),
                None if i % 7 == 3 => capitalized(&login),
                None => login.clone(),
            };
            let second_email = match (i % 5, i % 11) {
                (1, _) => Some(format!("{}@home.example", p.handle)),
                (_, 5) => Some(login.clone()),
                _ => None,
            };
            let profile = OktaProfile {
                second_email,
                first_name: p.given.clone(),
                last_name: p.family.clone(),
                display_name: (i % 9 != 4).then(|| format!("{} {}", p.given, p.family)),
                mobile_phone: (i % 3 == 0).then(|| format!("+1-555-01{:02}", i % 100)),
                department: Some(p.department.to_string()),
                title: Some(p.title.to_string()),
                employee_number: Some(p.employee_number.clone()),
                manager_id: p.manager.map(|m| user_ids[m].clone()),
                manager: p.manager.map(|m| format!("{} {}", people[m].given, people[m].family)),
                login,
                email,
            };
            let enrolled = activated.unwrap_or(p.created) + Duration::days(1);
            let factors = p
                .factors
                .iter()
                .map(|&f| {
                    let factor_type = factor_type(f);
                    OktaFactor {
                        id: format!("{}{}", factor_prefix(factor_type), rng.chars(BASE62, 17)),
                        factor_type: factor_type.to_string(),
                        provider: provider_of(factor_type),
                        status: if f == Factor::Sms && i % 4 == 0 { "PENDING_ACTIVATION" } else { "ACTIVE" },
                        created: enrolled,
                    }
                })
                .collect();
            let role_types =
                p.admin.then_some("SUPER_ADMIN").into_iter().chain(p.delegated_role.map(role_type));
            let roles: Vec<OktaRole> = role_types
                .map(|t| OktaRole {
                    id: format!("ra1{}", rng.chars(BASE62, 17)),
                    role_type: t.to_string(),
                    created: p.created + Duration::days(2),
                })
                .collect();
            if !roles.is_empty() {
                assignees.insert(user_ids[i].clone());
            }
            let user = OktaUser {
                id: user_ids[i].clone(),
                status,
                created: p.created,
                activated,
                status_changed,
                last_login: p.last_login,
                last_updated: status_changed.map_or(profile_updated, |s| s.max(profile_updated)),
                password_changed: activated,
                profile,
                factors,
                roles,
            };
            users.insert(user.id.clone(), user);
        }
        let groups = directory
            .teams
            .iter()
            .enumerate()
            .map(|(t, team)| {
                let group = OktaGroup {
                    id: okta_id("00g", t as u64, &mut rng),
                    kind: "OKTA_GROUP",
                    name: team.name.clone(),
                    description: Some(team.description.clone()),
                    created: team.created,
                    last_updated: team.created,
                    last_membership_updated: team.created + Duration::days(1),
                    members: team.members.iter().map(|&m| user_ids[m].clone()).collect(),
                };
                (group.id.clone(), group)
            })
            .collect();
        Self {
            users,
            groups,
            assignees,
            admin_id: user_ids[ADMIN].clone(),
            non_admin_id: user_ids[NON_ADMIN].clone(),
            org_id,
            mail_domain: mail_domain.to_string(),
            rng,
            next_user: people.len() as u64,
            next_group: directory.teams.len() as u64,
            clock: OffsetDateTime::UNIX_EPOCH,
        }
    }

    pub fn users(&self) -> impl Iterator<Item = &OktaUser> {
        self.users.values()
    }

    pub fn user(&self, id: &str) -> Option<&OktaUser> {
        self.users.get(id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &OktaGroup> {
        self.groups.values()
    }

    pub fn group(&self, id: &str) -> Option<&OktaGroup> {
        self.groups.get(id)
    }

    pub(crate) fn users_by_id(&self) -> &BTreeMap<String, OktaUser> {
        &self.users
    }

    pub(crate) fn groups_by_id(&self) -> &BTreeMap<String, OktaGroup> {
        &self.groups
    }

    pub(crate) fn assignees(&self) -> &BTreeSet<String> {
        &self.assignees
    }

    /// Now, to Okta's millisecond precision, never before the previous change.
    fn stamp(&mut self) -> OffsetDateTime {
        let t = now();
        let t = t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000).expect("millis are in range");
        self.clock = t.max(self.clock);
        self.clock
    }

    fn user_mut(&mut self, id: &str) -> &mut OktaUser {
        self.users.get_mut(id).unwrap_or_else(|| panic!("no user {id} in the fake Okta org"))
    }

    fn group_mut(&mut self, id: &str) -> &mut OktaGroup {
        self.groups.get_mut(id).unwrap_or_else(|| panic!("no group {id} in the fake Okta org"))
    }

    /// Creates an active user `first.last@{mail domain}`; returns its id. Logins are not checked
    /// for uniqueness: give new users distinct names.
    pub fn add_user(&mut self, first_name: &str, last_name: &str) -> String {
        let id = okta_id("00u", self.next_user, &mut self.rng);
        self.next_user += 1;
        let at = self.stamp();
        let login =
            format!("{}.{}@{}", first_name, last_name, self.mail_domain).to_lowercase().replace(' ', "");
        let user = OktaUser {
            id: id.clone(),
            status: "ACTIVE",
            created: at,
            activated: Some(at),
            status_changed: Some(at),
            last_login: None,
            last_updated: at,
            password_changed: Some(at),
            profile: OktaProfile {
                email: login.clone(),
                login,
                first_name: first_name.to_string(),
                last_name: last_name.to_string(),
                display_name: Some(format!("{first_name} {last_name}")),
                ..OktaProfile::default()
            },
            factors: Vec::new(),
            roles: Vec::new(),
        };
        self.users.insert(id.clone(), user);
        id
    }

    /// Applies `change` to the user and moves its `lastUpdated`.
    ///
    /// # Panics
    /// When there is no such user, as every mutation does for an unknown id.
    pub fn update_user(&mut self, id: &str, change: impl FnOnce(&mut OktaUser)) {
        let at = self.stamp();
        let user = self.user_mut(id);
        change(user);
        user.last_updated = at;
    }

    fn set_status(&mut self, id: &str, status: &'static str) {
        let at = self.stamp();
        let user = self.user_mut(id);
        user.status = status;
        user.status_changed = Some(at);
        user.last_updated = at;
    }

    pub fn suspend_user(&mut self, id: &str) {
        self.set_status(id, "SUSPENDED");
    }

    /// Reactivates a suspended user, as Okta's `unsuspend` lifecycle operation does.
    pub fn unsuspend_user(&mut self, id: &str) {
        self.set_status(id, "ACTIVE");
    }

    /// Deactivates the user: Okta keeps it, `DEPROVISIONED`, hidden from the default listing.
    pub fn deprovision_user(&mut self, id: &str) {
        self.set_status(id, "DEPROVISIONED");
    }

    /// Deletes the user for good: it disappears from every list and group, as in Okta (where
    /// only a deprovisioned user can be deleted; the fake does not insist).
    pub fn delete_user(&mut self, id: &str) {
        self.users.remove(id).unwrap_or_else(|| panic!("no user {id} in the fake Okta org"));
        self.assignees.remove(id);
        let at = self.stamp();
        for group in self.groups.values_mut() {
            if group.members.remove(id) {
                group.last_membership_updated = at;
            }
        }
    }

    /// Creates an `OKTA_GROUP` without members; returns its id.
    pub fn add_group(&mut self, name: &str) -> String {
        let id = okta_id("00g", self.next_group, &mut self.rng);
        self.next_group += 1;
        let at = self.stamp();
        let group = OktaGroup {
            id: id.clone(),
            kind: "OKTA_GROUP",
            name: name.to_string(),
            description: None,
            created: at,
            last_updated: at,
            last_membership_updated: at,
            members: BTreeSet::new(),
        };
        self.groups.insert(id.clone(), group);
        id
    }

    /// Applies `change` to the group's profile and moves its `lastUpdated`.
    pub fn update_group(&mut self, id: &str, change: impl FnOnce(&mut OktaGroup)) {
        let at = self.stamp();
        let group = self.group_mut(id);
        change(group);
        group.last_updated = at;
    }

    pub fn delete_group(&mut self, id: &str) {
        self.groups.remove(id).unwrap_or_else(|| panic!("no group {id} in the fake Okta org"));
    }

    pub fn add_member(&mut self, group_id: &str, user_id: &str) {
        assert!(self.users.contains_key(user_id), "no user {user_id} in the fake Okta org");
        let at = self.stamp();
        let group = self.group_mut(group_id);
        if group.members.insert(user_id.to_string()) {
            group.last_membership_updated = at;
        }
    }

    pub fn remove_member(&mut self, group_id: &str, user_id: &str) {
        let at = self.stamp();
        let group = self.group_mut(group_id);
        if group.members.remove(user_id) {
            group.last_membership_updated = at;
        }
    }

    /// Assigns a standard role (`SUPER_ADMIN`, `HELP_DESK_ADMIN`, …) to the user. Like Okta, this
    /// does not move the user's `lastUpdated`.
    pub fn assign_role(&mut self, user_id: &str, role_type: &str) {
        let at = self.stamp();
        let id = format!("ra1{}", self.rng.chars(BASE62, 17));
        self.user_mut(user_id).roles.push(OktaRole { id, role_type: role_type.to_string(), created: at });
        self.assignees.insert(user_id.to_string());
    }

    pub fn unassign_roles(&mut self, user_id: &str) {
        self.user_mut(user_id).roles.clear();
        self.assignees.remove(user_id);
    }

    /// Enrolls an active factor (`push`, `sms`, `webauthn`, `token:software:totp`, …). Like Okta,
    /// this does not move the user's `lastUpdated`.
    pub fn enroll_factor(&mut self, user_id: &str, factor_type: &str) {
        let at = self.stamp();
        let id = format!("{}{}", factor_prefix(factor_type), self.rng.chars(BASE62, 17));
        self.user_mut(user_id).factors.push(OktaFactor {
            id,
            factor_type: factor_type.to_string(),
            provider: provider_of(factor_type),
            status: "ACTIVE",
            created: at,
        });
    }

    pub(crate) fn snapshot(&self, base: &str) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for user in self.users.values() {
            snapshot.users.insert(user.id.clone(), user.to_json(base));
            if !user.roles.is_empty() {
                snapshot.roles.insert(user.id.clone(), user.roles_json(base));
            }
            if !user.factors.is_empty() {
                snapshot.factors.insert(user.id.clone(), user.factors_json(base));
            }
        }
        for group in self.groups.values() {
            snapshot.groups.insert(group.id.clone(), group.to_json(base));
            snapshot.user_members.extend(group.members.iter().map(|m| (group.id.clone(), m.clone())));
        }
        snapshot
    }

    /// `/iam/assignees/users` entry: the user's id and its ORN.
    pub(crate) fn assignee_json(&self, user_id: &str, base: &str) -> Value {
        json!({
            "id": user_id,
            "orn": format!("orn:okta:directory:{}:users:{user_id}", self.org_id),
            "_links": {
                "self": {"href": format!("{base}/api/v1/users/{user_id}")},
                "roles": {"href": format!("{base}/api/v1/users/{user_id}/roles")},
            },
        })
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Factor ids start with a prefix per type in Okta (`opf` push, `mbl` SMS, `fwf` WebAuthn…).
fn factor_prefix(factor_type: &str) -> &'static str {
    match factor_type {
        "push" => "opf",
        "sms" => "mbl",
        "webauthn" => "fwf",
        "email" => "emf",
        _ => "uft",
    }
}

impl OktaUser {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn to_json(&self, base: &str) -> Value {
        let p = &self.profile;
        let mut profile = Map::new();
        profile.insert("firstName".into(), json!(p.first_name));
        profile.insert("lastName".into(), json!(p.last_name));
        profile.insert("mobilePhone".into(), json!(p.mobile_phone));
        profile.insert("secondEmail".into(), json!(p.second_email));
        profile.insert("login".into(), json!(p.login));
        profile.insert("email".into(), json!(p.email));
        // Attributes without a value are left out, as Okta leaves out unset ones.
        for (key, value) in [
            ("displayName", &p.display_name),
            ("department", &p.department),
            ("title", &p.title),
            ("employeeNumber", &p.employee_number),
            ("managerId", &p.manager_id),
            ("manager", &p.manager),
        ] {
            if let Some(value) = value {
                profile.insert(key.into(), json!(value));
            }
        }
        json!({
            "id": self.id,
            "status": self.status,
            "created": millis(self.created),
            "activated": self.activated.map(millis),
            "statusChanged": self.status_changed.map(millis),
            "lastLogin": self.last_login.map(millis),
            "lastUpdated": millis(self.last_updated),
            "passwordChanged": self.password_changed.map(millis),
            "type": {"id": "oty1a2b3c4d5e6f7g8h9"},
            "profile": profile,
            "credentials": {
                "password": {},
                "provider": {"type": "OKTA", "name": "OKTA"},
            },
            "_links": {"self": {"href": format!("{base}/api/v1/users/{}", self.id)}},
        })
    }

    pub(crate) fn roles_json(&self, base: &str) -> Vec<Value> {
        self.roles
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "label": role_label(&r.role_type),
                    "type": r.role_type,
                    "status": "ACTIVE",
                    "created": millis(r.created),
                    "lastUpdated": millis(r.created),
                    "assignmentType": "USER",
                    "_links": {"assignee": {"href": format!("{base}/api/v1/users/{}", self.id)}},
                })
            })
            .collect()
    }

    pub(crate) fn factors_json(&self, base: &str) -> Vec<Value> {
        self.factors
            .iter()
            .map(|f| {
                let profile = match f.factor_type.as_str() {
                    "push" => json!({
                        "credentialId": self.profile.login,
                        "deviceType": "SmartPhone_IPhone",
                        "name": "iPhone",
                        "platform": "IOS",
                        "version": "17.4",
                    }),
                    "sms" | "call" => json!({
                        "phoneNumber": self.profile.mobile_phone.as_deref().unwrap_or("+1-555-0100"),
                    }),
                    "email" => json!({"email": self.profile.email}),
                    "webauthn" => json!({"credentialId": f.id, "authenticatorName": "YubiKey 5 NFC"}),
                    _ => json!({"credentialId": self.profile.login}),
                };
                let href = format!("{base}/api/v1/users/{}/factors/{}", self.id, f.id);
                json!({
                    "id": f.id,
                    "factorType": f.factor_type,
                    "provider": f.provider,
                    "vendorName": f.provider,
                    "status": f.status,
                    "created": millis(f.created),
                    "lastUpdated": millis(f.created),
                    "profile": profile,
                    "_links": {
                        "self": {"href": href},
                        "user": {"href": format!("{base}/api/v1/users/{}", self.id)},
                    },
                })
            })
            .collect()
    }
}

impl OktaGroup {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(String::as_str)
    }

    pub(crate) fn member_ids(&self) -> &BTreeSet<String> {
        &self.members
    }

    pub(crate) fn to_json(&self, base: &str) -> Value {
        json!({
            "id": self.id,
            "created": millis(self.created),
            "lastUpdated": millis(self.last_updated),
            "lastMembershipUpdated": millis(self.last_membership_updated),
            "objectClass": ["okta:user_group"],
            "type": self.kind,
            "profile": {"name": self.name, "description": self.description},
            "_links": {
                "logo": [],
                "users": {"href": format!("{base}/api/v1/groups/{}/users", self.id)},
                "apps": {"href": format!("{base}/api/v1/groups/{}/apps", self.id)},
            },
        })
    }
}

fn standing(status: &str) -> Standing {
    match status {
        "ACTIVE" => Standing::Active,
        "SUSPENDED" => Standing::Suspended,
        _ => Standing::Other,
    }
}

impl Lifecycle for OktaTenant {
    fn changeable_users(&self) -> Vec<(String, Standing)> {
        let holders = [&self.admin_id, &self.non_admin_id];
        self.users
            .values()
            .filter(|u| !holders.contains(&&u.id))
            .map(|u| (u.id.clone(), standing(u.status)))
            .collect()
    }

    fn standing(&self, user: &str) -> Option<Standing> {
        self.users.get(user).map(|u| standing(u.status))
    }

    fn suspend(&mut self, user: &str) {
        self.suspend_user(user);
    }

    fn unsuspend(&mut self, user: &str) {
        self.unsuspend_user(user);
    }

    fn hire(&mut self, given: &str, family: &str) -> Option<String> {
        let login = format!("{given}.{family}@{}", self.mail_domain).to_lowercase().replace(' ', "");
        let taken = self.users.values().any(|u| u.profile.login == login);
        (!taken).then(|| self.add_user(given, family))
    }

    fn rename(&mut self, user: &str, family: &str) {
        self.update_user(user, |u| {
            u.profile.last_name = family.to_string();
            u.profile.display_name = Some(format!("{} {family}", u.profile.first_name));
        });
    }

    fn group_ids(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    fn groups_of(&self, user: &str) -> Vec<String> {
        self.groups.values().filter(|g| g.members.contains(user)).map(|g| g.id.clone()).collect()
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
