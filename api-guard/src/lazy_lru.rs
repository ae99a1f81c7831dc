//! Bounded LRU maps whose table grows with their entries.
//!
//! `LruCache::new(cap)` allocates the hash table for all `cap` entries at once: 2.2 MiB for
//! the detectors' 65,536-entry tables, a dozen of them per agent, while a node usually tracks
//! a few clients, routes and keys. These start empty and grow (by doubling, amortised) to
//! what they hold; the bound and the eviction order are those of `LruCache::new(cap)`.

use std::{hash::Hash, num::NonZeroUsize};

use lru::LruCache;

/// An LRU map evicting its least recently used entry past `cap`, its table empty until used.
pub fn bounded<K: Hash + Eq, V>(cap: NonZeroUsize) -> LruCache<K, V> {
    let mut map = LruCache::unbounded();
    // On an empty map this only sets the bound (nothing to evict, nothing to shrink).
    map.resize(cap);
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_without_a_table_and_keeps_its_bound() {
        let cap = NonZeroUsize::new(65_536).unwrap();
        let mut map = bounded::<u64, u64>(cap);
        assert_eq!(map.cap(), cap);
        for i in 0..70_000 {
            map.put(i, i);
        }
        assert_eq!(map.len(), 65_536);
        // The oldest went first, as with `LruCache::new`.
        assert!(!map.contains(&4_463));
        assert!(map.contains(&4_464));
        assert_eq!(map.peek_lru(), Some((&4_464, &4_464)));
    }

    #[test]
    fn evicts_as_a_preallocated_map_does() {
        let cap = NonZeroUsize::new(3).unwrap();
        let mut lazy = bounded::<u8, u8>(cap);
        let mut eager = LruCache::new(cap);
        for (k, v) in [(1, 1), (2, 2), (1, 10), (3, 3), (4, 4), (2, 20), (5, 5)] {
            assert_eq!(lazy.push(k, v), eager.push(k, v));
            assert_eq!(lazy.get(&1), eager.get(&1));
        }
        assert!(lazy.iter().eq(eager.iter()));
    }
}
