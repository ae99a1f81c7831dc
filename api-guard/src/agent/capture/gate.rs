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
//!
//! The socket wanted counts (`SOCK_WANTED`, same slots) say how many connections of a slot
//! still want their socket noted; the exit-only socket notes return at once where it is 0.
//! The kernel adds one (with a generation, `SOCK_WANTED_ONE`) before each insert and
//! subtracts one when a connection's `sock_wanted` flag is swapped off (announced with its
//! socket, closed, not TCP, overwritten), so a count is never below the connections that
//! want their socket. Adoption here adds before its insert. The daemon's own removals
//! (exited processes, untracked connections, adoptions closed meanwhile) do not subtract: a
//! kernel program may be releasing the same entry at that moment, and a count below the truth
//! would skip a wanted note. They leave the count high (notes run, as before this count
//! existed) until the sweep zeroes it as it clears gate slots: same value at two sweeps (every
//! increment changes it), no connection of the slot in either scan, compare-and-swap.

use std::{
    collections::{HashMap, HashSet},
    io,
    os::fd::{AsFd, AsRawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use api_guard_common::{sock_wanted_count, tgid_gate_slot, SOCK_WANTED_ONE, TGID_GATE_SLOTS};
use aya::maps::MapData;

/// The gate's slots and the socket wanted counts (`SOCK_WANTED`), mapped from the kernel
/// arrays.
pub struct TgidGate {
    gate: Slots,
    /// Per slot, how many connections want their socket noted (low 32 bits) and a
    /// generation every increment advances (high 32 bits; `SOCK_WANTED_ONE`). The kernel
    /// only adds; the daemon adds for the connections it adopts and zeroes the count of a
    /// slot that had no connection at all at two sweeps, with a compare-and-swap from the
    /// value read at both (any increment in between changed the generation). So counts the
    /// daemon's own removals left high (it removes entries without releasing them: exited
    /// processes, untracked connections) come back to 0 once their slot has no connection.
    wanted: Slots,
    /// Slots found unused at the last sweep, with the value read there before its scan.
    candidates: HashMap<u32, u64>,
    /// The same for `wanted`: slots with a non-zero count found without connections.
    wanted_candidates: HashMap<u32, u64>,
}

/// One mapped `u64` array of `TGID_GATE_SLOTS` slots.
struct Slots {
    ptr: NonNull<AtomicU64>,
    /// Owned so the array outlives its mapping.
    _map: MapData,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics; the map it belongs
// to is owned alongside, so it stays mapped for the value's lifetime.
unsafe impl Send for Slots {}

const LEN: usize = TGID_GATE_SLOTS as usize;
const BYTES: usize = LEN * size_of::<u64>();

impl Slots {
    /// Maps the kernel array (created `BPF_F_MMAPABLE`).
    fn map(map: MapData) -> io::Result<Self> {
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
        Ok(Self { ptr, _map: map })
    }

    fn get(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is `BYTES` long, page-aligned, lives as long as `self`, and is
        // only accessed through atomics (here and by the kernel's aligned stores and atomic
        // adds).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), LEN) }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once; no reference to it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), BYTES) };
    }
}

impl TgidGate {
    /// Maps the kernel arrays `TGID_GATE` and `SOCK_WANTED` (both created `BPF_F_MMAPABLE`).
    pub fn map(gate: MapData, wanted: MapData) -> io::Result<Self> {
        Ok(Self {
            gate: Slots::map(gate)?,
            wanted: Slots::map(wanted)?,
            candidates: HashMap::new(),
            wanted_candidates: HashMap::new(),
        })
    }

    /// Opens `tgid`'s slot for the connection `conn_id` just inserted into the table.
    pub fn open(&self, tgid: u32, conn_id: u64) {
        open(self.gate.get(), tgid, conn_id);
    }

    /// Counts a connection of `tgid` about to be inserted with `sock_wanted: 1` (before the
    /// insert, as the kernel does).
    pub fn count_sock_wanted(&self, tgid: u32) {
        add(self.wanted.get(), tgid, SOCK_WANTED_ONE);
    }

    /// Takes back [`Self::count_sock_wanted`] for a connection that was not inserted.
    pub fn uncount_sock_wanted(&self, tgid: u32) {
        add(self.wanted.get(), tgid, 0u64.wrapping_sub(1));
    }

    /// Clears the slots of processes with no tracked connection (see the module comment), and
    /// zeroes their socket wanted counts (see `wanted`); `live_tgids` scans the connection
    /// table. Returns how many gate slots were cleared.
    pub fn sweep(&mut self, live_tgids: impl FnOnce() -> Vec<u32>) -> usize {
        let gate = read_slots(self.gate.get(), |v| v != 0);
        let wanted = read_slots(self.wanted.get(), |v| sock_wanted_count(v) != 0);
        let live: HashSet<u32> = live_tgids().into_iter().map(tgid_gate_slot).collect();
        let cleared = sweep(self.gate.get(), &mut self.candidates, gate, &live, |_| 0);
        sweep(
            self.wanted.get(),
            &mut self.wanted_candidates,
            wanted,
            &live,
            |v| v & !u64::from(u32::MAX),
        );
        cleared
    }
}

fn open(slots: &[AtomicU64], tgid: u32, conn_id: u64) {
    if let Some(slot) = slots.get(tgid_gate_slot(tgid) as usize) {
        slot.store(conn_id.max(1), Ordering::SeqCst);
    }
}

fn add(slots: &[AtomicU64], tgid: u32, by: u64) {
    if let Some(slot) = slots.get(tgid_gate_slot(tgid) as usize) {
        slot.fetch_add(by, Ordering::SeqCst);
    }
}

/// The slots whose value `in_use` says is in use, with the value read.
fn read_slots(slots: &[AtomicU64], in_use: impl Fn(u64) -> bool) -> Vec<(u32, u64)> {
    slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let v = s.load(Ordering::SeqCst);
            in_use(v).then_some((i as u32, v))
        })
        .collect()
}

/// Swaps to `idle(v)` every slot of `read` (in use, value `v` read before the scan that
/// found the `live` slots) that is not live and held `v` at the previous sweep too; returns
/// how many.
fn sweep(
    slots: &[AtomicU64],
    candidates: &mut HashMap<u32, u64>,
    read: Vec<(u32, u64)>,
    live: &HashSet<u32>,
    idle: impl Fn(u64) -> u64,
) -> usize {
    let previous = std::mem::take(candidates);
    let mut cleared = 0;
    for (slot, v) in read {
        if live.contains(&slot) {
            continue;
        }
        if previous.get(&slot) == Some(&v)
            && slots[slot as usize]
                .compare_exchange(v, idle(v), Ordering::SeqCst, Ordering::SeqCst)
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
            let read = read_slots(&self.slots, |v| v != 0);
            let live = live.iter().copied().map(tgid_gate_slot).collect();
            sweep(&self.slots, &mut self.candidates, read, &live, |_| 0)
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
        let read = read_slots(&g.slots, |v| v != 0);
        open(&g.slots, 42, 6);
        let cleared = sweep(&g.slots, &mut g.candidates, read, &HashSet::new(), |_| 0);
        assert_eq!(cleared, 0);
        assert_eq!(g.value(42), 6);
        // The new value must itself be seen twice before it is cleared.
        assert_eq!(g.sweep(&[]), 0);
        assert_eq!(g.value(42), 6);
        assert_eq!(g.sweep(&[]), 1);
        assert_eq!(g.value(42), 0);
    }

    /// One sweep of socket wanted counts, as `TgidGate::sweep` runs it.
    fn sweep_wanted(g: &mut Fake, live: &[u32]) -> usize {
        let read = read_slots(&g.slots, |v| sock_wanted_count(v) != 0);
        let live = live.iter().copied().map(tgid_gate_slot).collect();
        sweep(&g.slots, &mut g.candidates, read, &live, |v| {
            v & !u64::from(u32::MAX)
        })
    }

    #[test]
    fn a_leftover_socket_count_is_zeroed_once_its_slot_has_no_connection() {
        let mut g = Fake::new();
        // Two connections counted, one released: one left (the daemon removed its entry).
        add(&g.slots, 7, SOCK_WANTED_ONE);
        add(&g.slots, 7, SOCK_WANTED_ONE);
        add(&g.slots, 7, 0u64.wrapping_sub(1));
        assert_eq!(sock_wanted_count(g.value(7)), 1);
        assert_eq!(sweep_wanted(&mut g, &[7]), 0);
        assert_eq!(sweep_wanted(&mut g, &[]), 0);
        assert_eq!(sock_wanted_count(g.value(7)), 1);
        assert_eq!(sweep_wanted(&mut g, &[]), 1);
        // The count is 0; the generation stays, so a later increment is still told apart.
        assert_eq!(sock_wanted_count(g.value(7)), 0);
        assert_eq!(g.value(7) >> 32, 2);
        // A zero count is not swept again.
        assert_eq!(sweep_wanted(&mut g, &[]), 0);
    }

    #[test]
    fn a_socket_count_incremented_between_sweeps_is_kept() {
        let mut g = Fake::new();
        add(&g.slots, 9, SOCK_WANTED_ONE);
        assert_eq!(sweep_wanted(&mut g, &[]), 0);
        // A connection counted, then released (announced with its socket) before the next
        // read: the count is the same, the generation is not.
        add(&g.slots, 9, SOCK_WANTED_ONE);
        add(&g.slots, 9, 0u64.wrapping_sub(1));
        assert_eq!(sweep_wanted(&mut g, &[]), 0);
        assert_eq!(sock_wanted_count(g.value(9)), 1);
        // Counted while the scan runs (after the read): the swap fails.
        let read = read_slots(&g.slots, |v| sock_wanted_count(v) != 0);
        add(&g.slots, 9, SOCK_WANTED_ONE);
        let zeroed = sweep(&g.slots, &mut g.candidates, read, &HashSet::new(), |v| {
            v & !u64::from(u32::MAX)
        });
        assert_eq!(zeroed, 0);
        assert_eq!(sock_wanted_count(g.value(9)), 2);
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
