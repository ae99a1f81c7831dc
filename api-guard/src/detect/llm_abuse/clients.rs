//! What one client address did with LLM keys: the distinct keys it listed models with, and
//! the distinct keys it had refused, each in a tumbling window.

#[derive(Debug, Default)]
pub(super) struct ClientState {
    pub listing: KeySet,
    pub refused: KeySet,
}

/// Distinct key hashes in a tumbling window, at most the limit plus one.
#[derive(Debug, Default)]
pub(super) struct KeySet {
    start: u64,
    keys: Vec<u64>,
    fired: bool,
}

impl KeySet {
    /// Records `key`; the number of distinct keys the first time they exceed `max` in the
    /// window that `now` falls in (a window starts at its first key).
    pub(super) fn hit(&mut self, now: u64, window: u64, max: usize, key: u64) -> Option<usize> {
        if self.keys.is_empty() || now < self.start || now - self.start >= window {
            self.start = now;
            self.keys.clear();
            self.fired = false;
        }
        if self.fired || self.keys.contains(&key) {
            return None;
        }
        self.keys.push(key);
        if self.keys.len() > max {
            self.fired = true;
            // Past the limit nothing more is learnt from further keys this window.
            self.keys.truncate(max + 1);
            return Some(self.keys.len());
        }
        None
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }
}
