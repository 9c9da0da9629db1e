//! A tenant generated from the people and teams of a [`Directory`]: their Entra ID users (with
//! managers, guests, disabled and on-premises-synced accounts), groups (Microsoft 365 and
//! security groups, some nested), registered devices and directory role assignments.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::Duration;

use super::{
    Collection, EntraDevice, EntraGroup, EntraTenant, EntraUser, GroupEntry, Member, MemberChange,
    MemberKind, OnPremises, ROLES, RoleAssignment, capitalised,
};
use crate::common::{BASE62, Seeded};
use crate::directory::{self, AD_DOMAIN, ADMIN, Directory, MAIL_DOMAIN, NON_ADMIN, Status, TenantSpec};

/// A kind of device people register.
struct DeviceKind {
    os: &'static str,
    version: &'static str,
    trust: &'static str,
    maker: &'static str,
    model: &'static str,
    /// Named after the owner (`Ada's iPhone`); `None` for Windows' generated `DESKTOP-…` names.
    name: Option<&'static str>,
}

/// Half Windows laptops, the rest Macs and phones.
const DEVICE_KINDS: &[DeviceKind] = &[
    DeviceKind {
        os: "Windows",
        version: "10.0.22631.3447",
        trust: "AzureAd",
        maker: "Dell Inc.",
        model: "Latitude 7440",
        name: None,
    },
    DeviceKind {
        os: "Windows",
        version: "10.0.22631.3880",
        trust: "AzureAd",
        maker: "LENOVO",
        model: "ThinkPad X1 Carbon",
        name: None,
    },
    DeviceKind {
        os: "Windows",
        version: "10.0.19045.4529",
        trust: "ServerAd",
        maker: "HP",
        model: "EliteBook 840",
        name: None,
    },
    DeviceKind {
        os: "MacMDM",
        version: "14.4.1",
        trust: "AzureAd",
        maker: "Apple",
        model: "MacBookPro18,3",
        name: Some("MacBook Pro"),
    },
    DeviceKind {
        os: "iOS",
        version: "17.4.1",
        trust: "Workplace",
        maker: "Apple",
        model: "iPhone 15",
        name: Some("iPhone"),
    },
    DeviceKind {
        os: "Android",
        version: "14.0",
        trust: "Workplace",
        maker: "Google",
        model: "Pixel 8",
        name: Some("Pixel"),
    },
];

