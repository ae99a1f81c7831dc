//! Uprobes on TLS library entry points (OpenSSL `SSL_read`/`SSL_write`/`_ex`/`SSL_do_handshake`,
//! GnuTLS `gnutls_record_recv`/`_send`/`gnutls_handshake`). Arguments are stashed per thread
//! at entry; at return the buffer holds exactly what the call moved, so reads and writes are
//! both copied then (a write's caller has not resumed yet, and a failed write that the caller
//! retries is not counted twice).
//!
//! The socket of a session is found without library struct offsets, in order of trust:
//! 1. a data syscall on a tracked socket made by this thread while the call ran (socket BIO:
//!    nginx, curl, python); that syscall's ciphertext is not copied;
//! 2. the socket remembered for this session (`TLS_SESSIONS`), if its connection still lives;
//! 3. the thread's last data syscall, if it returned a TLS record moments ago (memory BIO:
//!    node reads ciphertext, then decrypts it with `SSL_read` in the same callback).

use api_guard_common::{
    ConnInfo, ConnKey, Stat, DATA_TLS, DIR_EGRESS, DIR_INGRESS, FRAMING_UNKNOWN, NO_FD,
};
use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    helpers::{
        bpf_ktime_get_ns, bpf_probe_read_user,
        generated::{bpf_get_attach_cookie, bpf_jiffies64},
    },
    macros::{uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext},
    EbpfContext,
};

use crate::{
    capture::{bump, conn_key, current, data, emit, emit::Origin, stash, wanted},
    maps::{
        global_u32, DataArgs, SessionHint, SessionKey, SessionSocket, TlsArgs, BUF_DONE, BUF_PLAIN,
        CONNS, SELF_TGID, SESSION_HINT_SLOTS, TLS_ARGS, TLS_CALL, TLS_SESSIONS, TLS_SESSION_HINTS,
        TLS_THREAD_CALLS,
    },
};

/// Returns the byte count (`int`/`ssize_t`), <= 0 on failure.
const CALL_PLAIN: u8 = 1;
/// Returns > 0 on success and stores the byte count through argument 3 (`SSL_*_ex` return
/// 1; the internal functions they share with `SSL_read`/`SSL_write` return > 0).
const CALL_EX: u8 = 2;
/// Moves no application data; correlates the socket before any ciphertext is copied.
const CALL_HANDSHAKE: u8 = 3;
/// `TlsArgs::call` once the call returned: the thread's entry stays, to be overwritten in
/// place by its next call (an LRU insert and delete per call cost more than the lookup).
const CALL_DONE: u8 = 0;

/// How long after a TLS call started its syscalls are still attributed to it, in jiffies
/// (4 s at `CONFIG_HZ=250`, 1 s at 1000, 10 s at 100). Bounds the damage of a stash whose
/// return probe never fired (thread killed mid-call).
const CLAIM_WINDOW_JIFFIES: u64 = 1000;
/// How recent the thread's last ciphertext read must be to explain a call without I/O.
const MEMORY_BIO_WINDOW_NS: u64 = 10_000_000;

/// The clock of [`TlsArgs::start`]: a tick count is plenty for [`CLAIM_WINDOW_JIFFIES`] and
/// costs no clocksource read on each of the library's calls (`bpf_ktime_get_ns` reads the
/// TSC: tens of ns in a VM; the coarse clock is not allowed in tracing programs).
#[inline(always)]
fn ticks() -> u64 {
    // SAFETY: helper without arguments or preconditions.
    unsafe { bpf_jiffies64() }
}

impl stash::Call for TlsArgs {
    #[inline(always)]
    fn live(&self) -> bool {
        self.call != CALL_DONE
    }

    #[inline(always)]
    fn mark_done(&mut self) {
        self.call = CALL_DONE;
    }
}

fn enter(ctx: &ProbeContext, dir: u8, call: u8) {
    let (pid_tgid, tgid, tid) = current();
    if tgid == global_u32(&SELF_TGID) {
        return;
    }
    let session: u64 = ctx.arg(0).unwrap_or(0);
    if session == 0 {
        return;
    }
    let args = TlsArgs {
        session,
        buf: ctx.arg(1).unwrap_or(0),
        count_ptr: if call == CALL_EX {
            ctx.arg(3).unwrap_or(0)
        } else {
            0
        },
        start: ticks(),
        fd: NO_FD,
        dir,
        call,
        _pad: [0; 2],
    };
    stash::put(&TLS_THREAD_CALLS, &TLS_ARGS, pid_tgid, tid, args);
}

