//! Payload syscalls on tracked fds: arguments are stashed per thread at entry, `ret` bytes are
//! copied at exit (the buffer is only filled by then for reads). `sock/sock_{send,recv}_length`
//! fire inside the call and tell us the socket and its protocol.

use api_guard_common::{ConnInfo, ConnKey};
use api_guard_common::{
    Stat, CHUNK_SIZE, DATA_NO_PAYLOAD, DATA_TRUNCATED, DIR_EGRESS, DIR_INGRESS, FRAMING_MESSAGES,
    FRAMING_OTHER, FRAMING_UNKNOWN, H2_PREFACE_HEAD, HELLO_CAPTURE_BYTES, MAX_CAPTURE_CAP,
    MAX_CHUNKS_PER_CALL, MAX_IOVECS, PAIR_HEAD_MAX, RESPONSE_BUDGET_FREE_CALL, ROLE_CLIENT,
    ROLE_SERVER,
};
use aya_ebpf::{
    helpers::{
        bpf_ktime_get_ns, bpf_probe_read_user,
        generated::{self, bpf_loop},
    },
    macros::tracepoint,
    programs::TracePointContext,
};

use super::{
    arg, bump, conn_key, current,
    emit::{self, Chunk, Origin},
    field, gate_open, release_sock_wanted, sockets_wanted, stash, RET,
};
use crate::{
    maps::{
        global_u32, CopyState, DataArgs, Staging, BUF_CLAIMED, BUF_DONE, BUF_IOVEC, BUF_MSGHDR,
        BUF_NONE, BUF_PLAIN, CAPTURE_CAP, CONNS, REQUEST_CAPTURE_CAP, TLS_ARGS, TLS_THREAD_CALLS,
    },
    tls,
};

const IPPROTO_TCP: u16 = 6;
const MSG_PEEK: u64 = 2;

/// The payload syscalls' `sys_enter_*` fields (read, write, recvfrom, sendto, readv, writev,
/// recvmsg, sendmsg, sendfile64): the socket fd (`fd`, `out_fd`) ...
const ARG_FD: usize = arg(0);
/// ... the buffer (`buf`, `ubuf`, `buff`), iovec array (`vec`) or `struct user_msghdr * msg`
/// (sendfile64: `in_fd`, unused) ...
const ARG_BUF: usize = arg(1);
/// ... and the length (`count`, `size`, `len`) or iovec count (`vlen`) (sendfile64:
/// `loff_t * offset`, unused).
const ARG_LEN: usize = arg(2);
/// `syscalls/sys_enter_recvfrom`: field `unsigned int flags`.
const RECVFROM_FLAGS: usize = arg(3);
/// `syscalls/sys_enter_recvmsg`: field `unsigned int flags`.
const RECVMSG_FLAGS: usize = arg(2);
/// `flags_at` of syscalls whose flags are not checked.
const NO_FLAGS: usize = usize::MAX;

/// `sock/sock_{send,recv}_length`: field `void * sk`.
const SOCK_LENGTH_SK: usize = 8;
/// `sock/sock_{send,recv}_length`: field `__u16 protocol`.
const SOCK_LENGTH_PROTOCOL: usize = 18;

/// `struct user_msghdr`: `struct iovec *msg_iov` and `__kernel_size_t msg_iovlen`.
const MSGHDR_IOV: u64 = 16;
const MSGHDR_IOVLEN: u64 = 24;
/// `struct iovec { void *iov_base; size_t iov_len; }`
const IOVEC_SIZE: u64 = 16;

/// Stashes the call if `fd` (argument 0) is a tracked connection of this process and its
/// payload is plaintext. Ciphertext of TLS connections is not copied: a TLS call running on
/// this thread claims the socket instead (see `tls.rs`). `flags_at` is the offset of the
/// call's flags field, or [`NO_FLAGS`]. Inlined into each program so that `flags_at` is a
/// constant: the verifier only allows context loads at constant offsets.
#[inline(always)]
fn enter(ctx: &TracePointContext, dir: u8, buf_kind: u8, flags_at: usize) {
    let (pid_tgid, tgid, tid) = current();
    // Cheapest rejection first: most syscalls of the host are not of captured processes.
    if !gate_open(tgid) {
        return;
    }
    let Ok(fd) = field::<u64>(ctx, ARG_FD) else {
        return;
    };
    // Peeked bytes stay queued and are read again: copying them would duplicate them.
    if flags_at != NO_FLAGS && field::<u64>(ctx, flags_at).unwrap_or(0) & MSG_PEEK != 0 {
        return;
    }
    // SAFETY: only the `tls` byte is read, before anything in this program could update or
    // remove the entry; a concurrent update from another CPU can only make it stale.
    let Some(conn) = (unsafe { CONNS.get(conn_key(tgid, fd as u32)) }) else {
        return;
    };
    let Some(mut args) = call_args(conn, pid_tgid, tid, fd as u32, dir, buf_kind) else {
        return;
    };
    args.ptr = field::<u64>(ctx, ARG_BUF).unwrap_or(0);
    args.count = field::<u64>(ctx, ARG_LEN).unwrap_or(0);
    stash::put_data(pid_tgid, tid, args);
}

