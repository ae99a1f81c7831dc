//! Map, program and global names: used by `#[map(name = ...)]`-style declarations in the
//! kernel crate and by the loader, so the two can never drift apart.

/// The ring buffer carrying [`crate::EventKind`] records to userspace.
pub const MAP_EVENTS: &str = "EVENTS";
/// Tracked TCP connections: [`crate::ConnKey`] -> [`crate::ConnInfo`].
pub const MAP_CONNS: &str = "CONNS";
/// Per-CPU counters indexed by [`crate::Stat`].
pub const MAP_STATS: &str = "STATS";
/// Processes to capture when the process filter is on: tgid -> 1.
pub const MAP_FILTER_PIDS: &str = "FILTER_PIDS";
/// Processes to capture when the process filter is on: comm (16 bytes, NUL padded) -> 1.
pub const MAP_FILTER_COMMS: &str = "FILTER_COMMS";

/// Processes to capture when the process filter is on: cgroup v2 id -> 1.
pub const MAP_FILTER_CGROUPS: &str = "FILTER_CGROUPS";

/// Global: tgid of the daemon itself, never captured.
pub const GLOBAL_SELF_TGID: &str = "SELF_TGID";
/// Global: per-call capture cap in bytes (multiple of [`crate::CHUNK_SIZE`]).
pub const GLOBAL_CAPTURE_CAP: &str = "CAPTURE_CAP";
/// Global: bitmask of [`crate::FILTER_BY_PID`] / [`crate::FILTER_BY_COMM`] / [`crate::FILTER_BY_CGROUP`].
pub const GLOBAL_FILTER_MODE: &str = "FILTER_MODE";
/// Global: bytes waiting in the ring buffer above which a submission wakes the reader.
pub const GLOBAL_WAKEUP_BYTES: &str = "WAKEUP_BYTES";
