//! Heads the parsing thread parsed lately where they arrived, by their raw bytes: a message
//! that starts with exactly the bytes of a kept head (its empty line included) has that head,
//! so the kept parse is cloned instead of scanning the start line and the fields again. A
//! client repeating a request (health checks, polling, load generators, scanners) and a
//! server's same answer within one second (its `Date`) hit.
//!
//! Why a prefix match is enough: a head ends at its first empty line, and the in-place parse
//! ([`super::head::parse_fields_direct`] after the start line) reads nothing past it, so the
//! same bytes up to there, under the same limit and after the same probe, parse the same.
//!
//! Bounded: [`SLOTS`] heads of at most [`MAX_RAW`] bytes a thread. A slot is replaced only
//! after [`REPLACE_AFTER`] misses since its last hit, so traffic whose heads never repeat
//! pays one copy in that many heads, and a repeating head is not pushed out by them.

use std::cell::RefCell;

use super::head::Head;
use super::message::MessageKind;

const SLOTS: usize = 16;
/// The longest head kept (raw bytes).
const MAX_RAW: usize = 2048;
/// Misses in a slot since its last hit before the head that missed takes it.
const REPLACE_AFTER: u8 = 4;

struct Entry {
    kind: MessageKind,
    /// Probe bytes held before the in-place parse, and the header limit it ran under.
    probed: usize,
    max: usize,
    raw: Box<[u8]>,
    head: Head,
}

struct Slot {
    entry: Option<Entry>,
    misses: u8,
}

thread_local! {
    static RECENT: RefCell<[Slot; SLOTS]> = const {
        RefCell::new([const { Slot { entry: None, misses: 0 } }; SLOTS])
    };
    #[cfg(test)]
    static HITS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The slot for a message of `kind` starting with `data`: its first 16 bytes hashed.
fn slot(kind: MessageKind, data: &[u8]) -> usize {
    let mut words = [0u8; 16];
    let n = data.len().min(16);
    if let (Some(dst), Some(src)) = (words.get_mut(..n), data.get(..n)) {
        dst.copy_from_slice(src);
    }
    let (a, b) = words.split_at(8);
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or_default());
    let h = (word(a) ^ word(b).rotate_left(29) ^ kind as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 60) as usize % SLOTS
}

/// The kept head `data` starts with (parsed after `probed` probe bytes under `max`), cloned,
/// and its length in bytes.
pub fn find(kind: MessageKind, probed: usize, max: usize, data: &[u8]) -> Option<(Head, usize)> {
    RECENT.with_borrow_mut(|recent| {
        let slot = recent.get_mut(slot(kind, data))?;
        let entry = slot.entry.as_ref()?;
        let hit = entry.kind == kind
            && entry.probed == probed
            && entry.max == max
            && data.starts_with(&entry.raw);
        if !hit {
            return None;
        }
        slot.misses = 0;
        #[cfg(test)]
        HITS.set(HITS.get() + 1);
        Some((entry.head.clone(), entry.raw.len()))
    })
}

/// A head just parsed in place from `raw` (no kept head matched it): kept in its slot if
/// the slot is free or has missed [`REPLACE_AFTER`] times since its last hit.
pub fn offer(kind: MessageKind, probed: usize, max: usize, raw: &[u8], head: &Head) {
    if raw.len() > MAX_RAW {
        return;
    }
    RECENT.with_borrow_mut(|recent| {
        let Some(slot) = recent.get_mut(slot(kind, raw)) else {
            return;
        };
        if slot.entry.is_some() {
            slot.misses = slot.misses.saturating_add(1);
            if slot.misses < REPLACE_AFTER {
                return;
            }
        }
        slot.misses = 0;
        slot.entry = Some(Entry {
            kind,
            probed,
            max,
            raw: raw.into(),
            head: head.clone(),
        });
    });
}

/// Heads this thread found kept (tests).
#[cfg(test)]
pub fn hits() -> u64 {
    HITS.get()
}
