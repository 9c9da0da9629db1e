//! An Okta org's users, groups, admin role assignments and enrolled factors, in the Management
//! API's JSON shapes, and the changes a test makes between runs.
//!
//! Every change stamps what Okta stamps: a user's `lastUpdated` moves when its profile or status
//! changes, a group's `lastMembershipUpdated` when a member joins or leaves, so the API's
//! `filter=lastUpdated gt "…"` finds exactly what changed. `generate.rs` builds an org from the
//! shared directory; `json.rs` writes its objects as the API does.

#[path = "generate.rs"]
mod generate;
#[path = "json.rs"]
mod json;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use time::OffsetDateTime;

use crate::admin::{Lifecycle, Standing};
use crate::common::{BASE62, Seeded, fixed_width, now};
use crate::directory::Factor;

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
    /// System Log events of the changes made since the event hooks last took them; the oldest
    /// go first past [`LOG_KEPT`], as nothing takes them while no hook is registered.
    log: VecDeque<LogEvent>,
    /// How many events were ever logged: the next one's [`LogEvent::seq`].
    logged: u64,
}

/// System Log events kept for the event hooks.
const LOG_KEPT: usize = 10_000;

/// A System Log event about a change, as event hooks deliver them.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// Its place in the log, so a hook verified after it was logged is never sent it.
    pub seq: u64,
    pub uuid: String,
    pub published: OffsetDateTime,
    /// `user.lifecycle.suspend`, `group.user_membership.add`, …
    pub event_type: &'static str,
    pub display_message: &'static str,
    /// `(id, type, alternateId, displayName)` of each target: `User`, `UserGroup`.
    pub targets: Vec<(String, &'static str, String, String)>,
}

impl LogEvent {
    /// The event as the System Log and event hooks serve it.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let targets: Vec<serde_json::Value> = self
            .targets
            .iter()
            .map(|(id, kind, alternate, display)| {
                serde_json::json!({"id": id, "type": kind, "alternateId": alternate, "displayName": display, "detailEntry": null})
            })
            .collect();
        serde_json::json!({
            "uuid": self.uuid,
            "published": crate::common::millis(self.published),
            "eventType": self.event_type,
            "version": "0",
            "displayMessage": self.display_message,
            "severity": "INFO",
            "legacyEventType": null,
            "actor": {"id": "00u00000000000000000", "type": "User", "alternateId": "admin", "displayName": "Admin"},
            "outcome": {"result": "SUCCESS", "reason": null},
            "target": targets,
        })
    }
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

impl OktaTenant {
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

    /// The [`LogEvent::seq`] the next event will have.
    pub(crate) fn logged(&self) -> u64 {
        self.logged
    }

    /// Takes the System Log events of the changes made since the last call.
    pub(crate) fn take_log(&mut self) -> Vec<LogEvent> {
        std::mem::take(&mut self.log).into()
    }

    /// Logs a change made now to the user `id` (and the group, for a membership).
    fn log_user(
        &mut self,
        event_type: &'static str,
        display_message: &'static str,
        id: &str,
        group: Option<&str>,
    ) {
        let Some(user) = self.users.get(id) else { return };
        let mut targets = vec![(
            id.to_string(),
            "User",
            user.profile.login.clone(),
            format!("{} {}", user.profile.first_name, user.profile.last_name),
        )];
        if let Some(group) = group.and_then(|g| self.groups.get(g)) {
            targets.push((group.id.clone(), "UserGroup", group.name.clone(), group.name.clone()));
        }
        self.log_event(event_type, display_message, targets);
    }

    fn log_event(
        &mut self,
        event_type: &'static str,
        display_message: &'static str,
        targets: Vec<(String, &'static str, String, String)>,
    ) {
        let uuid =
            uuid::Uuid::from_u128(self.rng.next_u64() as u128 | (u128::from(self.rng.next_u64()) << 64));
        let published = self.stamp();
        if self.log.len() == LOG_KEPT {
            self.log.pop_front();
        }
        let seq = self.logged;
        self.logged += 1;
        self.log.push_back(LogEvent {
            seq,
            uuid: uuid.to_string(),
            published,
            event_type,
            display_message,
            targets,
        });
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
        self.log_user("user.lifecycle.create", "Create Okta user", &id, None);
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
        self.log_user("user.account.update_profile", "Update user profile for Okta", id, None);
    }

    fn set_status(&mut self, id: &str, status: &'static str) {
        let at = self.stamp();
        let user = self.user_mut(id);
        user.status = status;
        user.status_changed = Some(at);
        user.last_updated = at;
        let (event, message) = match status {
            "SUSPENDED" => ("user.lifecycle.suspend", "Suspend Okta user"),
            "DEPROVISIONED" => ("user.lifecycle.deactivate", "Deactivate Okta user"),
            _ => ("user.lifecycle.unsuspend", "Unsuspend Okta user"),
        };
        self.log_user(event, message, id, None);
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
        self.log_user("user.lifecycle.delete.initiated", "Delete Okta user", id, None);
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
            self.log_user(
                "group.user_membership.add",
                "Add user to group membership",
                user_id,
                Some(group_id),
            );
        }
    }

    pub fn remove_member(&mut self, group_id: &str, user_id: &str) {
        let at = self.stamp();
        let group = self.group_mut(group_id);
        if group.members.remove(user_id) {
            group.last_membership_updated = at;
            self.log_user(
                "group.user_membership.remove",
                "Remove user from group membership",
                user_id,
                Some(group_id),
            );
        }
    }

    /// Assigns a standard role (`SUPER_ADMIN`, `HELP_DESK_ADMIN`, …) to the user. Like Okta, this
    /// does not move the user's `lastUpdated`.
    pub fn assign_role(&mut self, user_id: &str, role_type: &str) {
        let at = self.stamp();
        let id = format!("ra1{}", self.rng.chars(BASE62, 17));
        self.user_mut(user_id).roles.push(OktaRole { id, role_type: role_type.to_string(), created: at });
        self.assignees.insert(user_id.to_string());
        self.log_user("user.account.privilege.grant", "Grant user privilege", user_id, None);
    }

    pub fn unassign_roles(&mut self, user_id: &str) {
        self.user_mut(user_id).roles.clear();
        self.assignees.remove(user_id);
        self.log_user("user.account.privilege.revoke", "Revoke user privilege", user_id, None);
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