/// The stash of a data call on `fd` of `conn` (its buffer and length left 0), or `None` if
/// nothing of it is wanted: of a TLS connection only the first bytes a server sends are
/// copied (its ServerHello), even while a library call claims the socket. A call that a TLS
/// library call running on this thread claims is `BUF_CLAIMED` (not copied). Both capture
/// modes' programs build their stash here.
#[inline(always)]
fn call_args(
    conn: &ConnInfo,
    pid_tgid: u64,
    tid: u32,
    fd: u32,
    dir: u8,
    buf_kind: u8,
) -> Option<DataArgs> {
    let hello = wants_hello(conn, dir);
    if conn.tls != 0 && !hello {
        return None;
    }
    // A connection whose requests began with an HTTP/1 method is plaintext (a TLS one's first
    // request bytes are a handshake record, 0x16, unless its TLS call claimed them uncopied),
    // so no TLS call can own this I/O: the thread's TLS call stash is not looked up.
    let claimed = conn.framing != FRAMING_MESSAGES && tls::claim_socket(pid_tgid, tid, fd);
    let (buf_kind, hello) = match (claimed || conn.tls != 0, hello) {
        (true, true) => (buf_kind, 1),
        (true, false) => (BUF_CLAIMED, 0),
        (false, _) => (buf_kind, 0),
    };
    // Until the connection is announced with its socket, `sock_*_length` notes the call's
    // `struct sock *` and protocol; after that (every call but a connection's first) they
    // leave the stash alone.
    let wants_socket = conn.announced == 0 || conn.sk == 0;
    Some(DataArgs {
        ptr: 0,
        count: 0,
        sk: 0,
        done_ns: 0,
        fd,
        protocol: 0,
        dir,
        buf_kind,
        tls_record: 0,
        hello,
        wants_socket: wants_socket as u8,
        _pad: [0; 5],
    })
}

/// Whether `dir` is the server-to-client direction of `conn` and its handshake budget is not
/// spent.
#[inline(always)]
fn wants_hello(conn: &ConnInfo, dir: u8) -> bool {
    let from_server = (conn.role == ROLE_SERVER && dir == DIR_EGRESS)
        || (conn.role == ROLE_CLIENT && dir == DIR_INGRESS);
    from_server && conn.hello_copied < HELLO_CAPTURE_BYTES
}

/// Whether the first bytes at `ptr` look like a TLS record header (content type 20..=23,
/// major version 3), as the ciphertext a memory-BIO TLS user reads before decrypting it.
fn starts_like_tls_record(ptr: u64) -> bool {
    // SAFETY: `bpf_probe_read_user` copies through the kernel's fault-handling path, so any
    // pointer is fine (a bad one is an error); `[u8; 2]` is valid for any bytes.
    match unsafe { bpf_probe_read_user(ptr as *const [u8; 2]) } {
        Ok(b) => (20..=23).contains(&b[0]) && b[1] == 3,
        Err(_) => false,
    }
}

/// Copies what the stashed call moved, once it returned `ret > 0`. The stash stays, marked
/// done, as the thread's last data syscall (`stash::finish_data`). `KIND` is how the program's
/// syscall passes its buffer (`BUF_*`): each program keeps only the fast paths of its own
/// kind, which the verifier then walks once per program rather than all of them in each.
#[inline(always)]
fn exit<const KIND: u8>(ctx: &TracePointContext) {
    let (pid_tgid, tgid, tid) = current();
    // `enter` stashes nothing for a closed gate; a stash left from before the gate closed is
    // of a connection that is gone.
    if !gate_open(tgid) {
        return;
    }
    let mut args = DataArgs::default();
    if !stash::take_data(pid_tgid, tid, &mut args) {
        return;
    }
    let tls_read_ns = copy_call::<KIND>(ctx, tgid, tid, &args);
    stash::finish_data(pid_tgid, tid, tls_read_ns);
}

/// The body of [`exit`] for the call `args`: returns when the call returned if it read the
/// first bytes of a connection and they start like a TLS record (for `tls.rs`), else 0. (A
/// plain integer: an `Option`'s undefined payload can reach the stack as a register the
/// verifier refuses to read.)
#[inline(always)]
fn copy_call<const KIND: u8>(ctx: &TracePointContext, tgid: u32, tid: u32, args: &DataArgs) -> u64 {
    if args.buf_kind == BUF_CLAIMED {
        return 0;
    }
    let ret = field::<i64>(ctx, RET).unwrap_or(-1);
    if ret <= 0 {
        return 0;
    }
    let key = conn_key(tgid, args.fd);
    let Some(conn) = CONNS.get_ptr_mut(key) else {
        return 0;
    };
    // SAFETY: a valid, aligned value pointer from a successful lookup; map values are freed
    // only after an RCU grace period, which cannot end while this program runs. Another
    // thread of the process using the same fd at once can only garble counters and flags
    // (plain integers), never memory.
    let conn = unsafe { &mut *conn };
    copy_to::<KIND>(conn, key, tgid, tid, args, ret as u64)
}

