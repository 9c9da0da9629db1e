//! Cross-source identity resolution: which accounts of which sources are one person, and why.
//!
//! Accounts are linked only through identifiers a source vouches for — an immutable id, an
//! employee id, an address the source owns (primary mail, alias, SMTP proxy address) or a sign-in
//! name — never through a display name. The rules are conservative, since a false link merges two
//! people's access while a missed one only leaves two persons:
//!
//! - an identifier held by two accounts of one config (a shared mailbox), or by a group anywhere
//!   (a group or resource mailbox), links nothing;
//! - an account that one kind of key would link to two accounts of one other config is linked to
//!   neither of them that way (an address moved from one person to another), not counting links
//!   that stronger keys already refute;
//! - links are applied strongest first (immutable id, employee id, address), and a link that would
//!   give a person two user accounts of one config, two employee ids or two immutable ids is
//!   refused, so a reused address cannot join two people.
//!
//! Devices join the person of their owner. The records several sources keep of one machine (an
//! Entra device, a CrowdStrike host, a SentinelOne agent) join by serial number, never by host
//! name, and never so as to merge two people. A device no source names an owner for joins the
//! person its last logged-on user's name points at, when it points at one person only. Every link
//! keeps its reason and the identifier that made it, so the API can say why.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::{ConfigId, Entity, EntityKind};

/// One entity of one config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AccountRef {
    pub config_id: ConfigId,
    pub kind: EntityKind,
    pub source_id: String,
}

/// What an entity answers to, as far as resolution is concerned; normalized by [`Account::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account: AccountRef,
    /// Addresses the source vouches for (lowercase). For a group: its mailbox.
    pub emails: Vec<String>,
    /// The sign-in name (lowercase), when it looks like an address.
    pub login: Option<String>,
    pub employee_id: Option<String>,
    /// An id that survives renames across directories (Entra `onPremisesImmutableId`, the AD
    /// objectGUID in base64; Okta `externalId` of AD-mastered users).
    pub immutable_id: Option<String>,
    /// For a device: the source id of the user owning it, in the same config.
    pub owner: Option<String>,
    /// For a device: its serial number (uppercase), unless it is a placeholder firmware writes.
    pub serial: Option<String>,
    /// For a device: the last user to log on (lowercase), as the host named them.
    pub last_user: Option<String>,
    /// A Windows security identifier (uppercase): a user's on-premises account's, or the last
    /// logged-on user's of a device.
    pub sid: Option<String>,
    /// For a user synced from Active Directory: the SAM account name (lowercase) and the labels
    /// of the AD domain's DNS name, one of which a host writes as `DOMAIN` in `DOMAIN\name`.
    pub sam: Option<(String, Vec<String>)>,
}

/// Serial numbers firmware writes when the maker left it blank: shared by unrelated machines.
const PLACEHOLDER_SERIALS: [&str; 9] = [
    "0",
    "0000000000",
    "0123456789",
    "DEFAULT STRING",
    "NONE",
    "N/A",
    "NOT SPECIFIED",
    "SYSTEM SERIAL NUMBER",
    "TO BE FILLED BY O.E.M.",
];

impl Account {
    /// The account of a stored entity, from the identifiers its connector vouched for when it
    /// mapped the source's record (a user's `verified_emails` and `immutable_id`).
    pub fn new(config_id: ConfigId, entity: &Entity) -> Account {
        let account = AccountRef { config_id, kind: entity.kind(), source_id: entity.source_id().to_owned() };
        let mut out = Account {
            account,
            emails: Vec::new(),
            login: None,
            employee_id: None,
            immutable_id: None,
            owner: None,
            serial: None,
            last_user: None,
            sid: None,
            sam: None,
        };
        match entity {
            Entity::User(u) => {
                out.emails = u.verified_emails.iter().filter_map(|e| normalize(e)).collect();
                out.emails.sort();
                out.emails.dedup();
                out.login = normalize(&u.login).filter(|l| l.contains('@'));
                out.employee_id = u.employee_id.as_deref().and_then(normalize);
                out.immutable_id =
                    u.immutable_id.as_deref().map(str::trim).filter(|i| !i.is_empty()).map(str::to_owned);
                if let Some(ad) = &u.on_premises {
                    out.sid = ad.sid.as_deref().and_then(windows_sid);
                    // Every label but the top-level one: `corp.contoso.com` is `CORP` or `CONTOSO`.
                    let labels = ad
                        .domain
                        .iter()
                        .flat_map(|d| d.rsplit_once('.').map_or(d.as_str(), |(rest, _)| rest).split('.'))
                        .filter_map(normalize)
                        .collect();
                    out.sam = normalize(&ad.sam_account_name).map(|name| (name, labels));
                }
            }
            Entity::Group(g) => out.emails = g.email.as_deref().and_then(normalize).into_iter().collect(),
            Entity::Device(d) => {
                out.owner = d.owner.clone();
                out.serial = d
                    .serial_number
                    .as_deref()
                    .map(|s| s.trim().to_uppercase())
                    .filter(|s| !s.is_empty() && !PLACEHOLDER_SERIALS.contains(&s.as_str()));
                out.last_user = d.last_user.as_deref().and_then(normalize);
                out.sid = d.last_user_id.as_deref().and_then(windows_sid);
            }
        }
        out
    }

