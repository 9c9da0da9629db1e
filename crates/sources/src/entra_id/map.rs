//! Graph's user, group and device objects in the normalized entity model. Only what a delta
//! page (or, for devices, a list page with `registeredOwners` expanded) carries is read; the
//! object itself is kept whole as the record's raw JSON.

use ctxsync_core::{Device, EntityKind, Group, OnPremisesAccount, User, UserStatus};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::lenient::{Flag, Many, Object, Present, Text};

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_string)
}

fn flag(object: &Map<String, Value>, key: &str) -> Option<bool> {
    object.get(key).and_then(Value::as_bool)
}

fn timestamp(object: &Map<String, Value>, key: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(object.get(key)?.as_str()?, &Rfc3339).ok()
}

fn texts<'a>(object: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a str> {
    object.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

/// One entry of `members@delta`, read straight into this shape rather than into JSON values:
/// a groups round is mostly these.
#[derive(Debug, Deserialize)]
pub(super) struct Member {
    #[serde(rename = "@odata.type", default)]
    kind: MemberType,
    pub id: Option<String>,
    #[serde(rename = "@removed", default)]
    removed: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
enum MemberType {
    #[serde(rename = "#microsoft.graph.user")]
    User,
    #[serde(rename = "#microsoft.graph.group")]
    Group,
    #[serde(rename = "#microsoft.graph.device")]
    Device,
    /// Contacts and service principals, which the model has no place for.
    #[default]
    #[serde(other)]
    Other,
}

impl Member {
    pub(super) fn kind(&self) -> Option<EntityKind> {
        match self.kind {
            MemberType::User => Some(EntityKind::User),
            MemberType::Group => Some(EntityKind::Group),
            MemberType::Device => Some(EntityKind::Device),
            MemberType::Other => None,
        }
    }

    /// Whether the entry says the member left (`@removed`).
    pub(super) fn removed(&self) -> bool {
        self.removed.is_some()
    }
}

/// What the entity model reads of a user entry of a delta page, borrowed from the page's text.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct GraphUser<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(rename = "@removed")]
    removed: Present,
    #[serde(borrow)]
    user_principal_name: Text<'a>,
    #[serde(borrow)]
    display_name: Text<'a>,
    #[serde(borrow)]
    given_name: Text<'a>,
    #[serde(borrow)]
    surname: Text<'a>,
    #[serde(borrow)]
    mail: Text<'a>,
    #[serde(borrow)]
    other_mails: Many<Text<'a>>,
    #[serde(borrow)]
    proxy_addresses: Many<Text<'a>>,
    account_enabled: Flag,
    #[serde(borrow)]
    job_title: Text<'a>,
    #[serde(borrow)]
    department: Text<'a>,
    #[serde(borrow)]
    employee_id: Text<'a>,
    #[serde(borrow)]
    on_premises_immutable_id: Text<'a>,
    #[serde(borrow)]
    on_premises_sam_account_name: Text<'a>,
    #[serde(borrow)]
    on_premises_domain_name: Text<'a>,
    #[serde(borrow)]
    on_premises_security_identifier: Text<'a>,
    #[serde(borrow)]
    created_date_time: Text<'a>,
    #[serde(borrow, rename = "manager@delta")]
    manager: Many<Object<Manager<'a>>>,
}

/// An entry of `manager@delta`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Manager<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(rename = "@removed")]
    removed: Present,
}

impl GraphUser<'_> {
    pub(super) fn id(&self) -> Option<&str> {
        self.id.get()
    }

    /// Whether the entry says the user was deleted (`@removed`).
    pub(super) fn removed(&self) -> bool {
        self.removed.0
    }
}

/// The AD account a synced user comes from: none without its SAM account name.
fn on_premises(graph: &GraphUser) -> Option<OnPremisesAccount> {
    let text = |t: &Text| t.get().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    Some(OnPremisesAccount {
        sam_account_name: text(&graph.on_premises_sam_account_name)?,
        domain: text(&graph.on_premises_domain_name),
        sid: text(&graph.on_premises_security_identifier),
    })
}

