//! Capture events and connection state shared by the syscall tracepoints and the daemon.

use core::mem::size_of;

use crate::Plain;

/// Payload is copied in chunks of at most this many bytes (one ring buffer record each).
pub const CHUNK_SIZE: usize = 4096;
/// Upper bound on chunks per syscall; bounds the kernel loop and the per-call capture cap.
pub const MAX_CHUNKS_PER_CALL: usize = 1024;
/// Bound of the kernel's copy loop (4 MiB).
pub const MAX_CAPTURE_CAP: u32 = (CHUNK_SIZE * MAX_CHUNKS_PER_CALL) as u32;
/// Largest configurable per-call capture cap (4 MiB): the whole copy loop. The verifier
/// checks the loop's step once whatever the cap (its progress lives in map memory, which it
/// does not track), so every cap up to this one loads at the same verification cost.
pub const MAX_CONFIGURED_CAPTURE_CAP: u32 = MAX_CAPTURE_CAP;
/// Per-call cap of Go's TLS calls, whatever the configured caps: Go hands whole HTTP/2
/// frames (16 KiB + 9 by default) and large bodies to one call.
pub const GO_CAPTURE_CAP: u32 = 1024 * 1024;
/// Default per-call capture cap for responses (and what is neither a request nor a
/// response): heads plus the body prefix analysis reads.
pub const DEFAULT_CAPTURE_CAP: u32 = 16 * 1024;
/// Default per-call capture cap for requests (bytes a local server reads, bytes a local
/// client writes): what detection judges must not end at a cap an attacker can pad past.
pub const DEFAULT_REQUEST_CAPTURE_CAP: u32 = 64 * 1024;
/// iovec entries inspected per readv/writev/recvmsg/sendmsg call; the rest counts as truncated.
/// gRPC writes one iovec per slice (grpc-core batches up to 260), and a lost slice costs an
/// HTTP/2 connection its header-compression state, so the bound is generous: entries are only
/// read until the capture cap is reached.
pub const MAX_IOVECS: usize = 256;
/// Capacity of the connection table in the kernel.
pub const MAX_CONNS: u32 = 65_536;

/// Slots of the kernel's tgid gate (`names::MAP_TGID_GATE`), a power of two: a process's
/// slot is `tgid & (TGID_GATE_SLOTS - 1)`. Processes sharing a slot only cost each other the
/// connection-table lookup the gate would have spared.
pub const TGID_GATE_SLOTS: u32 = 65_536;
const _: () = assert!(TGID_GATE_SLOTS.is_power_of_two());

/// Slot of process `tgid` in the tgid gate.
pub const fn tgid_gate_slot(tgid: u32) -> u32 {
    tgid & (TGID_GATE_SLOTS - 1)
}

/// What a connection that wants its socket noted adds to its process's slot of the socket
/// wanted counts (`names::MAP_SOCK_WANTED`, slot [`tgid_gate_slot`]): one to the count (the
/// low 32 bits), one to the generation (the high 32 bits), so that every increment changes
/// the value and a sweep that read it twice unchanged knows no connection was counted in
/// between. Releasing a connection subtracts 1 (the count alone).
pub const SOCK_WANTED_ONE: u64 = (1 << 32) | 1;

/// The count part of a socket wanted slot's value (see [`SOCK_WANTED_ONE`]).
pub const fn sock_wanted_count(value: u64) -> u32 {
    value as u32
}

/// `FILTER_MODE` bits: only capture processes listed in the pid / comm filter maps.
pub const FILTER_BY_PID: u32 = 1;
pub const FILTER_BY_COMM: u32 = 2;
pub const FILTER_BY_CGROUP: u32 = 4;

/// Record kinds on the ring buffer. Numbers are stable.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// [`ConnOpenEvent`]: first sighting of a connection's data (addresses resolved by then).
    ConnOpen = 1,
    /// [`DataEvent`]: one chunk of payload.
    Data = 2,
    /// [`ConnCloseEvent`]: the tracked fd was closed.
    ConnClose = 3,
    /// [`ConnTlsEvent`]: the connection carries TLS; from now on its payload comes decrypted
    /// from the TLS library hooks (flag [`DATA_TLS`]) and its ciphertext is not copied.
    ConnTls = 4,
    /// [`ProcEvent`]: a process exec'd or mapped a file executable; TLS discovery rescans it.
    ProcExec = 5,
}

impl EventKind {
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::ConnOpen),
            2 => Some(Self::Data),
            3 => Some(Self::ConnClose),
            4 => Some(Self::ConnTls),
            5 => Some(Self::ProcExec),
            _ => None,
        }
    }
}

