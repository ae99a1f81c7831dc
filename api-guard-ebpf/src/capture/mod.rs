//! Plaintext capture on syscall tracepoints (kprobes/fentry are unavailable on our kernels).
//!
//! Connections enter the table at accept/connect exit and leave it at close; data syscalls on
//! tracked fds stash their arguments at entry and copy `ret` bytes at exit. Syscall tracepoint
//! arguments are 8-byte slots starting at offset 16; `ret` of a `sys_exit_*` is at 16
//! (`/sys/kernel/tracing/events/syscalls/*/format`).

mod conn;
pub(crate) mod data;
pub(crate) mod emit;
pub(crate) mod stash;

use core::intrinsics::{atomic_cxchg, atomic_xadd, AtomicOrdering};

use api_guard_common::{
    sock_wanted_count, tgid_gate_slot, ConnInfo, ConnKey, Plain, Stat, FILTER_BY_CGROUP,
    FILTER_BY_COMM, FILTER_BY_PID, SOCK_WANTED_ONE,
};
use aya_ebpf::{
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid},
    programs::TracePointContext,
    EbpfContext,
};

use crate::maps::{
    global_u32, FILTER_CGROUPS, FILTER_COMMS, FILTER_MODE, FILTER_PIDS, SELF_TGID, SOCK_WANTED,
    STATS, TGID_GATE,
};

/// Offset of the first argument field of every `syscalls/sys_enter_*` record, right after
/// `int __syscall_nr` (offset 8) and its padding; each argument takes an 8-byte slot.
const SYS_ENTER_ARGS: usize = 16;

/// Offset of syscall argument `n` (0-based) in a `sys_enter_*` record.
pub(crate) const fn arg(n: usize) -> usize {
    SYS_ENTER_ARGS + 8 * n
}
/// `syscalls/sys_exit_*`: field `long ret`.
pub(crate) const RET: usize = 16;

/// Reads the field at byte `offset` of the tracepoint record (offsets from the tracepoint's
/// `format` file). A direct load from the context, which the verifier allows for tracepoint
/// programs at constant offsets aligned to the load size (every field used here is naturally
/// aligned): a few nanoseconds, where a `bpf_probe_read_kernel` call cost tens per field on
/// every syscall of the host.
#[inline(always)]
pub(crate) fn field<T: Plain>(ctx: &TracePointContext, offset: usize) -> Result<T, i32> {
    let src = ctx.as_ptr().wrapping_byte_add(offset).cast::<T>();
    // SAFETY: the verifier checks every context load against the record's bounds and
    // alignment when the program loads, so an out-of-range offset fails the load rather than
    // faulting; `T: Plain` is valid for any bytes; `read_volatile` keeps one load per field.
    Ok(unsafe { core::ptr::read_volatile(src) })
}

/// Whether process `tgid` may have a tracked connection: its `TGID_GATE` slot is set. The
/// first check of every per-syscall program, before any hash lookup. Fails open.
#[inline(always)]
pub(crate) fn gate_open(tgid: u32) -> bool {
    TGID_GATE
        .get(tgid_gate_slot(tgid))
        .is_none_or(|slot| *slot != 0)
}

/// Opens process `tgid`'s gate slot, after a `CONNS` insert: stores the new entry's id (never
/// 0), so a daemon sweep that read the slot before this store fails its compare-and-swap.
#[inline(always)]
pub(crate) fn open_gate(tgid: u32, conn_id: u64) {
    if let Some(slot) = TGID_GATE.get_ptr_mut(tgid_gate_slot(tgid)) {
        // SAFETY: a valid, aligned pointer to an array element (never freed); an aligned
        // 8-byte store is single-copy atomic against the daemon's compare-and-swap.
        unsafe { core::ptr::write_volatile(slot, conn_id) };
    }
}

/// Whether a connection of process `tgid`'s slot may want its socket noted: the slot of
/// `SOCK_WANTED` counts one. Fails open.
#[inline(always)]
pub(crate) fn sockets_wanted(tgid: u32) -> bool {
    SOCK_WANTED
        .get(tgid_gate_slot(tgid))
        .is_none_or(|slot| sock_wanted_count(*slot) != 0)
}

