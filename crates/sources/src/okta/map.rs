//! Okta's user, group, factor and role-assignment objects in the normalized entity model. Every
//! field is read as optional (Okta leaves out what is unset); the object itself is kept whole as
//! the record's raw JSON.

use ctxsync_core::{Entity, Group, MfaFactor, Record, User, UserStatus};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::lenient::{Object, Text};

/// A non-empty string at `key`.
fn text(object: &Value, key: &str) -> Option<String> {
    object.get(key)?.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

pub(super) fn timestamp(object: &Value, key: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(object.get(key)?.as_str()?, &Rfc3339).ok()
}

/// Okta's lifecycle states in the normalized model. A state Okta adds later counts as pending:
/// not known to be able to sign in.
pub(super) fn status(okta: &str) -> UserStatus {
    match okta {
        "ACTIVE" => UserStatus::Active,
        "STAGED" | "PROVISIONED" => UserStatus::Pending,
        "SUSPENDED" => UserStatus::Suspended,
        "LOCKED_OUT" | "RECOVERY" | "PASSWORD_EXPIRED" => UserStatus::Locked,
        "DEPROVISIONED" => UserStatus::Deprovisioned,
        other => {
            tracing::warn!(status = other, "unknown Okta user status; recorded as pending");
            UserStatus::Pending
        }
    }
}

/// What the entity model reads of an Okta user, borrowed from the page's text.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct OktaUser<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    status: Text<'a>,
    #[serde(borrow)]
    created: Text<'a>,
    #[serde(borrow)]
    last_login: Text<'a>,
    #[serde(borrow)]
    last_updated: Text<'a>,
    #[serde(borrow)]
    profile: Object<Profile<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Profile<'a> {
    #[serde(borrow)]
    login: Text<'a>,
    #[serde(borrow)]
    email: Text<'a>,
    #[serde(borrow)]
    second_email: Text<'a>,
    #[serde(borrow)]
    first_name: Text<'a>,
    #[serde(borrow)]
    last_name: Text<'a>,
    #[serde(borrow)]
    display_name: Text<'a>,
    #[serde(borrow)]
    title: Text<'a>,
    #[serde(borrow)]
    department: Text<'a>,
    #[serde(borrow)]
    manager_id: Text<'a>,
    #[serde(borrow)]
    employee_number: Text<'a>,
    #[serde(borrow)]
    external_id: Text<'a>,
}

impl OktaUser<'_> {
    /// The id as Okta wrote it, which its per-user endpoints take.
    pub(super) fn id(&self) -> Option<&str> {
        self.id.get()
    }

    pub(super) fn last_updated(&self) -> Option<OffsetDateTime> {
        parse(&self.last_updated)
    }
}

fn parse(t: &Text) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(t.get()?, &Rfc3339).ok()
}

/// A user, with the admin roles and factors read beside it (`factors` is `None` when they were
/// not read). `None` for an object without an id.
pub(super) fn user(
    okta: &OktaUser,
    admin_roles: Vec<String>,
    factors: Option<Vec<MfaFactor>>,
) -> Option<User> {
    let source_id = okta.id.non_blank()?;
    let profile = &okta.profile.0;
    let mut emails: Vec<String> = Vec::new();
    for address in [profile.email.non_blank(), profile.second_email.non_blank()].into_iter().flatten() {
        let address = address.to_lowercase();
        if !emails.contains(&address) {
            emails.push(address);
        }
    }
    let given_name = profile.first_name.non_blank();
    let family_name = profile.last_name.non_blank();
    let display_name = profile.display_name.non_blank().or_else(|| {
        let joined =
            [given_name.as_deref(), family_name.as_deref()].into_iter().flatten().collect::<Vec<_>>();
        (!joined.is_empty()).then(|| joined.join(" "))
    });
    let mfa_enrolled = factors.as_ref().map(|f| f.iter().any(|f| f.status.as_deref() == Some("ACTIVE")));
    Some(User {
        source_id,
        login: profile.login.non_blank().unwrap_or_default(),
        emails,
        // Okta verifies the primary `email`; `secondEmail` is whatever the user typed.
        verified_emails: User::verified_emails(profile.email.get()),
        immutable_id: User::immutable_id(profile.external_id.get()),
        on_premises: None,
        display_name,
        given_name,
        family_name,
        status: status(okta.status.get().unwrap_or_default()),
        title: profile.title.non_blank(),
        department: profile.department.non_blank(),
        manager: profile.manager_id.non_blank(),
        employee_id: profile.employee_number.non_blank(),
        created_at: parse(&okta.created),
        last_login_at: parse(&okta.last_login),
        source_updated_at: okta.last_updated(),
        admin_roles,
        mfa_factors: factors.unwrap_or_default(),
        mfa_enrolled,
    })
}

/// A group; `kind` is Okta's group type (`OKTA_GROUP`, `APP_GROUP`, `BUILT_IN`).
pub(super) fn group(raw: Value) -> Option<Record> {
    let source_id = text(&raw, "id")?;
    let profile = raw.get("profile").unwrap_or(&Value::Null);
    let group = Group {
        name: text(profile, "name").unwrap_or_else(|| source_id.clone()),
        source_id,
        email: None,
        description: text(profile, "description"),
        kind: text(&raw, "type"),
    };
    Some(Record::from_value(Entity::Group(group), &raw))
}