/// Copies the `ret > 0` bytes the call `args` moved on `conn` (`key`); returns as
/// [`copy_call`] does. Shared by both capture modes.
#[inline(always)]
fn copy_to<const KIND: u8>(
    conn: &mut ConnInfo,
    key: ConnKey,
    tgid: u32,
    tid: u32,
    args: &DataArgs,
    ret: u64,
) -> u64 {
    // Only a connection's first read can be a TLS ClientHello/ServerHello that a memory-BIO
    // library decrypts next (see `tls.rs`): later reads skip the extra user-memory read.
    let mut tls_read_ns = 0;
    if args.dir == DIR_INGRESS && conn.ingress_seen == 0 {
        conn.ingress_seen = 1;
        if args.buf_kind == BUF_PLAIN && ret >= 2 && starts_like_tls_record(args.ptr) {
            // Only a TLS record's read is ever asked how recent it is (`tls.rs`): the clock
            // is read for those alone.
            // SAFETY: helper without arguments or preconditions.
            tls_read_ns = unsafe { bpf_ktime_get_ns() };
        }
    }
    // The socket turned out not to be TCP (e.g. a UDP "connect" or an AF_UNIX accept without
    // an address): stop tracking it.
    if args.protocol != 0 && args.protocol != IPPROTO_TCP {
        release_sock_wanted(conn, tgid);
        let _ = CONNS.remove(key);
        bump(Stat::NotTcp, 1);
        return tls_read_ns;
    }
    let origin = Origin {
        tgid,
        tid,
        fd: args.fd,
    };
    let mut ret = ret;
    if args.hello != 0 {
        // Handshake bytes of a TLS connection: only what is left of the budget, reported as
        // all the call moved (the rest of the direction is never copied, so no gap follows).
        let left = (HELLO_CAPTURE_BYTES - conn.hello_copied.min(HELLO_CAPTURE_BYTES)) as u64;
        if ret > left {
            ret = left;
        }
        conn.hello_copied += ret as u16;
        if ret == 0 {
            return tls_read_ns;
        }
    }
    deliver::<KIND>(conn, key, origin, args, ret, 0, 0);
    tls_read_ns
}

/// Announces the connection if needed, then emits `ret` bytes of the call described by
/// `args` (syscall or TLS library call), with `flags` on every record; `min_cap` raises the
/// configured per-call copy cap for this call (0: as configured). `KIND` is the `BUF_*` kind
/// of the calls the program sees (see `exit`). Inlined: BPF calls take at most five register
/// arguments.
#[inline(always)]
pub(crate) fn deliver<const KIND: u8>(
    conn: &mut ConnInfo,
    key: ConnKey,
    origin: Origin,
    args: &DataArgs,
    ret: u64,
    flags: u8,
    min_cap: u64,
) {
    if !emit::announce(conn, origin, args.sk) {
        // Without its ConnOpen record userspace could not place the bytes: count them lost.
        let slot = (args.dir as usize).wrapping_sub(1) & 1;
        conn.pending_gap[slot] += ret;
        bump(Stat::LostBytes, ret);
        return;
    }
    // Requests (what a local server reads, what a local client writes) are what detection
    // judges, so padding must not push their content past the cap: they have their own,
    // larger one; responses keep the small one. `min_cap` can raise either (Go's calls).
    let request = (conn.role == ROLE_SERVER && args.dir == DIR_INGRESS)
        || (conn.role == ROLE_CLIENT && args.dir == DIR_EGRESS);
    let mut cap = if request {
        // A request starts the next response message: its budget is whole again.
        conn.response_copied = 0;
        global_u32(&REQUEST_CAPTURE_CAP) as u64
    } else {
        response_cap(conn, ret, min_cap)
    };
    if cap < min_cap {
        cap = min_cap;
    }
    let (copied, head) = copy_payload::<KIND>(conn, key, origin, args, ret, flags, cap);
    if request {
        if conn.framing == FRAMING_UNKNOWN {
            conn.framing = sniff_framing(copied, head);
        }
    } else {
        let total = conn.response_copied as u64 + copied;
        conn.response_copied = if total > u32::MAX as u64 {
            u32::MAX
        } else {
            total as u32
        };
    }
}

/// Copy cap of a response call of `ret` bytes: the configured cap is a budget per response
/// message (what the response direction moves between two request-direction calls), so an
/// answer written in many large calls costs one cap, not one per call; what is not copied is
/// reported as the call's gap, as for any call past the cap. The budget applies only to what
/// a local server writes on a connection whose requests began with an HTTP/1 method
/// ([`FRAMING_MESSAGES`]): responses a local client reads (LLM token streams whose usage
/// totals come last, read in calls as large as the client's buffer) keep the cap per call,
/// and so do calls of at most [`RESPONSE_BUDGET_FREE_CALL`] bytes (streamed events) and calls
/// with a raised cap (Go's).
#[inline(always)]
fn response_cap(conn: &ConnInfo, ret: u64, min_cap: u64) -> u64 {
    let cap = global_u32(&CAPTURE_CAP) as u64;
    if min_cap != 0
        || conn.role != ROLE_SERVER
        || conn.framing != FRAMING_MESSAGES
        || ret <= RESPONSE_BUDGET_FREE_CALL as u64
    {
        return cap;
    }
    cap.saturating_sub(conn.response_copied as u64)
}

