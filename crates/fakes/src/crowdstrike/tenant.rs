//! The fake Falcon customer's hosts: a fleet generated from the shared directory (the same people
//! as the identity fakes, logging on as `ACME\handle`, `handle@acme.com` or `handle`), with a
//! few shared kiosks and a hostname reused by a replacement machine. Every mutation moves the
//! host's `modified_timestamp`, as Falcon does.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::admin::Fleet;
use crate::common::{HEX, Seeded, now, seconds};
use crate::directory::{self, Directory, MAIL_DOMAIN, NETBIOS, Status, TenantSpec};

/// The NetBIOS domain Windows hosts log users on with.
/// Shared machines at the front desks, used by whoever is on shift.
const KIOSKS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Windows,
    Mac,
    Linux,
}

/// One host as Falcon knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CrowdStrikeHost {
    /// The agent id (AID): 32 lowercase hex digits.
    pub device_id: String,
    pub hostname: String,
    pub platform: Platform,
    /// The OS build, which an upgrade moves.
    pub os_build: String,
    pub serial_number: String,
    /// Hyphenated lowercase, as Falcon writes it.
    pub mac_address: String,
    /// The interface the host last connected through, when another than `mac_address`.
    pub connection_mac_address: Option<String>,
    pub local_ip: String,
    pub external_ip: String,
    pub agent_version: String,
    /// The handle of the last person to log on, as the host names them.
    pub last_login_user: Option<String>,
    /// A Windows SID or a POSIX uid.
    pub last_login_id: Option<String>,
    /// `normal` or `contained`.
    pub status: &'static str,
    pub tags: Vec<String>,
    pub site_name: String,
    pub first_seen: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    pub modified: OffsetDateTime,
    /// Hidden ("deleted") in the console: listed only by the hidden-hosts endpoints.
    pub hidden: bool,
}

impl CrowdStrikeHost {
    /// The host as the combined and entities endpoints serve it.
    pub fn to_json(&self, cid: &str) -> Value {
        let (platform, product, version) = match self.platform {
            Platform::Windows => ("Windows", "Windows 11 Enterprise", "Windows 11"),
            Platform::Mac => ("Mac", "macOS Sonoma", "Sonoma (14)"),
            Platform::Linux => ("Linux", "Ubuntu 22.04", "Ubuntu 22.04"),
        };
        let mut host = json!({
            "device_id": self.device_id,
            "cid": cid,
            "hostname": self.hostname,
            "platform_name": platform,
            "os_product_name": product,
            "os_version": version,
            "os_build": self.os_build,
            "agent_version": self.agent_version,
            "serial_number": self.serial_number,
            "mac_address": self.mac_address,
            "local_ip": self.local_ip,
            "external_ip": self.external_ip,
            "connection_ip": self.local_ip,
            "status": self.status,
            "tags": self.tags,
            "site_name": self.site_name,
            "product_type_desc": "Workstation",
            "first_seen": seconds(self.first_seen),
            "last_seen": seconds(self.last_seen),
            "modified_timestamp": seconds(self.modified),
            "host_hidden_status": if self.hidden { "hidden" } else { "visible" },
        });
        let fields = host.as_object_mut().expect("an object");
        if let Some(mac) = &self.connection_mac_address {
            fields.insert("connection_mac_address".into(), json!(mac));
        }
        if let Some(user) = &self.last_login_user {
            fields.insert("last_login_user".into(), json!(user));
        }
        match (&self.last_login_id, self.platform) {
            (Some(sid), Platform::Windows) => fields.insert("last_login_user_sid".into(), json!(sid)),
            (Some(uid), _) => fields.insert("last_login_uid".into(), json!(uid)),
            (None, _) => None,
        };
        host
    }
}

/// A Falcon customer (CID) and its hosts by AID.
pub struct CrowdStrikeTenant {
    pub cid: String,
    pub hosts: BTreeMap<String, CrowdStrikeHost>,
    /// The people's handles, whom mutations may log on, and each one's index in the directory.
    handles: Vec<String>,
    people: HashMap<String, usize>,
    rng: Seeded,
}