/// `accountEnabled: false` is Entra's only "blocked" state; the primary address first, then
/// the other addresses and the SMTP proxy addresses, lowercase and each once.
pub(super) fn user(id: &str, graph: &GraphUser, admin_roles: &[String]) -> User {
    let owned = |t: &Text| t.get().map(str::to_string);
    let mut emails: Vec<String> = Vec::new();
    let proxies = || {
        graph.proxy_addresses.0.iter().filter_map(|p| {
            let (scheme, address) = p.get()?.split_once(':')?;
            scheme.eq_ignore_ascii_case("smtp").then_some(address)
        })
    };
    // Entra verifies `mail` and the SMTP proxy addresses; `otherMails` are user-supplied.
    let verified_emails = User::verified_emails(graph.mail.get().into_iter().chain(proxies()));
    let others = graph.other_mails.0.iter().filter_map(Text::get);
    for address in graph.mail.get().into_iter().chain(others).chain(proxies()) {
        let address = address.trim().to_lowercase();
        if !address.is_empty() && !emails.contains(&address) {
            emails.push(address);
        }
    }
    // The manager arrives as `manager@delta`, a list in which a `@removed` entry takes the
    // previous manager away.
    let manager = graph.manager.0.iter().rev().find(|m| !m.0.removed.0).and_then(|m| owned(&m.0.id));
    User {
        source_id: id.to_string(),
        login: owned(&graph.user_principal_name).unwrap_or_else(|| id.to_string()),
        emails,
        verified_emails,
        immutable_id: User::immutable_id(graph.on_premises_immutable_id.get()),
        on_premises: on_premises(graph),
        display_name: owned(&graph.display_name),
        given_name: owned(&graph.given_name),
        family_name: owned(&graph.surname),
        status: if graph.account_enabled.0 == Some(false) {
            UserStatus::Suspended
        } else {
            UserStatus::Active
        },
        title: owned(&graph.job_title),
        department: owned(&graph.department),
        manager,
        employee_id: owned(&graph.employee_id),
        created_at: graph.created_date_time.get().and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()),
        last_login_at: None,
        source_updated_at: None,
        admin_roles: admin_roles.to_vec(),
        mfa_factors: Vec::new(),
        mfa_enrolled: None,
    }
}

/// `unified` for Microsoft 365 groups, `security` for security groups, `distribution` for
/// mail-only ones.
pub(super) fn group(id: &str, object: &Map<String, Value>) -> Group {
    let unified = texts(object, "groupTypes").any(|t| t.eq_ignore_ascii_case("Unified"));
    let kind = if unified {
        Some("unified")
    } else if flag(object, "securityEnabled") == Some(true) {
        Some("security")
    } else if flag(object, "mailEnabled") == Some(true) {
        Some("distribution")
    } else {
        None
    };
    Group {
        source_id: id.to_string(),
        name: text(object, "displayName").unwrap_or_else(|| id.to_string()),
        email: text(object, "mail").map(|m| m.to_lowercase()),
        description: text(object, "description"),
        kind: kind.map(str::to_string),
    }
}