/// The framing of a connection from its first request call, which copied `copied` bytes
/// starting with `head` (`None` if they went unseen: the ring was full). Only a beginning
/// that is provably an HTTP/1 request (an upper-case method token) makes the budget apply; the HTTP/2 preface (`PRI `), anything else and a first call larger than
/// a chunk (its first bytes are no longer staged) keep the cap per call.
#[inline(always)]
fn sniff_framing(copied: u64, head: Option<[u8; 4]>) -> u8 {
    let Some(head) = head else {
        // Not seen: decide on the next request call.
        return FRAMING_UNKNOWN;
    };
    if copied < 4 {
        // Too little to tell: decide on the next request call.
        return FRAMING_UNKNOWN;
    }
    if copied > CHUNK_SIZE as u64 {
        return FRAMING_OTHER;
    }
    if u32::from_le_bytes(head) != H2_PREFACE_HEAD
        && head.iter().all(|&b| b.is_ascii_uppercase() || b == b' ')
    {
        FRAMING_MESSAGES
    } else {
        FRAMING_OTHER
    }
}

/// Emits the first `min(ret, cap)` bytes in chunks, walking iovecs for vectored calls, then a
/// header-only record for whatever was not copied. The per-chunk step runs under `bpf_loop`,
/// its progress in this CPU's staging slot ([`CopyState`] says why), so the verifier checks
/// it once whatever the cap. A call with one buffer that fits one chunk (most requests and
/// responses, every TLS call of up to 4 KiB) is copied straight into a record reserved in the
/// ring (`emit::data_direct`), and a few iovecs that fit one chunk are staged without the
/// loop: the loop's helper call and callbacks cost more than the copy of a small call.
/// Returns how many bytes were copied, and the first four of them (for [`sniff_framing`];
/// `None` when the ring refused a record filled in place, which saw them only there).
#[inline(always)]
fn copy_payload<const KIND: u8>(
    conn: &mut ConnInfo,
    key: ConnKey,
    origin: Origin,
    args: &DataArgs,
    ret: u64,
    flags: u8,
    cap: u64,
) -> (u64, Option<[u8; 4]>) {
    let mut cap = cap;
    if cap > MAX_CAPTURE_CAP as u64 {
        cap = MAX_CAPTURE_CAP as u64;
    }
    if cap > ret {
        cap = ret;
    }
    let mut copied = 0;
    let mut head = Some([0; 4]);
    // A call of another kind than the program's (only after a missed entry or exit) takes
    // the general path below.
    let mut direct = None;
    if KIND == BUF_PLAIN && cap > 0 && cap <= CHUNK_SIZE as u64 && args.buf_kind == BUF_PLAIN {
        direct = Some(emit::data_direct(
            conn, origin, args.ptr, cap, ret, args.dir, flags,
        ));
    } else if KIND == BUF_IOVEC
        && cap > 0
        && cap <= CHUNK_SIZE as u64
        && args.buf_kind == BUF_IOVEC
        && args.count > 0
        && args.count <= 2
    {
        direct = direct_iovecs(conn, origin, args, ret, flags, cap);
    }
    if let Some(direct) = direct {
        match direct {
            emit::Direct::Sent(first) => {
                copied = cap;
                head = Some(first);
            }
            // Counted lost, as a record the full ring refused after staging.
            emit::Direct::RingFull => {
                copied = cap;
                head = None;
            }
            emit::Direct::ReadFailed => bump(Stat::ReadFail, 1),
        }
    } else if cap > 0 && args.buf_kind != BUF_NONE {
        if let Some(staging) = emit::staging() {
            staging.fill = 0;
            staging.copy = start(key, origin, args, ret, flags, cap);
            let one_chunk = cap <= CHUNK_SIZE as u64;
            if KIND != BUF_PLAIN
                && one_chunk
                && staging.copy.iov_count > 0
                && staging.copy.iov_count <= FEW_IOVECS as u64
            {
                stage_few_iovecs(staging);
            } else {
                // Each step fills a chunk, ends a segment or loads an iovec: with at most
                // `MAX_IOVECS` segments that bounds the steps a capped call can need.
                // SAFETY: `copy_step` matches the callback signature `bpf_loop` expects; it
                // takes no context (its state is in the staging slot).
                unsafe {
                    bpf_loop(
                        (MAX_CHUNKS_PER_CALL + 2 * MAX_IOVECS) as u32,
                        copy_step as *mut core::ffi::c_void,
                        core::ptr::null_mut(),
                        0,
                    );
                }
            }
            // Read before the flush, which does not clear the data.
            head = Some([
                staging.data[0],
                staging.data[1],
                staging.data[2],
                staging.data[3],
            ]);
            flush_to(conn);
            // Re-fetched: `flush_to` used the slot through its own reference.
            copied = emit::staging().map_or(0, |s| s.copy.copied);
        }
    }
    // `copied <= cap <= ret` by construction; saturating because the verifier cannot know.
    let missing = ret.saturating_sub(copied);
    if missing > 0 {
        bump(Stat::TruncatedCalls, 1);
        bump(Stat::TruncatedBytes, missing);
        let flags = flags
            | if args.buf_kind == BUF_NONE {
                DATA_NO_PAYLOAD
            } else {
                DATA_TRUNCATED
            };
        let trailer = Chunk {
            len: 0,
            call_len: ret,
            gap_after: missing,
            dir: args.dir,
            flags,
        };
        emit::data(conn, origin, &trailer);
    }
    (copied, head)
}

/// Vectored calls of at most this many segments whose copy fits one chunk are staged without
/// `bpf_loop` (nginx writes a response head and body in two).
const FEW_IOVECS: usize = 4;

