//! Per-thread stashes of a call's arguments, from its entry to its exit: the data syscalls'
//! (`THREAD_CALLS`) and the TLS library calls' (`TLS_THREAD_CALLS`), each kept in an array
//! slot per thread (`tid & (THREAD_CALL_SLOTS - 1)`) rather than a hash keyed by `pid_tgid`:
//! the verifier inlines an array lookup into a few instructions, where each hash lookup
//! hashed the key and walked a bucket (at every entry, exit, `sock_*_length` and TLS claim).
//! A slot records its owner, so it never hands one thread's arguments to another: a thread
//! takes a slot that holds no live call with a compare-and-swap, and a call whose slot is
//! live for another thread (tids `THREAD_CALL_SLOTS` apart, both in a call) goes to the
//! stash's hash instead (`DATA_ARGS`, `TLS_ARGS`). A thread that blocks in its call and
//! resumes on another CPU finds its slot unchanged: nothing here is per CPU.

use core::{
    intrinsics::{atomic_cxchg, atomic_xadd, AtomicOrdering},
    ptr::{read_volatile, write_volatile},
};

use api_guard_common::Stat;
use aya_ebpf::maps::{Array, LruHashMap};

use super::bump;
use crate::maps::{
    DataArgs, SockNote, ThreadSlot, BUF_DONE, DATA_ARGS, SLOT_LIVE, SOCK_NOTES, THREAD_CALLS,
    THREAD_CALL_SLOTS,
};

/// A stashed call: whether it is between its entry and its exit.
pub(crate) trait Call: Copy {
    fn live(&self) -> bool;
    fn mark_done(&mut self);
}

impl Call for DataArgs {
    #[inline(always)]
    fn live(&self) -> bool {
        self.buf_kind != BUF_DONE
    }

    #[inline(always)]
    fn mark_done(&mut self) {
        self.buf_kind = BUF_DONE;
    }
}

/// Thread `tid`'s slot.
#[inline(always)]
fn slot<T: Call>(slots: &Array<ThreadSlot<T>>, tid: u32) -> Option<*mut ThreadSlot<T>> {
    slots.get_ptr_mut(tid & (THREAD_CALL_SLOTS - 1))
}

/// Whether the slot holds a live call of thread `pid_tgid`.
#[inline(always)]
fn live_for<T: Call>(slot: *mut ThreadSlot<T>, pid_tgid: u64) -> bool {
    // SAFETY: a valid, aligned pointer to an array element, never freed; an aligned 8-byte
    // load is single-copy atomic.
    unsafe { read_volatile(&raw const (*slot).owner) == pid_tgid | SLOT_LIVE }
}

/// Whether some thread of the slot has a live call in the stash's hash.
#[inline(always)]
fn any_spilled<T: Call>(slot: *mut ThreadSlot<T>) -> bool {
    // SAFETY: as in `live_for`.
    unsafe { read_volatile(&raw const (*slot).spilled) != 0 }
}

/// Adds `by` (wrapping: `0 - 1` subtracts one) to the slot's count of spilled live calls.
#[inline(always)]
fn add_spilled<T: Call>(slot: *mut ThreadSlot<T>, by: u32) {
    // SAFETY: a valid, aligned pointer to an array element (never freed); the intrinsic
    // lowers to BPF's atomic add (threads of one slot may run on other CPUs).
    unsafe { atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(&raw mut (*slot).spilled, by) };
}

/// Sets `*owner` to `new` if it still holds `old`; whether it did.
#[inline(always)]
fn swap(owner: *mut u64, old: u64, new: u64) -> bool {
    // SAFETY: `owner` points to an aligned 8-byte field of an array element (never freed);
    // the intrinsic lowers to BPF's atomic compare-and-exchange.
    unsafe {
        atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::SeqCst }>(owner, old, new)
    }
    .1
}