/// Connection ids (`ConnInfo::conn_id`) are `(monotonic ns << 10) | low bits`. The kernel puts
/// the CPU number (masked by [`CONN_ID_CPU_MASK`]) in the low bits; connections the daemon
/// adopts at start (established before it ran) carry this bit instead, so an adopted id never
/// equals a kernel-allocated one.
pub const CONN_ID_ADOPTED: u64 = 1 << 9;
/// Low bits of a kernel-allocated connection id that hold the CPU number.
pub const CONN_ID_CPU_MASK: u64 = CONN_ID_ADOPTED - 1;

/// Whether `conn_id` was allocated by the daemon for a connection adopted at start.
pub const fn conn_id_adopted(conn_id: u64) -> bool {
    conn_id & CONN_ID_ADOPTED != 0
}

/// Which end of the connection the traced process is.
pub const ROLE_SERVER: u8 = 1; // fd came from accept/accept4
pub const ROLE_CLIENT: u8 = 2; // fd came from connect

/// Direction of payload relative to the traced process.
pub const DIR_INGRESS: u8 = 1; // read/recv*
pub const DIR_EGRESS: u8 = 2; // write/send*

/// Address families as in `<sys/socket.h>`.
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Where a connection's addresses came from (`ConnOpenEvent::addr_source`).
pub const ADDR_NONE: u8 = 0;
/// From the `sock/inet_sock_set_state` tuple of the socket: local and peer are exact.
pub const ADDR_TUPLE: u8 = 1;
/// Only the peer, from the accept/connect sockaddr argument.
pub const ADDR_SOCKADDR: u8 = 2;

/// `DataEvent::flags`: the syscall moved more bytes than were copied (see `gap_after`).
pub const DATA_TRUNCATED: u8 = 1;
/// `DataEvent::flags`: the payload was not in user memory (sendfile): only sizes are known.
pub const DATA_NO_PAYLOAD: u8 = 2;
/// `DataEvent::flags`: decrypted payload from a TLS library hook (`DataHeader::library`).
pub const DATA_TLS: u8 = 4;

/// `EventHeader::fd` of records that are not about a file descriptor.
pub const NO_FD: u32 = u32::MAX;

/// Key of the kernel connection table: the fd within its process.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub tgid: u32,
    pub fd: u32,
}
const _: () = assert!(size_of::<ConnKey>() == 8);

impl ConnKey {
    pub const fn new(tgid: u32, fd: u32) -> Self {
        Self { tgid, fd }
    }
}

/// An IP endpoint; IPv4 lives in the first 4 bytes of `addr` when `family == AF_INET`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: [u8; 16],
    /// Host byte order.
    pub port: u16,
    pub family: u16,
    pub _pad: u32,
}
const _: () = assert!(size_of::<Endpoint>() == 24);
// SAFETY: repr(C) with a byte array and integers, no padding (size asserted above).
unsafe impl Plain for Endpoint {}

/// Kernel-side state of one tracked connection.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    /// Unique for the connection's lifetime; a reused fd gets a new id.
    pub conn_id: u64,
    /// `struct sock *` seen on the data path (0 until known); used to look up the tuple.
    pub sk: u64,
    /// Peer from the accept/connect sockaddr (family 0 if not given).
    pub peer: Endpoint,
    /// Bytes lost per direction (index `dir - 1`) since the last delivered chunk.
    pub pending_gap: [u64; 2],
    pub role: u8,
    /// 1 once the ConnOpen event has been delivered.
    pub announced: u8,
    /// 1 once a TLS library call was seen on this socket: syscall payload is ciphertext.
    pub tls: u8,
    /// 1 once an ingress read was seen (only the first one is checked for a TLS record).
    pub ingress_seen: u8,
    /// Attach cookie of the TLS library that carries this connection's plaintext.
    pub tls_library: u32,
    /// Bytes of the server-to-client direction copied while a TLS library call claimed the
    /// socket (its handshake records, for the ServerHello); at most [`HELLO_CAPTURE_BYTES`].
    pub hello_copied: u16,
    /// One of `FRAMING_*`: whether the response budget applies (decided from the first bytes
    /// the connection's requests carried).
    pub framing: u8,
    pub _pad: u8,
    /// Bytes of the current response message copied so far: the response direction since
    /// the last request-direction call (see [`RESPONSE_BUDGET_FREE_CALL`]).
    pub response_copied: u32,
    /// 1 while the connection is counted in its process's socket wanted count
    /// (`names::MAP_SOCK_WANTED`): from its insert until it is announced with its socket or
    /// removed by the kernel. Cleared with a compare-and-swap, so exactly one clearing
    /// releases the count. The daemon's removals leave the count high (see `gate.rs`).
    pub sock_wanted: u64,
}
const _: () = assert!(size_of::<ConnInfo>() == 80);

