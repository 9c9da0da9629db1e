//! An Okta org's users and groups, in the Management API's JSON shapes.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::common::{BASE62, Seeded, fixed_width, millis};
use crate::directory::{ADMIN, Directory, NON_ADMIN, Status};

#[derive(Debug, Clone)]
pub(crate) struct OktaUser {
    pub id: String,
    pub status: &'static str,
    pub created: OffsetDateTime,
    pub activated: Option<OffsetDateTime>,
    pub last_login: Option<OffsetDateTime>,
    pub last_updated: OffsetDateTime,
    pub first_name: String,
    pub last_name: String,
    pub login: String,
    pub department: &'static str,
    pub title: &'static str,
    pub employee_number: String,
}

#[derive(Debug, Clone)]
pub(crate) struct OktaGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created: OffsetDateTime,
    pub last_membership_updated: OffsetDateTime,
    pub members: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct OktaTenant {
    /// Keyed by id: ids sort in creation order, so the id doubles as the `after` cursor.
    pub users: BTreeMap<String, OktaUser>,
    pub groups: BTreeMap<String, OktaGroup>,
    pub admin_id: String,
    pub non_admin_id: String,
}

/// `00u` + 17 characters, like `00ubfjQEMYBLRUWIEDKK`: a sortable counter, then seeded noise.
fn okta_id(prefix: &str, n: usize, rng: &mut Seeded) -> String {
    format!("{prefix}{}{}", fixed_width(n as u64, BASE62, 5), rng.chars(BASE62, 12))
}

impl OktaTenant {
    pub(crate) fn from_directory(directory: &Directory, seed: u64, mail_domain: &str) -> Self {
        let mut rng = Seeded::new(seed, "okta");
        let user_ids: Vec<String> =
            (0..directory.people.len()).map(|i| okta_id("00u", i, &mut rng)).collect();
        let users = directory
            .people
            .iter()
            .zip(&user_ids)
            .map(|(p, id)| {
                let status = match p.status {
                    Status::Active => "ACTIVE",
                    Status::Staged => "STAGED",
                    Status::Suspended => "SUSPENDED",
                    Status::Deprovisioned => "DEPROVISIONED",
                };
                let user = OktaUser {
                    id: id.clone(),
                    status,
                    created: p.created,
                    activated: (p.status != Status::Staged).then_some(p.created),
                    last_login: p.last_login,
                    last_updated: p.last_login.unwrap_or(p.created),
                    first_name: p.given.clone(),
                    last_name: p.family.clone(),
                    login: format!("{}@{mail_domain}", p.handle),
                    department: p.department,
                    title: p.title,
                    employee_number: p.employee_number.clone(),
                };
                (id.clone(), user)
            })
            .collect();
        let groups = directory
            .teams
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let id = okta_id("00g", i, &mut rng);
                let group = OktaGroup {
                    id: id.clone(),
                    name: t.name.clone(),
                    description: t.description.clone(),
                    created: t.created,
                    last_membership_updated: t.created,
                    members: t.members.iter().map(|&m| user_ids[m].clone()).collect(),
                };
                (id, group)
            })
            .collect();
        Self { users, groups, admin_id: user_ids[ADMIN].clone(), non_admin_id: user_ids[NON_ADMIN].clone() }
    }
}

impl OktaUser {
    pub(crate) fn to_json(&self, base: &str) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "created": millis(self.created),
            "activated": self.activated.map(millis),
            "statusChanged": self.activated.map(millis),
            "lastLogin": self.last_login.map(millis),
            "lastUpdated": millis(self.last_updated),
            "passwordChanged": self.activated.map(millis),
            "type": {"id": "oty1a2b3c4d5e6f7g8h9"},
            "profile": {
                "firstName": self.first_name,
                "lastName": self.last_name,
                "mobilePhone": null,
                "secondEmail": null,
                "login": self.login,
                "email": self.login,
                "department": self.department,
                "title": self.title,
                "employeeNumber": self.employee_number,
            },
            "credentials": {
                "password": {},
                "provider": {"type": "OKTA", "name": "OKTA"},
            },
            "_links": {"self": {"href": format!("{base}/api/v1/users/{}", self.id)}},
        })
    }
}

impl OktaGroup {
    pub(crate) fn to_json(&self, base: &str) -> Value {
        json!({
            "id": self.id,
            "created": millis(self.created),
            "lastUpdated": millis(self.created),
            "lastMembershipUpdated": millis(self.last_membership_updated),
            "objectClass": ["okta:user_group"],
            "type": "OKTA_GROUP",
            "profile": {"name": self.name, "description": self.description},
            "_links": {
                "logo": [],
                "users": {"href": format!("{base}/api/v1/groups/{}/users", self.id)},
                "apps": {"href": format!("{base}/api/v1/groups/{}/apps", self.id)},
            },
        })
    }
}
