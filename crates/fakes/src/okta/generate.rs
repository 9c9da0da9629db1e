//! An Okta org generated from the shared directory: the same people as the other fakes, with
//! Okta's ids, statuses, admin roles and factors.

use std::collections::{BTreeMap, BTreeSet};

use time::{Duration, OffsetDateTime};

use super::{
    OktaFactor, OktaGroup, OktaProfile, OktaRole, OktaTenant, OktaUser, capitalized, factor_prefix,
    factor_type, okta_id, provider_of,
};
use crate::common::{BASE62, Seeded};
use crate::directory::{ADMIN, DelegatedRole, Directory, Factor, NON_ADMIN, Status};

fn role_type(role: DelegatedRole) -> &'static str {
    match role {
        DelegatedRole::ReadOnly => "READ_ONLY_ADMIN",
        DelegatedRole::HelpDesk => "HELP_DESK_ADMIN",
        DelegatedRole::UserAdmin => "USER_ADMIN",
        DelegatedRole::GroupMembership => "GROUP_MEMBERSHIP_ADMIN",
    }
}

/// The status Okta shows for a person: the directory's lifecycle, plus Okta's own transient
/// states (locked out, password expired, in recovery, provisioned but not activated) for a few
/// active people. The two people whose credentials the fake hands out stay active.
fn okta_status(i: usize, status: Status, rng: &mut Seeded) -> &'static str {
    match status {
        Status::Staged => "STAGED",
        Status::Suspended => "SUSPENDED",
        Status::Deprovisioned => "DEPROVISIONED",
        Status::Active if i == ADMIN || i == NON_ADMIN => "ACTIVE",
        Status::Active => match rng.below(50) {
            0 => "LOCKED_OUT",
            1 => "PASSWORD_EXPIRED",
            2 => "RECOVERY",
            3 => "PROVISIONED",
            _ => "ACTIVE",
        },
    }
}

impl OktaTenant {
    pub(crate) fn from_directory(directory: &Directory, seed: u64, mail_domain: &str) -> Self {
        let mut rng = Seeded::new(seed, "okta");
        let people = &directory.people;
        let org_id = format!("00o{}", rng.chars(BASE62, 17));
        let user_ids: Vec<String> = (0..people.len()).map(|i| okta_id("00u", i as u64, &mut rng)).collect();
        let mut users = BTreeMap::new();
        let mut assignees = BTreeSet::new();
        for (i, p) in people.iter().enumerate() {
            let status = okta_status(i, p.status, &mut rng);
            let activated =
                (!matches!(status, "STAGED" | "PROVISIONED")).then(|| p.created + Duration::minutes(10));
            let status_changed = match status {
                "ACTIVE" | "STAGED" | "PROVISIONED" => activated,
                _ => Some(p.created + Duration::days(30 + rng.below(60) as i64)),
            };
            let profile_updated = p.created + Duration::days(rng.below(90) as i64);
            let login = format!("{}@{mail_domain}", p.handle);
            let email = match &p.okta_email {
                Some(email) => email.clone(),
                None if i % 7 == 3 => capitalized(&login),
                None => login.clone(),
            };
            let second_email = match (i % 5, i % 11) {
                (1, _) => Some(format!("{}@home.example", p.handle)),
                (_, 5) => Some(login.clone()),
                _ => None,
            };
            let profile = OktaProfile {
                second_email,
                first_name: p.given.clone(),
                last_name: p.family.clone(),
                display_name: (i % 9 != 4).then(|| format!("{} {}", p.given, p.family)),
                mobile_phone: (i % 3 == 0).then(|| format!("+1-555-01{:02}", i % 100)),
                department: Some(p.department.to_string()),
                title: Some(p.title.to_string()),
                employee_number: Some(p.employee_number.clone()),
                manager_id: p.manager.map(|m| user_ids[m].clone()),
                manager: p.manager.map(|m| format!("{} {}", people[m].given, people[m].family)),
                login,
                email,
            };
            let enrolled = activated.unwrap_or(p.created) + Duration::days(1);
            let factors = p
                .factors
                .iter()
                .map(|&f| {
                    let factor_type = factor_type(f);
                    OktaFactor {
                        id: format!("{}{}", factor_prefix(factor_type), rng.chars(BASE62, 17)),
                        factor_type: factor_type.to_string(),
                        provider: provider_of(factor_type),
                        status: if f == Factor::Sms && i % 4 == 0 { "PENDING_ACTIVATION" } else { "ACTIVE" },
                        created: enrolled,
                    }
                })
                .collect();
            let role_types =
                p.admin.then_some("SUPER_ADMIN").into_iter().chain(p.delegated_role.map(role_type));
            let roles: Vec<OktaRole> = role_types
                .map(|t| OktaRole {
                    id: format!("ra1{}", rng.chars(BASE62, 17)),
                    role_type: t.to_string(),
                    created: p.created + Duration::days(2),
                })
                .collect();
            if !roles.is_empty() {
                assignees.insert(user_ids[i].clone());
            }
            let user = OktaUser {
                id: user_ids[i].clone(),
                status,
                created: p.created,
                activated,
                status_changed,
                last_login: p.last_login,
                last_updated: status_changed.map_or(profile_updated, |s| s.max(profile_updated)),
                password_changed: activated,
                profile,
                factors,
                roles,
            };
            users.insert(user.id.clone(), user);
        }
        let groups = directory
            .teams
            .iter()
            .enumerate()
            .map(|(t, team)| {
                let group = OktaGroup {
                    id: okta_id("00g", t as u64, &mut rng),
                    kind: "OKTA_GROUP",
                    name: team.name.clone(),
                    description: Some(team.description.clone()),
                    created: team.created,
                    last_updated: team.created,
                    last_membership_updated: team.created + Duration::days(1),
                    members: team.members.iter().map(|&m| user_ids[m].clone()).collect(),
                };
                (group.id.clone(), group)
            })
            .collect();
        Self {
            users,
            groups,
            assignees,
            admin_id: user_ids[ADMIN].clone(),
            non_admin_id: user_ids[NON_ADMIN].clone(),
            org_id,
            mail_domain: mail_domain.to_string(),
            rng,
            next_user: people.len() as u64,
            next_group: directory.teams.len() as u64,
            clock: OffsetDateTime::UNIX_EPOCH,
            log: Default::default(),
            logged: 0,
        }
    }
}