    /// The names a device's last logged-on user goes by, for finding the user: an address as it
    /// is, a `DOMAIN\name` or bare name as the name (to compare with a sign-in name's local part).
    pub fn logon_names(&self) -> Vec<String> {
        let Some(user) = &self.last_user else { return Vec::new() };
        match user.rsplit_once('\\') {
            Some((_, name)) if !name.is_empty() => vec![user.clone(), name.to_owned()],
            _ => vec![user.clone()],
        }
    }
}

/// A Windows SID as identity compares it (uppercase); a uid or anything else is none.
pub fn windows_sid(s: &str) -> Option<String> {
    let s = s.trim().to_uppercase();
    s.starts_with("S-1-").then_some(s)
}

fn normalize(s: &str) -> Option<String> {
    let s = s.trim().to_lowercase();
    (!s.is_empty()).then_some(s)
}

/// Why two accounts are one person, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkReason {
    SameImmutableId,
    SameEmployeeId,
    /// An address both sources vouch for.
    SameEmail,
    /// One account's sign-in name (UPN) is the other's address or sign-in name.
    UpnAlias,
    /// The device's source names the user as its owner.
    DeviceOwner,
    /// Two sources' records of one machine carry its serial number.
    SameSerial,
    /// The device's last logged-on user is this user's: by the SID of their Active Directory
    /// account, else by `DOMAIN\name` against that account's name and domain, else by their
    /// sign-in name or address or its local part; and no other person's.
    LastLogon,
}

/// A link between two accounts of one person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Link {
    pub reason: LinkReason,
    pub from: AccountRef,
    pub to: AccountRef,
    /// The identifier both hold (normalized).
    pub evidence: String,
}

impl Link {
    /// The link in words, for people reading the API.
    pub fn why(&self) -> String {
        let e = &self.evidence;
        match self.reason {
            LinkReason::SameImmutableId => format!("both accounts carry the immutable directory id {e}"),
            LinkReason::SameEmployeeId => format!("both accounts carry employee id {e}"),
            LinkReason::SameEmail => format!("both sources vouch for the address {e}"),
            LinkReason::UpnAlias => {
                format!("the sign-in name {e} of one account is an address or sign-in name of the other")
            }
            LinkReason::DeviceOwner => format!("the device's source names user {e} as its owner"),
            LinkReason::SameSerial => format!("both records of the machine carry serial number {e}"),
            LinkReason::LastLogon => {
                format!("the device's last logged-on user {e} names this user and no other person")
            }
        }
    }
}

/// Accounts resolved to one person, each (but the first) reached through at least one link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Sorted.
    pub accounts: Vec<AccountRef>,
    /// Every link between the person's accounts, strongest first.
    pub links: Vec<Link>,
}

impl Person {
    pub fn contains(&self, account: &AccountRef) -> bool {
        self.accounts.binary_search(account).is_ok()
    }
}

/// A key accounts may share, in the order links are applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Immutable(String),
    Employee(String),
    Address(String),
}

impl Key {
    fn tier(&self) -> u8 {
        match self {
            Key::Immutable(_) => 0,
            Key::Employee(_) => 1,
            Key::Address(_) => 2,
        }
    }

    fn value(&self) -> &str {
        match self {
            Key::Immutable(v) | Key::Employee(v) | Key::Address(v) => v,
        }
    }
}

/// What a person (a union-find root) holds, so a link that would contradict it is refused.
#[derive(Debug, Clone, Default)]
struct Holds {
    user_configs: BTreeSet<ConfigId>,
    employee_id: Option<String>,
    immutable_id: Option<String>,
}

impl Holds {
    fn of(account: &Account) -> Holds {
        Holds {
            user_configs: (account.account.kind == EntityKind::User)
                .then_some(account.account.config_id)
                .into_iter()
                .collect(),
            employee_id: account.employee_id.clone(),
            immutable_id: account.immutable_id.clone(),
        }
    }

    fn compatible(&self, other: &Holds) -> bool {
        fn agree(a: &Option<String>, b: &Option<String>) -> bool {
            a.is_none() || b.is_none() || a == b
        }
        self.user_configs.is_disjoint(&other.user_configs)
            && agree(&self.employee_id, &other.employee_id)
            && agree(&self.immutable_id, &other.immutable_id)
    }

    fn absorb(&mut self, other: Holds) {
        self.user_configs.extend(other.user_configs);
        self.employee_id = self.employee_id.take().or(other.employee_id);
        self.immutable_id = self.immutable_id.take().or(other.immutable_id);
    }
}

