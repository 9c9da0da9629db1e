//! What a page writes, prepared the same way for every backend: one row per entity with its
//! digest and identifiers, which of them changed, and the keys of memberships and removals.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use ctxsync_core::{Device, Entity, Membership, Record, Removal, RunCounts, windows_sid};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::StoreError;

pub(crate) use ctxsync_core::MEMBERSHIP;

/// An entity as written: the columns it is filtered by, its identifiers and its stored JSON.
pub(crate) struct EntityWrite {
    pub kind: &'static str,
    pub source_id: String,
    pub status: Option<String>,
    pub login: Option<String>,
    pub display_name: Option<String>,
    pub data: String,
    pub raw: String,
    /// SHA-256 of `data` and `raw`, so a run can skip entities that did not change.
    pub digest: Vec<u8>,
    /// Lowercase, sorted, without duplicates or empty strings.
    pub identifiers: Vec<String>,
    /// A user's admin roles, so their history opens without decoding `data` again.
    pub admin_roles: Vec<String>,
}

impl EntityWrite {
    /// `raw` is stored as the source wrote it, moved rather than copied.
    fn new(entity: &Entity, raw: Box<RawValue>) -> EntityWrite {
        let data = serde_json::to_string(entity).expect("an entity always serializes");
        let raw = String::from(Box::<str>::from(raw));
        let mut hasher = Sha256::new();
        hasher.update(data.as_bytes());
        hasher.update([0]);
        hasher.update(raw.as_bytes());
        let (status, login, display_name) = match entity {
            Entity::User(u) => {
                (Some(u.status.as_str().to_owned()), Some(u.login.clone()), u.display_name.clone())
            }
            Entity::Group(g) => (None, g.email.clone(), Some(g.name.clone())),
            Entity::Device(d) => (d.status.clone(), None, d.name.clone()),
        };
        EntityWrite {
            kind: entity.kind().as_str(),
            source_id: entity.source_id().to_owned(),
            status,
            login,
            display_name,
            data,
            raw,
            digest: hasher.finalize().to_vec(),
            identifiers: identifiers(entity),
            admin_roles: match entity {
                Entity::User(u) => u.admin_roles.clone(),
                Entity::Group(_) | Entity::Device(_) => Vec::new(),
            },
        }
    }
}

/// What `entity` answers to in lookups: lowercase, sorted, without duplicates or empty strings.
/// An entity whose digest is unchanged is never rewritten, so a change to what this returns for
/// entities already stored needs a migration that clears their digests.
fn identifiers(entity: &Entity) -> Vec<String> {
    let mut identifiers = match entity {
        Entity::User(u) => {
            let mut ids = vec![u.login.clone()];
            ids.extend(u.emails.iter().cloned());
            // A Windows host names the user by these; so do Windows event logs.
            if let Some(ad) = &u.on_premises {
                ids.extend(std::iter::once(&ad.sam_account_name).chain(&ad.sid).cloned());
            }
            ids
        }
        Entity::Group(g) => g.email.iter().cloned().collect(),
        Entity::Device(d) => {
            let mut ids: Vec<String> =
                d.name.iter().chain(&d.serial_number).chain(&d.mac_addresses).cloned().collect();
            ids.extend(logon_identifiers(d));
            ids
        }
    };
    identifiers.push(entity.source_id().to_owned());
    identifiers.iter_mut().for_each(|i| *i = i.trim().to_lowercase());
    identifiers.retain(|i| !i.is_empty());
    identifiers.sort();
    identifiers.dedup();
    identifiers
}

/// A stored entity about to be rewritten, as it was: `(kind, source_id, data, identifiers)`.
pub(crate) type StoredRow = (String, String, String, Vec<String>);

/// What is stored for entities a page rewrites, read back before they are: by `(kind,
/// source_id)`, the entity and the identifiers it answers to (sorted).
pub(crate) struct Stored(HashMap<(String, String), (Entity, Vec<String>)>);

impl Stored {
    pub(crate) fn decode(rows: Vec<StoredRow>) -> Result<Stored, StoreError> {
        rows.into_iter()
            .map(|(kind, source_id, data, mut identifiers)| match serde_json::from_str(&data) {
                Ok(entity) => {
                    identifiers.sort();
                    Ok(((kind, source_id), (entity, identifiers)))
                }
                Err(_) => Err(StoreError::Corrupt(format!("the stored {kind} {source_id} is not readable"))),
            })
            .collect::<Result<_, _>>()
            .map(Stored)
    }