/// Called by a data syscall on tracked socket `fd`: if a TLS call is running on this thread,
/// the syscall is that call's ciphertext. Returns whether it was claimed (not to be copied).
pub(crate) fn claim_socket(pid_tgid: u64, tid: u32, fd: u32) -> bool {
    let Some(args) = stash::live(&TLS_THREAD_CALLS, &TLS_ARGS, pid_tgid, tid) else {
        return false;
    };
    // SAFETY: this thread's live call (its slot or its spilled entry), written only by its
    // own programs, which run one at a time; live for this program's run.
    let args = unsafe { &mut *args };
    if args.call == CALL_DONE {
        return false;
    }
    if ticks().saturating_sub(args.start) > CLAIM_WINDOW_JIFFIES {
        return false;
    }
    if args.fd == NO_FD {
        args.fd = fd;
    }
    true
}

/// The socket remembered for a session and its connection entry, if the connection is still
/// the same one. The entry is handed back: looking it up again costs a hash of the key.
/// The session's hint slot is tried first; the hash only when the slot holds another
/// session or a connection that is gone, and its answer then fills the slot (`write_hint`).
fn known_session(key: &SessionKey) -> Option<(u32, *mut ConnInfo)> {
    let hint = hint_slot(key);
    if let Some(found) = hint.and_then(|hint| hinted_conn(hint, key)) {
        return Some(found);
    }
    // SAFETY: read-only lookup; map values are freed only after an RCU grace period, which
    // cannot end while this program runs, and a concurrent update can only make it stale.
    let socket = unsafe { TLS_SESSIONS.get(key) }?;
    let (fd, conn_id) = (socket.fd, socket.conn_id);
    let conn = CONNS.get_ptr_mut(conn_key(key.tgid, fd))?;
    // SAFETY: a valid, aligned value pointer from a successful lookup, live for this run.
    if unsafe { (*conn).conn_id } != conn_id {
        return None;
    }
    if let Some(hint) = hint {
        write_hint(hint, key, fd, conn_id);
    }
    Some((fd, conn))
}

/// The [`TLS_SESSION_HINTS`] slot of a session: its address (heap objects are at least
/// 16-byte aligned, so the low bits say nothing) mixed with the process (nginx's workers,
/// forked from one master, hold sessions at the same addresses).
#[inline(always)]
fn hint_slot(key: &SessionKey) -> Option<*mut SessionHint> {
    let mixed = (key.session >> 4) ^ (key.session >> 20) ^ key.tgid as u64;
    TLS_SESSION_HINTS.get_ptr_mut(mixed as u32 & (SESSION_HINT_SLOTS - 1))
}

/// The socket and connection entry `hint` names for session `key`, if it is one of that
/// process's live connections with the id the hint recorded. Each field is read once (a
/// writer on another CPU may be midway): a mix of two writes is accepted only if it names a
/// live connection of the caller's process by its id, which only this session's own
/// mappings can (connection ids are unique on the host).
#[inline(always)]
fn hinted_conn(hint: *mut SessionHint, key: &SessionKey) -> Option<(u32, *mut ConnInfo)> {
    // SAFETY: a valid, aligned pointer to an array element (never freed); aligned loads of at
    // most 8 bytes are single-copy atomic.
    let (session, tgid, fd, conn_id) = unsafe {
        (
            read_volatile(&raw const (*hint).session),
            read_volatile(&raw const (*hint).tgid),
            read_volatile(&raw const (*hint).fd),
            read_volatile(&raw const (*hint).conn_id),
        )
    };
    if session != key.session || tgid != key.tgid {
        return None;
    }
    let conn = CONNS.get_ptr_mut(conn_key(key.tgid, fd))?;
    // SAFETY: a valid, aligned value pointer from a successful lookup, live for this run.
    (unsafe { (*conn).conn_id } == conn_id).then_some((fd, conn))
}

/// Whether `hint` already says session `key` is on `fd`, connection `conn_id`.
#[inline(always)]
fn hint_says(hint: *mut SessionHint, key: &SessionKey, fd: u32, conn_id: u64) -> bool {
    // SAFETY: as in `hinted_conn`.
    unsafe {
        read_volatile(&raw const (*hint).session) == key.session
            && read_volatile(&raw const (*hint).tgid) == key.tgid
            && read_volatile(&raw const (*hint).fd) == fd
            && read_volatile(&raw const (*hint).conn_id) == conn_id
    }
}

