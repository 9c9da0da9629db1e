//! A SentinelOne account's agents, in the Management API's JSON shape, and the changes a test
//! makes between runs.
//!
//! The fleet is generated from the shared directory, so `lastLoggedInUserName` names the same
//! people the identity fakes serve (`ACME\handle` on Windows, `handle` elsewhere). It has what
//! real fleets have: shared kiosks, hostnames reused by a reimaged machine (the old agent
//! decommissioned), agents nobody logged on to, quarantined hosts. Every change stamps
//! `updatedAt` to the microsecond, so `updatedAt__gt` finds exactly what changed.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

use crate::admin::Fleet;
use crate::common::{HEX, Seeded, now};
use crate::directory::{Directory, NETBIOS, Person, TenantSpec};

/// The NetBIOS domain Windows hosts log users on to.
const ACCOUNT_ID: &str = "433241117337583618";
const ACCOUNT_NAME: &str = "Acme";
const SITES: [(&str, &str); 2] = [("433241117346068099", "Default site"), ("433241117354456708", "Remote")];
/// Ids are 19 digits, so they sort as strings the way they sort as numbers.
const FIRST_ID: u64 = 1_900_000_000_000_000_000;

/// A network interface as the agent reports it.
#[derive(Debug, Clone)]
pub struct AgentInterface {
    pub name: String,
    pub inet: Vec<String>,
    /// The MAC address as the host writes it (`14-7D-DA-AD-AC-71` on Windows).
    pub physical: String,
}

/// One agent. Changing it through [`SentinelOneTenant::update_agent`] moves its `updatedAt`.
#[derive(Debug, Clone)]
pub struct SentinelOneAgent {
    id: String,
    uuid: String,
    pub computer_name: String,
    /// `windows`, `macos` or `linux`.
    pub os_type: &'static str,
    pub os_name: String,
    pub os_revision: String,
    /// `laptop`, `desktop` or `server`.
    pub machine_type: &'static str,
    pub model_name: String,
    pub serial_number: String,
    pub agent_version: String,
    /// Index into the account's sites.
    pub site: usize,
    /// `""` when nobody has logged on.
    pub last_logged_in_user_name: String,
    pub external_ip: String,
    pub interfaces: Vec<AgentInterface>,
    /// `(key, value)` of the console's tags; a key may be empty.
    pub tags: Vec<(String, String)>,
    pub is_active: bool,
    pub is_decommissioned: bool,
    pub is_uninstalled: bool,
    /// `connected`, `disconnected`, `connecting` or `disconnecting`.
    pub network_status: &'static str,
    pub network_quarantine_enabled: bool,
    pub registered_at: OffsetDateTime,
    pub last_active_date: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The account: what the fake serves, and what a test changes through
/// [`crate::FakeSentinelOne::mutate`].
pub struct SentinelOneTenant {
    /// Keyed by id, in creation order.
    agents: BTreeMap<String, SentinelOneAgent>,
    /// The token's own user, for `/user`.
    pub(crate) user: Value,
    rng: Seeded,
    next_agent: u64,
    /// The last time handed to a change, so changes are stamped in the order they were made.
    clock: OffsetDateTime,
}

/// `2018-02-27T04:49:26.257525Z`, the form SentinelOne writes.
pub(crate) fn micros(t: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).expect("UTC timestamps format")
}

/// A kind of host the fleet has.
struct HostKind {
    os_type: &'static str,
    os_name: &'static str,
    os_revision: &'static str,
    machine_type: &'static str,
    model: &'static str,
    serial_prefix: &'static str,
}

const HOST_KINDS: &[HostKind] = &[
    HostKind {
        os_type: "windows",
        os_name: "Windows 11 Pro",
        os_revision: "22631",
        machine_type: "laptop",
        model: "Dell Inc. - Latitude 7440",
        serial_prefix: "5CD",
    },
    HostKind {
        os_type: "windows",
        os_name: "Windows 10 Enterprise",
        os_revision: "19045",
        machine_type: "desktop",
        model: "HP - EliteDesk 800 G6",
        serial_prefix: "MXL",
    },
    HostKind {
        os_type: "macos",
        os_name: "macOS",
        os_revision: "14.4.1 (23E224)",
        machine_type: "laptop",
        model: "MacBookPro18,3",
        serial_prefix: "C02",
    },
    HostKind {
        os_type: "linux",
        os_name: "Ubuntu 22.04.4 LTS",
        os_revision: "5.15.0-105-generic",
        machine_type: "server",
        model: "VMware, Inc. - VMware Virtual Platform",
        serial_prefix: "VMW",
    },
];

