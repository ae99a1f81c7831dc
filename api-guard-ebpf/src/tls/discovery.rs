//! Tells the daemon when a process may have new TLS code to hook: at exec (the executable
//! itself may embed OpenSSL, like node) and whenever it maps a file executable (the dynamic
//! linker loading libssl, or a later dlopen such as python's `import ssl`). The daemon
//! debounces these per process and rescans its `/proc/PID/maps`.

use api_guard_common::NO_FD;
use aya_ebpf::{macros::tracepoint, programs::TracePointContext};

use crate::capture::{arg, current, emit, field, wanted};

const PROT_EXEC: u64 = 4;
/// `syscalls/sys_enter_mmap`: field `unsigned long prot`.
const MMAP_PROT: usize = arg(2);
/// `syscalls/sys_enter_mmap`: field `unsigned long fd`.
const MMAP_FD: usize = arg(4);

/// tracepoint sched/sched_process_exec: (__data_loc char[] filename, pid_t pid, pid_t old_pid)
#[tracepoint]
pub fn sched_process_exec(_ctx: TracePointContext) -> u32 {
    let (_, tgid, tid) = current();
    if wanted(tgid) {
        emit::proc_event(tgid, tid, NO_FD);
    }
    0
}

/// tracepoint syscalls/sys_enter_mmap: (unsigned long addr, unsigned long len,
/// unsigned long prot, unsigned long flags, unsigned long fd, unsigned long off)
#[tracepoint]
pub fn sys_enter_mmap(ctx: TracePointContext) -> u32 {
    let (Ok(prot), Ok(fd)) = (field::<u64>(&ctx, MMAP_PROT), field::<u64>(&ctx, MMAP_FD)) else {
        return 0;
    };
    // Anonymous executable memory (JITs) has fd -1: nothing to hook there.
    if prot & PROT_EXEC == 0 || (fd as i32) < 0 {
        return 0;
    }
    let (_, tgid, tid) = current();
    if wanted(tgid) {
        emit::proc_event(tgid, tid, fd as u32);
    }
    0
}