impl CrowdStrikeTenant {
    pub(crate) fn from_directory(directory: &Directory, spec: &TenantSpec) -> Self {
        let mut rng = Seeded::new(spec.seed, "crowdstrike");
        let handles: Vec<String> = directory.people.iter().map(|p| p.handle.clone()).collect();
        let active: Vec<usize> =
            (0..directory.people.len()).filter(|&i| directory.people[i].status == Status::Active).collect();
        let people = handles.iter().enumerate().map(|(i, h)| (h.clone(), i)).collect();
        let mut tenant =
            CrowdStrikeTenant { cid: rng.chars(HEX, 32), hosts: BTreeMap::new(), handles, people, rng };
        let epoch = OffsetDateTime::UNIX_EPOCH + Duration::days(19_723); // 2024-01-01
        for i in 0..spec.devices + KIOSKS {
            let kiosk = i >= spec.devices;
            let platform = match (kiosk, i % 5) {
                (true, _) | (false, 0..=2) => Platform::Windows,
                (false, 3) => Platform::Mac,
                _ => Platform::Linux,
            };
            let hostname = if kiosk {
                format!("ACME-KIOSK-{:02}", i - spec.devices + 1)
            } else {
                format!("ACME-{}-{:04}", ["LT", "LT", "DT", "MBP", "SRV"][i % 5], i + 1)
            };
            let person = active[tenant.rng.below(active.len())];
            let first_seen = epoch + Duration::minutes((i * 1440 + tenant.rng.below(1440)) as i64);
            let last_seen =
                first_seen + Duration::days(30) + Duration::seconds(tenant.rng.below(86_400 * 30) as i64);
            let id = tenant.insert(
                hostname,
                platform,
                Some(&directory.people[person].handle.clone()),
                i,
                first_seen,
            );
            let host = tenant.hosts.get_mut(&id).expect("just inserted");
            host.last_seen = last_seen;
            host.modified = last_seen;
        }
        // A laptop replaced by a new one of the same name: the old host is hidden.
        if spec.devices > 0 {
            let name = format!("ACME-LT-{:04}", 1);
            let retired = tenant.insert(name, Platform::Windows, None, spec.devices + KIOSKS, epoch);
            tenant.hosts.get_mut(&retired).expect("just inserted").hidden = true;
        }
        tenant
    }

    fn insert(
        &mut self,
        hostname: String,
        platform: Platform,
        handle: Option<&str>,
        n: usize,
        seen: OffsetDateTime,
    ) -> String {
        let (last_login_user, last_login_id) = handle.map(|h| self.login(platform, h)).unzip();
        let rng = &mut self.rng;
        let device_id = rng.chars(HEX, 32);
        let mac = |rng: &mut Seeded| {
            let hex = rng.chars(HEX, 10);
            format!("14-{}", (0..5).map(|i| &hex[2 * i..2 * i + 2]).collect::<Vec<_>>().join("-"))
        };
        let mac_address = mac(rng);
        let connection_mac_address = n.is_multiple_of(3).then(|| mac(rng));
        let host = CrowdStrikeHost {
            device_id: device_id.clone(),
            hostname,
            platform,
            os_build: match platform {
                Platform::Windows => "22631",
                Platform::Mac => "23F79",
                Platform::Linux => "5.15.0-105-generic",
            }
            .to_string(),
            serial_number: rng.chars(b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", 10),
            mac_address,
            connection_mac_address,
            local_ip: format!("10.0.{}.{}", n / 250 % 250, n % 250 + 2),
            external_ip: format!("203.0.113.{}", n % 250 + 1),
            agent_version: ["7.10.17706.0", "7.11.18110.0", "7.12.18404.0"][n % 3].to_string(),
            last_login_user,
            last_login_id,
            status: "normal",
            tags: if n.is_multiple_of(4) {
                vec!["FalconGroupingTags/Finance".to_string()]
            } else {
                Vec::new()
            },
            site_name: ["HQ", "Berlin", "Remote"][n % 3].to_string(),
            first_seen: seen,
            last_seen: seen,
            modified: seen,
            hidden: false,
        };
        self.hosts.insert(device_id.clone(), host);
        device_id
    }

    /// How a `platform` host names the person with `handle`, and the id it gives them: their AD
    /// account's SID on Windows (one outside the directory for a handle it does not know), a
    /// local uid elsewhere.
    fn login(&self, platform: Platform, handle: &str) -> (String, String) {
        let n = self.people.get(handle).copied().unwrap_or(self.handles.len());
        match platform {
            Platform::Windows => (format!("{NETBIOS}\\{handle}"), directory::sid(n)),
            Platform::Mac => (format!("{handle}@{MAIL_DOMAIN}"), (501 + n % 50).to_string()),
            Platform::Linux => (handle.to_string(), (1000 + n).to_string()),
        }
    }

    /// Changes `id`'s host with `change`, moving its `modified_timestamp` to now; `false` when
    /// there is no such host.
    fn change(&mut self, id: &str, change: impl FnOnce(&mut CrowdStrikeHost)) -> bool {
        let Some(host) = self.hosts.get_mut(id) else { return false };
        change(host);
        host.modified = now().replace_nanosecond(0).expect("zero nanoseconds");
        true
    }

    /// A new machine whose sensor just checked in, last used by the person with `handle`; its AID.
    pub fn add_host(&mut self, hostname: &str, handle: &str) -> String {
        let n = self.hosts.len();
        let at = now().replace_nanosecond(0).expect("zero nanoseconds");
        self.insert(hostname.to_string(), Platform::Windows, Some(handle), n, at)
    }

    /// Hidden in the console (Falcon's "delete"): gone from the host listings, shown by the
    /// hidden-hosts ones.
    pub fn hide_host(&mut self, id: &str) -> bool {
        self.change(id, |h| h.hidden = true)
    }

    pub fn unhide_host(&mut self, id: &str) -> bool {
        self.change(id, |h| h.hidden = false)
    }

    /// The person with `handle` logged on last.
    pub fn set_last_user(&mut self, id: &str, handle: &str) -> bool {
        let Some(host) = self.hosts.get(id) else { return false };
        let (user, uid) = self.login(host.platform, handle);
        self.change(id, |h| {
            h.last_login_user = Some(user);
            h.last_login_id = Some(uid);
        })
    }

    /// Network containment: the host talks only to the Falcon cloud.
    pub fn contain(&mut self, id: &str) -> bool {
        self.change(id, |h| h.status = "contained")
    }

    pub fn lift_containment(&mut self, id: &str) -> bool {
        self.change(id, |h| h.status = "normal")
    }

    /// An OS update installed: the host reports a new build.
    pub fn update_os(&mut self, id: &str, build: &str) -> bool {
        self.change(id, |h| h.os_build = build.to_string())
    }

    pub fn set_tags(&mut self, id: &str, tags: &[&str]) -> bool {
        self.change(id, |h| h.tags = tags.iter().map(|t| t.to_string()).collect())
    }

    /// The people's handles, in the directory's order.
    pub fn handles(&self) -> &[String] {
        &self.handles
    }

    /// Every visible host by AID, as the API serves it.
    pub fn snapshot(&self) -> BTreeMap<String, Value> {
        self.hosts
            .values()
            .filter(|h| !h.hidden)
            .map(|h| (h.device_id.clone(), h.to_json(&self.cid)))
            .collect()
    }
}

impl Fleet for CrowdStrikeTenant {
    fn hosts(&self) -> Vec<(String, bool)> {
        self.hosts
            .values()
            .filter(|h| !h.hidden)
            .map(|h| (h.device_id.clone(), h.status == "contained"))
            .collect()
    }

