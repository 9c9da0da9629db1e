//! The org's objects in the Management API's JSON shapes, with the `_links` Okta writes.

use serde_json::{Map, Value, json};

use super::{OktaGroup, OktaTenant, OktaUser};
use crate::common::{Snapshot, millis};

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

impl OktaTenant {
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

impl OktaUser {
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
