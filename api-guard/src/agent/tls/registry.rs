//! Which files were inspected, so each distinct file is inspected (and hooked) once.
//!
//! Uprobes attach to a file, not a process: one probe on `libssl.so.3` fires in
//! every process that maps it. So discovery walks every process but decides per
//! file, keyed by `(dev, inode)` from `/proc/PID/maps` (paths differ across
//! containers; the inode does not). The registry is bounded because the host
//! controls how many files exist: it never forgets a hooked file (the probe stays
//! attached), may forget "not TLS" verdicts (re-inspecting is only a cost), and
//! otherwise refuses new entries and counts them.

use std::collections::{HashMap, VecDeque};

/// What the agent concluded about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileState {
    /// Uprobes are attached; `library_id` (assigned by the caller) tags its events.
    Hooked { library_id: u32, path: String },
    /// Not a TLS library; cheap to re-learn, so evictable.
    NotTls,
    /// Could not be inspected or attached; kept so it is not retried on every scan.
    Skipped { path: String, reason: String },
}

type Key = (u64, u64);

/// Bounded map from `(dev, inode)` to [`FileState`].
#[derive(Debug)]
pub struct Registry {
    entries: HashMap<Key, FileState>,
    /// Keys inserted as `NotTls`, oldest first. May hold stale keys (since replaced
    /// by another state, or duplicates); those are skipped when evicting.
    not_tls: VecDeque<Key>,
    max_entries: usize,
    overflow: u64,
}

impl Registry {
    /// A registry holding at most `max_entries` files.
    pub fn new(max_entries: usize) -> Self {
        Registry {
            entries: HashMap::new(),
            not_tls: VecDeque::new(),
            max_entries,
            overflow: 0,
        }
    }

    pub fn get(&self, dev: u64, inode: u64) -> Option<&FileState> {
        self.entries.get(&(dev, inode))
    }

    /// Records `state` for the file, replacing any previous state for it.
    ///
    /// When full, evicts the oldest `NotTls` entry to make room; if there is none,
    /// returns `false` and counts the refusal in [`Registry::overflow`] (the caller
    /// will simply see the file as new on the next scan).
    pub fn insert(&mut self, dev: u64, inode: u64, state: FileState) -> bool {
        let key = (dev, inode);
        let needs_room = !self.entries.contains_key(&key) && self.entries.len() >= self.max_entries;
        if needs_room && !self.evict_oldest_not_tls() {
            self.overflow += 1;
            return false;
        }
        // A file that stays NotTls keeps its place in the eviction order.
        if state == FileState::NotTls && self.entries.get(&key) != Some(&FileState::NotTls) {
            self.not_tls.push_back(key);
        }
        self.entries.insert(key, state);
        self.compact();
        true
    }

    fn evict_oldest_not_tls(&mut self) -> bool {
        while let Some(key) = self.not_tls.pop_front() {
            if self.entries.get(&key) == Some(&FileState::NotTls) {
                self.entries.remove(&key);
                return true;
            }
        }
        false
    }

    /// Drops stale keys so the queue stays proportional to the map even when the
    /// same files are re-inserted over and over.
    fn compact(&mut self) {
        if self.not_tls.len() > 2 * self.entries.len() + 16 {
            let mut seen = std::collections::HashSet::new();
            let entries = &self.entries;
            // Keep the last occurrence of each key: it is its current insertion time.
            let mut kept: VecDeque<Key> = self
                .not_tls
                .iter()
                .rev()
                .filter(|k| entries.get(k) == Some(&FileState::NotTls) && seen.insert(**k))
                .copied()
                .collect();
            kept.make_contiguous().reverse();
            self.not_tls = kept;
        }
    }

    /// `(library_id, path)` of every hooked file, in no particular order.
    pub fn hooked(&self) -> impl Iterator<Item = (u32, &str)> {
        self.entries.values().filter_map(|state| match state {
            FileState::Hooked { library_id, path } => Some((*library_id, path.as_str())),
            _ => None,
        })
    }

    /// `(path, reason)` of every skipped file, in no particular order.
    pub fn skipped(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.values().filter_map(|state| match state {
            FileState::Skipped { path, reason } => Some((path.as_str(), reason.as_str())),
            _ => None,
        })
    }