/// A `readv`/`writev` of one or two iovecs whose copy fits one chunk (nginx's head + body),
/// copied straight into one record reserved in the ring (`emit::data_direct_pair`), as a
/// single buffer is, rather than staged and copied again by `bpf_ringbuf_output`. `None`
/// when the call is not such a call (a first segment longer than `PAIR_HEAD_MAX`) or
/// its iovecs cannot be read: the staging path then copies it, as it would have.
#[inline(always)]
fn direct_iovecs(
    conn: &mut ConnInfo,
    origin: Origin,
    args: &DataArgs,
    ret: u64,
    flags: u8,
    cap: u64,
) -> Option<emit::Direct> {
    let mut entries = [[0u64; 2]; 2];
    // SAFETY: `args.count` is 1 or 2 (checked by the caller), so the copy stays inside
    // `entries`; `bpf_probe_read_user` copies through the kernel's fault-handling path, so any
    // source pointer is fine (a bad one is an error).
    let rc = unsafe {
        generated::bpf_probe_read_user(
            entries.as_mut_ptr().cast(),
            if args.count == 2 { 32 } else { 16 },
            args.ptr as *const core::ffi::c_void,
        )
    };
    if rc != 0 {
        return None;
    }
    // The bytes of each segment to copy, in order, up to the cap (the iovecs' lengths add
    // up to at least `ret`, so the two take exactly `cap`).
    let first = if entries[0][1] > cap {
        cap
    } else {
        entries[0][1]
    };
    let rest = cap - first;
    let second = if args.count < 2 {
        0
    } else if entries[1][1] > rest {
        rest
    } else {
        entries[1][1]
    };
    // Fewer bytes than the call moved: the array changed since (another thread); the staging
    // path copies what it finds and reports the rest as a gap.
    if first > PAIR_HEAD_MAX as u64 || first + second != cap {
        return None;
    }
    let segments = [(entries[0][0], first), (entries[1][0], second)];
    match emit::data_direct_pair(conn, origin, segments, ret, args.dir, flags) {
        // Unreadable user memory: the staging path copies what it can, as before.
        emit::Direct::ReadFailed => None,
        done => Some(done),
    }
}

/// Stages a vectored call of at most [`FEW_IOVECS`] segments whose copy fits one chunk, as
/// `copy_step` would, segment after segment, in a loop the verifier unrolls. The iovec array
/// is read in one helper call: each `bpf_probe_read_user` costs tens of nanoseconds beyond
/// its bytes (fault-handling setup, user-access checks), and the bisected `sys_exit_writev`
/// spent ~430 ns in its four (two iovecs, two segments).
#[inline(always)]
fn stage_few_iovecs(staging: &mut Staging) {
    let count = staging.copy.iov_count;
    if count == 0 || count > FEW_IOVECS as u64 {
        return;
    }
    let mut entries = [[0u64; 2]; FEW_IOVECS];
    // SAFETY: `count * IOVEC_SIZE` is at most `size_of_val(&entries)` (checked above), so the
    // copy stays inside `entries`; `bpf_probe_read_user` copies through the kernel's
    // fault-handling path, so any source pointer is fine (a bad one is an error).
    let rc = unsafe {
        generated::bpf_probe_read_user(
            entries.as_mut_ptr().cast(),
            (count * IOVEC_SIZE) as u32,
            staging.copy.iov as *const core::ffi::c_void,
        )
    };
    if rc != 0 {
        return;
    }
    for (i, entry) in entries.iter().enumerate() {
        let st = &staging.copy;
        if i as u64 >= count || st.copied >= st.cap {
            return;
        }
        let left = st.cap - st.copied;
        let want = if entry[1] > left { left } else { entry[1] };
        let Some((len, _)) = emit::stage(staging, entry[0], want) else {
            bump(Stat::ReadFail, 1);
            return;
        };
        staging.copy.copied += len;
    }
}

/// The initial copy state of a call: its first segment, or its iovec array.
#[inline(always)]
fn start(
    key: ConnKey,
    origin: Origin,
    args: &DataArgs,
    ret: u64,
    flags: u8,
    cap: u64,
) -> CopyState {
    let mut st = CopyState {
        key,
        tgid: origin.tgid,
        tid: origin.tid,
        fd: origin.fd,
        dir: args.dir,
        flags,
        _pad: [0; 2],
        ret,
        cap,
        copied: 0,
        seg_ptr: 0,
        seg_len: 0,
        iov: 0,
        iov_count: 0,
        iov_index: 0,
    };
    match args.buf_kind {
        BUF_PLAIN => {
            st.seg_ptr = args.ptr;
            st.seg_len = cap;
        }
        BUF_IOVEC => {
            st.iov = args.ptr;
            st.iov_count = args.count;
        }
        BUF_MSGHDR => {
            // SAFETY: `bpf_probe_read_user` copies through the kernel's fault-handling path, so
            // any pointer is fine (a bad one is an error); `u64` is valid for any bytes.
            unsafe {
                st.iov = bpf_probe_read_user((args.ptr + MSGHDR_IOV) as *const u64).unwrap_or(0);
                st.iov_count =
                    bpf_probe_read_user((args.ptr + MSGHDR_IOVLEN) as *const u64).unwrap_or(0);
            }
        }
        _ => {} // BUF_NONE: nothing to copy
    }
    if st.iov_count > MAX_IOVECS as u64 {
        st.iov_count = MAX_IOVECS as u64;
    }
    st
}

