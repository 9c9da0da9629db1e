//! The people and teams of a generated organisation, before any vendor's shape is put on them.
//!
//! Each fake turns one [`Directory`] into its own tenant (Okta users, Workspace users, Entra
//! users…), so the three sources of one seed describe the same organisation and tests can
//! compare what the connectors bring back.
//!
//! The handle is the ground truth of identity: accounts of one handle are one person, accounts
//! of different handles are different people. Every source serves the employee number, except
//! where a person is planted to be linked only through an address, and [`plant_traps`] adds
//! the cases a resolver must not be fooled by.

use std::collections::HashSet;

use time::{Duration, OffsetDateTime};

use crate::common::Seeded;

/// How a generated tenant looks; the same spec always yields the same people and teams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSpec {
    pub seed: u64,
    pub users: usize,
    pub groups: usize,
    /// Registered devices, each owned by one person (sources that track devices serve them).
    pub devices: usize,
}

impl Default for TenantSpec {
    /// Small enough to start in milliseconds, big enough to need several pages at small limits.
    fn default() -> Self {
        Self { seed: 42, users: 25, groups: 5, devices: 10 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Active,
    /// Created but never activated (Okta `STAGED`).
    Staged,
    Suspended,
    /// Deactivated; Okta keeps such users as `DEPROVISIONED`.
    Deprovisioned,
}

#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub given: String,
    pub family: String,
    /// Unique within the directory: the local part of every email address.
    pub handle: String,
    pub department: &'static str,
    pub title: &'static str,
    pub employee_number: String,
    /// Okta's `email` when it is not the login: a shared mailbox, or an address reused.
    pub okta_email: Option<String>,
    /// Further addresses in [`MAIL_DOMAIN`] the person's mailbox answers to (Google aliases,
    /// Entra SMTP proxy addresses).
    pub aliases: Vec<String>,
    pub status: Status,
    /// Whether the person administers the organisation (Okta super admin, Workspace super admin).
    pub admin: bool,
    /// Index into [`Directory::people`] of the person's manager; `None` only for [`ADMIN`].
    pub manager: Option<usize>,
    /// A limited admin role (about one person in a hundred).
    pub delegated_role: Option<DelegatedRole>,
    /// Second factors the person enrolled.
    pub factors: &'static [Factor],
    pub created: OffsetDateTime,
    pub last_login: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub(crate) struct Team {
    pub name: String,
    pub description: String,
    /// Indexes into [`Directory::people`].
    pub members: Vec<usize>,
    /// Indexes into [`Directory::teams`] of the teams nested in this one, for sources whose groups
    /// nest: a department's later teams ("Engineering 2") belong to its first ("Engineering").
    pub subteams: Vec<usize>,
    pub created: OffsetDateTime,
}

/// An administrator role short of full control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DelegatedRole {
    ReadOnly,
    HelpDesk,
    UserAdmin,
    GroupMembership,
}

/// A kind of second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Factor {
    /// A push app (Okta Verify).
    Push,
    /// A TOTP app (Google Authenticator).
    Totp,
    WebAuthn,
    Sms,
    Email,
}

/// The combinations of factors people enroll; the first is none at all.
const FACTOR_SETS: &[&[Factor]] = &[
    &[],
    &[Factor::Push],
    &[Factor::Push],
    &[Factor::Push, Factor::WebAuthn],
    &[Factor::Totp],
    &[Factor::Sms],
    &[Factor::Push, Factor::Sms],
    &[Factor::Email, Factor::Totp],
];
const DELEGATED_ROLES: [DelegatedRole; 4] = [
    DelegatedRole::HelpDesk,
    DelegatedRole::ReadOnly,
    DelegatedRole::UserAdmin,
    DelegatedRole::GroupMembership,
];

#[derive(Debug, Clone)]
pub(crate) struct Directory {
    pub people: Vec<Person>,
    pub teams: Vec<Team>,
}

/// The organisation's own mail domain (Okta's logins), which Google and Entra know as a secondary
/// domain.
pub(crate) const MAIL_DOMAIN: &str = "acme.com";
/// The organisation's Active Directory: its DNS name, the NetBIOS name Windows hosts write in
/// `ACME\\handle`, and the domain SID its accounts' SIDs extend.
pub(crate) const AD_DOMAIN: &str = "corp.acme.com";
pub(crate) const NETBIOS: &str = "ACME";
const DOMAIN_SID: &str = "S-1-5-21-3623811015-3361044348-30300820";

/// The SID of the AD account of the person at `index`.
pub(crate) fn sid(index: usize) -> String {
    format!("{DOMAIN_SID}-{}", 1100 + index)
}

