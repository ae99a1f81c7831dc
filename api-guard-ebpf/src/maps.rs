//! Every map and load-time global of the kernel side. A static's identifier is its name in the
//! ELF object (`#[map]` and `#[no_mangle]` export it as is); those the loader opens by name
//! must equal the consts in `api_guard_common::names`, which `name_checks` below asserts at
//! compile time. (`#[map(name = ...)]` cannot take those consts: aya-ebpf-macros 0.2 accepts
//! only a string literal, as `export_name` does.)

use api_guard_common::{
    xdp::{BlockEntry, IfaceConfig, RateKey, TokenBucket, XDP_STAT_COUNT},
    ConnInfo, ConnKey, DataHeader, Endpoint, CHUNK_SIZE, MAX_CONNS, STAT_COUNT, TGID_GATE_SLOTS,
};
use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};

/// Set by the loader (`names::GLOBAL_*`); read with `read_volatile` so the compiler keeps the load.
#[unsafe(no_mangle)]
pub static SELF_TGID: u32 = 0;
#[unsafe(no_mangle)]
pub static CAPTURE_CAP: u32 = api_guard_common::DEFAULT_CAPTURE_CAP;
#[unsafe(no_mangle)]
pub static REQUEST_CAPTURE_CAP: u32 = api_guard_common::DEFAULT_REQUEST_CAPTURE_CAP;
#[unsafe(no_mangle)]
pub static FILTER_MODE: u32 = 0;
#[unsafe(no_mangle)]
pub static WAKEUP_BYTES: u64 = 256 * 1024;
/// 1 when some guarded interface has a packet rate limit; 0 spares every packet the
/// `XDP_IFACES` lookup.
#[unsafe(no_mangle)]
pub static XDP_RATE_ON: u32 = 0;
/// 1 when the allowlist tries hold anything (allowlist or trusted proxies configured).
#[unsafe(no_mangle)]
pub static XDP_ALLOW_ON: u32 = 0;

#[inline(always)]
pub fn global_u32(v: &'static u32) -> u32 {
    // SAFETY: `v` is a reference, so the pointer is valid and aligned; volatile so the value
    // the loader patched in is read rather than the compile-time initialiser.
    unsafe { core::ptr::read_volatile(v) }
}

#[inline(always)]
pub fn global_u64(v: &'static u64) -> u64 {
    // SAFETY: as in `global_u32`: a reference is a valid, aligned pointer.
    unsafe { core::ptr::read_volatile(v) }
}

/// Size is a default; the loader sets the configured size.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Not LRU: an evicted live connection would vanish silently; a full table is counted instead.
#[map]
pub static CONNS: HashMap<ConnKey, ConnInfo> = HashMap::with_max_entries(MAX_CONNS, 0);

/// The cheapest gate of the per-syscall programs: slot `tgid & (TGID_GATE_SLOTS - 1)` is
/// non-zero while a process of that slot may have a tracked connection (an array lookup the
/// verifier inlines, where `CONNS` costs a hash). Whoever inserts into `CONNS` then stores
/// the new entry's `conn_id` here, after the insert; only the daemon clears a slot, with a
/// compare-and-swap from the value it read before a `CONNS` scan that found the slot empty
/// (`agent::capture::gate`). Mmapable for that swap.
#[map]
pub static TGID_GATE: Array<u64> = Array::with_max_entries(TGID_GATE_SLOTS, BPF_F_MMAPABLE);

