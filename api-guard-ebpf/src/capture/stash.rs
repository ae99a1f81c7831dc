//! The per-thread stash of a data syscall's arguments, from its entry to its exit, kept in
//! an array slot per thread (`THREAD_CALLS`, slot `tid & (THREAD_CALL_SLOTS - 1)`) rather
//! than a hash keyed by `pid_tgid`: the verifier inlines an array lookup into a few
//! instructions, where each hash lookup hashed the key and walked a bucket (two per call at
//! least, plus `sock_*_length`'s). A slot records its owner, so it never hands one thread's
//! arguments to another: a thread takes a slot that holds no live call with a
//! compare-and-swap, and a call whose slot is live for another thread (tids
//! `THREAD_CALL_SLOTS` apart, both in a tracked call) goes to the `DATA_ARGS` hash instead.
//! A thread that blocks in its call and resumes on another CPU finds its slot unchanged:
//! nothing here is per CPU.

use core::{
    intrinsics::{atomic_cxchg, atomic_xadd, AtomicOrdering},
    ptr::{read_volatile, write_volatile},
};

use api_guard_common::Stat;

use super::bump;
use crate::maps::{
    DataArgs, ThreadCall, BUF_DONE, DATA_ARGS, SLOT_LIVE, THREAD_CALLS, THREAD_CALL_SLOTS,
};

/// Thread `tid`'s slot.
#[inline(always)]
fn slot(tid: u32) -> Option<*mut ThreadCall> {
    THREAD_CALLS.get_ptr_mut(tid & (THREAD_CALL_SLOTS - 1))
}

/// Adds `by` (wrapping: `0 - 1` subtracts one) to the slot's count of spilled live calls.
#[inline(always)]
fn add_spilled(slot: *mut ThreadCall, by: u32) {
    // SAFETY: a valid, aligned pointer to an array element (never freed); the intrinsic
    // lowers to BPF's atomic add (threads of one slot may run on other CPUs).
    unsafe { atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(&raw mut (*slot).spilled, by) };
}