/// Writes session `key`'s mapping into `hint`, unless the slot holds another session whose
/// connection still lives. A session answered by its slot no longer refreshes its hash
/// entry's LRU mark, so the hash may evict that entry meanwhile: the slot stays the
/// session's for as long as its connection lives, and a session that collides with it is
/// answered by the hash, as before the slots.
#[inline(always)]
fn write_hint(hint: *mut SessionHint, key: &SessionKey, fd: u32, conn_id: u64) {
    // SAFETY: as in `hinted_conn`.
    let (session, tgid, held_fd, held_id) = unsafe {
        (
            read_volatile(&raw const (*hint).session),
            read_volatile(&raw const (*hint).tgid),
            read_volatile(&raw const (*hint).fd),
            read_volatile(&raw const (*hint).conn_id),
        )
    };
    if session != 0 && (session != key.session || tgid != key.tgid) {
        // SAFETY: read-only lookup; only the id is compared, at once.
        let held = unsafe { CONNS.get(conn_key(tgid, held_fd)) };
        if held.is_some_and(|conn| conn.conn_id == held_id) {
            return;
        }
    }
    // SAFETY: a valid, aligned pointer to an array element (never freed); readers accept
    // only what they can verify (see `hinted_conn`), so plain stores in any order do.
    unsafe {
        write_volatile(&raw mut (*hint).session, key.session);
        write_volatile(&raw mut (*hint).tgid, key.tgid);
        write_volatile(&raw mut (*hint).fd, fd);
        write_volatile(&raw mut (*hint).conn_id, conn_id);
    }
}

/// The socket of the thread's last data syscall, if it just read a TLS record.
fn recent_ciphertext_read(pid_tgid: u64) -> Option<u32> {
    let mut last = DataArgs::default();
    if !stash::last_data(pid_tgid, &mut last) {
        return None;
    }
    if last.buf_kind != BUF_DONE || last.tls_record == 0 {
        return None;
    }
    // SAFETY: helper without arguments or preconditions.
    let age = unsafe { bpf_ktime_get_ns() }.saturating_sub(last.done_ns);
    (age < MEMORY_BIO_WINDOW_NS).then_some(last.fd)
}

/// The `struct sock *` of the thread's last data syscall if it was on `fd` (0 if unknown):
/// lets the connection's announcement carry its exact addresses.
fn last_socket(pid_tgid: u64, fd: u32) -> u64 {
    let mut last = DataArgs::default();
    if stash::last_data(pid_tgid, &mut last) && last.fd == fd {
        last.sk
    } else {
        0
    }
}

/// Bytes the call moved, from its return value (and count pointer).
fn moved(call: u8, rc: i64, count_ptr: u64) -> u64 {
    // `int` returns leave the upper half of the register undefined.
    let rc = rc as i32;
    match call {
        CALL_PLAIN if rc > 0 => rc as u64,
        CALL_EX if rc > 0 && count_ptr != 0 => {
            // SAFETY: `bpf_probe_read_user` copies through the kernel's fault-handling path, so
            // any pointer is fine (a bad one is an error); `u64` is valid for any bytes.
            unsafe { bpf_probe_read_user(count_ptr as *const u64) }.unwrap_or(0)
        }
        _ => 0,
    }
}

fn exit(ctx: &RetProbeContext) {
    let (pid_tgid, tgid, tid) = current();
    let mut args = TlsArgs::default();
    // Copied out, then marked done in place (see `CALL_DONE`).
    if !stash::take_released(&TLS_THREAD_CALLS, &TLS_ARGS, pid_tgid, tid, &mut args) {
        return;
    }
    let len = moved(args.call, ctx.ret::<i64>(), args.count_ptr);
    let session = SessionKey {
        tgid,
        _pad: 0,
        session: args.session,
    };
    // A call that moved nothing and did no socket I/O (a read that found no record yet:
    // nginx's last `SSL_read` of each request) matters only if it explains a memory-BIO
    // connection's start: a session already known was switched to TLS when it was learned.
    // Without a recent ciphertext read it is done here, before the session and connection
    // lookups.
    if len == 0 && args.fd == NO_FD && recent_ciphertext_read(pid_tgid).is_none() {
        return;
    }
    let (fd, known, learned) = if args.fd != NO_FD {
        (args.fd, None, true)
    } else if let Some((fd, conn)) = known_session(&session) {
        (fd, Some(conn), false)
    } else if let Some(fd) = recent_ciphertext_read(pid_tgid) {
        (fd, None, true)
    } else {
        // Processes outside the capture filters run through the probes too: none of ours.
        if len > 0 && wanted(tgid) {
            bump(Stat::TlsNoFd, 1);
        }
        return;
    };
    let key = conn_key(tgid, fd);
    let Some(conn) = known.or_else(|| CONNS.get_ptr_mut(key)) else {
        if len > 0 && wanted(tgid) {
            bump(Stat::TlsUntracked, 1);
        }
        return;
    };
    // SAFETY: a valid, aligned value pointer from a successful lookup, live for this
    // program's run; concurrent users of the fd can only garble integers (see `capture::data`).
    let conn = unsafe { &mut *conn };
    if learned {
        let socket = SessionSocket {
            conn_id: conn.conn_id,
            fd,
            _pad: 0,
        };
        // Most calls of a session learn what the table already holds: its hint slot, or
        // else a lookup, spares them the LRU insert (a node allocated and linked under a
        // lock). A slot that says so was written after the hash (below, or by
        // `known_session` from it).
        let hint = hint_slot(&session);
        if !hint.is_some_and(|hint| hint_says(hint, &session, fd, socket.conn_id)) {
            // SAFETY: read-only lookup; the fields are compared at once.
            let known = unsafe { TLS_SESSIONS.get(session) }
                .is_some_and(|s| s.conn_id == socket.conn_id && s.fd == fd);
            if !known {
                let _ = TLS_SESSIONS.insert(session, socket, 0);
            }
            if let Some(hint) = hint {
                write_hint(hint, &session, fd, socket.conn_id);
            }
        }
    }
    let origin = Origin { tgid, tid, fd };
    if conn.tls == 0 {
        // SAFETY: `ctx` is this uretprobe's own context, the argument the helper expects.
        let library = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
        start_tls(conn, origin, library as u32, last_socket(pid_tgid, fd));
    }
    if len == 0 {
        return;
    }
    deliver_plaintext(conn, key, origin, args.buf, len, args.dir, 0);
}