/// How many connections of the processes of slot `tgid & (TGID_GATE_SLOTS - 1)` want their
/// socket noted (`ConnInfo::sock_wanted`), in the low 32 bits, with a generation in the high
/// 32 bits that every increment advances (`SOCK_WANTED_ONE`): the exit-only socket notes
/// (`note_{send,recv}_sock`) of a process whose count is 0 return at once. Atomic adds only:
/// `+SOCK_WANTED_ONE` before a connection is inserted (kernel or daemon), `-1` when its
/// `sock_wanted` is swapped from 1 to 0 (announced with its socket, closed, not TCP,
/// overwritten), so the count is never below the number of connections that want their
/// socket. Removals by the daemon leave it high; the daemon zeroes the count of a slot with no
/// connection at all at two sweeps (`agent::capture::gate`). Mmapable for that swap.
#[map]
pub static SOCK_WANTED: Array<u64> = Array::with_max_entries(TGID_GATE_SLOTS, BPF_F_MMAPABLE);

#[map]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_COUNT, 0);

#[map]
pub static FILTER_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(1024, 0);

#[map]
pub static FILTER_CGROUPS: HashMap<u64, u8> = HashMap::with_max_entries(256, 0);

#[map]
pub static FILTER_COMMS: HashMap<[u8; 16], u8> = HashMap::with_max_entries(256, 0);

/// Both ends of an established TCP socket, from `sock/inet_sock_set_state`, by `struct sock *`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Tuple {
    pub local: Endpoint,
    pub peer: Endpoint,
}

#[map]
pub static SOCK_TUPLES: LruHashMap<u64, Tuple> = LruHashMap::with_max_entries(MAX_CONNS, 0);

/// accept/accept4 arguments stashed at entry, by thread (`pid_tgid`).
#[map]
pub static ACCEPT_ARGS: LruHashMap<u64, u64> = LruHashMap::with_max_entries(16_384, 0);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ConnectArgs {
    /// The user `struct sockaddr *`, read at exit (see `capture::conn`).
    pub sockaddr: u64,
    pub fd: u32,
    pub _pad: u32,
}

#[map]
pub static CONNECT_ARGS: LruHashMap<u64, ConnectArgs> = LruHashMap::with_max_entries(16_384, 0);

/// `DataArgs::buf_kind` once the call returned: the entry stays as the thread's last data
/// syscall on a tracked socket (see `tls.rs`, correlation for memory-BIO TLS users).
pub const BUF_DONE: u8 = 0;
/// How a data syscall passes its buffer.
pub const BUF_PLAIN: u8 = 1; // (buf, len)
pub const BUF_IOVEC: u8 = 2; // (const struct iovec *, iovcnt)
pub const BUF_MSGHDR: u8 = 3; // (struct user_msghdr *)
pub const BUF_NONE: u8 = 4; // sendfile: payload never in user memory
/// Ciphertext I/O of a running TLS call: not copied, but its socket (`sk`) is noted for the
/// connection's addresses.
pub const BUF_CLAIMED: u8 = 5;

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct DataArgs {
    pub ptr: u64,
    pub count: u64,
    /// `struct sock *` and protocol from `sock/sock_{send,recv}_length` during the call.
    pub sk: u64,
    /// When the call returned (`bpf_ktime_get_ns`), set only for a call with `tls_record`.
    pub done_ns: u64,
    pub fd: u32,
    pub protocol: u16,
    pub dir: u8,
    pub buf_kind: u8,
    /// 1 if the call read bytes that start like a TLS record (content type 20..=23, 0x03).
    pub tls_record: u8,
    /// 1 if the call is a TLS library's socket I/O whose first bytes are copied anyway: the
    /// server-to-client handshake records (see `HELLO_CAPTURE_BYTES`).
    pub hello: u8,
    /// 1 if the connection still needs the call's socket (`sk`, `protocol`): it is not yet
    /// announced with its `struct sock *`.
    pub wants_socket: u8,
    pub _pad: [u8; 5],
}

/// Slots of [`THREAD_CALLS`].
pub const THREAD_CALL_SLOTS: u32 = 65_536;

/// [`ThreadSlot::owner`]'s bit while the slot holds a call between its entry and exit (no
/// `pid_tgid` has it: tgids are below 2^22).
pub const SLOT_LIVE: u64 = 1 << 63;

