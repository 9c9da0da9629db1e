//! The Directory API's user, group and member objects in the normalized entity model. Google
//! leaves out empty fields, so everything is read as optional; the object itself is kept whole
//! as the record's raw JSON.

use ctxsync_core::{Entity, EntityKind, Group, Membership, Record, User, UserStatus};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::lenient::{Flag, Many, Object, Text};

/// A non-empty string at `key`.
fn text(object: &Value, key: &str) -> Option<String> {
    object.get(key)?.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// What the entity model reads of a Directory API user, borrowed from the page's text.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct GoogleUser<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    primary_email: Text<'a>,
    #[serde(borrow)]
    emails: Many<Object<Address<'a>>>,
    #[serde(borrow)]
    aliases: Many<Text<'a>>,
    #[serde(borrow)]
    non_editable_aliases: Many<Text<'a>>,
    #[serde(borrow)]
    name: Object<Name<'a>>,
    #[serde(borrow)]
    organizations: Many<Object<Organization<'a>>>,
    #[serde(borrow)]
    relations: Many<Object<Typed<'a>>>,
    #[serde(borrow)]
    external_ids: Many<Object<Typed<'a>>>,
    is_admin: Flag,
    is_delegated_admin: Flag,
    suspended: Flag,
    archived: Flag,
    #[serde(borrow)]
    creation_time: Text<'a>,
    #[serde(borrow)]
    last_login_time: Text<'a>,
    #[serde(rename = "isEnrolledIn2Sv")]
    is_enrolled_in_2sv: Flag,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Address<'a> {
    #[serde(borrow)]
    address: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Name<'a> {
    #[serde(borrow)]
    display_name: Text<'a>,
    #[serde(borrow)]
    full_name: Text<'a>,
    #[serde(borrow)]
    given_name: Text<'a>,
    #[serde(borrow)]
    family_name: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Organization<'a> {
    #[serde(borrow)]
    title: Text<'a>,
    #[serde(borrow)]
    department: Text<'a>,
    primary: Flag,
}

/// An entry of a typed list (`relations`, `externalIds`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Typed<'a> {
    #[serde(borrow, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow)]
    value: Text<'a>,
}

/// Google writes the epoch for "never": that is no time at all.
fn time(t: &Text) -> Option<OffsetDateTime> {
    let t = OffsetDateTime::parse(t.get()?, &Rfc3339).ok()?;
    (t != OffsetDateTime::UNIX_EPOCH).then_some(t)
}

/// The `value` of the first entry whose `type` is `kind`.
fn typed_value(entries: &Many<Object<Typed>>, kind: &str) -> Option<String> {
    entries.0.iter().find(|e| e.0.kind.get() == Some(kind)).and_then(|e| e.0.value.non_blank())
}

/// Archived is Google's state for leavers (deprovisioned); suspended is a temporary block.
pub(super) fn status(archived: bool, suspended: bool) -> UserStatus {
    if archived {
        UserStatus::Deprovisioned
    } else if suspended {
        UserStatus::Suspended
    } else {
        UserStatus::Active
    }
}

