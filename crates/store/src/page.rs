//! What a page writes, prepared the same way for every backend: one row per entity with its
//! digest and identifiers, which of them changed, and the keys of memberships and removals.

use std::collections::HashMap;

use ctxsync_core::{Entity, Membership, Record, Removal, RunCounts};
use sha2::{Digest, Sha256};

/// The `kind` under which memberships are counted, and of a membership in `run_removals`.
pub(crate) const MEMBERSHIP: &str = "membership";

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
    fn new(entity: &Entity, raw: &serde_json::Value) -> EntityWrite {
        let data = serde_json::to_string(entity).expect("an entity always serializes");
        let raw = serde_json::to_string(raw).expect("a JSON value always serializes");
        let mut hasher = Sha256::new();
        hasher.update(data.as_bytes());
        hasher.update([0]);
        hasher.update(raw.as_bytes());
        let (status, login, display_name, mut identifiers) = match entity {
            Entity::User(u) => {
                let mut ids = vec![u.login.clone()];
                ids.extend(u.emails.iter().cloned());
                (Some(u.status.as_str().to_owned()), Some(u.login.clone()), u.display_name.clone(), ids)
            }
            Entity::Group(g) => {
                (None, g.email.clone(), Some(g.name.clone()), g.email.iter().cloned().collect())
            }
            Entity::Device(d) => (d.status.clone(), None, d.name.clone(), d.name.iter().cloned().collect()),
        };
        identifiers.push(entity.source_id().to_owned());
        identifiers.iter_mut().for_each(|i| *i = i.trim().to_lowercase());
        identifiers.retain(|i| !i.is_empty());
        identifiers.sort();
        identifiers.dedup();
        EntityWrite {
            kind: entity.kind().as_str(),
            source_id: entity.source_id().to_owned(),
            status,
            login,
            display_name,
            data,
            raw,
            digest: hasher.finalize().to_vec(),
            identifiers,
            admin_roles: match entity {
                Entity::User(u) => u.admin_roles.clone(),
                Entity::Group(_) | Entity::Device(_) => Vec::new(),
            },
        }
    }
}

/// One row per entity of the page, the last occurrence winning, counting each record as fetched.
pub(crate) fn entity_writes(records: &[Record], counts: &mut RunCounts) -> Vec<EntityWrite> {
    let mut rows: Vec<EntityWrite> = Vec::with_capacity(records.len());
    let mut index: HashMap<(&'static str, String), usize> = HashMap::new();
    for record in records {
        let row = EntityWrite::new(&record.entity, &record.raw);
        counts.entry(row.kind).fetched += 1;
        match index.get(&(row.kind, row.source_id.clone())) {
            Some(&i) => rows[i] = row,
            None => {
                index.insert((row.kind, row.source_id.clone()), rows.len());
                rows.push(row);
            }
        }
    }
    rows
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
