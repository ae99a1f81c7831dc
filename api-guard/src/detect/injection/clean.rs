//! The clean-value cache: (source, name, value) triples that produced no finding, remembered
//! as keyed 64-bit hashes (never the values), so that traffic's repeats (the same User-Agent,
//! Accept or field values request after request) skip the checks, which are pure functions
//! of the triple.
//!
//! The key is [`Multilinear`] over the triple: no payload can be aimed at a clean entry.
//! The table is set-associative (four ways, least recently used out first): one cache line
//! per lookup, no allocation per entry.

use std::hash::{BuildHasher as _, RandomState};

use crate::detect::{inputs::Input, keyed::Multilinear};

/// Name and value bytes the multilinear key covers; longer names are hashed with SipHash
/// (longer values are never cached: they are rarely repeated).
const MAX_NAME_BYTES: usize = 256;
const MAX_VALUE_BYTES: usize = 2048;
const NAME_WORDS: usize = MAX_NAME_BYTES / 8;
const VALUE_WORDS: usize = MAX_VALUE_BYTES / 8;

/// The keyed hash of (source, name, value).
pub(super) struct KeyHasher {
    /// The header word (source and lengths), the name's words, the value's words, each
    /// field at a fixed position: distinct triples are distinct word vectors.
    multilinear: Multilinear,
    /// For names past [`MAX_NAME_BYTES`].
    sip: RandomState,
}

impl KeyHasher {
    pub(super) fn new() -> Self {
        Self {
            multilinear: Multilinear::new(NAME_WORDS + VALUE_WORDS),
            sip: RandomState::new(),
        }
    }

    /// The key of `input`, `None` when its value is too long to be cached.
    pub(super) fn key(&self, input: &Input<'_>) -> Option<u64> {
        let (name, value) = (input.name.as_bytes(), input.value.as_bytes());
        if value.len() > MAX_VALUE_BYTES {
            return None;
        }
        if name.len() > MAX_NAME_BYTES {
            return Some(self.sip.hash_one((input.source as u8, name, value)));
        }
        let m = &self.multilinear;
        let header = input.source as u64 | (name.len() as u64) << 8 | (value.len() as u64) << 32;
        let acc = m.add(m.start(header), 0, name);
        Some(Multilinear::finish(m.add(acc, NAME_WORDS, value)))
    }
}

/// Ways per set.
const WAYS: usize = 4;

/// A bounded set of 64-bit keys, set-associative: a key lives in the set its low bits pick,
/// most recently used first; a full set drops its least recently used key.
pub(super) struct CleanSet {
    /// Zero marks an empty way (a key of zero is stored as one).
    sets: Box<[[u64; WAYS]]>,
}

impl CleanSet {
    /// Room for `entries` keys (rounded up to a power of two sets).
    pub(super) fn new(entries: usize) -> Self {
        let sets = entries.div_ceil(WAYS).next_power_of_two();
        // Zeroed memory: pages untouched until keys land in them.
        Self {
            sets: vec![[0u64; WAYS]; sets].into_boxed_slice(),
        }
    }

    fn set(&mut self, key: u64) -> (&mut [u64; WAYS], u64) {
        let mask = self.sets.len() - 1;
        let key = key.max(1);
        (&mut self.sets[key as usize & mask], key)
    }

    /// Whether `key` is held; a held key becomes its set's most recently used.
    pub(super) fn touch(&mut self, key: u64) -> bool {
        let (set, key) = self.set(key);
        match set.iter().position(|&k| k == key) {
            Some(i) => {
                set[..=i].rotate_right(1);
                true
            }
            None => false,
        }
    }

    /// Adds `key` (not held) as its set's most recently used.
    pub(super) fn insert(&mut self, key: u64) {
        let (set, key) = self.set(key);
        set.rotate_right(1);
        set[0] = key;
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::detect::inputs::Source;

    fn input<'a>(source: Source, name: &'a str, value: &'a str) -> Input<'a> {
        Input {
            source,
            name: Cow::Borrowed(name),
            value: Cow::Borrowed(value),
        }
    }

    #[test]
    fn keys_tell_source_name_and_value_apart() {
        let h = KeyHasher::new();
        let long_name = "n".repeat(300);
        let keys = [
            h.key(&input(Source::Query, "ab", "c")),
            h.key(&input(Source::Query, "a", "bc")),
            h.key(&input(Source::Form, "ab", "c")),
            h.key(&input(Source::Query, "", "abc")),
            h.key(&input(Source::Query, "ab", "c\0")),
            h.key(&input(Source::Query, "ab\0", "c")),
            h.key(&input(Source::Query, &long_name, "c")),
            h.key(&input(Source::Query, &long_name[1..], "c")),
        ];
        for (i, a) in keys.iter().enumerate() {
            assert!(a.is_some());
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(keys[0], h.key(&input(Source::Query, "ab", "c")));
        let too_long = "v".repeat(MAX_VALUE_BYTES + 1);
        assert_eq!(h.key(&input(Source::Query, "a", &too_long)), None);
    }

    #[test]
    fn sets_keep_their_most_recently_used_keys() {
        let mut s = CleanSet::new(64);
        let sets = s.sets.len() as u64;
        assert_eq!(sets, 16);
        // Five keys of one set: the first is pushed out by the fifth.
        let keys: Vec<u64> = (1..=5).map(|i| 3 + i * sets).collect();
        for &k in &keys[..4] {
            assert!(!s.touch(k));
            s.insert(k);
        }
        // Touching the first makes the second the least recently used.
        assert!(s.touch(keys[0]));
        s.insert(keys[4]);
        assert!(s.touch(keys[0]));
        assert!(!s.touch(keys[1]));
        for &k in &keys[2..] {
            assert!(s.touch(k));
        }
        // Other sets are untouched; zero is a key like the others.
        assert!(!s.touch(4));
        s.insert(0);
        assert!(s.touch(0));
    }
}
