//! Plaintext capture on syscall tracepoints (kprobes/fentry are unavailable on our kernels).
//!
//! Connections enter the table at accept/connect exit and leave it at close; data syscalls on
//! tracked fds stash their arguments at entry and copy `ret` bytes at exit. Syscall tracepoint
//! arguments are 8-byte slots starting at offset 16; `ret` of a `sys_exit_*` is at 16.

mod conn;
pub(crate) mod data;
pub(crate) mod emit;

use api_guard_common::{ConnKey, Stat, FILTER_BY_CGROUP, FILTER_BY_COMM, FILTER_BY_PID};
use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
};

use crate::maps::{
    global_u32, FILTER_CGROUPS, FILTER_COMMS, FILTER_MODE, FILTER_PIDS, SELF_TGID, STATS,
};

/// Offset of syscall argument `n` (0-based) in a `sys_enter_*` record.
pub(crate) const fn arg(n: usize) -> usize {
    16 + 8 * n
}
/// Offset of the return value in a `sys_exit_*` record.
pub(crate) const RET: usize = 16;

pub(crate) fn bump(stat: Stat, by: u64) {
    if let Some(slot) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU while we run.
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
    // SAFETY: read-only lookups of plain values.
    if mode & FILTER_BY_PID != 0 && unsafe { FILTER_PIDS.get(tgid) }.is_some() {
        return true;
    }
    if mode & FILTER_BY_CGROUP != 0 {
        // SAFETY: helper without preconditions; read-only lookup of a plain value.
        let cgroup = unsafe { bpf_get_current_cgroup_id() };
        if unsafe { FILTER_CGROUPS.get(cgroup) }.is_some() {
            return true;
        }
    }
    if mode & FILTER_BY_COMM != 0 {
        if let Ok(comm) = bpf_get_current_comm() {
            // SAFETY: as above.
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
