//! Tenants that live: every step, each fake's organisation changes the way real ones do (someone
//! is suspended, someone comes back, someone joins, someone changes name, someone moves to
//! another team), so `ctxsync demo` shows change events, history and incremental runs without
//! anyone touching it.
//!
//! The changes go through each source's [`Lifecycle`], the model the admin API uses too, so the
//! vendors' listings, `lastUpdated` filters and delta rounds show them faithfully. [`Churn::step`]
//! makes one round and says what it changed; [`Churn::run`] steps on a tokio interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::Fakes;
use crate::admin::{Lifecycle, Standing};
use crate::common::Seeded;

/// Which fake a change was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Okta,
    Google,
    Entra,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Okta => "okta",
            Source::Google => "google",
            Source::Entra => "entra",
        }
    }
}

/// What happened to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Suspended,
    Reactivated,
    /// A new user, who joined a group.
    Hired {
        group: String,
    },
    Renamed {
        family_name: String,
    },
    Moved {
        from: String,
        to: String,
    },
}

/// One change the churn made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub source: Source,
    /// The user's id in that source.
    pub user: String,
    pub kind: ChangeKind,
}

/// The order changes come in: each kind recurs every five steps.
#[derive(Debug, Clone, Copy)]
enum Turn {
    Suspend,
    Reactivate,
    Hire,
    Rename,
    Move,
}

const TURNS: [Turn; 5] = [Turn::Suspend, Turn::Reactivate, Turn::Hire, Turn::Rename, Turn::Move];

/// Names no generated person has, so hires and renames stand out from the seed's people.
const HIRE_GIVEN: &[&str] = &["Amara", "Bruno", "Chiara", "Dmitri", "Esme", "Farid", "Greta", "Hiro"];
const HIRE_FAMILY: &[&str] =
    &["Okafor", "Lindqvist", "Moreau", "Tanaka", "Alvarez", "Novak", "Haddad", "Kowalski"];
/// New family names, none a hire's or a generated person's: a rename always changes the name.
const RENAMED: &[&str] = &["Whitaker", "Osei", "Brennan", "Castillo", "Ferreira", "Nakamura"];

/// The next changes to make; deterministic for a seed, so a test's rounds repeat.
pub struct Churn {
    rng: Seeded,
    steps: usize,
    hires: usize,
}

impl Churn {
    pub fn new(seed: u64) -> Churn {
        Churn { rng: Seeded::new(seed, "churn"), steps: 0, hires: 0 }
    }

    /// One round: the turn's kind of change, once in each tenant. A tenant with nobody to change
    /// that way (no suspended user to reactivate, a single group to move between) sits it out.
    pub fn step(&mut self, fakes: &Fakes) -> Vec<Change> {
        let turn = TURNS[self.steps % TURNS.len()];
        self.steps += 1;
        let (given, family) = self.next_name(turn);
        let mut changes = Vec::new();
        let mut record = |source, made: Option<(String, ChangeKind)>| {
            changes.extend(made.map(|(user, kind)| Change { source, user, kind }));
        };
        let rng = &mut self.rng;
        record(Source::Okta, fakes.okta.mutate(|t| change(t, turn, rng, &given, &family)));
        record(Source::Google, fakes.google.mutate(|t| change(t, turn, rng, &given, &family)));
        record(Source::Entra, fakes.entra.mutate(|t| change(t, turn, rng, &given, &family)));
        changes
    }

    /// Steps every `period` for as long as the task lives (the demo aborts it on shutdown).
    pub async fn run(mut self, fakes: Arc<Fakes>, period: Duration) {
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            for c in self.step(&fakes) {
                tracing::info!(source = c.source.as_str(), user = %c.user, change = ?c.kind, "fake tenant changed");
            }
        }
    }

    /// A hire's name (unique among hires: a number is added once the lists are used up), or a
    /// rename's new family name.
    fn next_name(&mut self, turn: Turn) -> (String, String) {
        match turn {
            Turn::Hire => {
                let n = self.hires;
                self.hires += 1;
                let given = HIRE_GIVEN[n % HIRE_GIVEN.len()];
                let family = HIRE_FAMILY[(n / HIRE_GIVEN.len()) % HIRE_FAMILY.len()];
                match n / (HIRE_GIVEN.len() * HIRE_FAMILY.len()) {
                    0 => (given.to_string(), family.to_string()),
                    round => (given.to_string(), format!("{family}{}", round + 1)),
                }
            }
            _ => (String::new(), self.rng.pick(RENAMED).to_string()),
        }
    }
}

/// Makes one change of the turn's kind in `tenant`; the user changed and how.
fn change<T: Lifecycle>(
    tenant: &mut T,
    turn: Turn,
    rng: &mut Seeded,
    given: &str,
    family: &str,
) -> Option<(String, ChangeKind)> {
    let users = tenant.changeable_users();
    let pick = |rng: &mut Seeded, standing: Standing| {
        let candidates: Vec<&String> =
            users.iter().filter(|(_, s)| *s == standing).map(|(id, _)| id).collect();
        (!candidates.is_empty()).then(|| candidates[rng.below(candidates.len())].clone())
    };
    match turn {
        Turn::Suspend => {
            let user = pick(rng, Standing::Active)?;
            tenant.suspend(&user);
            Some((user, ChangeKind::Suspended))
        }
        Turn::Reactivate => {
            let user = pick(rng, Standing::Suspended)?;
            tenant.unsuspend(&user);
            Some((user, ChangeKind::Reactivated))
        }
        Turn::Hire => {
            let groups = tenant.group_ids();
            let group = groups.get(rng.below(groups.len()))?.clone();
            let user = tenant.hire(given, family)?;
            tenant.join(&group, &user);
            Some((user, ChangeKind::Hired { group }))
        }
        Turn::Rename => {
            let user = pick(rng, Standing::Active)?;
            tenant.rename(&user, family);
            Some((user, ChangeKind::Renamed { family_name: family.to_string() }))
        }
        Turn::Move => {
            let user = pick(rng, Standing::Active)?;
            let now_in = tenant.groups_of(&user);
            let from = now_in.get(rng.below(now_in.len()))?.clone();
            let others: Vec<String> =
                tenant.group_ids().into_iter().filter(|g| !now_in.contains(g)).collect();
            let to = others.get(rng.below(others.len()))?.clone();
            tenant.leave(&from, &user);
            tenant.join(&to, &user);
            Some((user, ChangeKind::Moved { from, to }))
        }
    }
}
