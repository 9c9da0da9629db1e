//! The people and teams of a generated organisation, before any vendor's shape is put on them.
//!
//! Each fake turns one [`Directory`] into its own tenant (Okta users, Workspace users, Entra
//! users…), so the three sources of one seed describe the same organisation and tests can
//! compare what the connectors bring back.

use std::collections::HashSet;

use time::{Duration, OffsetDateTime};

use crate::common::Seeded;

/// How a generated tenant looks; the same spec always yields the same people and teams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantSpec {
    pub seed: u64,
    pub users: usize,
    pub groups: usize,
}

impl Default for TenantSpec {
    /// Small enough to start in milliseconds, big enough to need several pages at small limits.
    fn default() -> Self {
        Self { seed: 42, users: 25, groups: 5 }
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
    pub status: Status,
    /// Whether the person administers the organisation (Okta super admin, Workspace super admin).
    pub admin: bool,
    pub created: OffsetDateTime,
    pub last_login: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub(crate) struct Team {
    pub name: String,
    pub description: String,
    /// Indexes into [`Directory::people`].
    pub members: Vec<usize>,
    pub created: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Directory {
    pub people: Vec<Person>,
    pub teams: Vec<Team>,
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
        let people = (0..users)
            .map(|i| {
                let given = rng.pick(GIVEN).to_string();
                let family = rng.pick(FAMILY).to_string();
                let base = format!("{}.{}", given.to_lowercase(), family.to_lowercase());
                let handle = if handles.contains(&base) { format!("{base}{i}") } else { base };
                handles.insert(handle.clone());
                let (department, titles) = if i == ADMIN { DEPARTMENTS[7] } else { *rng.pick(DEPARTMENTS) };
                let status = match (i, rng.below(40)) {
                    (ADMIN | NON_ADMIN, _) => Status::Active,
                    (_, 0) => Status::Deprovisioned,
                    (_, 1) => Status::Suspended,
                    (_, 2) => Status::Staged,
                    _ => Status::Active,
                };
                let created = epoch + Duration::minutes(i as i64 * 7 + rng.below(5) as i64);
                let last_login = (status == Status::Active)
                    .then(|| created + Duration::days(30) + Duration::seconds(rng.below(86_400 * 60) as i64));
                Person {
                    given,
                    family,
                    handle,
                    department,
                    title: if i == ADMIN { "IT Administrator" } else { titles[rng.below(titles.len())] },
                    employee_number: format!("{:06}", 100_000 + i),
                    status,
                    admin: i == ADMIN,
                    created,
                    last_login,
                }
            })
            .collect::<Vec<_>>();
        let teams = (0..spec.groups)
            .map(|t| {
                let (department, _) = DEPARTMENTS[t % DEPARTMENTS.len()];
                let round = t / DEPARTMENTS.len();
                let name =
                    if round == 0 { department.to_string() } else { format!("{department} {}", round + 1) };
                let members =
                    (0..people.len()).filter(|&p| p % spec.groups.max(1) == t || rng.below(4) == 0).collect();
                Team {
                    description: format!("Everyone in {name}"),
                    name,
                    members,
                    created: epoch + Duration::hours(t as i64),
                }
            })
            .collect();
        Self { people, teams }
    }
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
        let d = Directory::generate(&TenantSpec { seed: 1, users: 500, groups: 12 });
        let unique: HashSet<_> = d.people.iter().map(|p| &p.handle).collect();
        assert_eq!(unique.len(), 500);
        assert!(d.people[ADMIN].admin && !d.people[NON_ADMIN].admin);
        assert_eq!(d.people[NON_ADMIN].status, Status::Active);
        assert!(d.teams.iter().all(|t| !t.members.is_empty()));
        assert_eq!(d.teams[8].name, "Engineering 2");
    }
}