/// One slot of a per-thread call stash ([`THREAD_CALLS`], [`TLS_THREAD_CALLS`];
/// `capture::stash`): a thread's call, from its entry on, and after its exit as the thread's
/// last one (for data syscalls: see `tls.rs`, correlation for memory-BIO TLS users).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ThreadSlot<T> {
    /// `pid_tgid` of the thread whose call `call` is, with [`SLOT_LIVE`] from entry to exit;
    /// 0 if the slot never held one. Only the owner writes a live slot; a thread takes a
    /// slot that is not live with a compare-and-swap, so two threads of one slot never both
    /// write it, and a reader that finds the owner changed after reading `call` discards it.
    pub owner: u64,
    /// Threads of this slot whose live call went to the stash's hash ([`DATA_ARGS`],
    /// [`TLS_ARGS`]) because the slot was live for another thread (atomic adds): their exits
    /// look there while it is non-zero.
    pub spilled: u32,
    pub _pad: u32,
    pub call: T,
}

/// The per-thread argument stash of the data syscalls, slot `tid & (THREAD_CALL_SLOTS - 1)`:
/// an array lookup the verifier inlines, where a hash keyed by `pid_tgid` costs a hash of the
/// key and a bucket walk at every entry, exit and `sock_*_length`. Threads sharing a slot
/// (tids 65,536 apart, on hosts whose `pid_max` allows them) while both are in a tracked
/// call use [`DATA_ARGS`] for the second one.
#[map]
pub static THREAD_CALLS: Array<ThreadSlot<DataArgs>> =
    Array::with_max_entries(THREAD_CALL_SLOTS, 0);

/// Stash of a live call whose [`THREAD_CALLS`] slot was held by another thread's call, by
/// thread (`pid_tgid`); counted in the slot's `spilled` while live and marked done at exit.
#[map]
pub static DATA_ARGS: LruHashMap<u64, DataArgs> = LruHashMap::with_max_entries(16_384, 0);

/// The socket `sock/sock_{send,recv}_length` saw during a thread's data syscall, for the
/// syscall's exit, in exit-only capture (`capture::data`, no entry stash to note it in):
/// which fd the syscall was on (read from the task's saved registers), its `struct sock *`
/// and protocol. The exit takes it only for that fd and only while `owner` is its thread.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SockNote {
    /// `pid_tgid` of the thread that wrote the note, with [`SLOT_LIVE`] while it writes it;
    /// 0 if none (never written, or taken).
    pub owner: u64,
    pub sk: u64,
    pub fd: u32,
    pub protocol: u16,
    pub _pad: u16,
}

/// [`SockNote`]s, slot `tid & (THREAD_CALL_SLOTS - 1)` as [`THREAD_CALLS`]: taken with a
/// compare-and-swap of the owner, so two threads of one slot never mix their fields.
#[map]
pub static SOCK_NOTES: Array<SockNote> = Array::with_max_entries(THREAD_CALL_SLOTS, 0);

/// Per-CPU staging area for one data record: its header, then the payload gathered from one
/// or more user segments (the iovecs of one call become one record, not one each), output
/// with its exact length. Twice a chunk long: a segment staged at any offset below
/// `CHUNK_SIZE` has room for a whole chunk, which lets the verifier prove every copy in bounds.
#[repr(C)]
pub struct Staging {
    pub header: DataHeader,
    pub data: [u8; 2 * CHUNK_SIZE],
    /// Bytes of `data` staged so far. Kept here rather than on the stack: the verifier tracks
    /// stack values through every `bpf_loop` step (one state per distinct fill level), while
    /// a value loaded from a map is just a bounded scalar to it.
    pub fill: u64,
    /// The call being copied, for the same reason (see [`CopyState`]).
    pub copy: CopyState,
}

