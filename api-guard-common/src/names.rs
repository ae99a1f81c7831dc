//! Map, program and global names, as the loader opens them in the eBPF object.
//!
//! The kernel crate cannot pass these consts to `#[map(name = ...)]`: aya-ebpf-macros 0.2
//! accepts only a string literal there (it becomes an `export_name`, which must be a literal).
//! So each kernel static or program is named after its const instead, and
//! `api-guard-ebpf/src/maps.rs` (`name_checks`) asserts at compile time that every const
//! here equals the identifier of the item it names: renaming either side fails the eBPF build.

/// The ring buffer carrying [`crate::EventKind`] records to userspace.
pub const MAP_EVENTS: &str = "EVENTS";
/// Tracked TCP connections: [`crate::ConnKey`] -> [`crate::ConnInfo`].
pub const MAP_CONNS: &str = "CONNS";
/// Per-CPU counters indexed by [`crate::Stat`].
pub const MAP_STATS: &str = "STATS";
/// Gate of the per-syscall programs: `u64` array of [`crate::TGID_GATE_SLOTS`], non-zero
/// where a process may have a tracked connection (see `api-guard-ebpf/src/maps.rs`).
pub const MAP_TGID_GATE: &str = "TGID_GATE";
/// Per-process counts of connections that want their socket noted: `u64` array of
/// [`crate::TGID_GATE_SLOTS`] (see [`crate::SOCK_WANTED_ONE`]); the socket notes of a process
/// whose slot counts none return at once.
pub const MAP_SOCK_WANTED: &str = "SOCK_WANTED";
/// Processes to capture when the process filter is on: tgid -> 1.
pub const MAP_FILTER_PIDS: &str = "FILTER_PIDS";
/// Processes to capture when the process filter is on: comm (16 bytes, NUL padded) -> 1.
pub const MAP_FILTER_COMMS: &str = "FILTER_COMMS";

/// Processes to capture when the process filter is on: cgroup v2 id -> 1.
pub const MAP_FILTER_CGROUPS: &str = "FILTER_CGROUPS";

/// Global: tgid of the daemon itself, never captured.
pub const GLOBAL_SELF_TGID: &str = "SELF_TGID";
/// Global: per-call capture cap in bytes for responses (multiple of [`crate::CHUNK_SIZE`]).
pub const GLOBAL_CAPTURE_CAP: &str = "CAPTURE_CAP";
/// Global: per-call capture cap in bytes for requests (multiple of [`crate::CHUNK_SIZE`]).
pub const GLOBAL_REQUEST_CAPTURE_CAP: &str = "REQUEST_CAPTURE_CAP";
/// Global: bitmask of [`crate::FILTER_BY_PID`] / [`crate::FILTER_BY_COMM`] / [`crate::FILTER_BY_CGROUP`].
pub const GLOBAL_FILTER_MODE: &str = "FILTER_MODE";
/// Global: bytes waiting in the ring buffer above which a submission wakes the reader.
pub const GLOBAL_WAKEUP_BYTES: &str = "WAKEUP_BYTES";

/// Uprobe programs on TLS library entry points, by call shape (see `api-guard-ebpf/src/tls.rs`):
/// `(ssl, buf, num)` reads and writes returning a byte count, `_ex` variants returning 1 and
/// the count through a pointer, and the handshake (no data; correlates the socket early).
pub const PROG_TLS_READ: &str = "tls_read";
pub const PROG_TLS_READ_EX: &str = "tls_read_ex";
pub const PROG_TLS_WRITE: &str = "tls_write";
pub const PROG_TLS_WRITE_EX: &str = "tls_write_ex";
pub const PROG_TLS_HANDSHAKE: &str = "tls_handshake";
/// The one uretprobe program attached to the return of every hooked TLS function.
pub const PROG_TLS_RETURN: &str = "tls_return";
/// Uprobes on Go's `crypto/tls.(*Conn)`: `Write` at entry, `Read` at entry and at each `ret`
/// (see `api-guard-ebpf/src/tls/go.rs`); no uretprobe.
pub const PROG_GO_TLS_WRITE: &str = "go_tls_write";
pub const PROG_GO_TLS_READ: &str = "go_tls_read";
pub const PROG_GO_TLS_READ_RETURN: &str = "go_tls_read_return";
pub const PROG_GO_TLS_READ_COPY: &str = "go_tls_read_copy";
/// Bit of a Go probe's attach cookie (above the 32-bit library id): the site is a prologue's
/// stack-check `jbe`, whose hits are ignored when the branch to `morestack` will be taken.
pub const GO_COOKIE_STACK_CHECK: u64 = 1 << 32;

/// Global: 1 when some guarded interface has a per-source packet limit.
pub const GLOBAL_XDP_RATE_ON: &str = "XDP_RATE_ON";
/// Global: 1 when the allowlist tries are filled (allowlist or trusted proxies configured).
pub const GLOBAL_XDP_ALLOW_ON: &str = "XDP_ALLOW_ON";

/// The XDP guard program.
pub const PROG_XDP_GUARD: &str = "xdp_guard";
/// Blocked IPv4 / IPv6 source addresses: address bytes -> [`crate::xdp::BlockEntry`].
pub const MAP_XDP_BLOCK_V4: &str = "XDP_BLOCK_V4";
pub const MAP_XDP_BLOCK_V6: &str = "XDP_BLOCK_V6";
/// Blocked ranges (LPM tries): prefix -> [`crate::xdp::BlockEntry`].
pub const MAP_XDP_CIDR_V4: &str = "XDP_CIDR_V4";
pub const MAP_XDP_CIDR_V6: &str = "XDP_CIDR_V6";
/// Never-blocked ranges (LPM tries): prefix -> 1.
pub const MAP_XDP_ALLOW_V4: &str = "XDP_ALLOW_V4";
pub const MAP_XDP_ALLOW_V6: &str = "XDP_ALLOW_V6";
/// Per-interface settings: ifindex -> [`crate::xdp::IfaceConfig`].
pub const MAP_XDP_IFACES: &str = "XDP_IFACES";
/// Per-source packet token buckets: [`crate::xdp::RateKey`] -> [`crate::xdp::TokenBucket`].
pub const MAP_XDP_RATE: &str = "XDP_RATE";
/// Per-CPU verdict counters indexed by [`crate::xdp::XdpStat`].
pub const MAP_XDP_STATS: &str = "XDP_STATS";
/// The XDP maps that are pinned (when pinning is on) so blocks outlive the daemon.
pub const XDP_PINNED_MAPS: [&str; 9] = [
    MAP_XDP_BLOCK_V4,
    MAP_XDP_BLOCK_V6,
    MAP_XDP_CIDR_V4,
    MAP_XDP_CIDR_V6,
    MAP_XDP_ALLOW_V4,
    MAP_XDP_ALLOW_V6,
    MAP_XDP_IFACES,
    MAP_XDP_RATE,
    MAP_XDP_STATS,
];
