//! One kind of directory object, as the tenant keeps it: slots in creation order, an index by
//! id, and the change log every delta round reads.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use uuid::Uuid;

use super::render;

/// Moves a tenant's clock on one tick and returns the new tick.
pub(super) fn tick(clock: &mut u64) -> u64 {
    *clock += 1;
    *clock
}

/// One named property of an object with its id, or `None` for a name its type does not have.
pub(super) type Property<T> = fn(&Uuid, &T, &str) -> Option<Value>;

pub(super) struct Slot<T> {
    pub(super) id: Uuid,
    pub(super) value: T,
    pub(super) version: u64,
    pub(super) deleted: bool,
}

/// One kind of directory object: slots in creation order (never reused, so a slot number names
/// one object for good), an index by id, and the change log.
pub(super) struct Collection<T> {
    pub(super) slots: Vec<Slot<T>>,
    pub(super) by_id: HashMap<Uuid, u32>,
    /// The latest tick of every object, tombstones included → its slot.
    pub(super) log: BTreeMap<u64, u32>,
}

impl<T> Collection<T> {
    pub(super) fn with_capacity(n: usize) -> Self {
        Self { slots: Vec::with_capacity(n), by_id: HashMap::with_capacity(n), log: BTreeMap::new() }
    }

    pub(super) fn insert(&mut self, id: Uuid, value: T, version: u64) -> u32 {
        let slot = u32::try_from(self.slots.len()).expect("fewer than 4 billion objects");
        self.slots.push(Slot { id, value, version, deleted: false });
        self.by_id.insert(id, slot);
        self.log.insert(version, slot);
        slot
    }

    /// Moves the object to `version` in the change log.
    pub(super) fn touch(&mut self, slot: u32, version: u64) {
        let entry = &mut self.slots[slot as usize];
        self.log.remove(&entry.version);
        entry.version = version;
        self.log.insert(version, slot);
    }

    /// Adds an object at the next tick of `clock`; returns its id.
    pub(super) fn add(&mut self, id: Uuid, value: T, clock: &mut u64) -> String {
        self.insert(id, value, tick(clock));
        id.to_string()
    }

    /// Applies `change` to the part of the object `part` picks out. A change that changes
    /// nothing is not a change: only a real one moves the object to the next tick of `clock`.
    pub(super) fn update<P: Clone + PartialEq>(
        &mut self,
        slot: u32,
        clock: &mut u64,
        part: fn(&mut T) -> &mut P,
        change: impl FnOnce(&mut P),
    ) {
        let value = part(&mut self.slots[slot as usize].value);
        let before = value.clone();
        change(value);
        if *value != before {
            self.touch(slot, tick(clock));
        }
    }

    /// Deletes the object, leaving a tombstone at the next tick of `clock` for delta rounds.
    pub(super) fn delete(&mut self, slot: u32, clock: &mut u64) {
        let version = tick(clock);
        self.slots[slot as usize].deleted = true;
        self.touch(slot, version);
    }

    /// The objects whose latest change took a tick after `since` and up to `until`, tombstones
    /// included: each id and whether it is deleted.
    pub(super) fn changed_between(&self, since: u64, until: u64) -> Vec<(Uuid, bool)> {
        self.log
            .range(since + 1..=until)
            .map(|(_, &slot)| {
                let s = &self.slots[slot as usize];
                (s.id, s.deleted)
            })
            .collect()
    }

    /// The slot of a live object.
    pub(super) fn find(&self, id: &str) -> Option<u32> {
        let id = Uuid::parse_str(id).ok()?;
        self.by_id.get(&id).copied().filter(|&s| !self.slots[s as usize].deleted)
    }

    pub(super) fn live(&self) -> impl Iterator<Item = &Slot<T>> {
        self.slots.iter().filter(|s| !s.deleted)
    }

    /// The slots of the live objects `keep` picks.
    pub(super) fn live_slots(&self, keep: impl Fn(&T) -> bool) -> Vec<u32> {
        (0..self.slots.len() as u32)
            .filter(|&s| {
                let entry = &self.slots[s as usize];
                !entry.deleted && keep(&entry.value)
            })
            .collect()
    }

    /// Every live object with all of `properties`, by id, as a snapshot holds them.
    pub(super) fn render_all(&self, properties: &[&str], property: Property<T>) -> BTreeMap<String, Value> {
        self.live()
            .map(|s| {
                (s.id.to_string(), Value::Object(render(properties, true, |p| property(&s.id, &s.value, p))))
            })
            .collect()
    }

    /// One page of a plain list with the given properties, continuing after a slot.
    pub(super) fn render_page(
        &self,
        properties: &[String],
        after: Option<u32>,
        limit: usize,
        property: Property<T>,
    ) -> (Vec<Value>, Option<u32>) {
        let (slots, next) = self.page(after, limit);
        let value = slots
            .into_iter()
            .map(|s| Value::Object(render(properties, true, |p| property(&s.id, &s.value, p))))
            .collect();
        (value, next)
    }

    /// Up to `limit` live objects after slot `after`, and the slot to continue after.
    pub(super) fn page(&self, after: Option<u32>, limit: usize) -> (Vec<&Slot<T>>, Option<u32>) {
        let start = after.map_or(0, |a| a as usize + 1);
        let mut live = self.slots.iter().enumerate().skip(start).filter(|(_, s)| !s.deleted);
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut last = None;
        for (slot, value) in live.by_ref().take(limit) {
            out.push(value);
            last = Some(slot as u32);
        }
        let next = if live.next().is_some() { last } else { None };
        (out, next)
    }
}