impl EntraTenant {
    pub(crate) fn generate(directory: &Directory, spec: &TenantSpec) -> Self {
        let mut rng = Seeded::new(spec.seed, "entra");
        let tenant_id = rng.uuid().to_string();
        let domain = "contoso.onmicrosoft.com".to_string();
        let mut tenant = EntraTenant {
            tenant_id,
            domain: domain.clone(),
            users: Collection::with_capacity(directory.people.len()),
            groups: Collection::with_capacity(directory.teams.len()),
            devices: Collection::with_capacity(spec.devices),
            roles: Vec::new(),
            clock: 0,
            token_epoch: 0,
            ids: Seeded::new(spec.seed, "entra-added"),
        };

        // People deprovisioned in the directory never made it to Entra ID.
        let mut person_slot: Vec<Option<u32>> = vec![None; directory.people.len()];
        for (i, p) in directory.people.iter().enumerate() {
            if p.status == Status::Deprovisioned {
                continue;
            }
            let guest = i > NON_ADMIN && rng.below(50) == 0;
            let mailbox = i <= NON_ADMIN || rng.below(20) != 0;
            let user = if guest {
                let mail = format!("{}@fabrikam.com", p.handle);
                EntraUser {
                    user_principal_name: format!("{}_fabrikam.com#EXT#@{domain}", p.handle),
                    display_name: format!("{} {} (Fabrikam)", p.given, p.family),
                    given_name: Some(p.given.clone()),
                    surname: Some(p.family.clone()),
                    other_mails: vec![mail.clone()],
                    proxy_addresses: vec![format!("SMTP:{mail}")],
                    mail: Some(mail),
                    account_enabled: p.status == Status::Active,
                    guest: true,
                    job_title: None,
                    department: None,
                    employee_id: None,
                    created: p.created,
                    on_premises: None,
                    manager: None,
                }
            } else {
                let mail = mailbox.then(|| format!("{}@contoso.com", capitalised(&p.handle)));
                let mut proxy_addresses = Vec::new();
                if let Some(mail) = &mail {
                    proxy_addresses.push(format!("SMTP:{mail}"));
                    proxy_addresses.push(format!("smtp:{}@{domain}", p.handle));
                    proxy_addresses.extend(p.aliases.iter().map(|a| format!("smtp:{a}")));
                }
                let other_mails =
                    if rng.below(10) == 0 { vec![format!("{}@outlook.com", p.handle)] } else { Vec::new() };
                let synced = rng.below(3) == 0;
                let on_premises = synced.then(|| {
                    let mut bytes = [0u8; 16];
                    bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
                    bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
                    OnPremises {
                        immutable_id: STANDARD.encode(bytes),
                        sam_account_name: p.handle.clone(),
                        domain_name: AD_DOMAIN.to_string(),
                        security_identifier: directory::sid(i),
                    }
                });
                // Every fifth person signs in with their address in the organisation's own
                // domain and has no employee id: known to Entra by sign-in name only.
                let by_upn = i % 5 == 3;
                let upn_domain = if by_upn { MAIL_DOMAIN } else { domain.as_str() };
                EntraUser {
                    user_principal_name: format!("{}@{upn_domain}", p.handle),
                    display_name: format!("{} {}", p.given, p.family),
                    given_name: Some(p.given.clone()),
                    surname: Some(p.family.clone()),
                    mail,
                    other_mails,
                    proxy_addresses,
                    account_enabled: p.status == Status::Active,
                    guest: false,
                    job_title: Some(p.title.to_string()),
                    department: Some(p.department.to_string()),
                    employee_id: (!by_upn).then(|| p.employee_number.clone()),
                    created: p.created,
                    on_premises,
                    manager: None,
                }
            };
            let id = rng.uuid();
            let version = tenant.tick();
            person_slot[i] = Some(tenant.users.insert(id, user, version));
        }
        for (i, p) in directory.people.iter().enumerate() {
            if let (Some(slot), Some(manager)) = (person_slot[i], p.manager.and_then(|m| person_slot[m])) {
                let manager = tenant.users.slots[manager as usize].id.to_string();
                tenant.users.slots[slot as usize].value.manager = Some(manager);
            }
        }

        let mut team_slot = Vec::with_capacity(directory.teams.len());
        for (t, team) in directory.teams.iter().enumerate() {
            let nickname = team.name.to_lowercase().replace(' ', "-");
            // Every third team is a Microsoft 365 group with a mailbox; the others are security groups.
            let unified = t % 3 == 1;
            let group = EntraGroup {
                display_name: team.name.clone(),
                description: Some(team.description.clone()),
                mail: unified.then(|| format!("{nickname}@contoso.com")),
                mail_enabled: unified,
                mail_nickname: nickname,
                security_enabled: !unified,
                group_types: if unified { vec!["Unified".to_string()] } else { Vec::new() },
                visibility: unified.then(|| "Private".to_string()),
                created: team.created,
                security_identifier: format!(
                    "S-1-12-1-{}-{}-{}-{}",
                    rng.below(1 << 31),
                    rng.below(1 << 31),
                    rng.below(1 << 31),
                    rng.below(1 << 31)
                ),
            };
            let version = tenant.tick();
            let present = MemberChange { version, present: true };
            let members = team
                .members
                .iter()
                .filter_map(|&p| person_slot[p])
                .map(|slot| (Member { kind: MemberKind::User, slot }, present))
                .collect();
            team_slot.push(tenant.groups.insert(rng.uuid(), GroupEntry { group, members }, version));
        }
        // Every third team from the third on is nested in an earlier one, so nesting never cycles.
        for t in (2..team_slot.len()).step_by(3) {
            let parent = &mut tenant.groups.slots[team_slot[t / 3] as usize];
            let change = MemberChange { version: parent.version, present: true };
            parent.value.members.insert(Member { kind: MemberKind::Group, slot: team_slot[t] }, change);
        }

        for _ in 0..spec.devices {
            let person = rng.below(directory.people.len());
            let owner = person_slot[person];
            let given = &directory.people[person].given;
            let registered = directory.people[person].created + Duration::days(1 + rng.below(300) as i64);
            let kind = rng.pick(DEVICE_KINDS);
            let display_name = match kind.name {
                Some(name) => format!("{given}'s {name}"),
                None => format!("DESKTOP-{}", rng.chars(&BASE62[..36], 7)),
            };
            // Company devices (joined or hybrid joined) are managed; personal ones half the time.
            let managed = kind.trust != "Workplace" || rng.below(2) == 0;
            let device = EntraDevice {
                device_id: rng.uuid().to_string(),
                display_name,
                account_enabled: rng.below(30) != 0,
                operating_system: kind.os.to_string(),
                operating_system_version: kind.version.to_string(),
                trust_type: kind.trust.to_string(),
                is_compliant: Some(managed && rng.below(10) != 0),
                is_managed: Some(managed),
                manufacturer: Some(kind.maker.to_string()),
                model: Some(kind.model.to_string()),
                approximate_last_sign_in: (rng.below(10) != 0)
                    .then(|| registered + Duration::seconds(rng.below(86_400 * 90) as i64)),
                registered,
                owner: owner.map(|s| tenant.users.slots[s as usize].id.to_string()),
            };
            let version = tenant.tick();
            let slot = tenant.devices.insert(rng.uuid(), device, version);
            // Half the devices sit in their owner's first team (device-based access policies).
            if !team_slot.is_empty() && owner.is_some() && rng.below(2) == 0 {
                let team = &mut tenant.groups.slots[team_slot[person % team_slot.len()] as usize];
                let change = MemberChange { version: team.version, present: true };
                team.value.members.insert(Member { kind: MemberKind::Device, slot }, change);
            }
        }

        if let Some(admin) = person_slot[ADMIN] {
            let principal = tenant.users.slots[admin as usize].id;
            tenant.roles.push(RoleAssignment { role: 0, principal });
        }
        for slot in 0..tenant.users.slots.len() {
            if slot > NON_ADMIN && rng.below(100) == 0 {
                let principal = tenant.users.slots[slot].id;
                tenant.roles.push(RoleAssignment { role: 1 + rng.below(ROLES.len() - 1), principal });
            }
        }
        tenant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tenants_have_managers_guests_nesting_and_devices() {
        let spec = TenantSpec { seed: 7, users: 400, groups: 9, devices: 60 };
        let t = EntraTenant::generate(&Directory::generate(&spec), &spec);
        let snap = t.snapshot();
        assert!(snap.users.len() > 350 && snap.users.len() < 400, "{}", snap.users.len());
        assert!(snap.managers.len() > snap.users.len() / 2);
        assert!(snap.managers.values().all(|m| snap.users.contains_key(m)));
        assert!(snap.users.values().any(|u| u["userType"] == "Guest"));
        assert!(snap.users.values().any(|u| u["accountEnabled"] == false));
        assert!(snap.users.values().any(|u| !u["onPremisesImmutableId"].is_null()));
        assert!(snap.memberships.iter().any(|(_, k, _)| *k == MemberKind::Group));
        assert!(snap.memberships.iter().any(|(_, k, _)| *k == MemberKind::Device));
        assert_eq!(snap.devices.len(), 60);
        assert!(!snap.device_owners.is_empty());
        assert!(snap.admin_roles.values().any(|r| r.contains("Global Administrator")));
        assert_eq!(
            EntraTenant::generate(&Directory::generate(&spec), &spec).snapshot(),
            snap,
            "the same spec gives the same tenant"
        );
    }
}