/// Progress of one call's chunked copy (`capture::data`), read and written by each
/// `bpf_loop` step. Not on the stack: the verifier tracks stack values exactly through the
/// loop, and the byte counts there (precise, since they bound the helper's copy length) made
/// it walk the step once per 4 KiB chunk up to the cap it could prove, so a 512 KiB cap
/// exceeded its budget. Loaded from map memory they are unknown scalars, and the step's
/// states converge after one walk whatever the cap.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CopyState {
    pub key: ConnKey,
    pub tgid: u32,
    pub tid: u32,
    pub fd: u32,
    pub dir: u8,
    pub flags: u8,
    pub _pad: [u8; 2],
    pub ret: u64,
    /// Bytes to copy: `min(ret, capture cap)`.
    pub cap: u64,
    pub copied: u64,
    /// The current contiguous user segment.
    pub seg_ptr: u64,
    pub seg_len: u64,
    /// For vectored calls: the user iovec array, its length and the next entry.
    pub iov: u64,
    pub iov_count: u64,
    pub iov_index: u64,
}

#[map]
pub static SCRATCH: PerCpuArray<Staging> = PerCpuArray::with_max_entries(1, 0);

/// A TLS library call in progress on a thread (`pid_tgid`), from entry to return.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct TlsArgs {
    /// The library's connection object (`SSL *`, `gnutls_session_t`).
    pub session: u64,
    pub buf: u64,
    /// `_ex` calls: where the library stores the byte count.
    pub count_ptr: u64,
    /// When the call started, in jiffies (`bpf_jiffies64`), for `CLAIM_WINDOW_JIFFIES`.
    pub start: u64,
    /// Socket the library did I/O on during this call ([`api_guard_common::NO_FD`] if none).
    pub fd: u32,
    pub dir: u8,
    /// One of `tls::CALL_*`.
    pub call: u8,
    pub _pad: [u8; 2],
}

/// The TLS call stash, per thread slot as [`THREAD_CALLS`] (`capture::stash`): looked up at
/// the call's entry and return and at each data syscall of the thread on a socket not yet
/// known to be plaintext.
#[map]
pub static TLS_THREAD_CALLS: Array<ThreadSlot<TlsArgs>> =
    Array::with_max_entries(THREAD_CALL_SLOTS, 0);

/// A live TLS call whose [`TLS_THREAD_CALLS`] slot was held by another thread's call, by
/// thread (`pid_tgid`).
#[map]
pub static TLS_ARGS: LruHashMap<u64, TlsArgs> = LruHashMap::with_max_entries(16_384, 0);

/// A TLS session of a process.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SessionKey {
    pub tgid: u32,
    pub _pad: u32,
    pub session: u64,
}

/// The socket a TLS session was last seen on; valid while the fd's `conn_id` matches.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SessionSocket {
    pub conn_id: u64,
    pub fd: u32,
    pub _pad: u32,
}

/// LRU: sessions are freed without us seeing it; a stale entry fails the `conn_id` check.
#[map]
pub static TLS_SESSIONS: LruHashMap<SessionKey, SessionSocket> =
    LruHashMap::with_max_entries(MAX_CONNS, 0);

/// Slots of [`TLS_SESSION_HINTS`], a power of two.
pub const SESSION_HINT_SLOTS: u32 = 65_536;

/// A copy of one [`TLS_SESSIONS`] entry in a direct-mapped array slot (`tls::calls`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SessionHint {
    pub session: u64,
    pub conn_id: u64,
    pub tgid: u32,
    pub fd: u32,
}

/// The session → socket mappings of [`TLS_SESSIONS`] again, in an array slot chosen by the
/// session and process (`tls::calls::hint_slot`): an array lookup the verifier inlines,
/// where the hash costs a hash of its 16-byte key, a bucket walk and the LRU's reference
/// mark, at each return of a TLS call that moved data. Only a hint: its fields are written
/// one by one, with no lock, by any CPU, so a reader accepts one only if its process is the
/// caller's and its `(fd, conn_id)` is a live connection of that process (connection ids are
/// unique on the host, so no mix of two writes passes unless both were this same session's
/// mappings in this process); anything else looks in the hash, which stays the reference.
#[map]
pub static TLS_SESSION_HINTS: Array<SessionHint> = Array::with_max_entries(SESSION_HINT_SLOTS, 0);

