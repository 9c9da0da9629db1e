//! Objects as Graph writes them: the properties each type has, which `GET` returns without a
//! `$select`, and one object's named properties as JSON.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::common::seconds;

use super::{EntraDevice, EntraUser, GroupEntry, OnPremises};

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

/// Every user property this tenant knows.
pub(crate) const USER_PROPERTIES: &[&str] = &[
    "id",
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
    "accountEnabled",
    "userType",
    "department",
    "employeeId",
    "createdDateTime",
    "deletedDateTime",
    "otherMails",
    "proxyAddresses",
    "onPremisesSyncEnabled",
    "onPremisesImmutableId",
    "onPremisesSamAccountName",
    "onPremisesDomainName",
    "onPremisesSecurityIdentifier",
];

pub(crate) const GROUP_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesSyncEnabled",
    "onPremisesSecurityIdentifier",
    "proxyAddresses",
    "securityEnabled",
    "securityIdentifier",
    "visibility",
];

pub(crate) const DEVICE_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "accountEnabled",
    "approximateLastSignInDateTime",
    "deviceId",
    "deviceOwnership",
    "displayName",
    "isCompliant",
    "isManaged",
    "manufacturer",
    "model",
    "onPremisesSyncEnabled",
    "operatingSystem",
    "operatingSystemVersion",
    "physicalIds",
    "profileType",
    "registrationDateTime",
    "trustType",
];

pub(super) fn opt_str(value: &Option<String>) -> Value {
    value.as_ref().map_or(Value::Null, |v| Value::String(v.clone()))
}

pub(super) fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().map(|v| Value::String(v.clone())).collect())
}

fn on_premises(u: &EntraUser, field: impl Fn(&OnPremises) -> &String) -> Value {
    u.on_premises.as_ref().map_or(Value::Null, |p| Value::String(field(p).clone()))
}

pub(super) fn user_property(id: &Uuid, u: &EntraUser, name: &str) -> Option<Value> {
    Some(match name {
        "id" => Value::String(id.to_string()),
        "businessPhones" => json!([]),
        "displayName" => Value::String(u.display_name.clone()),
        "givenName" => opt_str(&u.given_name),
        "jobTitle" => opt_str(&u.job_title),
        "mail" => opt_str(&u.mail),
        "mobilePhone" | "officeLocation" | "deletedDateTime" => Value::Null,
        "preferredLanguage" => json!("en-US"),
        "surname" => opt_str(&u.surname),
        "userPrincipalName" => Value::String(u.user_principal_name.clone()),
        "accountEnabled" => Value::Bool(u.account_enabled),
        "userType" => json!(if u.guest { "Guest" } else { "Member" }),
        "department" => opt_str(&u.department),
        "employeeId" => opt_str(&u.employee_id),
        "createdDateTime" => Value::String(seconds(u.created)),
        "otherMails" => strings(&u.other_mails),
        "proxyAddresses" => strings(&u.proxy_addresses),
        "onPremisesSyncEnabled" => u.on_premises.as_ref().map_or(Value::Null, |_| json!(true)),
        "onPremisesImmutableId" => on_premises(u, |p| &p.immutable_id),
        "onPremisesSamAccountName" => on_premises(u, |p| &p.sam_account_name),
        "onPremisesDomainName" => on_premises(u, |p| &p.domain_name),
        "onPremisesSecurityIdentifier" => on_premises(u, |p| &p.security_identifier),
        _ => return None,
    })
}

pub(super) fn group_property(id: &Uuid, entry: &GroupEntry, name: &str) -> Option<Value> {
    let g = &entry.group;
    Some(match name {
        "id" => Value::String(id.to_string()),
        "deletedDateTime"
        | "classification"
        | "isAssignableToRole"
        | "membershipRule"
        | "membershipRuleProcessingState"
        | "onPremisesSyncEnabled"
        | "onPremisesSecurityIdentifier" => Value::Null,
        "createdDateTime" => Value::String(seconds(g.created)),
        "description" => opt_str(&g.description),
        "displayName" => Value::String(g.display_name.clone()),
        "groupTypes" => strings(&g.group_types),
        "mail" => opt_str(&g.mail),
        "mailEnabled" => Value::Bool(g.mail_enabled),
        "mailNickname" => Value::String(g.mail_nickname.clone()),
        "proxyAddresses" => Value::Array(g.mail.iter().map(|m| Value::String(format!("SMTP:{m}"))).collect()),
        "securityEnabled" => Value::Bool(g.security_enabled),
        "securityIdentifier" => Value::String(g.security_identifier.clone()),
        "visibility" => opt_str(&g.visibility),
        _ => return None,
    })
}

pub(super) fn device_property(id: &Uuid, d: &EntraDevice, name: &str) -> Option<Value> {
    let time = |t: &Option<OffsetDateTime>| t.map_or(Value::Null, |t| Value::String(seconds(t)));
    let flag = |b: Option<bool>| b.map_or(Value::Null, Value::Bool);
    Some(match name {
        "id" => Value::String(id.to_string()),
        "deletedDateTime" | "onPremisesSyncEnabled" => Value::Null,
        "accountEnabled" => Value::Bool(d.account_enabled),
        "approximateLastSignInDateTime" => time(&d.approximate_last_sign_in),
        "deviceId" => Value::String(d.device_id.clone()),
        "deviceOwnership" => json!(if d.trust_type == "Workplace" { "Personal" } else { "Company" }),
        "displayName" => Value::String(d.display_name.clone()),
        "isCompliant" => flag(d.is_compliant),
        "isManaged" => flag(d.is_managed),
        "manufacturer" => opt_str(&d.manufacturer),
        "model" => opt_str(&d.model),
        "operatingSystem" => Value::String(d.operating_system.clone()),
        "operatingSystemVersion" => Value::String(d.operating_system_version.clone()),
        "physicalIds" => json!([]),
        "profileType" => json!("RegisteredDevice"),
        "registrationDateTime" => Value::String(seconds(d.registered)),
        "trustType" => Value::String(d.trust_type.clone()),
        _ => return None,
    })
}

/// The named properties of one object. Delta answers leave out properties that were never set
/// (`nulls: false`); plain reads write them as `null`.
pub(crate) fn render(
    properties: &[impl AsRef<str>],
    nulls: bool,
    property: impl Fn(&str) -> Option<Value>,
) -> Map<String, Value> {
    properties
        .iter()
        .filter_map(|p| {
            let value = property(p.as_ref())?;
            (nulls || !value.is_null()).then(|| (p.as_ref().to_string(), value))
        })
        .collect()
}
