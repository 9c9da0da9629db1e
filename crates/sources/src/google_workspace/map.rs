//! The Directory API's user, group and member objects in the normalized entity model. Google
//! leaves out empty fields, so everything is read as optional; the object itself is kept whole
//! as the record's raw JSON.

use ctxsync_core::{Entity, EntityKind, Group, Membership, Record, User, UserStatus};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A non-empty string at `key`.
fn text(object: &Value, key: &str) -> Option<String> {
    object.get(key)?.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn flag(object: &Value, key: &str) -> bool {
    object.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn items<'a>(object: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    object.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// Google writes the epoch for "never": that is no time at all.
fn timestamp(object: &Value, key: &str) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::parse(object.get(key)?.as_str()?, &Rfc3339).ok()?;
    (t != OffsetDateTime::UNIX_EPOCH).then_some(t)
}

/// The `value` of the first entry of the list at `key` whose `type` is `kind`.
fn typed_value(object: &Value, key: &str, kind: &str) -> Option<String> {
    items(object, key)
        .find(|e| e.get("type").and_then(Value::as_str) == Some(kind))
        .and_then(|e| text(e, "value"))
}

/// Archived is Google's state for leavers (deprovisioned); suspended is a temporary block.
pub(super) fn status(user: &Value) -> UserStatus {
    if flag(user, "archived") {
        UserStatus::Deprovisioned
    } else if flag(user, "suspended") {
        UserStatus::Suspended
    } else {
        UserStatus::Active
    }
}

/// A user; `None` for an object without an id. Addresses: the primary first, then the other
/// addresses and aliases, lowercase and each once. The manager is the `manager` relation (an
/// email address: Google links managers by address).
pub(super) fn user(raw: Value) -> Option<Record> {
    let source_id = text(&raw, "id")?;
    let login = text(&raw, "primaryEmail").unwrap_or_default();
    let mut emails: Vec<String> = Vec::new();
    let others = items(&raw, "emails").filter_map(|e| text(e, "address"));
    let aliases = items(&raw, "aliases").filter_map(|a| a.as_str().map(str::to_string));
    for address in std::iter::once(login.clone()).chain(others).chain(aliases) {
        let address = address.trim().to_lowercase();
        if !address.is_empty() && !emails.contains(&address) {
            emails.push(address);
        }
    }
    let name = raw.get("name").unwrap_or(&Value::Null);
    let organization = items(&raw, "organizations")
        .find(|o| flag(o, "primary"))
        .or_else(|| items(&raw, "organizations").next())
        .unwrap_or(&Value::Null);
    let mut admin_roles = Vec::new();
    if flag(&raw, "isAdmin") {
        admin_roles.push("super_admin".to_string());
    }
    if flag(&raw, "isDelegatedAdmin") {
        admin_roles.push("delegated_admin".to_string());
    }
    let user = User {
        source_id,
        login,
        emails,
        display_name: text(name, "displayName").or_else(|| text(name, "fullName")),
        given_name: text(name, "givenName"),
        family_name: text(name, "familyName"),
        status: status(&raw),
        title: text(organization, "title"),
        department: text(organization, "department"),
        manager: typed_value(&raw, "relations", "manager"),
        employee_id: typed_value(&raw, "externalIds", "organization"),
        created_at: timestamp(&raw, "creationTime"),
        last_login_at: timestamp(&raw, "lastLoginTime"),
        source_updated_at: None,
        admin_roles,
        mfa_factors: Vec::new(),
        mfa_enrolled: raw.get("isEnrolledIn2Sv").and_then(Value::as_bool),
    };
    Some(Record { entity: Entity::User(user), raw })
}

pub(super) fn group(raw: Value) -> Option<Record> {
    let source_id = text(&raw, "id")?;
    let email = text(&raw, "email");
    let group = Group {
        name: text(&raw, "name").or_else(|| email.clone()).unwrap_or_else(|| source_id.clone()),
        source_id,
        email: email.map(|e| e.to_lowercase()),
        description: text(&raw, "description"),
        kind: None,
    };
    Some(Record { entity: Entity::Group(group), raw })
}

/// A member of `group_id`: a user or a nested group. `CUSTOMER` ("everyone in the account") and
/// `EXTERNAL` members name no entity of the account, so they are left out.
pub(super) fn member(group_id: &str, raw: &Value) -> Option<Membership> {
    let member_kind = match raw.get("type")?.as_str()? {
        "USER" => EntityKind::User,
        "GROUP" => EntityKind::Group,
        _ => return None,
    };
    Some(Membership { group_id: group_id.to_string(), member_kind, member_id: text(raw, "id")? })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_user_reads_googles_nested_fields() {
        let raw = json!({
            "id": "1001",
            "primaryEmail": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace", "fullName": "Ada Lovelace"},
            "isAdmin": false,
            "isDelegatedAdmin": true,
            "suspended": true,
            "archived": false,
            "lastLoginTime": "1970-01-01T00:00:00.000Z",
            "creationTime": "2024-01-02T03:04:05.000Z",
            "emails": [{"address": "ada@example.com", "primary": true}, {"address": "Ada@Example.NET"}],
            "aliases": ["ada@example.net", "countess@example.com"],
            "organizations": [{"title": "Analyst", "department": "Research", "primary": true}],
            "relations": [{"value": "charles@example.com", "type": "manager"}],
            "externalIds": [{"value": "X1", "type": "custom"}, {"value": "100042", "type": "organization"}],
            "isEnrolledIn2Sv": true,
        });
        let record = user(raw.clone()).unwrap();
        assert_eq!(record.raw, raw);
        let Entity::User(u) = record.entity else { panic!("a user") };
        assert_eq!(u.emails, ["ada@example.com", "ada@example.net", "countess@example.com"]);
        assert_eq!(u.status, UserStatus::Suspended);
        assert_eq!((u.title.as_deref(), u.department.as_deref()), (Some("Analyst"), Some("Research")));
        assert_eq!(u.manager.as_deref(), Some("charles@example.com"));
        assert_eq!(u.employee_id.as_deref(), Some("100042"));
        assert_eq!(u.display_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(u.last_login_at, None);
        assert_eq!(u.admin_roles, ["delegated_admin"]);
        assert_eq!(u.mfa_enrolled, Some(true));
    }

    #[test]
    fn archived_wins_over_suspended() {
        assert_eq!(status(&json!({"suspended": true, "archived": true})), UserStatus::Deprovisioned);
        assert_eq!(status(&json!({})), UserStatus::Active);
    }

    #[test]
    fn only_users_and_groups_are_members() {
        let user = json!({"id": "1", "type": "USER"});
        assert_eq!(member("g", &user).unwrap().member_kind, EntityKind::User);
        assert_eq!(member("g", &json!({"id": "2", "type": "GROUP"})).unwrap().member_kind, EntityKind::Group);
        assert!(member("g", &json!({"id": "C01", "type": "CUSTOMER"})).is_none());
        assert!(member("g", &json!({"id": "3", "type": "EXTERNAL"})).is_none());
    }
}