const AGENT_VERSIONS: &[&str] = &["23.4.2.14", "23.4.4.223", "24.1.2.6"];

impl SentinelOneTenant {
    pub(crate) fn generate(spec: &TenantSpec) -> Self {
        let directory = Directory::generate(spec);
        let mut rng = Seeded::new(spec.seed, "sentinelone");
        let admin = &directory.people[crate::directory::ADMIN];
        let user = json!({
            "id": "433241117371233925",
            "email": format!("{}@{}", admin.handle, crate::directory::MAIL_DOMAIN),
            "fullName": format!("{} {}", admin.given, admin.family),
            "scope": "account",
            "scopeRoles": [{"accountName": ACCOUNT_NAME, "id": ACCOUNT_ID, "roleName": "Viewer"}],
            "lastLogin": "2024-06-01T09:00:00.000000Z",
        });
        let mut tenant = SentinelOneTenant {
            agents: BTreeMap::new(),
            user,
            rng: Seeded::new(spec.seed, "sentinelone ids"),
            next_agent: 0,
            clock: OffsetDateTime::UNIX_EPOCH,
        };
        let people = &directory.people;
        for i in 0..spec.devices {
            let person = &people[rng.below(people.len())];
            let kind = rng.pick(HOST_KINDS);
            let name = match kind.os_type {
                "macos" => format!("{}s-MacBook-Pro", person.given),
                "linux" => format!("srv-{:03}", i),
                _ => {
                    format!("{NETBIOS}-{}-{:04}", if kind.machine_type == "laptop" { "LT" } else { "DT" }, i)
                }
            };
            let registered = person.created + Duration::days(1 + rng.below(300) as i64);
            // Every eighth host was reimaged: its first agent stays, decommissioned, under the same name.
            if i % 8 == 3 {
                let old =
                    tenant.generated(&mut rng, kind, &name, Some(person), registered - Duration::days(200));
                old.is_decommissioned = true;
                old.is_active = false;
                old.network_status = "disconnected";
            }
            let user = (kind.os_type != "linux" || rng.below(2) == 0).then_some(person);
            let agent = tenant.generated(&mut rng, kind, &name, user, registered);
            match rng.below(20) {
                0 => {
                    agent.is_decommissioned = true;
                    agent.is_active = false;
                }
                1 => {
                    agent.network_quarantine_enabled = true;
                    agent.network_status = "disconnected";
                }
                2 => agent.is_uninstalled = true,
                _ => {}
            }
            if rng.below(3) == 0 {
                agent.tags.push(("department".into(), person.department.into()));
            }
        }
        // Shared kiosks: anyone may be the last to have logged on.
        for k in 0..spec.devices.div_ceil(10) {
            let person = &people[rng.below(people.len())];
            let registered = person.created + Duration::days(1 + rng.below(300) as i64);
            let name = format!("{NETBIOS}-KIOSK-{:02}", k + 1);
            let agent = tenant.generated(&mut rng, &HOST_KINDS[1], &name, Some(person), registered);
            agent.tags.push(("".into(), "kiosk".into()));
            agent.tags.push(("location".into(), "lobby".into()));
        }
        tenant
    }

