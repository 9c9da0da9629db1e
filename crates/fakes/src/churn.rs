//! Tenants that live: every step, each fake's organisation changes the way real ones do (someone
//! is suspended, someone comes back, someone joins, someone changes name, someone moves to
//! another team; a host is contained, released, set up, logged on to by someone else, updated),
//! so `ctxsync demo` shows change events, history and incremental runs without anyone touching
//! it.
//!
//! The changes go through each identity provider's [`Lifecycle`], the model the admin API uses
//! too, and each EDR fleet's own methods, so the vendors' listings, `lastUpdated` and
//! `modified_timestamp` filters and delta rounds show them faithfully. [`Churn::step`]
//! makes one round and says what it changed; [`Churn::run`] steps on a tokio interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::Fakes;
use crate::admin::{Fleet, Lifecycle, Standing};
use crate::common::Seeded;

/// Which fake a change was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Okta,
    Google,
    Entra,
    CrowdStrike,
    SentinelOne,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Okta => "okta",
            Source::Google => "google",
            Source::Entra => "entra",
            Source::CrowdStrike => "crowdstrike",
            Source::SentinelOne => "sentinelone",
        }
    }
}

/// What happened to a user, or to an EDR's host.
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
    /// A host cut off the network.
    Contained,
    Released,
    /// A new host, last used by the person with this handle.
    HostAdded {
        handle: String,
    },
    /// Someone else logged on to the host last.
    LoggedOn {
        handle: String,
    },
    OsUpdated {
        build: String,
    },
}

/// One change the churn made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub source: Source,
    /// The user's id in that source, or the host's.
    pub id: String,
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
            changes.extend(made.map(|(id, kind)| Change { source, id, kind }));
        };
        let rng = &mut self.rng;
        record(Source::Okta, fakes.okta.mutate(|t| change(t, turn, rng, &given, &family)));
        record(Source::Google, fakes.google.mutate(|t| change(t, turn, rng, &given, &family)));
        record(Source::Entra, fakes.entra.mutate(|t| change(t, turn, rng, &given, &family)));
        let handles = fakes.crowdstrike.mutate(|t| t.handles().to_vec());
        let step = self.steps;
        record(Source::CrowdStrike, fakes.crowdstrike.mutate(|t| change_host(t, turn, rng, &handles, step)));
        record(Source::SentinelOne, fakes.sentinelone.mutate(|t| change_host(t, turn, rng, &handles, step)));
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
                tracing::info!(source = c.source.as_str(), id = %c.id, change = ?c.kind, "fake tenant changed");
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

/// Makes one host change of the turn's kind in `fleet` (the `step`th): containing stands for
/// suspending, releasing for reactivating, a new host for a hire, a new logon for a rename, an OS
/// update for a move.
fn change_host<F: Fleet>(
    fleet: &mut F,
    turn: Turn,
    rng: &mut Seeded,
    handles: &[String],
    step: usize,
) -> Option<(String, ChangeKind)> {
    let hosts = fleet.hosts();
    let pick = |rng: &mut Seeded, contained: bool| {
        let candidates: Vec<&String> =
            hosts.iter().filter(|(_, c)| *c == contained).map(|(id, _)| id).collect();
        (!candidates.is_empty()).then(|| candidates[rng.below(candidates.len())].clone())
    };
    let handle = handles.get(rng.below(handles.len().max(1)))?.clone();
    match turn {
        Turn::Suspend => {
            let id = pick(rng, false)?;
            fleet.set_contained(&id, true);
            Some((id, ChangeKind::Contained))
        }
        Turn::Reactivate => {
            let id = pick(rng, true)?;
            fleet.set_contained(&id, false);
            Some((id, ChangeKind::Released))
        }
        Turn::Hire => {
            let id = fleet.add(&format!("ACME-LT-N{step:04}"), &handle);
            Some((id, ChangeKind::HostAdded { handle }))
        }
        Turn::Rename => {
            let id = pick(rng, false)?;
            fleet.log_on(&id, &handle);
            Some((id, ChangeKind::LoggedOn { handle }))
        }
        Turn::Move => {
            let id = pick(rng, false)?;
            let build = format!("26100.{}", 1000 + step);
            fleet.update_os(&id, &build);
            Some((id, ChangeKind::OsUpdated { build }))
        }
    }
}