/// Emits `len` plaintext bytes at user address `buf` moved by a TLS call on `conn`, copying
/// at least `min_cap` of them if there are that many (0: the configured cap).
#[inline(always)]
pub(crate) fn deliver_plaintext(
    conn: &mut ConnInfo,
    key: ConnKey,
    origin: Origin,
    buf: u64,
    len: u64,
    dir: u8,
    min_cap: u64,
) {
    let Some(call) = TLS_CALL.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: a valid, aligned pointer to this CPU's slot (array elements are never freed),
    // which nothing else uses while this program runs; the volatile read makes the compiler
    // load the values back instead of reusing the constants.
    let call = unsafe {
        call.write(DataArgs {
            ptr: buf,
            count: len,
            sk: 0,
            done_ns: 0,
            fd: origin.fd,
            protocol: 0,
            dir,
            buf_kind: BUF_PLAIN,
            tls_record: 0,
            hello: 0,
            wants_socket: 0,
            _pad: [0; 5],
        });
        core::ptr::read_volatile(call)
    };
    data::deliver::<BUF_PLAIN>(conn, key, origin, &call, len, DATA_TLS, min_cap);
}

/// Switches a connection to TLS: its syscall payload so far was handshake ciphertext, so
/// gap accounting restarts on the plaintext stream.
pub(crate) fn start_tls(conn: &mut ConnInfo, origin: Origin, library: u32, sk: u64) {
    conn.tls = 1;
    conn.tls_library = library;
    conn.pending_gap = [0; 2];
    // The plaintext starts anew: its first request names its framing.
    conn.framing = FRAMING_UNKNOWN;
    conn.response_copied = 0;
    if emit::announce(conn, origin, sk) {
        emit::tls_start(conn, origin);
    }
}

/// `SSL_read(SSL *, void *, int)`, `gnutls_record_recv(session, void *, size_t)`
#[uprobe]
pub fn tls_read(ctx: ProbeContext) -> u32 {
    enter(&ctx, DIR_INGRESS, CALL_PLAIN);
    0
}

/// `SSL_read_ex(SSL *, void *, size_t, size_t *readbytes)`, and the internal function it
/// shares with `SSL_read` (`ssl_read_internal`, same arguments)
#[uprobe]
pub fn tls_read_ex(ctx: ProbeContext) -> u32 {
    enter(&ctx, DIR_INGRESS, CALL_EX);
    0
}

/// `SSL_write(SSL *, const void *, int)`, `gnutls_record_send(session, const void *, size_t)`
#[uprobe]
pub fn tls_write(ctx: ProbeContext) -> u32 {
    enter(&ctx, DIR_EGRESS, CALL_PLAIN);
    0
}

/// `SSL_write_ex(SSL *, const void *, size_t, size_t *written)`, and `ssl_write_internal`
#[uprobe]
pub fn tls_write_ex(ctx: ProbeContext) -> u32 {
    enter(&ctx, DIR_EGRESS, CALL_EX);
    0
}

/// `SSL_do_handshake(SSL *)`, `gnutls_handshake(session)`
#[uprobe]
pub fn tls_handshake(ctx: ProbeContext) -> u32 {
    enter(&ctx, 0, CALL_HANDSHAKE);
    0
}

/// Return of every hooked function; the attach cookie is the library's id.
#[uretprobe]
pub fn tls_return(ctx: RetProbeContext) -> u32 {
    exit(&ctx);
    0
}
