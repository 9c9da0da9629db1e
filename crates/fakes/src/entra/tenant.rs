//! An Entra ID tenant's users and groups, as Microsoft Graph v1.0 names their properties.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::common::{Seeded, seconds};
use crate::directory::{Directory, Status};

/// The properties `GET /users` returns when no `$select` is given.
pub(crate) const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

#[derive(Debug, Clone)]
pub(crate) struct EntraTenant {
    pub tenant_id: String,
    pub domain: String,
    /// Keyed by object id; the `$skiptoken` is the last id of a page.
    pub users: BTreeMap<String, Map<String, Value>>,
    pub groups: BTreeMap<String, Map<String, Value>>,
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("entity literals are objects"),
    }
}

impl EntraTenant {
    pub(crate) fn from_directory(directory: &Directory, seed: u64) -> Self {
        let mut rng = Seeded::new(seed, "entra");
        let tenant_id = rng.uuid().to_string();
        let domain = "contoso.onmicrosoft.com".to_string();
        let users = directory
            .people
            .iter()
            .filter(|p| p.status != Status::Deprovisioned)
            .map(|p| {
                let id = rng.uuid().to_string();
                let upn = format!("{}@{domain}", p.handle);
                let user = object(json!({
                    "id": id,
                    "businessPhones": [],
                    "displayName": format!("{} {}", p.given, p.family),
                    "givenName": p.given,
                    "surname": p.family,
                    "jobTitle": p.title,
                    "mail": upn,
                    "mobilePhone": null,
                    "officeLocation": null,
                    "preferredLanguage": "en-US",
                    "userPrincipalName": upn,
                    "accountEnabled": p.status == Status::Active,
                    "userType": "Member",
                    "department": p.department,
                    "employeeId": p.employee_number,
                    "createdDateTime": seconds(p.created),
                    "deletedDateTime": null,
                    "otherMails": [],
                    "proxyAddresses": [format!("SMTP:{upn}")],
                    "onPremisesSyncEnabled": null,
                    "onPremisesImmutableId": null,
                    "onPremisesSamAccountName": null,
                    "onPremisesSecurityIdentifier": null,
                }));
                (id, user)
            })
            .collect();
        let groups = directory
            .teams
            .iter()
            .map(|t| {
                let id = rng.uuid().to_string();
                let nickname = t.name.to_lowercase().replace(' ', "-");
                let group = object(json!({
                    "id": id,
                    "deletedDateTime": null,
                    "classification": null,
                    "createdDateTime": seconds(t.created),
                    "description": t.description,
                    "displayName": t.name,
                    "groupTypes": [],
                    "isAssignableToRole": null,
                    "mail": null,
                    "mailEnabled": false,
                    "mailNickname": nickname,
                    "membershipRule": null,
                    "membershipRuleProcessingState": null,
                    "onPremisesSyncEnabled": null,
                    "onPremisesSecurityIdentifier": null,
                    "proxyAddresses": [],
                    "securityEnabled": true,
                    "securityIdentifier": format!("S-1-12-1-{}", rng.next_u64() % 4_000_000_000),
                    "visibility": null,
                }));
                (id, group)
            })
            .collect();
        Self { tenant_id, domain, users, groups }
    }
}