/// Adds `by` (wrapping) to process `tgid`'s slot of `SOCK_WANTED`.
#[inline(always)]
fn add_sock_wanted(tgid: u32, by: u64) {
    if let Some(slot) = SOCK_WANTED.get_ptr_mut(tgid_gate_slot(tgid)) {
        // SAFETY: a valid, aligned pointer to an array element (never freed); the intrinsic
        // lowers to BPF's atomic add (its result unused), atomic against other CPUs and the
        // daemon's compare-and-swap on the mapped array.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(slot, by) };
    }
}

/// Counts a connection of process `tgid` that is about to be inserted with
/// `sock_wanted: 1`. Before the insert, so that the count is never below the number of
/// inserted connections that want their socket.
#[inline(always)]
pub(crate) fn count_sock_wanted(tgid: u32) {
    add_sock_wanted(tgid, SOCK_WANTED_ONE);
}

/// Takes back [`count_sock_wanted`] for a connection that was not inserted.
#[inline(always)]
pub(crate) fn uncount_sock_wanted(tgid: u32) {
    add_sock_wanted(tgid, 0u64.wrapping_sub(1));
}

/// Releases `conn` (of process `tgid`) from its process's socket wanted count, once: when it
/// no longer wants its socket (announced with it) or leaves the table. Only the caller whose
/// compare-and-swap clears `sock_wanted` subtracts, so two threads on one fd cannot both.
#[inline(always)]
pub(crate) fn release_sock_wanted(conn: *mut ConnInfo, tgid: u32) {
    // SAFETY: `conn` is a valid, aligned map value for this program's run (a lookup's
    // pointer: values are freed only after an RCU grace period, which cannot end while it
    // runs); `sock_wanted` is an aligned `u64`, read and swapped atomically.
    unsafe {
        let flag = &raw mut (*conn).sock_wanted;
        if core::ptr::read_volatile(flag) == 0 {
            return;
        }
        if !atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::SeqCst }>(flag, 1, 0)
            .1
        {
            return;
        }
    }
    uncount_sock_wanted(tgid);
}

pub(crate) fn bump(stat: Stat, by: u64) {
    if let Some(slot) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: a valid, aligned pointer to this CPU's slot from a successful lookup; array
        // elements are never freed. Another program run on this CPU could at worst lose a count.
        unsafe { *slot += by };
    }
}

/// The current thread, split into (tgid, tid).
pub(crate) fn current() -> (u64, u32, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    (pid_tgid, (pid_tgid >> 32) as u32, pid_tgid as u32)
}

/// Whether a new connection of process `tgid` should be tracked (self-exclusion, filters).
pub(crate) fn wanted(tgid: u32) -> bool {
    if tgid == global_u32(&SELF_TGID) {
        return false;
    }
    let mode = global_u32(&FILTER_MODE);
    if mode == 0 {
        return true;
    }
    // SAFETY: read-only lookup; the value is a plain `u8` copied out before any update.
    if mode & FILTER_BY_PID != 0 && unsafe { FILTER_PIDS.get(tgid) }.is_some() {
        return true;
    }
    if mode & FILTER_BY_CGROUP != 0 {
        // SAFETY: helper without arguments or preconditions.
        let cgroup = unsafe { bpf_get_current_cgroup_id() };
        // SAFETY: read-only lookup; only its presence is used.
        if unsafe { FILTER_CGROUPS.get(cgroup) }.is_some() {
            return true;
        }
    }
    if mode & FILTER_BY_COMM != 0 {
        if let Ok(comm) = bpf_get_current_comm() {
            // SAFETY: read-only lookup; only its presence is used.
            if unsafe { FILTER_COMMS.get(comm) }.is_some() {
                return true;
            }
        }
    }
    false
}

pub(crate) fn conn_key(tgid: u32, fd: u32) -> ConnKey {
    ConnKey::new(tgid, fd)
}