/// A user; `None` for an object without an id. Addresses: the primary first, then the other
/// addresses and aliases, lowercase and each once. The manager is the `manager` relation (an
/// email address: Google links managers by address).
pub(super) fn user(google: &GoogleUser) -> Option<User> {
    let source_id = google.id.non_blank()?;
    let login = google.primary_email.non_blank().unwrap_or_default();
    let mut emails: Vec<String> = Vec::new();
    let others = google.emails.0.iter().filter_map(|e| e.0.address.non_blank());
    let aliases = google.aliases.0.iter().filter_map(|a| a.get().map(str::to_string));
    for address in std::iter::once(login.clone()).chain(others).chain(aliases) {
        let address = address.trim().to_lowercase();
        if !address.is_empty() && !emails.contains(&address) {
            emails.push(address);
        }
    }
    // Google owns the primary address and the aliases; `emails` is free-form.
    let owned = [&google.aliases, &google.non_editable_aliases].map(|a| a.0.iter().filter_map(Text::get));
    let verified_emails =
        User::verified_emails(google.primary_email.get().into_iter().chain(owned.into_iter().flatten()));
    let name = &google.name.0;
    let organizations = &google.organizations.0;
    let organization = organizations.iter().find(|o| o.0.primary.is_true()).or_else(|| organizations.first());
    let organization = organization.map(|o| &o.0);
    let mut admin_roles = Vec::new();
    if google.is_admin.is_true() {
        admin_roles.push("super_admin".to_string());
    }
    if google.is_delegated_admin.is_true() {
        admin_roles.push("delegated_admin".to_string());
    }
    Some(User {
        source_id,
        login,
        emails,
        verified_emails,
        immutable_id: None,
        on_premises: None,
        display_name: name.display_name.non_blank().or_else(|| name.full_name.non_blank()),
        given_name: name.given_name.non_blank(),
        family_name: name.family_name.non_blank(),
        status: status(google.archived.is_true(), google.suspended.is_true()),
        title: organization.and_then(|o| o.title.non_blank()),
        department: organization.and_then(|o| o.department.non_blank()),
        manager: typed_value(&google.relations, "manager"),
        employee_id: typed_value(&google.external_ids, "organization"),
        created_at: time(&google.creation_time),
        last_login_at: time(&google.last_login_time),
        source_updated_at: None,
        admin_roles,
        mfa_factors: Vec::new(),
        mfa_enrolled: google.is_enrolled_in_2sv.0,
    })
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
    Some(Record::from_value(Entity::Group(group), &raw))
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

    /// Maps `raw` as a listing does: read from its text.
    fn read(raw: &Value) -> Option<User> {
        user(&serde_json::from_str(&raw.to_string()).unwrap())
    }

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
            "nonEditableAliases": ["ada@example.test-google-a.com"],
            "organizations": [{"title": "Analyst", "department": "Research", "primary": true}],
            "relations": [{"value": "charles@example.com", "type": "manager"}],
            "externalIds": [{"value": "X1", "type": "custom"}, {"value": "100042", "type": "organization"}],
            "isEnrolledIn2Sv": true,
        });
        let u = read(&raw).unwrap();
        assert_eq!(u.emails, ["ada@example.com", "ada@example.net", "countess@example.com"]);
        // The free-form `emails` list is not vouched for; the non-editable aliases are.
        assert_eq!(
            u.verified_emails,
            ["ada@example.com", "ada@example.net", "ada@example.test-google-a.com", "countess@example.com"]
        );
        assert_eq!(u.immutable_id, None);
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
        assert_eq!(status(true, true), UserStatus::Deprovisioned);
        assert_eq!(status(false, false), UserStatus::Active);
    }

    #[test]
    fn a_field_of_another_type_reads_as_absent() {
        let raw = json!({
            "id": "1002",
            "primaryEmail": "grace@example.com",
            "name": "Grace Hopper",
            "suspended": "yes",
            "isAdmin": 1,
            "emails": {"address": "g@example.com"},
            "aliases": ["Grace@Example.NET", 7, null],
            "organizations": ["Navy", {"title": 5, "department": "Computing", "primary": "true"}],
            "relations": [{"value": "boss@example.com", "type": ["manager"]}],
            "externalIds": [{"value": 100043, "type": "organization"}],
            "creationTime": 1704164645,
            "isEnrolledIn2Sv": "true",
        });
        let u = read(&raw).unwrap();
        assert_eq!(u.emails, ["grace@example.com", "grace@example.net"]);
        assert_eq!((u.display_name, u.given_name), (None, None));
        assert_eq!(u.status, UserStatus::Active);
        assert!(u.admin_roles.is_empty());
        // No organization is primary, so the first counts, and it is no object.
        assert_eq!((u.title, u.department), (None, None));
        assert_eq!((u.manager, u.employee_id), (None, None));
        assert_eq!((u.created_at, u.mfa_enrolled), (None, None));
        assert!(read(&json!({"id": 1003, "primaryEmail": "x@example.com"})).is_none());
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
