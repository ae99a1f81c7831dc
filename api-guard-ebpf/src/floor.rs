//! Empty programs for measuring the floor: what the hooks themselves cost when attached where
//! the agent attaches its own (`api-guard floor`, used by `cargo xtask bench overhead`).
//! Never attached by the agent.

use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint, uprobe, uretprobe},
    programs::{ProbeContext, RawTracePointContext, RetProbeContext, TracePointContext},
};

#[tracepoint]
pub fn floor_tracepoint(_ctx: TracePointContext) -> u32 {
    0
}

#[uprobe]
pub fn floor_uprobe(_ctx: ProbeContext) -> u32 {
    0
}

#[uretprobe]
pub fn floor_uretprobe(_ctx: RetProbeContext) -> u32 {
    0
}

/// On the raw `sys_enter`/`sys_exit` tracepoints: what the capture floor would be on them
/// (they fire for every syscall, but hand the program raw arguments without building a record).
#[raw_tracepoint]
pub fn floor_raw_tracepoint(_ctx: RawTracePointContext) -> i32 {
    0
}