/// The owner is the first of the device's `registeredOwners` that is a user: Entra gives a
/// device one registered owner (who joined or registered it), and the other directory objects
/// an owner list may hold have no person behind them. A device read without its owners has none.
pub(super) fn device(id: &str, object: &Map<String, Value>) -> Device {
    let owner = object
        .get("registeredOwners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|o| o.get("@odata.type").and_then(Value::as_str) == Some("#microsoft.graph.user"))
        .and_then(|o| o.get("id")?.as_str())
        .map(str::to_string);
    Device {
        source_id: id.to_string(),
        name: text(object, "displayName"),
        os: text(object, "operatingSystem"),
        os_version: text(object, "operatingSystemVersion"),
        status: flag(object, "accountEnabled").map(|e| if e { "enabled" } else { "disabled" }.to_string()),
        managed: flag(object, "isManaged"),
        compliant: flag(object, "isCompliant"),
        trust_type: text(object, "trustType"),
        owner,
        last_seen_at: timestamp(object, "approximateLastSignInDateTime"),
        created_at: timestamp(object, "registrationDateTime"),
        ..Device::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    /// Maps a user entry as a delta round does: read from its text.
    fn read(id: &str, raw: &Value, admin_roles: &[String]) -> User {
        user(id, &serde_json::from_str(&raw.to_string()).unwrap(), admin_roles)
    }

    #[test]
    fn users_gather_their_addresses_once_and_lowercase() {
        let raw = json!({
            "id": "u1",
            "userPrincipalName": "ada@contoso.onmicrosoft.com",
            "mail": "Ada.Lovelace@Contoso.com",
            "otherMails": ["ada@outlook.com"],
            "proxyAddresses": ["SMTP:ada.lovelace@contoso.com", "smtp:ada@contoso.onmicrosoft.com", "X500:/o=x", "sip:ada@contoso.com"],
            "accountEnabled": false,
            "createdDateTime": "2024-01-02T03:04:05Z",
            "onPremisesImmutableId": " AbC+/w== ",
            "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "m1"}],
        });
        let ada = read("u1", &raw, &["Global Administrator".to_string()]);
        assert_eq!(
            ada.emails,
            ["ada.lovelace@contoso.com", "ada@outlook.com", "ada@contoso.onmicrosoft.com"]
        );
        // `otherMails` is user-supplied: not vouched for.
        assert_eq!(ada.verified_emails, ["ada.lovelace@contoso.com", "ada@contoso.onmicrosoft.com"]);
        assert_eq!(ada.immutable_id.as_deref(), Some("AbC+/w=="));
        assert_eq!(ada.status, UserStatus::Suspended);
        assert_eq!(ada.login, "ada@contoso.onmicrosoft.com");
        assert_eq!(ada.manager.as_deref(), Some("m1"));
        assert_eq!(ada.created_at, Some(time::macros::datetime!(2024-01-02 03:04:05 UTC)));
        assert_eq!(ada.admin_roles, ["Global Administrator"]);

        let minimal = read("u2", &json!({"id": "u2"}), &[]);
        assert_eq!(
            (minimal.login.as_str(), minimal.status, minimal.emails.len()),
            ("u2", UserStatus::Active, 0)
        );
        let removed = json!({"manager@delta": [{"id": "m1", "@removed": {"reason": "deleted"}}]});
        assert_eq!(read("u3", &removed, &[]).manager, None);
        let replaced = json!({"manager@delta": [{"id": "m1"}, {"id": "m2", "@removed": null}]});
        assert_eq!(read("u4", &replaced, &[]).manager.as_deref(), Some("m1"));
    }

    #[test]
    fn synced_users_carry_their_active_directory_account() {
        let raw = json!({
            "onPremisesSamAccountName": "alovelace",
            "onPremisesDomainName": "corp.contoso.com",
            "onPremisesSecurityIdentifier": "S-1-5-21-1-2-3-1105",
        });
        let expected = OnPremisesAccount {
            sam_account_name: "alovelace".into(),
            domain: Some("corp.contoso.com".into()),
            sid: Some("S-1-5-21-1-2-3-1105".into()),
        };
        assert_eq!(read("u1", &raw, &[]).on_premises, Some(expected));
        let cloud_only =
            json!({"onPremisesSamAccountName": null, "onPremisesSecurityIdentifier": "S-1-5-21-1"});
        assert_eq!(read("u2", &cloud_only, &[]).on_premises, None, "no account without its name");
    }

    #[test]
    fn a_user_field_of_another_type_reads_as_absent() {
        let raw = json!({
            "id": "u5",
            "userPrincipalName": 5,
            "mail": ["x@contoso.com"],
            "otherMails": "grace@outlook.com",
            "proxyAddresses": ["SMTP:Grace@Contoso.com", 1, {"smtp": "x"}],
            "jobTitle": 5,
            "accountEnabled": "false",
            "manager@delta": {"id": "m1"},
        });
        let grace = read("u5", &raw, &[]);
        assert_eq!(grace.login, "u5");
        assert_eq!(grace.emails, ["grace@contoso.com"]);
        assert_eq!((grace.title, grace.manager), (None, None));
        assert_eq!(grace.status, UserStatus::Active);
        let user: GraphUser = serde_json::from_str(r#"{"id": "u6", "@removed": null}"#).unwrap();
        assert_eq!((user.id(), user.removed()), (Some("u6"), true));
    }

    #[test]
    fn groups_and_devices_map_their_kinds_and_states() {
        let m365 = group(
            "g1",
            &object(json!({"displayName": "Sales", "groupTypes": ["Unified"], "mail": "Sales@Contoso.com"})),
        );
        assert_eq!(
            (m365.kind.as_deref(), m365.email.as_deref()),
            (Some("unified"), Some("sales@contoso.com"))
        );
        assert_eq!(group("g2", &object(json!({"securityEnabled": true}))).kind.as_deref(), Some("security"));
        assert_eq!(group("g3", &object(json!({"mailEnabled": true}))).kind.as_deref(), Some("distribution"));

        let laptop = device(
            "d1",
            &object(json!({
                "displayName": "DESKTOP-1",
                "accountEnabled": false,
                "operatingSystem": "Windows",
                "operatingSystemVersion": "10.0.22631.3447",
                "isManaged": true,
                "isCompliant": false,
                "trustType": "AzureAd",
                "approximateLastSignInDateTime": "2024-05-05T18:15:44Z",
            })),
        );
        assert_eq!(laptop.status.as_deref(), Some("disabled"));
        assert_eq!(laptop.owner, None);
        let owned = device(
            "d2",
            &object(json!({"registeredOwners": [
                {"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp1"},
                {"@odata.type": "#microsoft.graph.user", "id": "u1"},
                {"@odata.type": "#microsoft.graph.user", "id": "u2"},
            ]})),
        );
        assert_eq!(owned.owner.as_deref(), Some("u1"));
        assert_eq!((laptop.managed, laptop.compliant), (Some(true), Some(false)));
        assert!(laptop.last_seen_at.is_some() && laptop.created_at.is_none());
        let members: Vec<Member> = serde_json::from_value(json!([
            {"@odata.type": "#microsoft.graph.device", "id": "d1"},
            {"@odata.type": "#microsoft.graph.user", "id": "u1", "@removed": {"reason": "deleted"}},
            {"@odata.type": "#microsoft.graph.orgContact", "id": "c1"},
        ]))
        .unwrap();
        let read: Vec<_> = members.iter().map(|m| (m.kind(), m.id.as_deref(), m.removed())).collect();
        assert_eq!(
            read,
            [
                (Some(EntityKind::Device), Some("d1"), false),
                (Some(EntityKind::User), Some("u1"), true),
                (None, Some("c1"), false)
            ]
        );
    }
}
