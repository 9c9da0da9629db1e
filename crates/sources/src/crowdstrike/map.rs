//! Falcon hosts (`DeviceapiDeviceSwagger`) in the normalized entity model. The host object is
//! kept whole as the record's raw JSON; a field of an unexpected type reads as absent.

use ctxsync_core::{Device, Entity, Record};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn text(host: &Map<String, Value>, key: &str) -> Option<String> {
    host.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn timestamp(host: &Map<String, Value>, key: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(host.get(key)?.as_str()?, &Rfc3339).ok()
}

/// The host's `modified_timestamp`, which incremental runs filter on.
pub(super) fn modified(host: &Value) -> Option<OffsetDateTime> {
    timestamp(host.as_object()?, "modified_timestamp")
}

/// The host as a device record; `None` without a `device_id` (the AID), which every host has.
pub(super) fn device(raw: &Value) -> Option<Record> {
    let host = raw.as_object()?;
    let source_id = text(host, "device_id")?;
    let mut mac_addresses: Vec<String> = Vec::new();
    for mac in ["mac_address", "connection_mac_address"].iter().filter_map(|k| text(host, k)) {
        if let Some(mac) = Device::mac_address(&mac)
            && !mac_addresses.contains(&mac)
        {
            mac_addresses.push(mac);
        }
    }
    let device = Device {
        source_id,
        name: text(host, "hostname"),
        os: text(host, "platform_name").or_else(|| text(host, "os_product_name")),
        os_version: text(host, "os_version"),
        os_build: text(host, "os_build"),
        serial_number: text(host, "serial_number"),
        mac_addresses,
        local_ips: text(host, "local_ip").into_iter().collect(),
        external_ip: text(host, "external_ip"),
        agent_version: text(host, "agent_version"),
        last_seen_at: timestamp(host, "last_seen"),
        created_at: timestamp(host, "first_seen"),
        last_user: text(host, "last_login_user"),
        last_user_id: text(host, "last_login_uid").or_else(|| text(host, "last_login_user_sid")),
        containment: text(host, "status"),
        tags: host
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        site: text(host, "site_name"),
        ..Device::default()
    };
    Some(Record::from_value(Entity::Device(device), raw))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn mapped(raw: Value) -> Device {
        match device(&raw).expect("a host with an id").entity {
            Entity::Device(d) => d,
            other => panic!("expected a device, got {other:?}"),
        }
    }

    #[test]
    fn a_host_becomes_a_device_with_its_edr_fields() {
        let raw = json!({
            "device_id": "4f1c0a2b9d8e7f60a1b2c3d4e5f60718",
            "cid": "0123456789abcdef0123456789abcdef",
            "hostname": "ACME-LT-0042",
            "platform_name": "Windows",
            "os_product_name": "Windows 11 Enterprise",
            "os_version": "Windows 11",
            "os_build": "22631",
            "serial_number": "PF3XK2LM",
            "mac_address": "14-7d-da-ad-ac-71",
            "connection_mac_address": "14-7D-DA-AD-AC-72",
            "local_ip": "10.0.4.17",
            "external_ip": "203.0.113.9",
            "agent_version": "7.10.17706.0",
            "first_seen": "2024-01-02T03:04:05Z",
            "last_seen": "2024-06-01T10:00:00Z",
            "modified_timestamp": "2024-06-01T10:00:01Z",
            "last_login_user": "ACME\\ada",
            "last_login_user_sid": "S-1-5-21-1-2-3-1001",
            "status": "contained",
            "tags": ["FalconGroupingTags/Finance"],
            "site_name": "HQ",
        });
        let record = device(&raw).unwrap();
        assert_eq!(serde_json::from_str::<Value>(record.raw.get()).unwrap(), raw, "raw JSON kept whole");
        let d = mapped(raw.clone());
        assert_eq!(d.source_id, "4f1c0a2b9d8e7f60a1b2c3d4e5f60718");
        assert_eq!(d.name.as_deref(), Some("ACME-LT-0042"));
        assert_eq!(d.os.as_deref(), Some("Windows"));
        assert_eq!(d.os_version.as_deref(), Some("Windows 11"));
        assert_eq!(d.os_build.as_deref(), Some("22631"));
        assert_eq!(d.serial_number.as_deref(), Some("PF3XK2LM"));
        assert_eq!(d.mac_addresses, ["14:7d:da:ad:ac:71", "14:7d:da:ad:ac:72"]);
        assert_eq!(d.local_ips, ["10.0.4.17"]);
        assert_eq!(d.external_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(d.agent_version.as_deref(), Some("7.10.17706.0"));
        assert_eq!(d.created_at, Some(datetime!(2024-01-02 03:04:05 UTC)));
        assert_eq!(d.last_seen_at, Some(datetime!(2024-06-01 10:00:00 UTC)));
        assert_eq!(d.last_user.as_deref(), Some("ACME\\ada"));
        assert_eq!(d.last_user_id.as_deref(), Some("S-1-5-21-1-2-3-1001"));
        assert_eq!(d.containment.as_deref(), Some("contained"));
        assert_eq!(d.tags, ["FalconGroupingTags/Finance"]);
        assert_eq!(d.site.as_deref(), Some("HQ"));
        assert_eq!(modified(&raw), Some(datetime!(2024-06-01 10:00:01 UTC)));
        let uid = mapped(json!({"device_id": "a", "last_login_uid": "501", "last_login_user_sid": "S-1"}));
        assert_eq!(uid.last_user_id.as_deref(), Some("501"), "the uid first");
    }

    #[test]
    fn macs_are_normalized_and_each_kept_once() {
        let d = mapped(json!({
            "device_id": "a",
            "mac_address": "14-7d-da-ad-ac-71",
            "connection_mac_address": "14:7D:DA:AD:AC:71",
        }));
        assert_eq!(d.mac_addresses, ["14:7d:da:ad:ac:71"]);
        let junk = mapped(
            json!({"device_id": "a", "mac_address": "00-00-00-00-00-00", "connection_mac_address": "n/a"}),
        );
        assert!(junk.mac_addresses.is_empty());
    }

    #[test]
    fn missing_or_odd_fields_read_as_absent() {
        let d = mapped(json!({
            "device_id": "a",
            "hostname": "",
            "os_product_name": "macOS Sonoma",
            "tags": "not-a-list",
            "first_seen": "yesterday",
            "local_ip": 7,
        }));
        assert_eq!(d.name, None);
        assert_eq!(d.os.as_deref(), Some("macOS Sonoma"), "the product name when there is no platform");
        assert!(d.tags.is_empty() && d.local_ips.is_empty());
        assert_eq!((d.created_at, d.last_seen_at, d.containment), (None, None, None));
        assert!(device(&json!({"hostname": "no-id"})).is_none());
        assert!(device(&json!(["not", "a", "host"])).is_none());
    }
}