/// Person 0: the administrator whose credentials the fakes hand out.
pub(crate) const ADMIN: usize = 0;
/// Person 1: an active user without any admin rights.
pub(crate) const NON_ADMIN: usize = 1;

const GIVEN: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Donald",
    "Hedy",
    "John",
    "Katherine",
    "Tim",
    "Sophie",
    "Whitfield",
    "Anita",
    "Niklaus",
    "Lynn",
    "Bjarne",
    "Shafi",
    "Leslie",
    "Adele",
    "Guido",
    "Jean",
    "Robin",
    "Mary",
    "Vint",
];
const FAMILY: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Knuth",
    "Lamarr",
    "Backus",
    "Johnson",
    "Berners-Lee",
    "Wilson",
    "Diffie",
    "Borg",
    "Wirth",
    "Conway",
    "Stroustrup",
    "Goldwasser",
    "Lamport",
    "Goldberg",
    "Rossum",
    "Sammet",
    "Milner",
    "Keller",
    "Cerf",
];
const DEPARTMENTS: &[(&str, &[&str])] = &[
    ("Engineering", &["Software Engineer", "Staff Engineer", "Engineering Manager"]),
    ("Sales", &["Account Executive", "Sales Engineer"]),
    ("Support", &["Support Engineer", "Support Lead"]),
    ("Finance", &["Accountant", "Controller"]),
    ("Security", &["Security Engineer", "CISO"]),
    ("Marketing", &["Product Marketing Manager", "Designer"]),
    ("Legal", &["Counsel"]),
    ("Operations", &["IT Administrator", "Office Manager"]),
];

impl Directory {
    pub(crate) fn generate(spec: &TenantSpec) -> Self {
        let mut rng = Seeded::new(spec.seed, "directory");
        let epoch = OffsetDateTime::UNIX_EPOCH + Duration::days(19_723); // 2024-01-01
        let users = spec.users.max(2);
        let mut handles = HashSet::with_capacity(users);
        // Each department is a tree of managers six wide, its heads reporting to the admin.
        let mut by_department: Vec<Vec<usize>> = vec![Vec::new(); DEPARTMENTS.len()];
        let people = (0..users)
            .map(|i| {
                let given = rng.pick(GIVEN).to_string();
                let family = rng.pick(FAMILY).to_string();
                let base = format!("{}.{}", given.to_lowercase(), family.to_lowercase());
                let handle = if handles.contains(&base) { format!("{base}{i}") } else { base };
                handles.insert(handle.clone());
                let d = if i == ADMIN { 7 } else { rng.below(DEPARTMENTS.len()) };
                let (department, titles) = DEPARTMENTS[d];
                let colleagues = &mut by_department[d];
                let manager = match colleagues.len() {
                    _ if i == ADMIN => None,
                    0 => Some(ADMIN),
                    k => Some(colleagues[(k - 1) / 6]),
                };
                colleagues.push(i);
                let status = match (i, rng.below(40)) {
                    (ADMIN | NON_ADMIN, _) => Status::Active,
                    (_, 0) => Status::Deprovisioned,
                    (_, 1) => Status::Suspended,
                    (_, 2) => Status::Staged,
                    _ => Status::Active,
                };
                // Spread over 2024 whatever the size, so every timestamp is in the past.
                let step = (365 * 24 * 60 / users as i64).max(1);
                let created = epoch + Duration::minutes(i as i64 * step + rng.below(step as usize) as i64);
                let last_login = (status == Status::Active)
                    .then(|| created + Duration::days(30) + Duration::seconds(rng.below(86_400 * 60) as i64));
                Person {
                    given,
                    family,
                    handle,
                    department,
                    title: if i == ADMIN { "IT Administrator" } else { titles[rng.below(titles.len())] },
                    employee_number: format!("{:06}", 100_000 + i),
                    okta_email: None,
                    aliases: Vec::new(),
                    status,
                    admin: i == ADMIN,
                    manager,
                    delegated_role: (i % 97 == 2).then(|| DELEGATED_ROLES[(i / 97) % DELEGATED_ROLES.len()]),
                    factors: match status {
                        _ if i == ADMIN => &[Factor::Push, Factor::WebAuthn],
                        Status::Staged | Status::Deprovisioned => &[],
                        _ => FACTOR_SETS[rng.below(FACTOR_SETS.len())],
                    },
                    created,
                    last_login,
                }
            })
            .collect::<Vec<_>>();
        let mut people = people;
        plant_traps(&mut people);
        let mut members = vec![Vec::new(); spec.groups];
        if spec.groups > 0 {
            // Everyone is in one team and in a few others at random (on average a quarter of the
            // teams, at most four more), so memberships grow with people, not with people × teams.
            let extra = (spec.groups / 4).min(4);
            for p in 0..people.len() {
                members[p % spec.groups].push(p);
                for _ in 0..rng.below(2 * extra + 1) {
                    let team: &mut Vec<usize> = &mut members[rng.below(spec.groups)];
                    if team.last() != Some(&p) {
                        team.push(p);
                    }
                }
            }
        }
        // Spread over 2024 too (an hour apart while they fit): a team created in the future would
        // look changed to every incremental listing.
        let team_step = (365 * 24 * 60 / spec.groups.max(1) as i64).clamp(1, 60);
        let teams = members
            .into_iter()
            .enumerate()
            .map(|(t, members)| {
                let (department, _) = DEPARTMENTS[t % DEPARTMENTS.len()];
                let round = t / DEPARTMENTS.len();
                let name =
                    if round == 0 { department.to_string() } else { format!("{department} {}", round + 1) };
                let subteams = match round {
                    0 => (t + DEPARTMENTS.len()..spec.groups).step_by(DEPARTMENTS.len()).collect(),
                    _ => Vec::new(),
                };
                Team {
                    description: format!("Everyone in {name}"),
                    name,
                    members,
                    subteams,
                    created: epoch + Duration::minutes(t as i64 * team_step),
                }
            })
            .collect();
        Self { people, teams }
    }
}

