//! The daemon's side of the kernel's tgid gate (`TGID_GATE` in `api-guard-ebpf/src/maps.rs`):
//! a slot per `tgid & (TGID_GATE_SLOTS - 1)`, non-zero while a process of that slot may have a
//! tracked connection, so the per-syscall programs reject every other process with an array
//! lookup instead of hash lookups.
//!
//! Whoever inserts into the connection table (the kernel at accept/connect, adoption here)
//! then stores the new entry's `conn_id` (unique, never 0) in the slot. Only [`TgidGate::sweep`]
//! clears a slot, and never one a live connection needs: it clears slot `s` only when it read
//! the same value `v` there at two consecutive sweeps, neither connection-table scan found an
//! entry of `s`, and a compare-and-swap from `v` to 0 succeeds. An insert whose store came
//! after the second read makes the swap fail (its id is not `v`); one whose store came before
//! the first read is at least one sweep interval old, so the second scan sees its entry. No
//! atomic instruction is needed in the kernel, and no ordering between its two writes.

use std::{
    collections::{HashMap, HashSet},
    io,
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use api_guard_common::{tgid_gate_slot, TGID_GATE_SLOTS};
use aya::maps::MapData;

/// The gate's slots, mapped from the kernel array.
pub struct TgidGate {
    ptr: NonNull<AtomicU64>,
    /// Owned so the array outlives its mapping.
    _map: MapData,
    /// Slots found unused at the last sweep, with the value read there before its scan.
    candidates: HashMap<u32, u64>,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics; the map it belongs
// to is owned alongside, so it stays mapped for the gate's lifetime.
unsafe impl Send for TgidGate {}

const LEN: usize = TGID_GATE_SLOTS as usize;
const BYTES: usize = LEN * size_of::<u64>();

impl TgidGate {
    /// Maps the kernel array (created `BPF_F_MMAPABLE`).
    pub fn map(map: MapData) -> io::Result<Self> {
        let fd = map.fd().as_fd().as_raw_fd();
        // SAFETY: a fresh shared mapping of a valid map fd; the kernel checks the length
        // against the array and the protection against the map's flags.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<AtomicU64>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Self {
            ptr,
            _map: map,
            candidates: HashMap::new(),
        })
    }

    fn slots(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is `BYTES` long, page-aligned, lives as long as `self`, and is
        // only accessed through atomics (here and by the kernel's aligned stores).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), LEN) }
    }

    /// Opens `tgid`'s slot for the connection `conn_id` just inserted into the table.
    pub fn open(&self, tgid: u32, conn_id: u64) {
        open(self.slots(), tgid, conn_id);
    }

    /// Clears the slots of processes with no tracked connection (see the module comment);
    /// `live_tgids` scans the connection table. Returns how many slots were cleared.
    pub fn sweep(&mut self, live_tgids: impl FnOnce() -> Vec<u32>) -> usize {
        // SAFETY: as in `slots`; a separate borrow so `candidates` can be updated meanwhile.
        let slots = unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), LEN) };
        sweep(slots, &mut self.candidates, live_tgids)
    }
}

impl Drop for TgidGate {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once; no reference to it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), BYTES) };
    }
}

fn open(slots: &[AtomicU64], tgid: u32, conn_id: u64) {
    if let Some(slot) = slots.get(tgid_gate_slot(tgid) as usize) {
        slot.store(conn_id.max(1), Ordering::SeqCst);
    }
}

fn sweep(
    slots: &[AtomicU64],
    candidates: &mut HashMap<u32, u64>,
    live_tgids: impl FnOnce() -> Vec<u32>,
) -> usize {
    let read: Vec<(u32, u64)> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let v = s.load(Ordering::SeqCst);
            (v != 0).then_some((i as u32, v))
        })
        .collect();
    let live: HashSet<u32> = live_tgids().into_iter().map(tgid_gate_slot).collect();
    let previous = std::mem::take(candidates);
    let mut cleared = 0;
    for (slot, v) in read {
        if live.contains(&slot) {
            continue;
        }
        if previous.get(&slot) == Some(&v)
            && slots[slot as usize]
                .compare_exchange(v, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            cleared += 1;
        } else {
            candidates.insert(slot, v);
        }
    }
    cleared
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        slots: Vec<AtomicU64>,
        candidates: HashMap<u32, u64>,
    }

    impl Fake {
        fn new() -> Self {
            Self {
                slots: (0..LEN).map(|_| AtomicU64::new(0)).collect(),
                candidates: HashMap::new(),
            }
        }
        fn value(&self, tgid: u32) -> u64 {
            self.slots[tgid_gate_slot(tgid) as usize].load(Ordering::SeqCst)
        }
        fn sweep(&mut self, live: &[u32]) -> usize {
            sweep(&self.slots, &mut self.candidates, || live.to_vec())
        }
    }

    #[test]
    fn a_slot_closes_after_two_sweeps_without_connections() {
        let mut g = Fake::new();
        open(&g.slots, 1234, 77);
        assert_eq!(g.sweep(&[1234]), 0);
        assert_eq!(g.value(1234), 77);
        // First sweep without the process: only a candidate.
        assert_eq!(g.sweep(&[]), 0);
        assert_eq!(g.value(1234), 77);
        assert_eq!(g.sweep(&[]), 1);
        assert_eq!(g.value(1234), 0);
    }

    #[test]
    fn a_connection_opened_between_sweeps_keeps_its_slot() {
        let mut g = Fake::new();
        open(&g.slots, 1234, 77);
        assert_eq!(g.sweep(&[]), 0);
        // A new connection of a process sharing the slot: its store changes the value, even
        // if the second scan missed its entry (inserted while the scan ran).
        open(&g.slots, 1234 + TGID_GATE_SLOTS, 78);
        assert_eq!(g.sweep(&[]), 0);
        assert_eq!(g.value(1234), 78);
    }

    #[test]
    fn a_store_between_the_read_and_the_swap_wins() {
        let mut g = Fake::new();
        open(&g.slots, 42, 5);
        assert_eq!(g.sweep(&[]), 0);
        // The kernel stores while the second scan runs, after the slots were read.
        let cleared = sweep(&g.slots, &mut g.candidates, || {
            open(&g.slots, 42, 6);
            Vec::new()
        });
        assert_eq!(cleared, 0);
        assert_eq!(g.value(42), 6);
        // The new value must itself be seen twice before it is cleared.
        assert_eq!(g.sweep(&[]), 0);
        assert_eq!(g.value(42), 6);
        assert_eq!(g.sweep(&[]), 1);
        assert_eq!(g.value(42), 0);
    }

    #[test]
    fn live_connections_and_other_slots_are_untouched() {
        let mut g = Fake::new();
        open(&g.slots, 10, 1);
        open(&g.slots, 11, 2);
        for _ in 0..3 {
            g.sweep(&[10]);
        }
        assert_eq!(g.value(10), 1);
        assert_eq!(g.value(11), 0);
        assert_eq!(g.value(12), 0);
    }
}