/// `ConnInfo::framing`: the connection's first request bytes were not yet seen.
pub const FRAMING_UNKNOWN: u8 = 0;
/// `ConnInfo::framing`: the requests began with an HTTP/1 method (upper-case token), one
/// response at a time per request: the response copy cap is a budget per response message.
pub const FRAMING_MESSAGES: u8 = 1;
/// `ConnInfo::framing`: anything else — the HTTP/2 preface (responses of many streams
/// interleave, and a lost HEADERS frame costs the connection its HPACK state), another
/// protocol, or a first request call too large for its first bytes to be checked: the cap
/// stays per call.
pub const FRAMING_OTHER: u8 = 2;
/// First bytes of the HTTP/2 client connection preface (RFC 9113 §3.4), read little-endian.
pub const H2_PREFACE_HEAD: u32 = u32::from_le_bytes(*b"PRI ");

/// Response calls of at most this many bytes are copied whole (up to the per-call cap) even
/// once their message's budget is spent: streamed answers (server-sent events, LLM token
/// streams) write an event per call and their usage totals come last; a bulk answer writes
/// large calls, and those stop being copied once the budget is spent.
pub const RESPONSE_BUDGET_FREE_CALL: u32 = CHUNK_SIZE as u32;

/// Ciphertext bytes of a TLS connection's server-to-client direction copied to userspace:
/// its ServerHello (about 100 bytes; 1.2 KB with a post-quantum key share) names the
/// negotiated version and cipher suite. A connection's later ciphertext is never copied.
pub const HELLO_CAPTURE_BYTES: u16 = 2048;

/// Common prefix of every ring buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    /// An [`EventKind`] value.
    pub kind: u32,
    pub tgid: u32,
    pub tid: u32,
    pub fd: u32,
    pub conn_id: u64,
    /// CLOCK_MONOTONIC (`bpf_ktime_get_ns`).
    pub ts_ns: u64,
}
const _: () = assert!(size_of::<EventHeader>() == 32);
// SAFETY: repr(C) with integers only, no padding (size asserted above).
unsafe impl Plain for EventHeader {}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnOpenEvent {
    pub hdr: EventHeader,
    pub local: Endpoint,
    pub peer: Endpoint,
    pub comm: [u8; 16],
    pub role: u8,
    pub addr_source: u8,
    pub _pad: [u8; 6],
}
const _: () = assert!(size_of::<ConnOpenEvent>() == 104);
// SAFETY: repr(C) with a `Plain` header, endpoints, byte arrays and integers; no padding
// (size asserted above).
unsafe impl Plain for ConnOpenEvent {}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnCloseEvent {
    pub hdr: EventHeader,
    /// Bytes lost per direction after the last delivered chunk.
    pub pending_gap: [u64; 2],
}
const _: () = assert!(size_of::<ConnCloseEvent>() == 48);
// SAFETY: repr(C) with a `Plain` header and a `u64` array, no padding (size asserted above).
unsafe impl Plain for ConnCloseEvent {}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnTlsEvent {
    pub hdr: EventHeader,
    /// Id of the hooked TLS library file (its attach cookie).
    pub library: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<ConnTlsEvent>() == 40);
// SAFETY: repr(C) with a `Plain` header and integers, no padding (size asserted above).
unsafe impl Plain for ConnTlsEvent {}

/// A process to (re)scan for TLS libraries: it exec'd (`hdr.fd` = [`NO_FD`]) or mapped file
/// `hdr.fd` executable (a library loaded by the dynamic linker or dlopen).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ProcEvent {
    pub hdr: EventHeader,
}
const _: () = assert!(size_of::<ProcEvent>() == 32);
// SAFETY: repr(C) with a `Plain` header only, no padding (size asserted above).
unsafe impl Plain for ProcEvent {}

/// Fixed part of a data record; `chunk_len` payload bytes follow it on the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DataHeader {
    pub hdr: EventHeader,
    /// Bytes of this direction lost (ring buffer full) right before this chunk.
    pub gap_before: u64,
    /// Bytes of this call that were not copied after this chunk (capture cap, sendfile).
    pub gap_after: u64,
    /// Bytes the whole syscall moved (its return value).
    pub call_len: u64,
    pub chunk_len: u32,
    pub dir: u8,
    pub flags: u8,
    /// With [`DATA_TLS`]: id of the hooked TLS library file (its attach cookie).
    pub library: u16,
}
pub const DATA_HEADER_SIZE: usize = size_of::<DataHeader>();
const _: () = assert!(DATA_HEADER_SIZE == 64);