    fn set_contained(&mut self, id: &str, contained: bool) {
        if contained {
            self.contain(id)
        } else {
            self.lift_containment(id)
        };
    }

    fn add(&mut self, hostname: &str, handle: &str) -> String {
        self.add_host(hostname, handle)
    }

    fn log_on(&mut self, id: &str, handle: &str) {
        self.set_last_user(id, handle);
    }

    fn update_os(&mut self, id: &str, build: &str) {
        CrowdStrikeTenant::update_os(self, id, build);
    }

    fn retire(&mut self, id: &str) {
        self.hide_host(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleets_are_seeded_with_kiosks_and_a_reused_name() {
        let spec = TenantSpec { seed: 3, users: 30, groups: 2, devices: 12 };
        let directory = Directory::generate(&spec);
        let tenant = CrowdStrikeTenant::from_directory(&directory, &spec);
        assert_eq!(tenant.hosts.len(), 12 + KIOSKS + 1);
        assert_eq!(tenant.snapshot().len(), 12 + KIOSKS);
        assert!(tenant.hosts.keys().all(|id| id.len() == 32 && id.chars().all(|c| HEX.contains(&(c as u8)))));
        let named = |name: &str| tenant.hosts.values().filter(|h| h.hostname == name).count();
        assert_eq!(named("ACME-LT-0001"), 2, "a replaced laptop's name is reused");
        assert_eq!(named("ACME-KIOSK-01"), 1);
        let users: Vec<&str> = tenant.hosts.values().filter_map(|h| h.last_login_user.as_deref()).collect();
        assert!(
            users.iter().any(|u| u.starts_with("ACME\\")) && users.iter().any(|u| u.ends_with("@acme.com"))
        );
        let again = CrowdStrikeTenant::from_directory(&directory, &spec);
        assert_eq!(again.snapshot(), tenant.snapshot());
    }

    #[test]
    fn mutations_move_the_modified_timestamp() {
        let spec = TenantSpec::default();
        let mut tenant = CrowdStrikeTenant::from_directory(&Directory::generate(&spec), &spec);
        let id = tenant.hosts.keys().next().unwrap().clone();
        let before = tenant.hosts[&id].modified;
        assert!(tenant.contain(&id));
        assert!(tenant.hosts[&id].modified > before);
        assert_eq!(tenant.hosts[&id].status, "contained");
        assert!(!tenant.contain("nope"));
    }
}
