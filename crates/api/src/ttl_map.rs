//! A map whose entries are trusted for a fixed time after they were stored: the in-memory read
//! path's building block (authentications, configs). Bounded: past its capacity, the stale
//! entries are dropped at the next insertion, and if that is not enough, all of them.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::Duration;

// Tokio's: the system clock, except under a paused test clock, so expiry is tested without waiting.
use tokio::time::Instant;

pub struct TtlMap<K, V> {
    entries: RwLock<HashMap<K, (V, Instant)>>,
    ttl: Duration,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> TtlMap<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        TtlMap { entries: RwLock::default(), ttl, capacity }
    }

    /// The value, while it is fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.read().expect("ttl map lock");
        let (value, stored) = entries.get(key)?;
        (stored.elapsed() < self.ttl).then(|| value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.entries.write().expect("ttl map lock");
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, stored)| stored.elapsed() < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    pub fn remove(&self, key: &K) {
        self.entries.write().expect("ttl map lock").remove(key);
    }

    pub fn clear(&self) {
        self.entries.write().expect("ttl map lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_and_the_map_stays_bounded() {
        let map = TtlMap::new(Duration::from_millis(30), 2);
        map.insert("a", 1);
        assert_eq!(map.get(&"a"), Some(1));
        map.insert("b", 3);
        map.insert("c", 4);
        assert_eq!(map.entries.read().unwrap().len(), 1, "full of fresh entries: cleared");
        tokio::time::advance(Duration::from_millis(40)).await;
        assert_eq!(map.get(&"c"), None, "stale");
        map.insert("d", 5);
        map.remove(&"d");
        assert_eq!(map.get(&"d"), None);
    }
}