/// Slots of [`GO_CONN_HINTS`], a power of two.
pub const GO_CONN_HINT_SLOTS: u32 = 16_384;

/// The socket a Go `*tls.Conn` was last found on (`tls::go`), with what it was found
/// through: the `net.Conn` interface it held (`itab`, `data`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GoConnHint {
    /// The `*tls.Conn`.
    pub conn: u64,
    /// Its `net.Conn` interface: the itab (of `*net.TCPConn`) and the `*net.TCPConn`.
    pub itab: u64,
    pub data: u64,
    pub conn_id: u64,
    pub tgid: u32,
    pub fd: u32,
    /// A mix of the other fields (`tls::go::seal`): the fields are written one by one, with
    /// no lock, by any CPU, and a reader accepts only a slot whose seal matches them.
    pub seal: u64,
}

/// `*tls.Conn` → socket mappings of Go processes, in an array slot chosen by the `tls.Conn`
/// and the process (`tls::go::hint_slot`): what each Go call resolves with five user-memory
/// reads (the interface, the itab's type hash, the `netFD`, its `Sysfd`), answered by one
/// (the interface, compared with the one the mapping was found through) and an array
/// lookup the verifier inlines. Only a hint: a reader accepts one only if it names the
/// caller's process, the same `tls.Conn` holding the same interface, its seal matches, and
/// its `(fd, conn_id)` is a live connection of that process; anything else reads the chain.
#[map]
pub static GO_CONN_HINTS: Array<GoConnHint> = Array::with_max_entries(GO_CONN_HINT_SLOTS, 0);

/// A goroutine of a process. `g` is the goroutine pointer (R14 under Go's register ABI on
/// x86-64): unlike the thread id it stays the same when the goroutine migrates between threads
/// while blocked in a read.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GoroutineKey {
    pub tgid: u32,
    pub _pad: u32,
    pub g: u64,
}

/// A Go `(*tls.Conn).Read` in progress: its receiver and buffer, from entry to return.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GoRead {
    pub conn: u64,
    pub buf: u64,
    pub len: u64,
}

/// LRU: a goroutine that panics out of `Read` never returns through a probed `ret`. Sized like
/// the connection table, since each tracked connection has at most one reader blocked in it.
#[map]
pub static GO_READS: LruHashMap<GoroutineKey, GoRead> = LruHashMap::with_max_entries(MAX_CONNS, 0);

/// Per-CPU staging of a TLS call's data arguments for `capture::data::deliver`. Passing them
/// through map memory (whose contents the verifier does not track) keeps the copy loop as
/// general as on the syscall path; built on the stack, the known constants made the
/// verifier explore the `bpf_loop` callback past its 1M-instruction limit.
#[map]
pub static TLS_CALL: PerCpuArray<DataArgs> = PerCpuArray::with_max_entries(1, 0);

// The XDP guard. Sizes are defaults; the loader sets the configured ones. These are pinned
// under the configured directory when pinning is on (`names::XDP_PINNED_MAPS`).

#[map]
pub static XDP_BLOCK_V4: HashMap<[u8; 4], BlockEntry> = HashMap::with_max_entries(131_072, 0);

#[map]
pub static XDP_BLOCK_V6: HashMap<[u8; 16], BlockEntry> = HashMap::with_max_entries(131_072, 0);

#[map]
pub static XDP_CIDR_V4: LpmTrie<[u8; 4], BlockEntry> = LpmTrie::with_max_entries(16_384, 0);

#[map]
pub static XDP_CIDR_V6: LpmTrie<[u8; 16], BlockEntry> = LpmTrie::with_max_entries(16_384, 0);