/// Payload sizes of the data records the kernel reserves in the ring and fills in place (a
/// call whose copy is one buffer of at most a chunk): a reservation's size must be a
/// constant, so the payload takes the smallest class that holds it and the record ends in
/// unused bytes. Multiples of 8, as the ring rounds every record to 8 bytes.
pub const DIRECT_PAYLOAD_CLASSES: [usize; 10] =
    [128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, CHUNK_SIZE];

/// The payload size of a record filled in place with `len` bytes (see
/// [`DIRECT_PAYLOAD_CLASSES`]), or `None` above a chunk.
pub const fn direct_payload_class(len: usize) -> Option<usize> {
    let mut i = 0;
    while i < DIRECT_PAYLOAD_CLASSES.len() {
        if len <= DIRECT_PAYLOAD_CLASSES[i] {
            return Some(DIRECT_PAYLOAD_CLASSES[i]);
        }
        i += 1;
    }
    None
}

/// The longest first segment of a two-segment record filled in place (a `writev` of a
/// response head and body). Such a record's payload may exceed its used bytes' size class by
/// this much: the verifier needs room for the longest first segment and the second's class.
pub const PAIR_HEAD_MAX: usize = 512;

// SAFETY: repr(C) with a `Plain` header and integers, no padding (size asserted above).
unsafe impl Plain for DataHeader {}

/// A data record as laid out in the per-CPU scratch buffer: header then payload.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DataEvent {
    pub header: DataHeader,
    pub data: [u8; CHUNK_SIZE],
}
const _: () = assert!(size_of::<DataEvent>() == DATA_HEADER_SIZE + CHUNK_SIZE);

/// Per-CPU kernel counters (index into the `STATS` array). Numbers are stable.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Records submitted to the ring buffer.
    EventsSubmitted = 0,
    /// Records lost because the ring buffer was full.
    RingbufFull = 1,
    /// Syscalls whose payload exceeded the capture cap or their response message's budget
    /// (or had no user payload).
    TruncatedCalls = 2,
    /// New connections not tracked because the connection table was full.
    ConnTableFull = 3,
    /// Syscalls not captured because the per-thread argument stash was full.
    StashTableFull = 4,
    /// Payload copies that failed (`bpf_probe_read_user`).
    ReadFail = 5,
    /// Payload bytes not copied because of the capture cap or response budget.
    TruncatedBytes = 6,
    /// Payload bytes lost because the ring buffer was full.
    LostBytes = 7,
    /// Connections dropped from tracking because the socket turned out not to be TCP.
    NotTcp = 8,
    /// TLS library calls that moved data but whose socket could not be determined.
    TlsNoFd = 9,
    /// TLS library calls on sockets that are not tracked (filtered out, or opened before
    /// the agent started): not captured, by design.
    TlsUntracked = 10,
    /// Go TLS calls whose `tls.Conn` does not wrap a `*net.TCPConn` (a custom `net.Conn`
    /// wrapper) or whose fields could not be read: their socket is unknown, not captured.
    GoConnUnknown = 11,
    /// Go TLS calls whose socket was already closed (`Sysfd` -1) when the call was seen:
    /// another goroutine closed the connection meanwhile.
    GoConnClosed = 12,
    /// Data syscalls whose arguments went to the hash stash because their thread's array
    /// slot held another thread's call (not a loss: a slower path).
    StashSpilled = 13,
}
pub const STAT_COUNT: u32 = 14;

impl Stat {
    pub const ALL: [Stat; STAT_COUNT as usize] = [
        Stat::EventsSubmitted,
        Stat::RingbufFull,
        Stat::TruncatedCalls,
        Stat::ConnTableFull,
        Stat::StashTableFull,
        Stat::ReadFail,
        Stat::TruncatedBytes,
        Stat::LostBytes,
        Stat::NotTcp,
        Stat::TlsNoFd,
        Stat::TlsUntracked,
        Stat::GoConnUnknown,
        Stat::GoConnClosed,
        Stat::StashSpilled,
    ];
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: repr(C), Copy, only integer fields, no padding (size asserted above).
    unsafe impl aya::Pod for ConnKey {}
    // SAFETY: repr(C), Copy, integer and array fields only, no padding (size asserted above).
    unsafe impl aya::Pod for ConnInfo {}
    // SAFETY: repr(C), Copy, integer and byte-array fields, no padding (size asserted above).
    unsafe impl aya::Pod for Endpoint {}
}