/// Stashes the arguments of the call thread `pid_tgid` (`tid`) is entering.
#[inline(always)]
pub(crate) fn put(pid_tgid: u64, tid: u32, args: DataArgs) {
    let Some(slot) = slot(tid) else {
        return;
    };
    let live = pid_tgid | SLOT_LIVE;
    // SAFETY: a valid, aligned pointer to an array element, never freed.
    let owner = unsafe { &raw mut (*slot).owner };
    // SAFETY: as above; an aligned 8-byte load is single-copy atomic.
    let seen = unsafe { read_volatile(owner) };
    // Live for this thread: a call whose exit was missed, overwritten. Not live: the
    // thread's own last call, another thread's, or never used; taken with a compare-and-swap
    // so that two threads of the slot cannot both take it.
    let taken = seen == live || (seen & SLOT_LIVE == 0 && swap(owner, seen, live));
    if taken {
        // SAFETY: as above; only the owner of a live slot writes it.
        unsafe { (*slot).args = args };
        return;
    }
    spill(pid_tgid, slot, args);
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

/// Stashes a call whose slot is live for another thread in `DATA_ARGS`, counted in the
/// slot's `spilled` so that the exit looks there.
#[inline(always)]
fn spill(pid_tgid: u64, slot: *mut ThreadCall, args: DataArgs) {
    match DATA_ARGS.get_ptr_mut(pid_tgid) {
        Some(entry) => {
            // SAFETY: a valid, aligned value pointer from a successful lookup, keyed by this
            // thread (only its own programs, which do not nest, write it); map values are
            // freed only after an RCU grace period, which cannot end while this program runs.
            let was_live = unsafe { (*entry).buf_kind } != BUF_DONE;
            // SAFETY: as above.
            unsafe { entry.write(args) };
            // A live entry (its exit was missed) is already counted.
            if !was_live {
                add_spilled(slot, 1);
            }
        }
        None => {
            if DATA_ARGS.insert(pid_tgid, args, 0).is_err() {
                bump(Stat::StashTableFull, 1);
                return;
            }
            add_spilled(slot, 1);
        }
    }
    bump(Stat::StashSpilled, 1);
}

/// Copies into `args` the arguments of the call thread `pid_tgid` (`tid`) is leaving, if it
/// stashed them; whether it did. A spilled stash is marked done here; the slot stays live
/// until [`finish`]. (Out-parameters rather than an `Option` of the struct: a moved
/// `None`'s undefined payload is stack the verifier refuses to read.)
#[inline(always)]
pub(crate) fn take(pid_tgid: u64, tid: u32, args: &mut DataArgs) -> bool {
    let Some(slot) = slot(tid) else {
        return false;
    };
    // SAFETY: a valid, aligned pointer to an array element, never freed; only this thread
    // writes the slot while it is live for it.
    unsafe {
        if read_volatile(&raw const (*slot).owner) == pid_tgid | SLOT_LIVE {
            *args = (*slot).args;
            return args.buf_kind != BUF_DONE;
        }
        if read_volatile(&raw const (*slot).spilled) == 0 {
            return false;
        }
    }
    take_spilled(pid_tgid, slot, args)
}

#[inline(always)]
fn take_spilled(pid_tgid: u64, slot: *mut ThreadCall, args: &mut DataArgs) -> bool {
    let Some(entry) = DATA_ARGS.get_ptr_mut(pid_tgid) else {
        return false;
    };
    // SAFETY: as in `spill`: this thread's own entry, live for this run.
    let entry = unsafe { &mut *entry };
    if entry.buf_kind == BUF_DONE {
        return false;
    }
    *args = *entry;
    entry.buf_kind = BUF_DONE;
    add_spilled(slot, 0u32.wrapping_sub(1));
    true
}

/// Ends the call [`take`] returned: its slot keeps it, done, as the thread's last data
/// syscall, with `tls_read_ns` (when the call read a TLS record: when it returned; else 0)
/// for `tls.rs`. A spilled call is not kept (see [`last`]).
#[inline(always)]
pub(crate) fn finish(pid_tgid: u64, tid: u32, tls_read_ns: u64) {
    let Some(slot) = slot(tid) else {
        return;
    };
    // SAFETY: as in `take`: only this thread writes the slot while it is live for it, and
    // it is released (the owner's live bit cleared) only after the other fields are written.
    unsafe {
        if read_volatile(&raw const (*slot).owner) != pid_tgid | SLOT_LIVE {
            return;
        }
        let args = &mut (*slot).args;
        args.buf_kind = BUF_DONE;
        if tls_read_ns != 0 {
            args.tls_record = 1;
            args.done_ns = tls_read_ns;
        }
        write_volatile(&raw mut (*slot).owner, pid_tgid);
    }
}

/// The live stash of thread `pid_tgid` (`tid`), to note its socket in place.
#[inline(always)]
pub(crate) fn live_mut(pid_tgid: u64, tid: u32) -> Option<*mut DataArgs> {
    let slot = slot(tid)?;
    // SAFETY: as in `take`.
    unsafe {
        if read_volatile(&raw const (*slot).owner) == pid_tgid | SLOT_LIVE {
            return Some(&raw mut (*slot).args);
        }
        if read_volatile(&raw const (*slot).spilled) == 0 {
            return None;
        }
    }
    DATA_ARGS.get_ptr_mut(pid_tgid)
}

/// Copies into `last` the last data syscall of thread `pid_tgid` on a tracked socket, if its
/// slot still holds it (another thread of the slot may have taken it since; a spilled call
/// is not kept); whether it did.
#[inline(always)]
pub(crate) fn last(pid_tgid: u64, last: &mut DataArgs) -> bool {
    let Some(slot) = slot(pid_tgid as u32) else {
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
        *last = read_volatile(&raw const (*slot).args);
        read_volatile(&raw const (*slot).owner) == owner
    }
}