/// One `bpf_loop` step: load the next iovec or stage the next chunk (emitting it when full).
/// Returns 1 to stop.
extern "C" fn copy_step(_index: u64, _ctx: *mut core::ffi::c_void) -> i64 {
    let Some(staging) = emit::staging() else {
        return 1;
    };
    let st = &mut staging.copy;
    if st.copied >= st.cap {
        return 1;
    }
    if st.seg_len == 0 {
        if st.iov_index >= st.iov_count {
            return 1;
        }
        // SAFETY: `bpf_probe_read_user` copies through the kernel's fault-handling path, so any
        // pointer is fine (a bad one is an error); `[u64; 2]` is valid for any bytes.
        let Ok(entry) = (unsafe {
            bpf_probe_read_user((st.iov + st.iov_index * IOVEC_SIZE) as *const [u64; 2])
        }) else {
            return 1;
        };
        st.iov_index += 1;
        st.seg_ptr = entry[0];
        st.seg_len = if entry[1] > st.cap - st.copied {
            st.cap - st.copied
        } else {
            entry[1]
        };
        return 0;
    }
    let (seg_ptr, seg_len) = (st.seg_ptr, st.seg_len);
    // Gather into the staging area: the segments of one call share records.
    let Some((len, full)) = emit::stage(staging, seg_ptr, seg_len) else {
        // Rare (user memory not readable): the staged bytes still go out, and the rest of the
        // call is reported as a gap by the truncation record.
        bump(Stat::ReadFail, 1);
        return 1;
    };
    let st = &mut staging.copy;
    st.seg_ptr += len;
    st.seg_len -= len;
    st.copied += len;
    if full {
        flush();
    }
    0
}

/// Outputs the staged bytes of the call being copied, if any, as one data record, from a
/// `bpf_loop` step: it cannot be handed the caller's map value, so it looks the connection up.
fn flush() {
    let Some(staging) = emit::staging() else {
        return;
    };
    if staging.fill == 0 {
        return;
    }
    let Some(conn) = CONNS.get_ptr_mut(staging.copy.key) else {
        return;
    };
    // SAFETY: as in `exit`: a live, aligned map value for this program's run.
    flush_to(unsafe { &mut *conn });
}

/// Outputs the staged bytes of the call being copied, if any, as one data record of `conn`.
fn flush_to(conn: &mut ConnInfo) {
    let Some(staging) = emit::staging() else {
        return;
    };
    let len = core::mem::take(&mut staging.fill) as usize;
    let st = staging.copy;
    if len == 0 {
        return;
    }
    let chunk = Chunk {
        len,
        call_len: st.ret,
        gap_after: 0,
        dir: st.dir,
        flags: st.flags,
    };
    let origin = Origin {
        tgid: st.tgid,
        tid: st.tid,
        fd: st.fd,
    };
    emit::data(conn, origin, &chunk);
}

/// Records the socket behind the in-flight call of this thread, if its connection wants it.
fn note_socket(ctx: &TracePointContext) {
    let (pid_tgid, tgid, tid) = current();
    if !gate_open(tgid) {
        return;
    }
    let Some(args) = stash::live_data(pid_tgid, tid) else {
        return;
    };
    // SAFETY: this thread's own live stash (its slot or its spilled entry), written only by
    // this thread's programs, which do not nest; live for this program's run.
    let args = unsafe { &mut *args };
    if args.buf_kind != BUF_DONE && args.wants_socket != 0 && args.sk == 0 {
        args.sk = field::<u64>(ctx, SOCK_LENGTH_SK).unwrap_or(0);
        args.protocol = field::<u16>(ctx, SOCK_LENGTH_PROTOCOL).unwrap_or(0);
    }
}

/// tracepoint sock/sock_send_length: (void *sk, u16 family, u16 protocol, int ret, int flags)
#[tracepoint]
pub fn sock_send_length(ctx: TracePointContext) -> u32 {
    note_socket(&ctx);
    0
}

/// tracepoint sock/sock_recv_length: (void *sk, u16 family, u16 protocol, int ret, int flags)
#[tracepoint]
pub fn sock_recv_length(ctx: TracePointContext) -> u32 {
    note_socket(&ctx);
    0
}

macro_rules! data_syscall {
    ($enter:ident, $exit:ident, $dir:expr, $kind:expr, $doc:literal) => {
        data_syscall!($enter, $exit, $dir, $kind, NO_FLAGS, $doc);
    };
    ($enter:ident, $exit:ident, $dir:expr, $kind:expr, $flags:expr, $doc:literal) => {
        #[doc = $doc]
        #[tracepoint]
        pub fn $enter(ctx: TracePointContext) -> u32 {
            enter(&ctx, $dir, $kind, $flags);
            0
        }

        /// Matching sys_exit tracepoint: long ret
        #[tracepoint]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            exit::<$kind>(&ctx);
            0
        }
    };
}