/// Stashes the arguments of the call thread `pid_tgid` (`tid`) is entering.
#[inline(always)]
pub(crate) fn put<T: Call>(
    slots: &Array<ThreadSlot<T>>,
    spill: &LruHashMap<u64, T>,
    pid_tgid: u64,
    tid: u32,
    call: T,
) {
    let Some(slot) = slot(slots, tid) else {
        return;
    };
    let live = pid_tgid | SLOT_LIVE;
    // SAFETY: a valid, aligned pointer to an array element, never freed.
    let owner = unsafe { &raw mut (*slot).owner };
    // SAFETY: as above; an aligned 8-byte load is single-copy atomic.
    let seen = unsafe { read_volatile(owner) };
    // Live for this thread: a call whose exit was missed, overwritten. Not live: the
    // thread's own last call, another thread's, or never used; taken with a compare-and-swap
    // so that two threads of the slot cannot both take it. Live for another thread with this
    // thread's tid: that thread is gone (a tid names one live thread at a time) and its call
    // never returned (killed inside a TLS call, whose return probe then never fires): taken
    // too, so a dead thread's slot does not send its tid's later owners to the hash.
    let taken =
        seen == live || ((seen & SLOT_LIVE == 0 || seen as u32 == tid) && swap(owner, seen, live));
    if taken {
        // SAFETY: as above; only the owner of a live slot writes it.
        unsafe { (*slot).call = call };
        return;
    }
    put_spilled(spill, slot, pid_tgid, call);
}

/// Stashes a call whose slot is live for another thread in the stash's hash, counted in the
/// slot's `spilled` so that the exit looks there.
#[inline(always)]
fn put_spilled<T: Call>(
    spill: &LruHashMap<u64, T>,
    slot: *mut ThreadSlot<T>,
    pid_tgid: u64,
    call: T,
) {
    match spill.get_ptr_mut(pid_tgid) {
        Some(entry) => {
            // SAFETY: a valid, aligned value pointer from a successful lookup, keyed by this
            // thread (only its own programs, which do not nest, write it); map values are
            // freed only after an RCU grace period, which cannot end while this program runs.
            let was_live = unsafe { (*entry).live() };
            // SAFETY: as above.
            unsafe { entry.write(call) };
            // A live entry (its exit was missed) is already counted.
            if !was_live {
                add_spilled(slot, 1);
            }
        }
        None => {
            if spill.insert(pid_tgid, call, 0).is_err() {
                bump(Stat::StashTableFull, 1);
                return;
            }
            add_spilled(slot, 1);
        }
    }
    bump(Stat::StashSpilled, 1);
}

/// Copies into `call` the live call of thread `pid_tgid` (`tid`) and marks it done; whether
/// there was one. `release` gives the slot up at once; otherwise it stays live (no other
/// thread takes it) until the caller's `finish`. (Out-parameters rather than an `Option` of
/// the struct: a moved `None`'s undefined payload is stack the verifier refuses to read.)
#[inline(always)]
fn take<T: Call>(
    slots: &Array<ThreadSlot<T>>,
    spill: &LruHashMap<u64, T>,
    pid_tgid: u64,
    tid: u32,
    call: &mut T,
    release: bool,
) -> bool {
    let Some(slot) = slot(slots, tid) else {
        return false;
    };
    if live_for(slot, pid_tgid) {
        // SAFETY: a valid, aligned pointer to an array element, never freed; only this
        // thread writes the slot while it is live for it.
        unsafe {
            *call = (*slot).call;
            (*slot).call.mark_done();
            if release {
                write_volatile(&raw mut (*slot).owner, pid_tgid);
            }
        }
        return call.live();
    }
    if !any_spilled(slot) {
        return false;
    }
    let Some(entry) = spill.get_ptr_mut(pid_tgid) else {
        return false;
    };
    // SAFETY: as in `put_spilled`: this thread's own entry, live for this run.
    let entry = unsafe { &mut *entry };
    if !entry.live() {
        return false;
    }
    *call = *entry;
    entry.mark_done();
    add_spilled(slot, 0u32.wrapping_sub(1));
    true
}

/// The live call of thread `pid_tgid` (`tid`), to update in place.
#[inline(always)]
fn live_mut<T: Call>(
    slots: &Array<ThreadSlot<T>>,
    spill: &LruHashMap<u64, T>,
    pid_tgid: u64,
    tid: u32,
) -> Option<*mut T> {
    let slot = slot(slots, tid)?;
    if live_for(slot, pid_tgid) {
        // SAFETY: a valid, aligned pointer to an array element, never freed.
        return Some(unsafe { &raw mut (*slot).call });
    }
    if !any_spilled(slot) {
        return None;
    }
    spill.get_ptr_mut(pid_tgid)
}