    /// How many inserts were refused because the registry was full of entries that
    /// cannot be evicted.
    #[cfg(test)]
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooked(id: u32) -> FileState {
        FileState::Hooked {
            library_id: id,
            path: format!("/lib/{id}.so"),
        }
    }

    fn skipped(name: &str) -> FileState {
        FileState::Skipped {
            path: name.to_owned(),
            reason: "too large".to_owned(),
        }
    }

    #[test]
    fn insert_get_replace() {
        let mut r = Registry::new(10);
        assert!(r.is_empty());
        assert!(r.insert(1, 100, FileState::NotTls));
        assert!(r.insert(1, 101, hooked(7)));
        assert!(r.insert(2, 100, skipped("/x")));
        assert_eq!(r.get(1, 100), Some(&FileState::NotTls));
        assert_eq!(r.get(1, 101), Some(&hooked(7)));
        assert_eq!(r.get(2, 100), Some(&skipped("/x")));
        assert_eq!(r.get(2, 101), None);
        assert!(r.insert(1, 100, hooked(8)));
        assert_eq!(r.len(), 3);
        let mut ids: Vec<_> = r.hooked().collect();
        ids.sort();
        assert_eq!(ids, vec![(7, "/lib/7.so"), (8, "/lib/8.so")]);
        assert_eq!(r.skipped().collect::<Vec<_>>(), vec![("/x", "too large")]);
        assert_eq!(r.overflow(), 0);
    }

    #[test]
    fn full_evicts_not_tls_oldest_first() {
        let mut r = Registry::new(3);
        assert!(r.insert(0, 1, FileState::NotTls));
        assert!(r.insert(0, 2, FileState::NotTls));
        assert!(r.insert(0, 3, hooked(1)));
        assert!(r.insert(0, 4, FileState::NotTls)); // evicts (0, 1)
        assert_eq!(r.get(0, 1), None);
        assert!(r.insert(0, 5, hooked(2))); // evicts (0, 2)
        assert_eq!(r.get(0, 2), None);
        assert!(r.insert(0, 6, skipped("/s"))); // evicts (0, 4)
        assert_eq!(r.get(0, 4), None);
        assert_eq!(r.len(), 3);
        // Only Hooked and Skipped left: nothing can be evicted.
        assert!(!r.insert(0, 7, FileState::NotTls));
        assert!(!r.insert(0, 8, hooked(3)));
        assert_eq!(r.overflow(), 2);
        assert_eq!(r.get(0, 3), Some(&hooked(1)));
        assert_eq!(r.get(0, 5), Some(&hooked(2)));
        // Replacing an existing entry needs no room.
        assert!(r.insert(0, 6, hooked(4)));
        assert_eq!(r.hooked().count(), 3);
    }

    #[test]
    fn replaced_not_tls_is_not_evicted_as_not_tls() {
        let mut r = Registry::new(2);
        r.insert(0, 1, FileState::NotTls);
        r.insert(0, 1, hooked(1)); // stale queue entry for (0, 1)
        r.insert(0, 2, FileState::NotTls);
        assert!(r.insert(0, 3, FileState::NotTls)); // must evict (0, 2), not (0, 1)
        assert_eq!(r.get(0, 1), Some(&hooked(1)));
        assert_eq!(r.get(0, 2), None);
    }

    #[test]
    fn zero_capacity_refuses_everything() {
        let mut r = Registry::new(0);
        assert!(!r.insert(0, 1, hooked(1)));
        assert!(!r.insert(0, 1, FileState::NotTls));
        assert_eq!(r.overflow(), 2);
        assert!(r.is_empty());
    }

    #[test]
    fn queue_stays_bounded_under_churn() {
        let mut r = Registry::new(4);
        for i in 0..100_000u64 {
            let state = if i % 3 == 0 {
                skipped("/s")
            } else {
                FileState::NotTls
            };
            r.insert(0, i % 5, state);
        }
        assert!(r.not_tls.len() <= 2 * r.len() + 17, "{}", r.not_tls.len());
        assert!(r.len() <= 4);
    }
}
