//! SentinelOne's agent objects as devices. Every field is read as optional (a field of another
//! type reads as absent); the object itself is kept whole as the record's raw JSON.

use ctxsync_core::{Device, Entity, Record};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A non-empty string at `key`: SentinelOne writes `""` for what it does not know (a host
/// nobody logged on to has `lastLoggedInUserName: ""`).
fn text(object: &Value, key: &str) -> Option<String> {
    object.get(key)?.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn flag(object: &Value, key: &str) -> bool {
    object.get(key).and_then(Value::as_bool) == Some(true)
}

pub(super) fn timestamp(object: &Value, key: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(object.get(key)?.as_str()?, &Rfc3339).ok()
}

fn items<'v>(object: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    object.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn push_once(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Decommissioned agents stay listed (asked for with `isDecommissioned=true,false`), so a host
/// taken out of the fleet is reflected as such rather than silently missing.
fn status(agent: &Value) -> &'static str {
    if flag(agent, "isDecommissioned") {
        "decommissioned"
    } else if flag(agent, "isUninstalled") {
        "uninstalled"
    } else {
        "active"
    }
}

/// A tag as `key:value`, or its value alone when it has no key.
fn tag(entry: &Value) -> Option<String> {
    match (text(entry, "key"), text(entry, "value")) {
        (Some(key), Some(value)) => Some(format!("{key}:{value}")),
        (None, Some(value)) => Some(value),
        (Some(key), None) => Some(key),
        (None, None) => None,
    }
}

/// An agent as a device; `None` for an object without an id.
pub(super) fn agent(raw: &Value) -> Option<Record> {
    let source_id = text(raw, "id")?;
    let (mut mac_addresses, mut local_ips) = (Vec::new(), Vec::new());
    for interface in items(raw, "networkInterfaces") {
        if let Some(mac) = interface.get("physical").and_then(Value::as_str).and_then(Device::mac_address) {
            push_once(&mut mac_addresses, mac);
        }
        for ip in
            items(interface, "inet").filter_map(Value::as_str).map(str::trim).filter(|ip| !ip.is_empty())
        {
            push_once(&mut local_ips, ip.to_string());
        }
    }
    let mut tags = Vec::new();
    // `tags` is an object of tag sources; the console's own tags are under `sentinelone`.
    for entry in raw.pointer("/tags/sentinelone").and_then(Value::as_array).into_iter().flatten() {
        if let Some(tag) = tag(entry) {
            push_once(&mut tags, tag);
        }
    }
    let containment = if flag(raw, "networkQuarantineEnabled") {
        Some("contained".to_string())
    } else {
        text(raw, "networkStatus")
    };
    let device = Device {
        source_id,
        name: text(raw, "computerName"),
        os: text(raw, "osName").or_else(|| text(raw, "osType")),
        os_version: text(raw, "osRevision"),
        status: Some(status(raw).to_string()),
        last_seen_at: timestamp(raw, "lastActiveDate"),
        created_at: timestamp(raw, "registeredAt").or_else(|| timestamp(raw, "createdAt")),
        serial_number: text(raw, "serialNumber"),
        mac_addresses,
        local_ips,
        external_ip: text(raw, "externalIp"),
        agent_version: text(raw, "agentVersion"),
        last_user: text(raw, "lastLoggedInUserName"),
        containment,
        tags,
        site: text(raw, "siteName"),
        ..Device::default()
    };
    Some(Record::from_value(Entity::Device(device), raw))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn device(raw: &Value) -> Device {
        match agent(raw).expect("an agent with an id").entity {
            Entity::Device(device) => device,
            other => panic!("expected a device, got {other:?}"),
        }
    }

    fn windows_laptop() -> Value {
        json!({
            "id": "1358432109287612345",
            "uuid": "ff819e70af13be381993075eb0ce5f2f",
            "computerName": "ACME-LT-0042",
            "osType": "windows",
            "osName": "Windows 11 Pro",
            "osRevision": "22631",
            "serialNumber": "5CD1234XYZ",
            "agentVersion": "23.4.2.14",
            "externalIp": "203.0.113.7",
            "lastLoggedInUserName": "ACME\\ada.lovelace",
            "siteName": "Default site",
            "networkStatus": "connected",
            "networkQuarantineEnabled": false,
            "isActive": true,
            "isDecommissioned": false,
            "isUninstalled": false,
            "lastActiveDate": "2024-05-05T18:15:44.120456Z",
            "registeredAt": "2024-01-02T03:04:05.000006Z",
            "createdAt": "2024-01-01T00:00:00.000000Z",
            "updatedAt": "2024-05-05T18:15:44.120456Z",
            "networkInterfaces": [
                {"name": "Ethernet", "inet": ["10.0.0.5"], "inet6": ["fe80::1"], "physical": "14-7D-DA-AD-AC-71"},
                {"name": "Wi-Fi", "inet": ["192.168.1.20", "10.0.0.5"], "physical": "147d.daad.ac72"},
                {"name": "Loopback", "inet": ["127.0.0.1"], "physical": "00-00-00-00-00-00"},
                {"name": "Duplicate", "inet": [], "physical": "14:7d:da:ad:ac:71"},
            ],
            "tags": {"sentinelone": [
                {"id": "1", "key": "env", "value": "prod", "assignedAt": "2024-01-01T00:00:00.000000Z"},
                {"id": "2", "key": "", "value": "finance"},
                {"id": "3", "key": "env", "value": "prod"},
            ]},
        })
    }

    #[test]
    fn an_agent_reads_what_is_there() {
        let raw = windows_laptop();
        let record = agent(&raw).unwrap();
        assert_eq!(serde_json::from_str::<Value>(record.raw.get()).unwrap(), raw, "raw JSON kept whole");
        let d = device(&raw);
        assert_eq!(d.source_id, "1358432109287612345");
        assert_eq!(d.name.as_deref(), Some("ACME-LT-0042"));
        assert_eq!((d.os.as_deref(), d.os_version.as_deref()), (Some("Windows 11 Pro"), Some("22631")));
        assert_eq!(d.serial_number.as_deref(), Some("5CD1234XYZ"));
        assert_eq!(d.agent_version.as_deref(), Some("23.4.2.14"));
        assert_eq!(d.external_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(d.last_user.as_deref(), Some("ACME\\ada.lovelace"));
        assert_eq!(d.site.as_deref(), Some("Default site"));
        assert_eq!(d.status.as_deref(), Some("active"));
        assert_eq!(d.containment.as_deref(), Some("connected"));
        assert_eq!(d.last_seen_at.unwrap().microsecond(), 120_456);
        assert_eq!(d.created_at.unwrap().microsecond(), 6, "registeredAt before createdAt");
        assert_eq!((d.owner, d.managed, d.last_user_id), (None, None, None));
    }

    #[test]
    fn macs_are_normalized_and_addresses_listed_once() {
        let d = device(&windows_laptop());
        assert_eq!(d.mac_addresses, ["14:7d:da:ad:ac:71", "14:7d:da:ad:ac:72"], "zeros and repeats dropped");
        assert_eq!(d.local_ips, ["10.0.0.5", "192.168.1.20", "127.0.0.1"]);
    }

    #[test]
    fn tags_are_read_from_their_object() {
        assert_eq!(device(&windows_laptop()).tags, ["env:prod", "finance"]);
        for tags in [json!(["env:prod"]), json!({"sentinelone": "x"}), json!(null), json!({})] {
            let mut raw = windows_laptop();
            raw["tags"] = tags.clone();
            assert!(device(&raw).tags.is_empty(), "{tags}");
        }
    }

    #[test]
    fn an_empty_last_user_is_absent() {
        let mut raw = windows_laptop();
        raw["lastLoggedInUserName"] = json!("");
        assert_eq!(device(&raw).last_user, None);
        raw["lastLoggedInUserName"] = json!(null);
        assert_eq!(device(&raw).last_user, None);
    }

    #[test]
    fn lifecycle_and_containment_are_the_agents() {
        let mut raw = windows_laptop();
        raw["networkQuarantineEnabled"] = json!(true);
        raw["networkStatus"] = json!("disconnected");
        assert_eq!(device(&raw).containment.as_deref(), Some("contained"));
        raw["isUninstalled"] = json!(true);
        assert_eq!(device(&raw).status.as_deref(), Some("uninstalled"));
        raw["isDecommissioned"] = json!(true);
        raw["isActive"] = json!(false);
        assert_eq!(device(&raw).status.as_deref(), Some("decommissioned"));
    }

    #[test]
    fn fields_of_another_type_read_as_absent() {
        let raw = json!({
            "id": "7",
            "computerName": 5,
            "osName": "",
            "osType": "linux",
            "networkInterfaces": {"physical": "14-7D-DA-AD-AC-71"},
            "registeredAt": "yesterday",
            "createdAt": "2024-01-01T00:00:00.000000Z",
            "isDecommissioned": "true",
        });
        let d = device(&raw);
        assert_eq!((d.name, d.os.as_deref()), (None, Some("linux")));
        assert!(d.mac_addresses.is_empty());
        assert_eq!(d.created_at.unwrap().year(), 2024);
        assert_eq!(d.status.as_deref(), Some("active"));
        assert!(agent(&json!({"id": 7})).is_none());
        assert!(agent(&json!({"computerName": "x"})).is_none());
    }
}