data_syscall!(
    sys_enter_read,
    sys_exit_read,
    DIR_INGRESS,
    BUF_PLAIN,
    "tracepoint syscalls/sys_enter_read: (unsigned int fd, char *buf, size_t count)"
);
data_syscall!(
    sys_enter_write,
    sys_exit_write,
    DIR_EGRESS,
    BUF_PLAIN,
    "tracepoint syscalls/sys_enter_write: (unsigned int fd, const char *buf, size_t count)"
);
data_syscall!(sys_enter_recvfrom, sys_exit_recvfrom, DIR_INGRESS, BUF_PLAIN, RECVFROM_FLAGS,
    "tracepoint syscalls/sys_enter_recvfrom: (int fd, void *ubuf, size_t size, unsigned int flags, ...)");
data_syscall!(sys_enter_sendto, sys_exit_sendto, DIR_EGRESS, BUF_PLAIN,
    "tracepoint syscalls/sys_enter_sendto: (int fd, void *buff, size_t len, unsigned int flags, ...)");
data_syscall!(sys_enter_readv, sys_exit_readv, DIR_INGRESS, BUF_IOVEC,
    "tracepoint syscalls/sys_enter_readv: (unsigned long fd, const struct iovec *vec, unsigned long vlen)");
data_syscall!(sys_enter_writev, sys_exit_writev, DIR_EGRESS, BUF_IOVEC,
    "tracepoint syscalls/sys_enter_writev: (unsigned long fd, const struct iovec *vec, unsigned long vlen)");
data_syscall!(
    sys_enter_recvmsg,
    sys_exit_recvmsg,
    DIR_INGRESS,
    BUF_MSGHDR,
    RECVMSG_FLAGS,
    "tracepoint syscalls/sys_enter_recvmsg: (int fd, struct user_msghdr *msg, unsigned int flags)"
);
data_syscall!(
    sys_enter_sendmsg,
    sys_exit_sendmsg,
    DIR_EGRESS,
    BUF_MSGHDR,
    "tracepoint syscalls/sys_enter_sendmsg: (int fd, struct user_msghdr *msg, unsigned int flags)"
);
data_syscall!(sys_enter_sendfile64, sys_exit_sendfile64, DIR_EGRESS, BUF_NONE,
    "tracepoint syscalls/sys_enter_sendfile64: (int out_fd, int in_fd, loff_t *offset, size_t count)");

// Exit-only capture (Linux >= 5.15, x86-64): the data syscalls' exits alone, each reading the
// call's arguments from the task's saved user registers, with no entry program and no
// stash. The agent loads these first and falls back to the entry + exit pairs above when the
// verifier refuses them (`bpf_get_current_task_btf` and `bpf_task_pt_regs` are 5.15's);
// `docs/capture.md`, "Capture modes".

/// x86-64 `struct pt_regs` (arch/x86/include/asm/ptrace.h), the task's user registers saved
/// at syscall entry, which a syscall does not change before its exit but for `ax` (the
/// return value): the byte offsets of the syscall argument registers, in argument order
/// (rdi, rsi, rdx, r10).
const SYSCALL_ARG_REGS: [usize; 4] = [112, 104, 96, 56];
/// Exit-only: `recvfrom`'s flags are its fourth argument, `recvmsg`'s its third.
const RECVFROM_FLAGS_ARG: usize = 3;
const RECVMSG_FLAGS_ARG: usize = 2;

/// The current task's saved user registers (`struct pt_regs *`, a BTF pointer the verifier
/// lets the program load from at constant offsets).
#[inline(always)]
fn user_regs() -> *const u8 {
    // SAFETY: helpers without preconditions: the current task (a trusted BTF pointer, never
    // NULL) and its saved registers (never NULL for a trusted task).
    unsafe { generated::bpf_task_pt_regs(generated::bpf_get_current_task_btf()) as *const u8 }
}

/// Syscall argument `n` (0..=3) from `regs` ([`user_regs`]).
#[inline(always)]
fn syscall_arg(regs: *const u8, n: usize) -> u64 {
    // SAFETY: the verifier checks each load from the BTF pointer against `struct pt_regs`
    // (constant offsets, since every caller passes a constant `n`) and turns it into a
    // fault-handling load; `u64` is valid for any bytes.
    unsafe { core::ptr::read_volatile(regs.wrapping_add(SYSCALL_ARG_REGS[n]).cast::<u64>()) }
}

/// Whether a TLS library call is running on this thread (its stash slot or spilled entry;
/// a spilled entry may be done: `tls::claim_socket` decides).
#[inline(always)]
fn tls_call_running(pid_tgid: u64, tid: u32) -> bool {
    stash::live(&TLS_THREAD_CALLS, &TLS_ARGS, pid_tgid, tid).is_some()
}

