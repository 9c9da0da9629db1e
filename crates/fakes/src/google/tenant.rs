//! A Google Workspace account's users and groups, in the Directory API's JSON shapes.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::common::{BASE62, DIGITS, Seeded, fixed_width, millis};
use crate::directory::{ADMIN, Directory, NON_ADMIN, Status};

#[derive(Debug, Clone)]
pub(crate) struct GoogleUser {
    pub id: String,
    pub primary_email: String,
    pub given_name: String,
    pub family_name: String,
    pub is_admin: bool,
    pub suspended: bool,
    pub creation_time: OffsetDateTime,
    pub last_login_time: Option<OffsetDateTime>,
    pub department: &'static str,
    pub title: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct GoogleGroup {
    pub id: String,
    pub email: String,
    pub name: String,
    pub description: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct GoogleTenant {
    pub customer_id: String,
    pub domain: String,
    /// Keyed by id: numeric ids of one width sort in creation order, and serve as page cursors.
    pub users: BTreeMap<String, GoogleUser>,
    pub groups: BTreeMap<String, GoogleGroup>,
    pub admin_email: String,
    pub non_admin_email: String,
}

impl GoogleTenant {
    pub(crate) fn from_directory(directory: &Directory, seed: u64, domain: &str) -> Self {
        let mut rng = Seeded::new(seed, "google");
        let customer_id = format!("C0{}", rng.chars(BASE62, 7));
        let email = |i: usize| format!("{}@{domain}", directory.people[i].handle);
        // Deleted users are not listed; Google has no deprovisioned state.
        let user_ids: Vec<String> = (0..directory.people.len())
            .map(|i| format!("1{}{}", fixed_width(i as u64, DIGITS, 8), rng.chars(DIGITS, 12)))
            .collect();
        let users = directory
            .people
            .iter()
            .enumerate()
            .filter(|(_, p)| p.status != Status::Deprovisioned)
            .map(|(i, p)| {
                let user = GoogleUser {
                    id: user_ids[i].clone(),
                    primary_email: email(i),
                    given_name: p.given.clone(),
                    family_name: p.family.clone(),
                    is_admin: p.admin,
                    suspended: p.status == Status::Suspended,
                    creation_time: p.created,
                    last_login_time: p.last_login,
                    department: p.department,
                    title: p.title,
                };
                (user.id.clone(), user)
            })
            .collect();
        let groups = directory
            .teams
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let id = format!(
                    "0{}{}",
                    fixed_width(i as u64, DIGITS, 4),
                    rng.chars(b"0123456789abcdefghijklmnopqrstuvwxyz", 10)
                );
                let local = t.name.to_lowercase().replace(' ', "-");
                let group = GoogleGroup {
                    id: id.clone(),
                    email: format!("{local}@{domain}"),
                    name: t.name.clone(),
                    description: t.description.clone(),
                    members: t.members.iter().map(|&m| user_ids[m].clone()).collect(),
                };
                (id, group)
            })
            .collect();
        Self {
            customer_id,
            domain: domain.to_string(),
            users,
            groups,
            admin_email: email(ADMIN),
            non_admin_email: email(NON_ADMIN),
        }
    }

    pub(crate) fn user_by_email(&self, email: &str) -> Option<&GoogleUser> {
        self.users.values().find(|u| u.primary_email.eq_ignore_ascii_case(email))
    }
}

impl GoogleUser {
    pub(crate) fn to_json(&self, customer_id: &str) -> Value {
        json!({
            "kind": "admin#directory#user",
            "id": self.id,
            "etag": format!("\"{}\"", self.id),
            "primaryEmail": self.primary_email,
            "name": {
                "givenName": self.given_name,
                "familyName": self.family_name,
                "fullName": format!("{} {}", self.given_name, self.family_name),
            },
            "isAdmin": self.is_admin,
            "isDelegatedAdmin": false,
            "lastLoginTime": self.last_login_time.map_or_else(|| "1970-01-01T00:00:00.000Z".to_string(), millis),
            "creationTime": millis(self.creation_time),
            "agreedToTerms": true,
            "suspended": self.suspended,
            "archived": false,
            "changePasswordAtNextLogin": false,
            "ipWhitelisted": false,
            "emails": [{"address": self.primary_email, "primary": true}],
            "organizations": [{"department": self.department, "title": self.title, "primary": true, "customType": ""}],
            "customerId": customer_id,
            "orgUnitPath": "/",
            "isMailboxSetup": true,
            "isEnrolledIn2Sv": self.is_admin,
            "isEnforcedIn2Sv": false,
            "includeInGlobalAddressList": true,
        })
    }
}

impl GoogleGroup {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "kind": "admin#directory#group",
            "id": self.id,
            "etag": format!("\"{}\"", self.id),
            "email": self.email,
            "name": self.name,
            "directMembersCount": self.members.len().to_string(),
            "description": self.description,
            "adminCreated": true,
            "nonEditableAliases": [format!("{}.test-google-a.com", self.email)],
        })
    }
}