/// Stashes the data syscall thread `pid_tgid` (`tid`) is entering.
#[inline(always)]
pub(crate) fn put_data(pid_tgid: u64, tid: u32, args: DataArgs) {
    put(&THREAD_CALLS, &DATA_ARGS, pid_tgid, tid, args);
}

/// Copies into `args` the data syscall thread `pid_tgid` (`tid`) is leaving, if it stashed
/// it; whether it did. Its slot stays live until [`finish_data`].
#[inline(always)]
pub(crate) fn take_data(pid_tgid: u64, tid: u32, args: &mut DataArgs) -> bool {
    take(&THREAD_CALLS, &DATA_ARGS, pid_tgid, tid, args, false)
}

/// Ends the call [`take_data`] returned: its slot keeps it, done, as the thread's last data
/// syscall, with `tls_read_ns` (when the call read a TLS record: when it returned; else 0)
/// for `tls.rs`. A spilled call is not kept (see [`last_data`]).
#[inline(always)]
pub(crate) fn finish_data(pid_tgid: u64, tid: u32, tls_read_ns: u64) {
    let Some(slot) = slot(&THREAD_CALLS, tid) else {
        return;
    };
    if !live_for(slot, pid_tgid) {
        return;
    }
    // SAFETY: a valid, aligned pointer to an array element, never freed; only this thread
    // writes the slot while it is live for it, and it is released (the owner's live bit
    // cleared) only after the other fields are written.
    unsafe {
        if tls_read_ns != 0 {
            (*slot).call.tls_record = 1;
            (*slot).call.done_ns = tls_read_ns;
        }
        write_volatile(&raw mut (*slot).owner, pid_tgid);
    }
}

/// The live data syscall of thread `pid_tgid` (`tid`), to note its socket in place.
#[inline(always)]
pub(crate) fn live_data(pid_tgid: u64, tid: u32) -> Option<*mut DataArgs> {
    live_mut(&THREAD_CALLS, &DATA_ARGS, pid_tgid, tid)
}

/// Copies into `last` the last data syscall of thread `pid_tgid` on a tracked socket, if its
/// slot still holds it (another thread of the slot may have taken it since; a spilled call
/// is not kept); whether it did.
#[inline(always)]
pub(crate) fn last_data(pid_tgid: u64, last: &mut DataArgs) -> bool {
    let Some(slot) = slot(&THREAD_CALLS, pid_tgid as u32) else {
        return false;
    };
    // SAFETY: a valid, aligned pointer to an array element, never freed. Another thread
    // takes the slot by swapping the owner before writing anything else, so arguments read
    // between two loads of an unchanged owner are that owner's.
    unsafe {
        let owner = read_volatile(&raw const (*slot).owner);
        if owner & !SLOT_LIVE != pid_tgid {
            return false;
        }
        *last = read_volatile(&raw const (*slot).call);
        read_volatile(&raw const (*slot).owner) == owner
    }
}

/// Copies into `call` the TLS library call thread `pid_tgid` (`tid`) is returning from and
/// releases its slot; whether there was one.
#[inline(always)]
pub(crate) fn take_released<T: Call>(
    slots: &Array<ThreadSlot<T>>,
    spill: &LruHashMap<u64, T>,
    pid_tgid: u64,
    tid: u32,
    call: &mut T,
) -> bool {
    take(slots, spill, pid_tgid, tid, call, true)
}

/// The live call of thread `pid_tgid` (`tid`) in `slots`, to update in place.
#[inline(always)]
pub(crate) fn live<T: Call>(
    slots: &Array<ThreadSlot<T>>,
    spill: &LruHashMap<u64, T>,
    pid_tgid: u64,
    tid: u32,
) -> Option<*mut T> {
    live_mut(slots, spill, pid_tgid, tid)
}