/// What `enter` and `exit` do for one call, at its exit: `dir` and `KIND` as theirs,
/// `flags_arg` the index of the call's flags argument or [`NO_FLAGS`]. Cheapest rejections
/// first: the gate, then a call that moved nothing (EAGAIN reads are common) unless a TLS
/// call runs on the thread (its failed I/O still claims the socket, as the entry did), then
/// the registers and the fd's `CONNS` entry. The call is kept as the thread's last data
/// syscall (`stash::keep_data`) whenever `enter` would have stashed it.
#[inline(always)]
fn exit_only<const KIND: u8>(ctx: &TracePointContext, dir: u8, flags_arg: usize) {
    let (pid_tgid, tgid, tid) = current();
    if !gate_open(tgid) {
        return;
    }
    let ret = field::<i64>(ctx, RET).unwrap_or(-1);
    if ret <= 0 && !tls_call_running(pid_tgid, tid) {
        return;
    }
    let regs = user_regs();
    let fd = syscall_arg(regs, 0) as u32;
    // Peeked bytes stay queued and are read again: copying them would duplicate them.
    if flags_arg != NO_FLAGS && syscall_arg(regs, flags_arg) & MSG_PEEK != 0 {
        return;
    }
    let key = conn_key(tgid, fd);
    let Some(conn) = CONNS.get_ptr_mut(key) else {
        return;
    };
    // SAFETY: as in `copy_call`: a live, aligned map value for this program's run; another
    // thread on the same fd can only garble plain integers.
    let conn = unsafe { &mut *conn };
    let Some(mut args) = call_args(conn, pid_tgid, tid, fd, dir, KIND) else {
        return;
    };
    args.ptr = syscall_arg(regs, 1);
    args.count = syscall_arg(regs, 2);
    if args.wants_socket != 0 {
        stash::take_note(pid_tgid, tid, fd, &mut args);
    }
    let tls_read_ns = if args.buf_kind == BUF_CLAIMED || ret <= 0 {
        0
    } else {
        copy_to::<KIND>(conn, key, tgid, tid, &args, ret as u64)
    };
    stash::keep_data(pid_tgid, tid, &args, tls_read_ns);
}

/// Exit-only: notes the socket of this thread's data syscall in its `SOCK_NOTES` slot, with
/// the syscall's fd, for the exit (`stash::take_note`).
#[inline(always)]
fn note_socket_exit_only(ctx: &TracePointContext) {
    let (pid_tgid, tgid, tid) = current();
    // No connection of the process wants its socket (every one is announced with it): the
    // exit would not take the note. Checked instead of the tgid gate: the count is never
    // below the connections that want their socket, and is 0 where the gate is closed but
    // for the daemon's leftovers (see `SOCK_WANTED`).
    if !sockets_wanted(tgid) {
        return;
    }
    let fd = syscall_arg(user_regs(), 0) as u32;
    stash::put_note(
        pid_tgid,
        tid,
        fd,
        field::<u64>(ctx, SOCK_LENGTH_SK).unwrap_or(0),
        field::<u16>(ctx, SOCK_LENGTH_PROTOCOL).unwrap_or(0),
    );
}

/// Exit-only `sock/sock_send_length`.
#[tracepoint]
pub fn note_send_sock(ctx: TracePointContext) -> u32 {
    note_socket_exit_only(&ctx);
    0
}

/// Exit-only `sock/sock_recv_length`.
#[tracepoint]
pub fn note_recv_sock(ctx: TracePointContext) -> u32 {
    note_socket_exit_only(&ctx);
    0
}

macro_rules! exit_only_syscall {
    ($name:ident, $dir:expr, $kind:expr, $flags:expr, $doc:literal) => {
        #[doc = $doc]
        #[tracepoint]
        pub fn $name(ctx: TracePointContext) -> u32 {
            exit_only::<$kind>(&ctx, $dir, $flags);
            0
        }
    };
}

exit_only_syscall!(
    exit_read,
    DIR_INGRESS,
    BUF_PLAIN,
    NO_FLAGS,
    "Exit-only syscalls/sys_exit_read (`read(fd, buf, count)`)."
);
exit_only_syscall!(
    exit_write,
    DIR_EGRESS,
    BUF_PLAIN,
    NO_FLAGS,
    "Exit-only syscalls/sys_exit_write (`write(fd, buf, count)`)."
);
exit_only_syscall!(
    exit_recvfrom,
    DIR_INGRESS,
    BUF_PLAIN,
    RECVFROM_FLAGS_ARG,
    "Exit-only syscalls/sys_exit_recvfrom (`recvfrom(fd, ubuf, size, flags, ...)`)."
);
exit_only_syscall!(
    exit_sendto,
    DIR_EGRESS,
    BUF_PLAIN,
    NO_FLAGS,
    "Exit-only syscalls/sys_exit_sendto (`sendto(fd, buff, len, flags, ...)`)."
);
exit_only_syscall!(
    exit_readv,
    DIR_INGRESS,
    BUF_IOVEC,
    NO_FLAGS,
    "Exit-only syscalls/sys_exit_readv (`readv(fd, vec, vlen)`)."
);
exit_only_syscall!(
    exit_writev,
    DIR_EGRESS,
    BUF_IOVEC,
    NO_FLAGS,
    "Exit-only syscalls/sys_exit_writev (`writev(fd, vec, vlen)`)."
);
exit_only_syscall!(
    exit_recvmsg,
    DIR_INGRESS,
    BUF_MSGHDR,
    RECVMSG_FLAGS_ARG,
    "Exit-only syscalls/sys_exit_recvmsg (`recvmsg(fd, msg, flags)`)."
);
exit_only_syscall!(
    exit_sendmsg,
    DIR_EGRESS,
    BUF_MSGHDR,
    NO_FLAGS,
    "Exit-only syscalls/sys_exit_sendmsg (`sendmsg(fd, msg, flags)`)."
);
exit_only_syscall!(
    exit_sendfile64,
    DIR_EGRESS,
    BUF_NONE,
    NO_FLAGS,
    "Exit-only syscalls/sys_exit_sendfile64 (`sendfile(out_fd, in_fd, offset, count)`)."
);