#[map]
pub static XDP_ALLOW_V4: LpmTrie<[u8; 4], u8> = LpmTrie::with_max_entries(4096, 0);

#[map]
pub static XDP_ALLOW_V6: LpmTrie<[u8; 16], u8> = LpmTrie::with_max_entries(4096, 0);

#[map]
pub static XDP_IFACES: HashMap<u32, IfaceConfig> = HashMap::with_max_entries(256, 0);

/// LRU: a flood of spoofed sources recycles buckets instead of filling the table.
#[map]
pub static XDP_RATE: LruHashMap<RateKey, TokenBucket> = LruHashMap::with_max_entries(65_536, 0);

#[map]
pub static XDP_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(XDP_STAT_COUNT, 0);

/// Compile-time proof that the ELF names of the maps, globals and programs the loader opens
/// by name are the `api_guard_common::names` consts it uses.
mod name_checks {
    use api_guard_common::names::*;

    const fn same(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// `name => item`: the const `name` must equal the identifier of `item` (which must exist,
    /// so a renamed static or program fails here too).
    macro_rules! check {
        ($($name:ident => $($item:ident)::+),* $(,)?) => {
            $(
                const _: () = {
                    let _ = &$($item)::+;
                    assert!(
                        same($name, check!(@last $($item)::+)),
                        concat!("names::", stringify!($name), " does not name ", stringify!($($item)::+)),
                    );
                };
            )*
        };
        (@last $head:ident $(:: $rest:ident)+) => { check!(@last $($rest)::+) };
        (@last $last:ident) => { stringify!($last) };
    }

    check! {
        MAP_EVENTS => super::EVENTS,
        MAP_CONNS => super::CONNS,
        MAP_STATS => super::STATS,
        MAP_TGID_GATE => super::TGID_GATE,
        MAP_SOCK_WANTED => super::SOCK_WANTED,
        MAP_FILTER_PIDS => super::FILTER_PIDS,
        MAP_FILTER_COMMS => super::FILTER_COMMS,
        MAP_FILTER_CGROUPS => super::FILTER_CGROUPS,
        GLOBAL_SELF_TGID => super::SELF_TGID,
        GLOBAL_CAPTURE_CAP => super::CAPTURE_CAP,
        GLOBAL_REQUEST_CAPTURE_CAP => super::REQUEST_CAPTURE_CAP,
        GLOBAL_FILTER_MODE => super::FILTER_MODE,
        GLOBAL_WAKEUP_BYTES => super::WAKEUP_BYTES,
        GLOBAL_XDP_RATE_ON => super::XDP_RATE_ON,
        GLOBAL_XDP_ALLOW_ON => super::XDP_ALLOW_ON,
        MAP_XDP_BLOCK_V4 => super::XDP_BLOCK_V4,
        MAP_XDP_BLOCK_V6 => super::XDP_BLOCK_V6,
        MAP_XDP_CIDR_V4 => super::XDP_CIDR_V4,
        MAP_XDP_CIDR_V6 => super::XDP_CIDR_V6,
        MAP_XDP_ALLOW_V4 => super::XDP_ALLOW_V4,
        MAP_XDP_ALLOW_V6 => super::XDP_ALLOW_V6,
        MAP_XDP_IFACES => super::XDP_IFACES,
        MAP_XDP_RATE => super::XDP_RATE,
        MAP_XDP_STATS => super::XDP_STATS,
        PROG_TLS_READ => crate::tls::calls::tls_read,
        PROG_TLS_READ_EX => crate::tls::calls::tls_read_ex,
        PROG_TLS_WRITE => crate::tls::calls::tls_write,
        PROG_TLS_WRITE_EX => crate::tls::calls::tls_write_ex,
        PROG_TLS_HANDSHAKE => crate::tls::calls::tls_handshake,
        PROG_TLS_RETURN => crate::tls::calls::tls_return,
        PROG_XDP_GUARD => crate::xdp::xdp_guard,
    }
}