/// Groups users and devices into persons (groups only block their addresses). The result does
/// not depend on the order of `accounts`; persons are sorted by their first account.
///
/// The phases, each its own function: who holds which key, the candidate links those keys
/// allow, links applied tier by tier (strongest first), devices joined to their owners, and the
/// persons gathered from what was joined.
pub fn resolve(accounts: &[Account]) -> Vec<Person> {
    let mut accounts: Vec<&Account> = accounts.iter().collect();
    accounts.sort_by(|a, b| a.account.cmp(&b.account));
    accounts.dedup_by(|a, b| a.account == b.account);
    let (holders, by_login) = key_holders(&accounts);
    let candidates = candidate_links(&accounts, &holders);
    let mut joined = Joined::new(&accounts);
    for tier in 0..=2 {
        joined.link_tier(&candidates, tier, &by_login);
    }
    joined.attach_devices();
    joined.join_same_machines();
    joined.attach_by_last_logon();
    joined.persons()
}

/// A candidate link: the key's tier, the two accounts (by position) and the key they share.
type Candidate = (u8, usize, usize, Key);

/// The accounts (by position) holding each key.
type Holders = BTreeMap<Key, Vec<usize>>;

/// The (account, address) pairs an account holds only as its sign-in name.
type Logins<'a> = BTreeSet<(usize, &'a str)>;

/// Which users hold each key, and which addresses are held only as a sign-in name.
fn key_holders<'a>(accounts: &[&'a Account]) -> (Holders, Logins<'a>) {
    let mut holders: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
    let mut by_login: BTreeSet<(usize, &str)> = BTreeSet::new();
    for (i, a) in accounts.iter().enumerate().filter(|(_, a)| a.account.kind == EntityKind::User) {
        let mut keys: BTreeSet<Key> = a.emails.iter().map(|e| Key::Address(e.clone())).collect();
        if let Some(login) = &a.login {
            if !a.emails.contains(login) {
                by_login.insert((i, login));
            }
            keys.insert(Key::Address(login.clone()));
        }
        keys.extend(a.employee_id.iter().map(|e| Key::Employee(e.clone())));
        keys.extend(a.immutable_id.iter().map(|e| Key::Immutable(e.clone())));
        for key in keys {
            holders.entry(key).or_default().push(i);
        }
    }
    (holders, by_login)
}

/// Pairs of accounts of different configs sharing a usable key, weakest tier last: a key two
/// accounts of one config share, or a group's address, links nothing.
fn candidate_links(accounts: &[&Account], holders: &Holders) -> Vec<Candidate> {
    let group_addresses: BTreeSet<&str> = accounts
        .iter()
        .filter(|a| a.account.kind == EntityKind::Group)
        .flat_map(|a| a.emails.iter().map(String::as_str))
        .collect();
    let mut candidates = Vec::new();
    for (key, held) in holders {
        let configs: BTreeSet<ConfigId> = held.iter().map(|&i| accounts[i].account.config_id).collect();
        let shared = configs.len() < held.len();
        let group_mailbox = matches!(key, Key::Address(a) if group_addresses.contains(a.as_str()));
        if shared || group_mailbox {
            continue;
        }
        for (n, &i) in held.iter().enumerate() {
            for &j in &held[n + 1..] {
                candidates.push((key.tier(), i, j, key.clone()));
            }
        }
    }
    candidates.sort();
    candidates
}

/// Accounts joined so far: a union-find over their positions, what each root holds, and the
/// links that joined them.
struct Joined<'a> {
    accounts: &'a [&'a Account],
    parent: Vec<usize>,
    holds: Vec<Holds>,
    links: Vec<Link>,
}