pub(super) fn factor(raw: &Value) -> Option<MfaFactor> {
    Some(MfaFactor {
        factor_type: text(raw, "factorType")?,
        provider: text(raw, "provider"),
        status: text(raw, "status"),
    })
}

/// The role types of a user's assignments (`SUPER_ADMIN`, …; a custom role by its label),
/// sorted and each once.
pub(super) fn role_types(assignments: &[Value]) -> Vec<String> {
    let mut roles: Vec<String> = assignments
        .iter()
        .filter_map(|a| match text(a, "type")?.as_str() {
            "CUSTOM" => text(a, "label"),
            standard => Some(standard.to_string()),
        })
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Maps `raw` as a listing does: read from its text.
    fn read(raw: &Value, admin_roles: Vec<String>, factors: Option<Vec<MfaFactor>>) -> Option<User> {
        user(&serde_json::from_str(&raw.to_string()).unwrap(), admin_roles, factors)
    }

    #[test]
    fn statuses_map_to_the_model() {
        let cases = [
            ("ACTIVE", UserStatus::Active),
            ("STAGED", UserStatus::Pending),
            ("PROVISIONED", UserStatus::Pending),
            ("SUSPENDED", UserStatus::Suspended),
            ("LOCKED_OUT", UserStatus::Locked),
            ("RECOVERY", UserStatus::Locked),
            ("PASSWORD_EXPIRED", UserStatus::Locked),
            ("DEPROVISIONED", UserStatus::Deprovisioned),
            ("SOMETHING_NEW", UserStatus::Pending),
        ];
        for (okta, model) in cases {
            assert_eq!(status(okta), model, "{okta}");
        }
    }

    #[test]
    fn a_user_reads_what_is_there() {
        let raw = json!({
            "id": "00u1",
            "status": "LOCKED_OUT",
            "created": "2024-01-02T03:04:05.000Z",
            "lastLogin": null,
            "lastUpdated": "2024-02-02T03:04:05.678Z",
            "profile": {
                "login": "ada@acme.com",
                "email": "Ada@Acme.com",
                "secondEmail": "ada@acme.com",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "managerId": "00u0",
                "department": "Engineering",
                "externalId": "Zz9==",
            },
        });
        let factors = vec![MfaFactor {
            factor_type: "sms".into(),
            provider: None,
            status: Some("PENDING_ACTIVATION".into()),
        }];
        let u = read(&raw, vec!["SUPER_ADMIN".into()], Some(factors)).unwrap();
        assert_eq!(u.emails, ["ada@acme.com"]);
        assert_eq!(
            (u.verified_emails.as_slice(), u.immutable_id.as_deref()),
            (&["ada@acme.com".to_string()][..], Some("Zz9=="))
        );
        assert_eq!(u.display_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(u.status, UserStatus::Locked);
        assert_eq!(u.manager.as_deref(), Some("00u0"));
        assert_eq!(u.title, None);
        assert_eq!(u.last_login_at, None);
        assert_eq!(u.source_updated_at.unwrap().millisecond(), 678);
        assert_eq!(u.mfa_enrolled, Some(false));
        assert_eq!(u.admin_roles, ["SUPER_ADMIN"]);
        assert!(read(&json!({"profile": {}}), vec![], None).is_none());
        assert!(read(&json!({"id": " ", "profile": {}}), vec![], None).is_none());
    }

    #[test]
    fn a_field_of_another_type_reads_as_absent() {
        let raw = json!({
            "id": "00u2",
            "status": 3,
            "created": {"at": "2024-01-02T03:04:05.000Z"},
            "lastUpdated": "2024-02-02T03:04:05.000Z",
            "profile": {
                "login": "grace@acme.com",
                "email": ["x"],
                "secondEmail": "Grace@Acme.com",
                "firstName": null,
                "lastName": "Hopper",
                "title": 5,
                "department": true,
                "managerId": {"id": "00u0"},
            },
        });
        let u = read(&raw, vec![], None).unwrap();
        assert_eq!(u.emails, ["grace@acme.com"]);
        assert!(u.verified_emails.is_empty(), "secondEmail is whatever the user typed");
        assert_eq!((u.given_name, u.display_name.as_deref()), (None, Some("Hopper")));
        assert_eq!((u.title, u.department, u.manager), (None, None, None));
        assert_eq!(u.status, UserStatus::Pending);
        assert_eq!(u.created_at, None);
        assert!(u.source_updated_at.is_some());
        let u = read(&json!({"id": "00u3", "profile": "none"}), vec![], None).unwrap();
        assert_eq!((u.login.as_str(), u.emails.len()), ("", 0));
    }

    #[test]
    fn custom_roles_are_named_by_label() {
        let assignments = [
            json!({"type": "USER_ADMIN", "label": "Group Administrator"}),
            json!({"type": "CUSTOM", "label": "Auditor"}),
            json!({"type": "USER_ADMIN", "assignmentType": "GROUP"}),
        ];
        assert_eq!(role_types(&assignments), ["Auditor", "USER_ADMIN"]);
    }
}
