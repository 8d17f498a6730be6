//! Recently read or stored messages, by manifest id. Messages never
//! change (an id names exact bytes), so a hit is always
//! right; the cache only bounds how much memory that costs.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use epost_types::id::ObjectId;

/// A FIFO cache bounded in bytes.
pub(super) struct MessageCache {
    max_bytes: usize,
    bytes: usize,
    order: VecDeque<ObjectId>,
    map: HashMap<ObjectId, Bytes>,
}

impl MessageCache {
    pub(super) fn new(max_bytes: usize) -> Self {
        Self { max_bytes, bytes: 0, order: VecDeque::new(), map: HashMap::new() }
    }

    pub(super) fn get(&self, key: &ObjectId) -> Option<Bytes> {
        self.map.get(key).cloned()
    }

    /// Keeps `value` unless it would take over a quarter of the cache.
    pub(super) fn insert(&mut self, key: ObjectId, value: Bytes) {
        if value.len() > self.max_bytes / 4 || self.map.contains_key(&key) {
            return;
        }
        while self.bytes + value.len() > self.max_bytes {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(gone) = self.map.remove(&oldest) {
                self.bytes -= gone.len();
            }
        }
        self.bytes += value.len();
        self.order.push_back(key);
        self.map.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_first_and_large_values_are_not_kept() {
        let id = |name: &str| ObjectId::of(name.as_bytes());
        let mut cache = MessageCache::new(100);
        cache.insert(id("a"), Bytes::from(vec![0; 20]));
        cache.insert(id("b"), Bytes::from(vec![1; 20]));
        cache.insert(id("huge"), Bytes::from(vec![2; 30]));
        assert!(cache.get(&id("huge")).is_none());
        for key in ["c", "d", "e"] {
            cache.insert(id(key), Bytes::from(vec![3; 20]));
        }
        assert_eq!(cache.get(&id("a")).unwrap().len(), 20);
        cache.insert(id("f"), Bytes::from(vec![4; 20]));
        assert!(cache.get(&id("a")).is_none());
        assert!(cache.get(&id("b")).is_some());
        assert!(cache.bytes <= 100);
    }
}