impl<'a> Joined<'a> {
    fn new(accounts: &'a [&'a Account]) -> Joined<'a> {
        Joined {
            accounts,
            parent: (0..accounts.len()).collect(),
            holds: accounts.iter().map(|a| Holds::of(a)).collect(),
            links: Vec::new(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn link(&self, reason: LinkReason, i: usize, j: usize, evidence: &str) -> Link {
        Link {
            reason,
            from: self.accounts[i].account.clone(),
            to: self.accounts[j].account.clone(),
            evidence: evidence.to_owned(),
        }
    }

    /// Applies the candidates of one tier that what stronger keys established does not refute,
    /// but none that would link an account to several accounts of one config.
    fn link_tier(&mut self, candidates: &[Candidate], tier: u8, by_login: &Logins) {
        let mut open = Vec::new();
        for (_, i, j, key) in candidates.iter().filter(|c| c.0 == tier) {
            let (ri, rj) = (self.find(*i), self.find(*j));
            if ri == rj || self.holds[ri].compatible(&self.holds[rj]) {
                open.push((*i, *j, key));
            }
        }
        let config = |i: usize| self.accounts[i].account.config_id;
        let mut partners: HashMap<(usize, ConfigId), BTreeSet<usize>> = HashMap::new();
        for &(i, j, _) in &open {
            partners.entry((i, config(j))).or_default().insert(j);
            partners.entry((j, config(i))).or_default().insert(i);
        }
        open.retain(|&(i, j, _)| {
            partners[&(i, config(j))].len() == 1 && partners[&(j, config(i))].len() == 1
        });
        for (i, j, key) in open {
            let (ri, rj) = (self.find(i), self.find(j));
            if ri != rj {
                if !self.holds[ri].compatible(&self.holds[rj]) {
                    continue;
                }
                let absorbed = std::mem::take(&mut self.holds[rj]);
                self.holds[ri].absorb(absorbed);
                self.parent[rj] = ri;
            }
            let reason = match key {
                Key::Immutable(_) => LinkReason::SameImmutableId,
                Key::Employee(_) => LinkReason::SameEmployeeId,
                Key::Address(a)
                    if by_login.contains(&(i, a.as_str())) || by_login.contains(&(j, a.as_str())) =>
                {
                    LinkReason::UpnAlias
                }
                Key::Address(_) => LinkReason::SameEmail,
            };
            self.links.push(self.link(reason, i, j, key.value()));
        }
    }

    /// Each device joins the person of its owner, a user of its own config.
    fn attach_devices(&mut self) {
        let accounts = self.accounts;
        let users: HashMap<(ConfigId, &str), usize> = accounts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.account.kind == EntityKind::User)
            .map(|(i, a)| ((a.account.config_id, a.account.source_id.as_str()), i))
            .collect();
        for (d, device) in accounts.iter().enumerate().filter(|(_, a)| a.account.kind == EntityKind::Device) {
            let owner = device.owner.as_deref().and_then(|o| users.get(&(device.account.config_id, o)));
            if let Some(&u) = owner {
                let (ru, rd) = (self.find(u), self.find(d));
                self.parent[rd] = ru;
                self.links.push(self.link(LinkReason::DeviceOwner, d, u, &accounts[u].account.source_id));
            }
        }
    }

    /// Records of one machine in several configs join by serial number, unless that would join
    /// two people (a machine handed on keeps its records apart). A serial two devices of one
    /// config share is not a machine's.
    fn join_same_machines(&mut self) {
        let accounts = self.accounts;
        let mut by_serial: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (d, device) in accounts.iter().enumerate().filter(|(_, a)| a.account.kind == EntityKind::Device) {
            if let Some(serial) = &device.serial {
                by_serial.entry(serial).or_default().push(d);
            }
        }
        for (serial, held) in by_serial {
            let configs: BTreeSet<ConfigId> = held.iter().map(|&d| accounts[d].account.config_id).collect();
            if configs.len() < held.len() {
                continue;
            }
            let first = held[0];
            for &other in &held[1..] {
                let (ra, rb) = (self.find(first), self.find(other));
                let both_people =
                    !self.holds[ra].user_configs.is_empty() && !self.holds[rb].user_configs.is_empty();
                if ra == rb || both_people {
                    continue;
                }
                let (root, absorbed) =
                    if self.holds[ra].user_configs.is_empty() { (rb, ra) } else { (ra, rb) };
                let taken = std::mem::take(&mut self.holds[absorbed]);
                self.holds[root].absorb(taken);
                self.parent[absorbed] = root;
                self.links.push(self.link(LinkReason::SameSerial, other, first, serial));
            }
        }
    }

    /// A device still without a person joins the one its last logged-on user names: a user
    /// whose sign-in name or address is that name, or whose sign-in name's local part is the name
    /// of a `DOMAIN\name`. When the name fits users of several persons, it joins none.
    fn attach_by_last_logon(&mut self) {
        let accounts = self.accounts;
        let users: Vec<usize> =
            (0..accounts.len()).filter(|&i| accounts[i].account.kind == EntityKind::User).collect();
        for (d, device) in accounts.iter().enumerate().filter(|(_, a)| a.account.kind == EntityKind::Device) {
            let names = device.logon_names();
            let root = self.find(d);
            if (names.is_empty() && device.sid.is_none()) || !self.holds[root].user_configs.is_empty() {
                continue;
            }
            let same_sid = |u: &Account| device.sid.is_some() && u.sid == device.sid;
            let same_sam = |u: &Account| {
                let Some((domain, name)) = device.last_user.as_deref().and_then(|l| l.rsplit_once('\\'))
                else {
                    return false;
                };
                u.sam.as_ref().is_some_and(|(sam, labels)| sam == name && labels.iter().any(|l| l == domain))
            };
            let same_name = |u: &Account| {
                let login_local = u.login.as_deref().and_then(|l| l.split_once('@')).map(|(local, _)| local);
                names.iter().any(|n| {
                    u.login.as_deref() == Some(n.as_str())
                        || u.emails.contains(n)
                        || login_local == Some(n.as_str())
                })
            };
            // The strongest evidence that names anyone decides; a weaker one may not overrule it.
            let tiers: [&dyn Fn(&Account) -> bool; 3] = [&same_sid, &same_sam, &same_name];
            let Some((tier, matched)) = tiers.iter().enumerate().find_map(|(tier, fits)| {
                let matched: Vec<usize> = users.iter().copied().filter(|&u| fits(accounts[u])).collect();
                (!matched.is_empty()).then_some((tier, matched))
            }) else {
                continue;
            };
            let persons: BTreeSet<usize> = matched.iter().map(|&u| self.find(u)).collect();
            let (Some(&user), 1) = (matched.first(), persons.len()) else { continue };
            let person = self.find(user);
            let taken = std::mem::take(&mut self.holds[root]);
            self.holds[person].absorb(taken);
            self.parent[root] = person;
            let name = device.last_user.clone().unwrap_or_default();
            let evidence = match (tier, &device.sid) {
                (0, Some(sid)) if name.is_empty() => sid.clone(),
                (0, Some(sid)) => format!("{name} ({sid})"),
                _ => name,
            };
            self.links.push(self.link(LinkReason::LastLogon, d, user, &evidence));
        }
    }

    /// One person per root holding a user or device, with the links that joined it, sorted.
    fn persons(mut self) -> Vec<Person> {
        let accounts = self.accounts;
        let mut persons: BTreeMap<usize, Person> = BTreeMap::new();
        for (i, a) in accounts.iter().enumerate().filter(|(_, a)| a.account.kind != EntityKind::Group) {
            let root = self.find(i);
            persons.entry(root).or_insert_with(|| Person { accounts: Vec::new(), links: Vec::new() });
            persons.get_mut(&root).expect("just inserted").accounts.push(a.account.clone());
        }
        let index: HashMap<&AccountRef, usize> =
            accounts.iter().enumerate().map(|(i, a)| (&a.account, i)).collect();
        for l in std::mem::take(&mut self.links) {
            let root = self.find(index[&l.from]);
            persons.get_mut(&root).expect("a linked account has a person").links.push(l);
        }
        let mut persons: Vec<Person> = persons.into_values().collect();
        for p in &mut persons {
            p.links.sort();
        }
        persons.sort_by(|a, b| a.accounts[0].cmp(&b.accounts[0]));
        persons
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::{Device, Group, User, UserStatus};

    fn config(n: u128) -> ConfigId {
        ConfigId(Uuid::from_u128(n))
    }

    const OKTA: u128 = 1;
    const GOOGLE: u128 = 2;
    const ENTRA: u128 = 3;

    /// A user whose source lists `home@mail.test` too but vouches only for `verified`.
    fn user(id: &str, login: &str, employee_id: Option<&str>, verified: &[&str]) -> User {
        User {
            source_id: id.into(),
            login: login.into(),
            emails: verified.iter().map(|e| e.to_lowercase()).chain(["home@mail.test".into()]).collect(),
            verified_emails: User::verified_emails(verified.iter().copied()),
            immutable_id: None,
            on_premises: None,
            display_name: Some("Ada Lovelace".into()),
            given_name: None,
            family_name: None,
            status: UserStatus::Active,
            title: None,
            department: None,
            manager: None,
            employee_id: employee_id.map(Into::into),
            created_at: None,
            last_login_at: None,
            source_updated_at: None,
            admin_roles: Vec::new(),
            mfa_factors: Vec::new(),
            mfa_enrolled: None,
        }
    }

    fn okta(id: &str, login: &str, email: &str, employee_id: Option<&str>) -> Account {
        Account::new(config(OKTA), &Entity::User(user(id, login, employee_id, &[email])))
    }

    fn google(id: &str, primary: &str, aliases: &[&str], employee_id: Option<&str>) -> Account {
        let verified: Vec<&str> = std::iter::once(primary).chain(aliases.iter().copied()).collect();
        Account::new(config(GOOGLE), &Entity::User(user(id, primary, employee_id, &verified)))
    }

    fn entra(
        id: &str,
        upn: &str,
        mail: Option<&str>,
        employee_id: Option<&str>,
        immutable: Option<&str>,
    ) -> Account {
        let mut u = user(id, upn, employee_id, mail.as_slice());
        u.immutable_id = User::immutable_id(immutable);
        Account::new(config(ENTRA), &Entity::User(u))
    }

    fn group(n: u128, id: &str, email: &str) -> Account {
        let g = Group {
            source_id: id.into(),
            name: id.into(),
            email: Some(email.into()),
            description: None,
            kind: None,
        };
        Account::new(config(n), &Entity::Group(g))
    }

    fn ids(p: &Person) -> Vec<&str> {
        p.accounts.iter().map(|a| a.source_id.as_str()).collect()
    }

    fn person_of<'a>(persons: &'a [Person], id: &str) -> &'a Person {
        persons.iter().find(|p| p.accounts.iter().any(|a| a.source_id == id)).unwrap()
    }

    #[test]
    fn accounts_keep_only_the_addresses_sources_vouch_for() {
        let a = okta("o1", "Ada@Acme.com", "ADA@acme.com", Some(" 100001 "));
        assert_eq!(a.emails, ["ada@acme.com"]);
        assert_eq!((a.login.as_deref(), a.employee_id.as_deref()), (Some("ada@acme.com"), Some("100001")));
        let g = google("g1", "ada@example.com", &["ada@acme.com"], None);
        assert_eq!(g.emails, ["ada@acme.com", "ada@example.com"]);
        let e = entra("e1", "ada@contoso.onmicrosoft.com", Some("Ada@contoso.com"), None, Some("AbC=="));
        assert_eq!(e.emails, ["ada@contoso.com"]);
        assert_eq!(e.immutable_id.as_deref(), Some("AbC=="));
    }

    #[test]
    fn one_person_across_three_sources_with_a_reason_for_every_link() {
        let persons = resolve(&[
            okta("o1", "ada@acme.com", "ada@acme.com", Some("100001")),
            google("g1", "ada@example.com", &["ada@acme.com"], None),
            entra("e1", "ada@example.com", None, Some("100001"), None),
        ]);
        assert_eq!(persons.len(), 1);
        let reasons: Vec<(LinkReason, &str)> =
            persons[0].links.iter().map(|l| (l.reason, l.evidence.as_str())).collect();
        assert_eq!(
            reasons,
            [
                (LinkReason::SameEmployeeId, "100001"),
                (LinkReason::SameEmail, "ada@acme.com"),
                (LinkReason::UpnAlias, "ada@example.com"),
            ]
        );
    }

    #[test]
    fn same_display_name_and_unverified_addresses_link_nothing() {
        // Both users are "Ada Lovelace" and list home@mail.test as a second address.
        let persons = resolve(&[
            okta("o1", "ada@acme.com", "ada@acme.com", Some("1")),
            google("g2", "ada.lovelace2@example.com", &[], Some("2")),
            entra("e3", "ada3@contoso.onmicrosoft.com", None, None, None),
        ]);
        assert_eq!(persons.len(), 3);
        assert!(persons.iter().all(|p| p.links.is_empty()));
    }

    #[test]
    fn a_shared_mailbox_is_not_a_link_key() {
        let persons = resolve(&[
            okta("o1", "ada@acme.com", "help@acme.com", None),
            okta("o2", "alan@acme.com", "help@acme.com", None),
            google("g1", "grace@example.com", &["help@acme.com"], None),
        ]);
        assert_eq!(persons.len(), 3, "{persons:#?}");
    }

    #[test]
    fn a_group_mailbox_is_not_a_link_key() {
        let persons = resolve(&[
            okta("o1", "ada@acme.com", "sales@acme.com", None),
            google("g1", "grace@example.com", &["sales@acme.com"], None),
            group(ENTRA, "grp", "Sales@acme.com"),
        ]);
        assert_eq!(persons.len(), 2, "groups are not persons, and block their address");
        assert!(persons.iter().all(|p| p.links.is_empty()));
    }

    #[test]
    fn a_reused_address_does_not_join_its_old_and_new_holders() {
        // Ada was ada@acme.com, now ada.byron@; Google keeps the old address as an alias; Okta
        // gave it to Alan.
        let accounts = [
            okta("o-ada", "ada.byron@acme.com", "ada.byron@acme.com", Some("1")),
            okta("o-alan", "ada@acme.com", "ada@acme.com", Some("2")),
            google("g-ada", "ada.byron@example.com", &["ada.byron@acme.com", "ada@acme.com"], Some("1")),
        ];
        let persons = resolve(&accounts);
        assert_eq!(ids(person_of(&persons, "g-ada")), ["o-ada", "g-ada"]);
        assert_eq!(ids(person_of(&persons, "o-alan")), ["o-alan"]);

        // Without employee ids the address tier is ambiguous, so it links Ada's Google account
        // to neither Okta account.
        let accounts = [
            okta("o-ada", "ada.byron@acme.com", "ada.byron@acme.com", None),
            okta("o-alan", "ada@acme.com", "ada@acme.com", None),
            google("g-ada", "ada.byron@example.com", &["ada.byron@acme.com", "ada@acme.com"], None),
        ];
        let persons = resolve(&accounts);
        assert_eq!(persons.len(), 3, "{persons:#?}");

        // A candidate that employee ids already refute does not make the address tier ambiguous:
        // Alan's Okta account holds Ada's old address and his own sign-in name, both in Entra.
        let accounts = [
            okta("o-ada", "ada.byron@acme.com", "ada.byron@acme.com", Some("1")),
            okta("o-alan", "alan@acme.com", "ada@acme.com", Some("2")),
            entra("e-ada", "ada@contoso.onmicrosoft.com", Some("ada@acme.com"), Some("1"), None),
            entra("e-alan", "alan@acme.com", None, None, None),
        ];
        let persons = resolve(&accounts);
        assert_eq!(ids(person_of(&persons, "o-alan")), ["o-alan", "e-alan"]);
        assert_eq!(person_of(&persons, "o-alan").links[0].reason, LinkReason::UpnAlias);
        assert_eq!(ids(person_of(&persons, "o-ada")), ["o-ada", "e-ada"]);
    }

    #[test]
    fn conflicting_strong_ids_veto_an_address_link() {
        let persons = resolve(&[
            okta("o1", "ada@acme.com", "ada@acme.com", Some("1")),
            google("g1", "ada@acme.com", &[], Some("2")),
        ]);
        assert_eq!(persons.len(), 2);
        let persons = resolve(&[
            google("g1", "ada@acme.com", &[], None),
            entra("e1", "ada@contoso.onmicrosoft.com", Some("ada@acme.com"), None, Some("X1")),
            entra("e2", "ada@contoso.onmicrosoft.com", None, None, Some("X1")),
        ]);
        assert_eq!(persons.len(), 2, "an immutable id held twice in one config links nothing");
        assert_eq!(ids(person_of(&persons, "g1")), ["g1", "e1"]);
    }

    #[test]
    fn immutable_ids_link_before_anything_else_and_devices_follow_their_owner() {
        let mut o = okta("o1", "ada@acme.com", "ada@acme.com", None);
        o.immutable_id = Some("X1".into());
        let device = |id: &str, owner: Option<&str>| {
            let d = Device {
                source_id: id.into(),
                name: Some("Ada's iPhone".into()),
                os: None,
                os_version: None,
                status: None,
                managed: None,
                compliant: None,
                trust_type: None,
                owner: owner.map(Into::into),
                last_seen_at: None,
                created_at: None,
                ..Device::default()
            };
            Account::new(config(ENTRA), &Entity::Device(d))
        };
        let persons = resolve(&[
            device("d1", Some("e1")),
            device("d2", None),
            entra("e1", "ada@contoso.onmicrosoft.com", None, None, Some("X1")),
            o,
        ]);
        assert_eq!(persons.len(), 2);
        let ada = person_of(&persons, "e1");
        assert_eq!(ids(ada), ["o1", "e1", "d1"]);
        assert_eq!(ada.links[0].reason, LinkReason::SameImmutableId);
        assert_eq!((ada.links[1].reason, ada.links[1].evidence.as_str()), (LinkReason::DeviceOwner, "e1"));
        assert_eq!(ada.links[1].why(), "the device's source names user e1 as its owner");
        assert_eq!(ids(person_of(&persons, "d2")), ["d2"]);
    }

    #[test]
    fn the_order_of_accounts_does_not_matter() {
        let mut accounts = vec![
            okta("o1", "ada@acme.com", "ada@acme.com", Some("1")),
            okta("o2", "alan@acme.com", "alan@acme.com", None),
            google("g1", "ada@example.com", &["ada@acme.com", "alan@acme.com"], Some("1")),
            entra("e1", "alan@acme.com", None, None, None),
        ];
        let first = resolve(&accounts);
        accounts.reverse();
        assert_eq!(resolve(&accounts), first);
    }

    const CROWDSTRIKE: u128 = 4;
    const SENTINELONE: u128 = 5;

    /// A device record of config `n`: its serial, last logged-on user and owner.
    fn host(
        n: u128,
        id: &str,
        serial: Option<&str>,
        last_user: Option<&str>,
        owner: Option<&str>,
    ) -> Account {
        let d = Device {
            source_id: id.into(),
            name: Some("LAPTOP-ADA".into()),
            owner: owner.map(Into::into),
            serial_number: serial.map(Into::into),
            last_user: last_user.map(Into::into),
            ..Device::default()
        };
        Account::new(config(n), &Entity::Device(d))
    }

    #[test]
    fn records_of_one_machine_join_by_serial_and_reach_its_owner() {
        let persons = resolve(&[
            entra("e1", "ada@contoso.com", Some("ada@contoso.com"), None, None),
            host(ENTRA, "d1", Some("pf3x9k2"), None, Some("e1")),
            host(CROWDSTRIKE, "aid1", Some(" PF3X9K2 "), Some("CONTOSO\\svc-backup"), None),
            host(SENTINELONE, "701", Some("PF3X9K2"), None, None),
        ]);
        assert_eq!(persons.len(), 1, "{persons:?}");
        assert_eq!(ids(&persons[0]), ["e1", "d1", "aid1", "701"]);
        let serial: Vec<&Link> =
            persons[0].links.iter().filter(|l| l.reason == LinkReason::SameSerial).collect();
        assert_eq!(serial.len(), 2);
        assert_eq!(serial[0].why(), "both records of the machine carry serial number PF3X9K2");
    }

    #[test]
    fn serials_that_are_not_a_machines_join_nothing() {
        let persons = resolve(&[
            host(CROWDSTRIKE, "aid1", Some("To be filled by O.E.M."), None, None),
            host(SENTINELONE, "701", Some("TO BE FILLED BY O.E.M."), None, None),
            // Two hosts of one config with one serial: cloned images, not one machine.
            host(CROWDSTRIKE, "aid2", Some("VM-1"), None, None),
            host(CROWDSTRIKE, "aid3", Some("VM-1"), None, None),
            host(SENTINELONE, "702", Some("VM-1"), None, None),
        ]);
        assert_eq!(persons.len(), 5, "{persons:?}");
    }

    #[test]
    fn a_machine_handed_on_does_not_join_two_people() {
        let persons = resolve(&[
            entra("e1", "ada@contoso.com", None, None, None),
            entra("e2", "bob@contoso.com", None, None, None),
            host(ENTRA, "d1", Some("SN1"), None, Some("e1")),
            host(OKTA, "d2", Some("SN1"), None, Some("o9")),
            okta("o9", "bob@acme.com", "bob@acme.com", None),
        ]);
        assert_ne!(person_of(&persons, "d1"), person_of(&persons, "d2"));
        assert_eq!(ids(person_of(&persons, "d2")), ["o9", "d2"]);
    }

    #[test]
    fn the_last_logon_joins_a_host_to_the_one_person_it_names() {
        let persons = resolve(&[
            entra("e1", "ada@contoso.com", Some("ada.lovelace@contoso.com"), None, None),
            okta("o1", "grace@acme.com", "grace@acme.com", None),
            host(CROWDSTRIKE, "aid1", Some("SN1"), Some("Ada.Lovelace@contoso.com"), None),
            host(CROWDSTRIKE, "aid2", Some("SN2"), Some("ACME\\grace"), None),
            host(SENTINELONE, "701", Some("SN3"), Some("kiosk"), None),
        ]);
        let ada = person_of(&persons, "e1");
        assert_eq!(ids(ada), ["e1", "aid1"]);
        assert_eq!(
            (ada.links[0].reason, ada.links[0].evidence.as_str()),
            (LinkReason::LastLogon, "ada.lovelace@contoso.com")
        );
        assert_eq!(
            ids(person_of(&persons, "o1")),
            ["o1", "aid2"],
            "DOMAIN\\name against the sign-in name's local part"
        );
        assert_eq!(ids(person_of(&persons, "701")), ["701"], "a name no one signs in with joins nothing");
    }

    /// An Entra user synced from the AD account `sam` in `corp.contoso.com`, with `sid`.
    fn synced(id: &str, upn: &str, sam: &str, sid: &str) -> Account {
        let mut u = user(id, upn, None, &[]);
        u.on_premises = Some(crate::OnPremisesAccount {
            sam_account_name: sam.into(),
            domain: Some("corp.contoso.com".into()),
            sid: Some(sid.into()),
        });
        Account::new(config(ENTRA), &Entity::User(u))
    }

    /// A CrowdStrike host whose last user the host names `last_user`, with their SID.
    fn windows_host(id: &str, last_user: &str, sid: Option<&str>) -> Account {
        let mut d = Device { source_id: id.into(), last_user: Some(last_user.into()), ..Device::default() };
        d.last_user_id = sid.map(Into::into);
        Account::new(config(CROWDSTRIKE), &Entity::Device(d))
    }

    #[test]
    fn a_windows_logon_joins_the_active_directory_account_it_names() {
        let persons = resolve(&[
            synced("e1", "ada.lovelace@contoso.com", "alovelace", "S-1-5-21-7-8-9-1105"),
            // Signs in as `alovelace@…`: the local part alone would name her instead.
            okta("o1", "alovelace@acme.com", "alovelace@acme.com", None),
            synced("e2", "grace@contoso.com", "ghopper", "S-1-5-21-7-8-9-1106"),
            windows_host("aid1", "CONTOSO\\alovelace", None),
            windows_host("aid2", "CORP\\ghopper", Some("s-1-5-21-7-8-9-1106")),
            // The SID decides over the name: the account was renamed since.
            windows_host("aid3", "CONTOSO\\alovelace", Some("S-1-5-21-7-8-9-1106")),
            // Another domain's `alovelace` is not hers; the local part then decides.
            windows_host("aid4", "FABRIKAM\\alovelace", None),
            // A uid is no SID; a top-level domain is no AD domain.
            windows_host("aid5", "root", Some("0")),
            windows_host("aid6", "COM\\ghopper", None),
        ]);
        assert_eq!(ids(person_of(&persons, "e1")), ["e1", "aid1"]);
        let grace = person_of(&persons, "e2");
        assert_eq!(ids(grace), ["e2", "aid2", "aid3"]);
        let by_sid =
            grace.links.iter().find(|l| l.from.source_id == "aid2" || l.to.source_id == "aid2").unwrap();
        assert_eq!(by_sid.evidence, "corp\\ghopper (S-1-5-21-7-8-9-1106)");
        assert_eq!(ids(person_of(&persons, "o1")), ["o1", "aid4"]);
        assert_eq!(ids(person_of(&persons, "aid5")), ["aid5"]);
        assert_eq!(ids(person_of(&persons, "aid6")), ["aid6"]);
    }

    #[test]
    fn a_last_logon_that_fits_two_people_joins_neither() {
        let persons = resolve(&[
            okta("o1", "ada@acme.com", "ada@acme.com", None),
            entra("e1", "ada@contoso.com", None, None, None),
            host(SENTINELONE, "701", None, Some("WORKGROUP\\ada"), None),
        ]);
        assert_eq!(ids(person_of(&persons, "701")), ["701"]);
        assert_eq!(persons.len(), 3);
    }
}