    fn stored(&self, row: &EntityWrite) -> Option<&(Entity, Vec<String>)> {
        self.0.get(&(row.kind.to_owned(), row.source_id.clone()))
    }

    /// What is stored for `row`'s entity.
    pub(crate) fn get(&self, row: &EntityWrite) -> Option<&Entity> {
        self.stored(row).map(|(entity, _)| entity)
    }

    /// Of `rows`, those whose identifiers differ from those stored for them (or that have nothing
    /// stored): only theirs need rewriting. Leaving the others' alone keeps a changed title or
    /// status from reading and rewriting index pages scattered over the identifiers' index.
    /// Compared with the stored identifiers, not with what the stored entity would answer to
    /// today, so identifiers that an earlier version computed otherwise are mended at the
    /// entity's next change.
    pub(crate) fn reidentified<'a>(&self, rows: &[&'a EntityWrite]) -> Vec<&'a EntityWrite> {
        rows.iter()
            .copied()
            .filter(|row| self.stored(row).is_none_or(|(_, identifiers)| *identifiers != row.identifiers))
            .collect()
    }
}

/// The identifiers a device answers to for its last logged-on user, `logon:` and the name as the
/// host wrote it (and, for a `DOMAIN\\name`, the name alone; and the user's SID where the source
/// gives it), so a person's lookup finds the hosts its users last logged on to without those
/// hosts answering to the users' own addresses.
fn logon_identifiers(device: &Device) -> Vec<String> {
    let sid = device.last_user_id.as_deref().and_then(windows_sid);
    let mut ids: Vec<String> = sid.iter().map(|sid| format!("{LOGON}{sid}")).collect();
    let Some(user) = device.last_user.as_deref().map(str::trim).filter(|u| !u.is_empty()) else { return ids };
    ids.push(format!("{LOGON}{user}"));
    if let Some((_, name)) = user.rsplit_once('\\').filter(|(_, name)| !name.is_empty()) {
        ids.push(format!("{LOGON}{name}"));
    }
    ids
}

/// The prefix of [`logon_identifiers`].
pub const LOGON: &str = "logon:";

/// A page's entities as the store writes them: one row per entity, the last occurrence winning,
/// with the records counted as fetched. Prepared before the store is asked to write, so the
/// serializing and hashing happen beside the previous page's SQL, not inside the write
/// transaction, and the parsed source objects can be dropped early.
#[derive(Default)]
pub struct PreparedEntities {
    pub(crate) rows: Vec<EntityWrite>,
    index: HashMap<(&'static str, String), usize>,
    pub(crate) fetched: RunCounts,
}

impl PreparedEntities {
    pub fn new(records: Vec<Record>) -> PreparedEntities {
        let mut prepared = PreparedEntities::default();
        for record in records {
            let row = EntityWrite::new(&record.entity, record.raw);
            prepared.fetched.entry(row.kind).fetched += 1;
            prepared.push(row);
        }
        prepared
    }

    fn push(&mut self, row: EntityWrite) {
        match self.index.entry((row.kind, row.source_id.clone())) {
            Entry::Occupied(at) => self.rows[*at.get()] = row,
            Entry::Vacant(at) => {
                at.insert(self.rows.len());
                self.rows.push(row);
            }
        }
    }

    /// The records counted as fetched, by kind.
    pub fn fetched(&self) -> &RunCounts {
        &self.fetched
    }

    /// Adds a later page's entities, which win over this one's.
    pub fn extend(&mut self, later: PreparedEntities) {
        self.fetched.add(&later.fetched);
        for row in later.rows {
            self.push(row);
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The rows of a page that must be written.
pub(crate) struct Changed<'a> {
    /// Not stored yet.
    pub created: Vec<&'a EntityWrite>,
    /// Stored with another digest.
    pub updated: Vec<&'a EntityWrite>,
}

impl<'a> Changed<'a> {
    /// Sorts `rows` by what is stored, counting them as created or updated. `stored` maps a row's
    /// position in `rows` to the digest already stored for it.
    pub(crate) fn new(
        rows: &'a [EntityWrite],
        stored: &HashMap<i64, Vec<u8>>,
        counts: &mut RunCounts,
    ) -> Changed<'a> {
        let mut changed = Changed { created: Vec::new(), updated: Vec::new() };
        for (i, row) in rows.iter().enumerate() {
            match stored.get(&(i as i64)) {
                None => {
                    counts.entry(row.kind).created += 1;
                    changed.created.push(row);
                }
                Some(digest) if *digest != row.digest => {
                    counts.entry(row.kind).updated += 1;
                    changed.updated.push(row);
                }
                Some(_) => {}
            }
        }
        changed
    }

    pub(crate) fn all(self) -> Vec<&'a EntityWrite> {
        let mut all = self.created;
        all.extend(self.updated);
        all
    }
}

pub(crate) fn membership_key(m: &Membership) -> (&str, &'static str, &str) {
    (&m.group_id, m.member_kind.as_str(), &m.member_id)
}

/// A removal as a `run_removals` row: `(kind, source_id, member_kind, member_id)`, where an
/// entity's has empty member columns and a membership's kind is [`MEMBERSHIP`] with the group as
/// source id.
pub(crate) fn removal_key(removal: &Removal) -> (&'static str, &str, &'static str, &str) {
    match removal {
        Removal::Entity { kind, source_id } => (kind.as_str(), source_id, "", ""),
        Removal::Membership(m) => {
            let (group, kind, member) = membership_key(m);
            (MEMBERSHIP, group, kind, member)
        }
    }
}

#[cfg(test)]
mod tests {
    use ctxsync_core::{OnPremisesAccount, UserStatus};