/// Cases an identity resolver must get right, in every directory of ten people or more:
///
/// - the last person is a namesake of person 3 (same display name, another person);
/// - persons 4 and 5 share the help desk's mailbox as their Okta email, and Google also lists it
///   as an alias of person 7;
/// - person 6 changed address: the former one stays an alias of theirs in Google and Entra, and
///   Okta gave it to person 8 as their email.
///
/// They come after everything drawn at random, so the rest of the directory does not change.
fn plant_traps(people: &mut [Person]) {
    let n = people.len();
    if n < 10 {
        return;
    }
    let (given, family) = (people[3].given.clone(), people[3].family.clone());
    let last = &mut people[n - 1];
    last.handle = format!("{}.{}{}", given.to_lowercase(), family.to_lowercase(), n - 1);
    (last.given, last.family) = (given, family);
    let helpdesk = format!("helpdesk@{MAIL_DOMAIN}");
    people[4].okta_email = Some(helpdesk.clone());
    people[5].okta_email = Some(helpdesk.clone());
    people[7].aliases.push(helpdesk);
    let former = format!("former.{}@{MAIL_DOMAIN}", people[6].handle);
    people[6].aliases.push(former.clone());
    people[8].okta_email = Some(former);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_directory() {
        let spec = TenantSpec::default();
        let (a, b) = (Directory::generate(&spec), Directory::generate(&spec));
        let handles = |d: &Directory| d.people.iter().map(|p| p.handle.clone()).collect::<Vec<_>>();
        assert_eq!(handles(&a), handles(&b));
        assert_eq!(a.people.len(), 25);
        assert_eq!(a.teams.len(), 5);
        let other = Directory::generate(&TenantSpec { seed: 43, ..spec });
        assert_ne!(handles(&a), handles(&other));
    }

    #[test]
    fn handles_are_unique_and_roles_fixed() {
        let d = Directory::generate(&TenantSpec { seed: 1, users: 500, groups: 12, devices: 0 });
        let unique: HashSet<_> = d.people.iter().map(|p| &p.handle).collect();
        assert_eq!(unique.len(), 500);
        assert!(d.people[ADMIN].admin && !d.people[NON_ADMIN].admin);
        assert_eq!(d.people[NON_ADMIN].status, Status::Active);
        assert!(d.teams.iter().all(|t| !t.members.is_empty()));
        assert_eq!(d.teams[8].name, "Engineering 2");
        assert_eq!(d.teams[0].subteams, [8]);
        assert!(d.teams[8].subteams.is_empty());
        assert_eq!(d.people[2].delegated_role, Some(DelegatedRole::HelpDesk));
        assert_eq!((&d.people[499].given, &d.people[499].family), (&d.people[3].given, &d.people[3].family));
        assert_ne!(d.people[499].handle, d.people[3].handle);
        assert!(
            d.people.iter().all(|p| p.created < OffsetDateTime::UNIX_EPOCH + Duration::days(19_723 + 366))
        );
    }

    #[test]
    fn every_timestamp_of_a_large_directory_is_in_2024() {
        let d = Directory::generate(&TenantSpec { seed: 1, users: 60_000, groups: 50_000, devices: 0 });
        let end = OffsetDateTime::UNIX_EPOCH + Duration::days(19_723 + 366);
        assert!(d.teams.iter().all(|t| t.created < end), "{}", d.teams.last().unwrap().created);
        assert_eq!(d.teams[1].created - d.teams[0].created, Duration::minutes(10));
    }
}