    /// A new agent of `kind` registered at `registered`, last used by `user`.
    fn generated(
        &mut self,
        rng: &mut Seeded,
        kind: &HostKind,
        name: &str,
        user: Option<&Person>,
        registered: OffsetDateTime,
    ) -> &mut SentinelOneAgent {
        let micros_of = |rng: &mut Seeded| Duration::microseconds(rng.below(1_000_000) as i64);
        let last_active = registered + Duration::seconds(rng.below(86_400 * 60) as i64) + micros_of(rng);
        let mut agent = self.new_agent(name, registered + micros_of(rng));
        agent.os_type = kind.os_type;
        agent.os_name = kind.os_name.into();
        agent.os_revision = kind.os_revision.into();
        agent.machine_type = kind.machine_type;
        agent.model_name = kind.model.into();
        agent.serial_number =
            format!("{}{}", kind.serial_prefix, rng.chars(b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", 7));
        agent.agent_version = rng.pick(AGENT_VERSIONS).to_string();
        agent.site = rng.below(SITES.len());
        agent.last_logged_in_user_name = user.map(|p| logon(kind.os_type, &p.handle)).unwrap_or_default();
        agent.external_ip = format!("203.0.113.{}", 1 + rng.below(254));
        let mac = |rng: &mut Seeded| {
            let octets: Vec<String> = (0..6).map(|_| rng.chars(HEX, 2)).collect();
            match kind.os_type {
                "windows" => octets.join("-").to_uppercase(),
                _ => octets.join(":"),
            }
        };
        let lan = format!("10.{}.{}.{}", rng.below(256), rng.below(256), 1 + rng.below(254));
        agent.interfaces =
            vec![AgentInterface { name: "Ethernet".into(), inet: vec![lan], physical: mac(rng) }];
        if kind.machine_type == "laptop" {
            let wifi = format!("192.168.{}.{}", rng.below(256), 1 + rng.below(254));
            agent.interfaces.push(AgentInterface {
                name: "Wi-Fi".into(),
                inet: vec![wifi],
                physical: mac(rng),
            });
        }
        agent.last_active_date = last_active;
        agent.updated_at = last_active;
        let id = agent.id.clone();
        self.agents.insert(id.clone(), agent);
        self.agents.get_mut(&id).expect("just inserted")
    }

    /// An active, connected agent without interfaces or a user, registered at `at`.
    fn new_agent(&mut self, computer_name: &str, at: OffsetDateTime) -> SentinelOneAgent {
        let id = (FIRST_ID + self.next_agent * 1_000 + self.rng.below(1_000) as u64).to_string();
        self.next_agent += 1;
        SentinelOneAgent {
            id,
            uuid: self.rng.chars(HEX, 32),
            computer_name: computer_name.to_string(),
            os_type: "windows",
            os_name: HOST_KINDS[0].os_name.into(),
            os_revision: HOST_KINDS[0].os_revision.into(),
            machine_type: "laptop",
            model_name: HOST_KINDS[0].model.into(),
            serial_number: String::new(),
            agent_version: AGENT_VERSIONS[AGENT_VERSIONS.len() - 1].into(),
            site: 0,
            last_logged_in_user_name: String::new(),
            external_ip: String::new(),
            interfaces: Vec::new(),
            tags: Vec::new(),
            is_active: true,
            is_decommissioned: false,
            is_uninstalled: false,
            network_status: "connected",
            network_quarantine_enabled: false,
            registered_at: at,
            last_active_date: at,
            updated_at: at,
        }
    }

    pub fn agents(&self) -> impl Iterator<Item = &SentinelOneAgent> {
        self.agents.values()
    }

    pub fn agent(&self, id: &str) -> Option<&SentinelOneAgent> {
        self.agents.get(id)
    }

    /// Now, to the microsecond, never before the previous change.
    fn stamp(&mut self) -> OffsetDateTime {
        let t = now();
        let t = t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000).expect("micros are in range");
        self.clock = t.max(self.clock);
        self.clock
    }

    /// Installs an agent on a new Windows laptop `computer_name`, last used by `last_user` (as
    /// the host names them, `ACME\ada.lovelace`; `""` for nobody); returns its id.
    pub fn add_agent(&mut self, computer_name: &str, last_user: &str) -> String {
        let at = self.stamp();
        let mut agent = self.new_agent(computer_name, at);
        agent.last_logged_in_user_name = last_user.to_string();
        agent.serial_number = format!("5CD{}", self.rng.chars(b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ", 7));
        let mac: Vec<String> = (0..6).map(|_| self.rng.chars(HEX, 2).to_uppercase()).collect();
        agent.interfaces = vec![AgentInterface {
            name: "Ethernet".into(),
            inet: vec!["10.1.2.3".into()],
            physical: mac.join("-"),
        }];
        let id = agent.id.clone();
        self.agents.insert(id.clone(), agent);
        id
    }

    /// Applies `change` to the agent and moves its `updatedAt`.
    ///
    /// # Panics
    /// When there is no such agent, as every mutation does for an unknown id.
    pub fn update_agent(&mut self, id: &str, change: impl FnOnce(&mut SentinelOneAgent)) {
        let at = self.stamp();
        let agent = self.agents.get_mut(id).unwrap_or_else(|| panic!("no agent {id} in the fake account"));
        change(agent);
        agent.updated_at = at;
    }

    /// Decommissions the agent: the console keeps it, hidden from the default listing.
    pub fn decommission(&mut self, id: &str) {
        self.update_agent(id, |a| {
            a.is_decommissioned = true;
            a.is_active = false;
        });
    }

    pub fn uninstall(&mut self, id: &str) {
        self.update_agent(id, |a| a.is_uninstalled = true);
    }

    /// Someone else logged on (`""`: the console no longer knows who).
    pub fn set_last_user(&mut self, id: &str, last_user: &str) {
        self.update_agent(id, |a| a.last_logged_in_user_name = last_user.to_string());
    }

    /// Cuts the host off the network, as the console's "Disconnect from network" does.
    pub fn quarantine(&mut self, id: &str) {
        self.update_agent(id, |a| {
            a.network_quarantine_enabled = true;
            a.network_status = "disconnected";
        });
    }

    /// Reconnects a quarantined host.
    pub fn release(&mut self, id: &str) {
        self.update_agent(id, |a| {
            a.network_quarantine_enabled = false;
            a.network_status = "connected";
        });
    }

    pub fn tag(&mut self, id: &str, key: &str, value: &str) {
        self.update_agent(id, |a| a.tags.push((key.to_string(), value.to_string())));
    }

    /// Deletes the agent for good: it disappears from every listing.
    pub fn delete_agent(&mut self, id: &str) {
        self.agents.remove(id).unwrap_or_else(|| panic!("no agent {id} in the fake account"));
    }

    /// Every agent by id, decommissioned ones included, as the API serves them.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, Value> {
        self.agents.iter().map(|(id, a)| (id.clone(), a.to_json())).collect()
    }
}

/// How a host names the user who logged on.
fn logon(os_type: &str, handle: &str) -> String {
    match os_type {
        "windows" => format!("{NETBIOS}\\{handle}"),
        _ => handle.to_string(),
    }
}

impl SentinelOneAgent {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The agent as `/agents` serves it.
    pub(crate) fn to_json(&self) -> Value {
        let (site_id, site_name) = SITES[self.site % SITES.len()];
        let interfaces: Vec<Value> = self
            .interfaces
            .iter()
            .enumerate()
            .map(|(i, n)| {
                json!({
                    "id": format!("{}{}", &self.id[..16], i),
                    "name": n.name,
                    "inet": n.inet,
                    "inet6": [],
                    "physical": n.physical,
                    "gatewayIp": null,
                    "gatewayMacAddress": null,
                })
            })
            .collect();
        let tags: Vec<Value> = self
            .tags
            .iter()
            .enumerate()
            .map(|(i, (key, value))| {
                json!({
                    "id": format!("{}{}", &self.id[..15], 100 + i),
                    "key": key,
                    "value": value,
                    "assignedAt": micros(self.registered_at),
                    "assignedBy": "Acme Admin",
                    "assignedById": "433241117371233925",
                })
            })
            .collect();
        let windows = self.os_type == "windows";
        let active_directory = json!({
            "computerDistinguishedName": windows.then(|| format!("CN={},OU=Computers,DC=acme,DC=com", self.computer_name)),
            "computerMemberOf": [],
            "lastUserDistinguishedName": null,
            "lastUserMemberOf": [],
        });
        let mut agent = json!({
            "id": self.id,
            "uuid": self.uuid,
            "computerName": self.computer_name,
            "accountId": ACCOUNT_ID,
            "accountName": ACCOUNT_NAME,
            "siteId": site_id,
            "siteName": site_name,
            "groupId": format!("{site_id}1"),
            "groupName": "Default Group",
            "osType": self.os_type,
            "osName": self.os_name,
            "osRevision": self.os_revision,
            "osArch": "64 bit",
            "osUsername": null,
            "machineType": self.machine_type,
            "modelName": self.model_name,
            "serialNumber": self.serial_number,
            "domain": if windows { NETBIOS } else { "unknown" },
            "agentVersion": self.agent_version,
            "isActive": self.is_active,
            "isDecommissioned": self.is_decommissioned,
            "isUninstalled": self.is_uninstalled,
            "isPendingUninstall": false,
            "isUpToDate": self.agent_version == AGENT_VERSIONS[AGENT_VERSIONS.len() - 1],
        });
        // In two parts: one `json!` of every field is deeper than the macro's recursion limit.
        let state = json!({
            "infected": false,
            "activeThreats": 0,
            "networkStatus": self.network_status,
            "networkQuarantineEnabled": self.network_quarantine_enabled,
            "lastActiveDate": micros(self.last_active_date),
            "registeredAt": micros(self.registered_at),
            "createdAt": micros(self.registered_at),
            "updatedAt": micros(self.updated_at),
            "lastLoggedInUserName": self.last_logged_in_user_name,
            "lastIpToMgmt": self.interfaces.first().and_then(|n| n.inet.first()),
            "externalIp": self.external_ip,
            "externalId": "",
            "networkInterfaces": interfaces,
            "mitigationMode": "protect",
            "operationalState": "na",
            "scanStatus": "finished",
            "encryptedApplications": windows,
            "firewallEnabled": true,
            "tags": {"sentinelone": tags},
            "activeDirectory": active_directory,
        });
        if let (Some(agent), Value::Object(state)) = (agent.as_object_mut(), state) {
            agent.extend(state);
        }
        agent
    }
}

impl Fleet for SentinelOneTenant {
    fn hosts(&self) -> Vec<(String, bool)> {
        self.agents()
            .filter(|a| !a.is_decommissioned)
            .map(|a| (a.id().to_string(), a.network_quarantine_enabled))
            .collect()
    }

    fn set_contained(&mut self, id: &str, contained: bool) {
        if contained { self.quarantine(id) } else { self.release(id) }
    }

    fn add(&mut self, hostname: &str, handle: &str) -> String {
        self.add_agent(hostname, &format!("{NETBIOS}\\{handle}"))
    }

    fn log_on(&mut self, id: &str, handle: &str) {
        self.set_last_user(id, &format!("{NETBIOS}\\{handle}"));
    }

    fn update_os(&mut self, id: &str, build: &str) {
        self.update_agent(id, |a| a.os_revision = build.to_string());
    }

    fn retire(&mut self, id: &str) {
        self.decommission(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_has_kiosks_reused_names_and_decommissioned_agents() {
        let tenant = SentinelOneTenant::generate(&TenantSpec { devices: 40, ..TenantSpec::default() });
        let agents: Vec<&SentinelOneAgent> = tenant.agents().collect();
        assert_eq!(agents.len(), 40 + 5 + 4, "hosts, reimaged hosts' old agents, kiosks");
        assert!(agents.iter().any(|a| a.computer_name.contains("KIOSK")));
        assert!(agents.iter().any(|a| a.is_decommissioned));
        let mut names: Vec<&str> = agents.iter().map(|a| a.computer_name.as_str()).collect();
        names.sort();
        assert!(names.windows(2).any(|w| w[0] == w[1]), "a hostname is reused");
        assert!(agents.iter().any(|a| a.last_logged_in_user_name.starts_with("ACME\\")));
        let ids: Vec<&str> = agents.iter().map(|a| a.id()).collect();
        assert!(ids.iter().all(|id| id.len() == 19 && id.parse::<u64>().is_ok()));
        let json = agents[0].to_json();
        assert!(json["tags"]["sentinelone"].is_array());
        assert_eq!(json["updatedAt"].as_str().unwrap().len(), "2018-02-27T04:49:26.257525Z".len());
    }

    #[test]
    fn changes_move_updated_at() {
        let mut tenant = SentinelOneTenant::generate(&TenantSpec::default());
        let id = tenant.agents().next().unwrap().id().to_string();
        let before = tenant.agent(&id).unwrap().updated_at;
        tenant.quarantine(&id);
        let agent = tenant.agent(&id).unwrap();
        assert!(agent.updated_at > before && agent.network_quarantine_enabled);
        let quarantined = agent.updated_at;
        let added = tenant.add_agent("ACME-LT-9999", "ACME\\ada.lovelace");
        assert!(tenant.agent(&added).unwrap().updated_at >= quarantined);
        tenant.delete_agent(&added);
        assert!(tenant.agent(&added).is_none());
    }
}