    use super::*;
    use crate::tests::sync::{group, user};

    #[test]
    fn a_later_occurrence_wins_and_every_record_counts_as_fetched() {
        let mut first = PreparedEntities::new(vec![user("u1", "old@x.com", UserStatus::Active), group("g1")]);
        let later = PreparedEntities::new(vec![
            user("u1", "new@x.com", UserStatus::Active),
            user("u2", "b@x.com", UserStatus::Active),
            user("u2", "b2@x.com", UserStatus::Active),
        ]);
        first.extend(later);
        assert_eq!(first.len(), 3, "u1, g1 and u2 once each");
        let u1 = first.rows.iter().find(|r| r.source_id == "u1").unwrap();
        assert!(u1.identifiers.contains(&"new@x.com".to_owned()), "{:?}", u1.identifiers);
        let u2 = first.rows.iter().find(|r| r.source_id == "u2").unwrap();
        assert!(u2.identifiers.contains(&"b2@x.com".to_owned()));
        assert_eq!((first.fetched.by_type["user"].fetched, first.fetched.by_type["group"].fetched), (4, 1));
    }

    /// A run rewrites the identifiers only of entities whose identifiers are not those stored: a
    /// new title leaves them; a new address, a new on-premises account, nothing stored, or
    /// identifiers an earlier version stored otherwise do not.
    #[test]
    fn only_entities_answering_to_something_new_have_their_identifiers_rewritten() {
        let with_account = |id: &str, sam: &str| {
            let mut record = user(id, &format!("{id}@x.com"), UserStatus::Active);
            if let Entity::User(u) = &mut record.entity {
                u.on_premises = Some(OnPremisesAccount {
                    sam_account_name: sam.into(),
                    domain: Some("corp.example.com".into()),
                    sid: Some(format!("S-1-5-21-1-2-3-{}", id.len())),
                });
            }
            record
        };
        let before = PreparedEntities::new(vec![
            user("u1", "a@x.com", UserStatus::Active),
            user("u2", "b@x.com", UserStatus::Active),
            with_account("u3", "jdoe"),
            with_account("u4", "asmith"),
            with_account("u6", "fbar"),
        ]);
        let stored = Stored::decode(
            before
                .rows
                .iter()
                .map(|r| {
                    let mut identifiers = r.identifiers.clone();
                    if r.source_id == "u6" {
                        // As stored before on-premises accounts were identifiers.
                        identifiers.retain(|i| i != "fbar");
                    }
                    identifiers.reverse();
                    (r.kind.to_owned(), r.source_id.clone(), r.data.clone(), identifiers)
                })
                .collect(),
        )
        .unwrap();
        let mut retitled = user("u1", "a@x.com", UserStatus::Suspended);
        if let Entity::User(u) = &mut retitled.entity {
            u.title = Some("Staff Engineer".into());
        }
        let page = PreparedEntities::new(vec![
            retitled,
            user("u2", "b.new@x.com", UserStatus::Active),
            with_account("u3", "jdoe"),
            with_account("u4", "asmith2"),
            user("u5", "e@x.com", UserStatus::Active),
            with_account("u6", "fbar"),
        ]);
        let rows: Vec<&EntityWrite> = page.rows.iter().collect();
        let rewritten: Vec<&str> = stored.reidentified(&rows).iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(rewritten, ["u2", "u4", "u5", "u6"]);
    }
}
