//! Okta's user, group, factor and role-assignment objects in the normalized entity model. Every
//! field is read as optional (Okta leaves out what is unset); the object itself is kept whole as
//! the record's raw JSON.

use ctxsync_core::{Entity, Group, MfaFactor, Record, User, UserStatus};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

/// A user, with the admin roles and factors read beside it (`factors` is `None` when they were
/// not read). `None` for an object without an id.
pub(super) fn user(raw: Value, admin_roles: Vec<String>, factors: Option<Vec<MfaFactor>>) -> Option<Record> {
    let source_id = text(&raw, "id")?;
    let profile = raw.get("profile").unwrap_or(&Value::Null);
    let mut emails: Vec<String> = Vec::new();
    for address in [text(profile, "email"), text(profile, "secondEmail")].into_iter().flatten() {
        let address = address.to_lowercase();
        if !emails.contains(&address) {
            emails.push(address);
        }
    }
    let given_name = text(profile, "firstName");
    let family_name = text(profile, "lastName");
    let display_name = text(profile, "displayName").or_else(|| {
        let joined =
            [given_name.as_deref(), family_name.as_deref()].into_iter().flatten().collect::<Vec<_>>();
        (!joined.is_empty()).then(|| joined.join(" "))
    });
    let mfa_enrolled = factors.as_ref().map(|f| f.iter().any(|f| f.status.as_deref() == Some("ACTIVE")));
    let user = User {
        source_id,
        login: text(profile, "login").unwrap_or_default(),
        emails,
        display_name,
        given_name,
        family_name,
        status: status(raw.get("status").and_then(Value::as_str).unwrap_or_default()),
        title: text(profile, "title"),
        department: text(profile, "department"),
        manager: text(profile, "managerId"),
        employee_id: text(profile, "employeeNumber"),
        created_at: timestamp(&raw, "created"),
        last_login_at: timestamp(&raw, "lastLogin"),
        source_updated_at: timestamp(&raw, "lastUpdated"),
        admin_roles,
        mfa_factors: factors.unwrap_or_default(),
        mfa_enrolled,
    };
    Some(Record { entity: Entity::User(user), raw })
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
    Some(Record { entity: Entity::Group(group), raw })
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
    fn a_user_keeps_its_raw_object_and_reads_what_is_there() {
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
            },
        });
        let factors = vec![MfaFactor {
            factor_type: "sms".into(),
            provider: None,
            status: Some("PENDING_ACTIVATION".into()),
        }];
        let record = user(raw.clone(), vec!["SUPER_ADMIN".into()], Some(factors)).unwrap();
        assert_eq!(record.raw, raw);
        let Entity::User(u) = record.entity else { panic!("a user") };
        assert_eq!(u.emails, ["ada@acme.com"]);
        assert_eq!(u.display_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(u.status, UserStatus::Locked);
        assert_eq!(u.manager.as_deref(), Some("00u0"));
        assert_eq!(u.title, None);
        assert_eq!(u.last_login_at, None);
        assert_eq!(u.source_updated_at.unwrap().millisecond(), 678);
        assert_eq!(u.mfa_enrolled, Some(false));
        assert_eq!(u.admin_roles, ["SUPER_ADMIN"]);
        assert!(user(json!({"profile": {}}), vec![], None).is_none());
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
