//! Recently read or stored messages and manifests, by manifest id.
//! Messages never change (an id names exact bytes), so a hit is always
//! right; the cache only bounds how much memory that costs.

use std::collections::{HashMap, VecDeque};

use epost_types::id::ObjectId;

/// A FIFO cache bounded in bytes; each value is inserted with its weight.
pub(super) struct Cache<V> {
    max_bytes: usize,
    bytes: usize,
    order: VecDeque<ObjectId>,
    map: HashMap<ObjectId, (V, usize)>,
}

impl<V: Clone> Cache<V> {
    pub(super) fn new(max_bytes: usize) -> Self {
        Self { max_bytes, bytes: 0, order: VecDeque::new(), map: HashMap::new() }
    }

    pub(super) fn get(&self, key: &ObjectId) -> Option<V> {
        self.map.get(key).map(|(value, _)| value.clone())
    }

    /// Keeps `value` (of about `weight` bytes) unless it would take over
    /// a quarter of the cache.
    pub(super) fn insert(&mut self, key: ObjectId, value: V, weight: usize) {
        if weight > self.max_bytes / 4 || self.map.contains_key(&key) {
            return;
        }
        while self.bytes + weight > self.max_bytes {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some((_, gone)) = self.map.remove(&oldest) {
                self.bytes -= gone;
            }
        }
        self.bytes += weight;
        self.order.push_back(key);
        self.map.insert(key, (value, weight));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn the_oldest_go_first_and_large_values_are_not_kept() {
        let id = |name: &str| ObjectId::of(name.as_bytes());
        let mut cache = Cache::new(100);
        let insert = |cache: &mut Cache<Bytes>, key: &str, value: Vec<u8>| {
            let weight = value.len();
            cache.insert(id(key), Bytes::from(value), weight);
        };
        insert(&mut cache, "a", vec![0; 20]);
        insert(&mut cache, "b", vec![1; 20]);
        insert(&mut cache, "huge", vec![2; 30]);
        assert!(cache.get(&id("huge")).is_none());
        for key in ["c", "d", "e"] {
            insert(&mut cache, key, vec![3; 20]);
        }
        assert_eq!(cache.get(&id("a")).unwrap().len(), 20);
        insert(&mut cache, "f", vec![4; 20]);
        assert!(cache.get(&id("a")).is_none());
        assert!(cache.get(&id("b")).is_some());
        assert!(cache.bytes <= 100);
    }
}