/// Exit-only capture (`capture::data`): keeps the data syscall `args` thread `pid_tgid`
/// (`tid`) just finished as its last one, done, with `tls_read_ns` as [`finish_data`] keeps
/// it, for [`last_data`]. No entry made the slot live, so it is taken here for the writes
/// alone: a compare-and-swap to live (a slot live for another thread is being written by it:
/// this call is then not kept, as a spilled call is not), the call, then the owner.
#[inline(always)]
pub(crate) fn keep_data(pid_tgid: u64, tid: u32, args: &DataArgs, tls_read_ns: u64) {
    let Some(slot) = slot(&THREAD_CALLS, tid) else {
        return;
    };
    // SAFETY: a valid, aligned pointer to an array element, never freed.
    let owner = unsafe { &raw mut (*slot).owner };
    // SAFETY: as above; an aligned 8-byte load is single-copy atomic.
    let seen = unsafe { read_volatile(owner) };
    if seen & SLOT_LIVE != 0 || !swap(owner, seen, pid_tgid | SLOT_LIVE) {
        return;
    }
    let mut call = *args;
    call.mark_done();
    if tls_read_ns != 0 {
        call.tls_record = 1;
        call.done_ns = tls_read_ns;
    }
    // SAFETY: as above; this thread holds the slot live, so no other thread writes it, and
    // readers discard what they read while the owner changed (see `last_data`). Volatile:
    // the stores stay between the swap and the release.
    unsafe {
        write_volatile(&raw mut (*slot).call, call);
        write_volatile(owner, pid_tgid);
    }
}

/// Exit-only capture: notes that thread `pid_tgid` (`tid`), in a data syscall on `fd`, is
/// moving data on socket `sk` of `protocol` (`sock/sock_{send,recv}_length`). A slot live for
/// another thread (being written) is left alone: the note is lost, as an announcement
/// without its socket.
#[inline(always)]
pub(crate) fn put_note(pid_tgid: u64, tid: u32, fd: u32, sk: u64, protocol: u16) {
    let Some(slot) = SOCK_NOTES.get_ptr_mut(tid & (THREAD_CALL_SLOTS - 1)) else {
        return;
    };
    // SAFETY: a valid, aligned pointer to an array element, never freed.
    let owner = unsafe { &raw mut (*slot).owner };
    // SAFETY: as above; an aligned 8-byte load is single-copy atomic.
    let seen = unsafe { read_volatile(owner) };
    if seen & SLOT_LIVE != 0 || !swap(owner, seen, pid_tgid | SLOT_LIVE) {
        return;
    }
    // SAFETY: as above; this thread holds the slot live: no other thread writes it, and
    // `take_note` ignores a live slot. Volatile: the stores stay before the release.
    unsafe {
        write_volatile(
            slot,
            SockNote {
                owner: pid_tgid | SLOT_LIVE,
                sk,
                fd,
                protocol,
                _pad: 0,
            },
        );
        write_volatile(owner, pid_tgid);
    }
}

/// Exit-only capture: the socket and protocol thread `pid_tgid` (`tid`) noted during its
/// data syscall on `fd`, written into `args` (`sk`, `protocol`), and the note given up. A
/// note of another thread, of another fd (an earlier call on another socket whose exit did
/// not take it), or one being written is not taken; one whose fields changed while read (the
/// owner swapped meanwhile) is discarded.
#[inline(always)]
pub(crate) fn take_note(pid_tgid: u64, tid: u32, fd: u32, args: &mut DataArgs) {
    let Some(slot) = SOCK_NOTES.get_ptr_mut(tid & (THREAD_CALL_SLOTS - 1)) else {
        return;
    };
    // SAFETY: a valid, aligned pointer to an array element, never freed; aligned loads of at
    // most 8 bytes are single-copy atomic. The fields count only if the owner is unchanged
    // after reading them and is swapped from this thread to none.
    unsafe {
        let owner = &raw mut (*slot).owner;
        if read_volatile(owner) != pid_tgid {
            return;
        }
        let sk = read_volatile(&raw const (*slot).sk);
        let noted_fd = read_volatile(&raw const (*slot).fd);
        let protocol = read_volatile(&raw const (*slot).protocol);
        if !swap(owner, pid_tgid, 0) || noted_fd != fd {
            return;
        }
        args.sk = sk;
        args.protocol = protocol;
    }
}
