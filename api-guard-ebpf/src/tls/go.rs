//! Uprobes on Go's `crypto/tls` (x86-64, register ABI, Go ≥ 1.17; the daemon refuses others).
//!
//! Go functions must never get a uretprobe: it replaces the return address on the goroutine
//! stack, which Go copies elsewhere when it grows, and the runtime's unwinder then fails.
//! So `Write` is copied at its entry (the buffer is complete there, and Go's `Write` writes
//! all of it or fails), and `Read` remembers its receiver and buffer at entry, keyed by
//! goroutine, and is copied at its one `call runtime.memmove` (the inlined copy of decrypted
//! bytes into the buffer, whose count `Read` returns: an emulated `call`) where the daemon
//! proved there is exactly one, else at each `ret` instruction (`rax` holds the count; a
//! `ret` is single-stepped).
//!
//! Entry probes sit on the prologue's stack-bound `jbe` (the kernel emulates it; the first
//! instructions, `cmp`/`lea`, would be single-stepped). When that branch is taken the function
//! grows its stack and starts over, reaching the probe again: such hits are ignored (CF or ZF
//! set, cookie bit [`GO_COOKIE_STACK_CHECK`]), so a `Write` is never captured twice.
//!
//! The socket comes from the `tls.Conn` itself rather than from syscall correlation: the
//! latter would need a return probe on `Write` (a single-stepped `ret`, ~10x an emulated hit
//! here) and a lookup on every data syscall. The path `tls.Conn.conn` (a `net.Conn` interface
//! `{itab, data}` at offset 0) → `*net.TCPConn` → `conn.fd *netFD` (offset 0) → `pfd poll.FD`
//! (offset 0) → `Sysfd` (offset 16, after the 16-byte `fdMutex`) has had these offsets in
//! every Go release with the register ABI. The interface's dynamic type is checked first: the
//! itab's type hash must be `*net.TCPConn`'s, so a custom `net.Conn` wrapper is counted
//! ([`Stat::GoConnUnknown`]), never misread. Each walk costs five user-memory reads (~100 ns
//! each), so its answer is remembered in a hint slot ([`GO_CONN_HINTS`]): a later call of
//! the same `tls.Conn` reads only the interface, and takes the remembered socket if the
//! interface is the one it was found through (the same `*net.TCPConn`, whose `netFD` never
//! changes) and the socket is still that connection (its id in `CONNS`).

use api_guard_common::{
    names::GO_COOKIE_STACK_CHECK, ConnInfo, Stat, DIR_EGRESS, DIR_INGRESS, GO_CAPTURE_CAP,
};
use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    helpers::{bpf_probe_read_user, generated::bpf_get_attach_cookie},
    macros::uprobe,
    programs::ProbeContext,
    EbpfContext,
};

use super::calls::{deliver_plaintext, start_tls};
use crate::{
    capture::{bump, conn_key, current, emit::Origin, wanted},
    maps::{
        global_u32, GoConnHint, GoRead, GoroutineKey, CONNS, GO_CONN_HINTS, GO_CONN_HINT_SLOTS,
        GO_READS, SELF_TGID,
    },
};

/// x86 `EFLAGS` bits: `jbe` is taken when CF or ZF is set.
const EFLAGS_CF: u64 = 1;
const EFLAGS_ZF: u64 = 1 << 6;

/// `tls.Conn`: `{conn net.Conn, ...}`: the interface value `{tab *itab, data unsafe.Pointer}`.
const TLS_CONN_CONN: u64 = 0;
/// `runtime.itab` (`abi.ITab`): `{inter, _type, hash uint32, ...}`: a copy of the type's hash.
const ITAB_HASH: u64 = 16;
/// `poll.FD`: `{fdmu fdMutex (16 bytes), Sysfd int, ...}`.
const POLL_FD_SYSFD: u64 = 16;
/// The type hash of `*net.TCPConn`: the compiler's `TypeHash` of the string `*net.TCPConn`,
/// the first 4 bytes (little-endian) of its MD5 (Go 1.17–1.18), of its bitwise-NOT SHA-256
/// (Go 1.19+, `cmd/internal/notsha256`) or of its SHA-256 (should a toolchain drop the NOT).
const TCPCONN_TYPE_HASHES: [u32; 3] = [0xb954_d952, 0xbc02_0cb9, 0x43fd_f346];

/// Registers of the probed instruction that Go's register ABI gives meaning to.
struct Regs {
    /// Receiver (`*tls.Conn`) at entry; first result (`n`) at `ret`.
    rax: u64,
    /// `b.ptr` at entry.
    rbx: u64,
    /// `b.len` at entry.
    rcx: u64,
    /// The current goroutine (`g`).
    r14: u64,
    eflags: u64,
}

fn regs(ctx: &ProbeContext) -> Regs {
    // SAFETY: `ctx.regs` is the `pt_regs` context the kernel passes to this uprobe, valid for
    // the whole run; these are plain reads of its fields, which the verifier allows.
    let r = unsafe { &*ctx.regs };
    Regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        r14: r.r14,
        eflags: r.eflags,
    }
}

/// The attach cookie: the library id (low 32 bits) and site flags.
fn cookie(ctx: &ProbeContext) -> u64 {
    // SAFETY: `ctx` is this uprobe's own context, the argument the helper expects.
    unsafe { bpf_get_attach_cookie(ctx.as_ptr()) }
}

/// Whether this hit is on a stack check about to branch to `morestack` (the function will
/// start over and hit the probe again).
fn restarting(cookie: u64, regs: &Regs) -> bool {
    cookie & GO_COOKIE_STACK_CHECK != 0 && regs.eflags & (EFLAGS_CF | EFLAGS_ZF) != 0
}

fn read<T>(addr: u64) -> Option<T> {
    // SAFETY: `bpf_probe_read_user` copies through the kernel's fault-handling path, so any
    // address is fine (a bad one is an error); only integer types are read here.
    unsafe { bpf_probe_read_user(addr as *const T) }.ok()
}

/// The socket fd under a `*tls.Conn` whose `net.Conn` interface is `iface` (`{itab, data}`),
/// if it wraps a `*net.TCPConn` (see the module doc); otherwise the stat that says why not.
fn socket_of(iface: [u64; 2]) -> Result<u32, Stat> {
    let unknown = Stat::GoConnUnknown;
    let [itab, data] = iface;
    if itab == 0 || data == 0 {
        return Err(unknown);
    }
    let hash: u32 = read(itab.wrapping_add(ITAB_HASH)).ok_or(unknown)?;
    if !TCPCONN_TYPE_HASHES.contains(&hash) {
        return Err(unknown);
    }
    let net_fd: u64 = read(data).ok_or(unknown)?;
    let sysfd: i64 = read(net_fd.wrapping_add(POLL_FD_SYSFD)).ok_or(unknown)?;
    if sysfd < 0 {
        // `poll.FD.destroy` sets it to -1 once the last user of a closed socket is done.
        return Err(Stat::GoConnClosed);
    }
    u32::try_from(sysfd)
        .ok()
        .filter(|&fd| fd <= i32::MAX as u32)
        .ok_or(unknown)
}

/// The [`GO_CONN_HINTS`] slot of `*tls.Conn` `conn` in process `tgid` (heap objects are at
/// least 8-byte aligned, so the low bits say nothing).
#[inline(always)]
fn hint_slot(tgid: u32, conn: u64) -> Option<*mut GoConnHint> {
    let mixed = (conn >> 3) ^ (conn >> 17) ^ tgid as u64;
    GO_CONN_HINTS.get_ptr_mut(mixed as u32 & (GO_CONN_HINT_SLOTS - 1))
}

/// A mix of a hint's fields: a slot whose fields come from two writers (two `tls.Conn`s of
/// one slot written at once on two CPUs) fails to match it.
#[inline(always)]
fn seal(conn: u64, iface: [u64; 2], tgid: u32, fd: u32, conn_id: u64) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = conn.wrapping_mul(K);
    for v in [
        iface[0],
        iface[1],
        conn_id,
        ((tgid as u64) << 32) | fd as u64,
    ] {
        h = (h ^ v).wrapping_mul(K);
        h ^= h >> 29;
    }
    h
}

/// A hint slot's fields, each read once (a writer on another CPU may be midway):
/// `(conn, [itab, data], tgid, fd, conn_id, seal)`.
#[inline(always)]
fn hint_fields(hint: *mut GoConnHint) -> (u64, [u64; 2], u32, u32, u64, u64) {
    // SAFETY: a valid, aligned pointer to an array element (never freed); aligned loads of at
    // most 8 bytes are single-copy atomic.
    unsafe {
        (
            read_volatile(&raw const (*hint).conn),
            [
                read_volatile(&raw const (*hint).itab),
                read_volatile(&raw const (*hint).data),
            ],
            read_volatile(&raw const (*hint).tgid),
            read_volatile(&raw const (*hint).fd),
            read_volatile(&raw const (*hint).conn_id),
            read_volatile(&raw const (*hint).seal),
        )
    }
}

/// The socket and connection entry `hint` names for `*tls.Conn` `conn` of process `tgid`,
/// now holding interface `iface`: only if the slot was written whole (its seal matches) for
/// this `tls.Conn` holding this same interface (so the same `*net.TCPConn`, whose type the
/// writer checked), and its `(fd, conn_id)` is a live connection of the process (ids are
/// unique on the host; a closed socket's entry is gone).
#[inline(always)]
fn hinted_conn(
    hint: *mut GoConnHint,
    tgid: u32,
    conn: u64,
    iface: [u64; 2],
) -> Option<(u32, *mut ConnInfo)> {
    let (held, held_iface, held_tgid, fd, conn_id, held_seal) = hint_fields(hint);
    if held != conn || held_iface != iface || held_tgid != tgid {
        return None;
    }
    if held_seal != seal(conn, iface, tgid, fd, conn_id) {
        return None;
    }
    let info = CONNS.get_ptr_mut(conn_key(tgid, fd))?;
    // SAFETY: a valid, aligned value pointer from a successful lookup, live for this run.
    (unsafe { (*info).conn_id } == conn_id).then_some((fd, info))
}

/// Writes the mapping just read from user memory into `hint`, unless the slot holds another
/// `tls.Conn`'s whole mapping whose connection still lives (two connections of one slot
/// then read their chain as before the hints, instead of evicting each other).
#[inline(always)]
fn write_hint(hint: *mut GoConnHint, tgid: u32, conn: u64, iface: [u64; 2], fd: u32, id: u64) {
    let (held, held_iface, held_tgid, held_fd, held_id, held_seal) = hint_fields(hint);
    if held != 0 && held != conn && held_seal == seal(held, held_iface, held_tgid, held_fd, held_id)
    {
        // SAFETY: read-only lookup; only the id is compared, at once.
        let live = unsafe { CONNS.get(conn_key(held_tgid, held_fd)) };
        if live.is_some_and(|info| info.conn_id == held_id) {
            return;
        }
    }
    // SAFETY: a valid, aligned pointer to an array element (never freed); readers accept
    // only a slot whose seal matches its fields (see `hinted_conn`), so plain stores in any
    // order do.
    unsafe {
        write_volatile(&raw mut (*hint).conn, conn);
        write_volatile(&raw mut (*hint).itab, iface[0]);
        write_volatile(&raw mut (*hint).data, iface[1]);
        write_volatile(&raw mut (*hint).tgid, tgid);
        write_volatile(&raw mut (*hint).fd, fd);
        write_volatile(&raw mut (*hint).conn_id, id);
        write_volatile(&raw mut (*hint).seal, seal(conn, iface, tgid, fd, id));
    }
}

/// Delivers `len` plaintext bytes at `buf` moved by a call on `*tls.Conn` `conn`.
fn capture(cookie: u64, conn: u64, buf: u64, len: u64, dir: u8) {
    let (_, tgid, tid) = current();
    // The probes sit on a file: processes this agent does not capture (process filters)
    // run through them too. Their calls are none of ours, not unattributed ones.
    // The `net.Conn` interface, both words in one read (each read costs ~100 ns).
    let Some(iface) = read::<[u64; 2]>(conn.wrapping_add(TLS_CONN_CONN)) else {
        if wanted(tgid) {
            bump(Stat::GoConnUnknown, 1);
        }
        return;
    };
    let hint = hint_slot(tgid, conn);
    let (fd, info) = match hint.and_then(|hint| hinted_conn(hint, tgid, conn, iface)) {
        Some(found) => found,
        None => {
            let fd = match socket_of(iface) {
                Ok(fd) => fd,
                Err(stat) => {
                    if wanted(tgid) {
                        bump(stat, 1);
                    }
                    return;
                }
            };
            let Some(info) = CONNS.get_ptr_mut(conn_key(tgid, fd)) else {
                if wanted(tgid) {
                    bump(Stat::TlsUntracked, 1);
                }
                return;
            };
            if let Some(hint) = hint {
                // SAFETY: a valid, aligned value pointer from a successful lookup.
                let id = unsafe { (*info).conn_id };
                write_hint(hint, tgid, conn, iface, fd, id);
            }
            (fd, info)
        }
    };
    let key = conn_key(tgid, fd);
    // SAFETY: a valid, aligned value pointer from a successful lookup, live for this
    // program's run; concurrent users of the fd can only garble integers (see `capture::data`).
    let info = unsafe { &mut *info };
    let origin = Origin { tgid, tid, fd };
    if info.tls == 0 {
        start_tls(info, origin, cookie as u32, 0);
    }
    // Go hands whole HTTP/2 frames (16 KiB + 9 by default) and large bodies to one call: the
    // largest cap keeps frames whole whatever `max_capture_bytes` says.
    deliver_plaintext(info, key, origin, buf, len, dir, u64::from(GO_CAPTURE_CAP));
}

/// uprobe Go `crypto/tls.(*Conn).Write(c *Conn, b []byte) (int, error)`, at the prologue's
/// stack check: `rax` = c, `rbx` = b.ptr, `rcx` = b.len.
#[uprobe]
pub fn go_tls_write(ctx: ProbeContext) -> u32 {
    let (cookie, regs) = (cookie(&ctx), regs(&ctx));
    if restarting(cookie, &regs) || regs.rcx == 0 || regs.rcx > i64::MAX as u64 {
        return 0;
    }
    let (_, tgid, _) = current();
    if tgid == global_u32(&SELF_TGID) {
        return 0;
    }
    capture(cookie, regs.rax, regs.rbx, regs.rcx, DIR_EGRESS);
    0
}

/// uprobe Go `crypto/tls.(*Conn).Read(c *Conn, b []byte) (int, error)`, at the prologue's
/// stack check: remembers `c` and `b` for the goroutine (`r14`).
#[uprobe]
pub fn go_tls_read(ctx: ProbeContext) -> u32 {
    let (cookie, regs) = (cookie(&ctx), regs(&ctx));
    if restarting(cookie, &regs) || regs.rcx == 0 {
        return 0;
    }
    let (_, tgid, _) = current();
    if tgid == global_u32(&SELF_TGID) {
        return 0;
    }
    let key = GoroutineKey {
        tgid,
        _pad: 0,
        g: regs.r14,
    };
    let read = GoRead {
        conn: regs.rax,
        buf: regs.rbx,
        len: regs.rcx,
    };
    if GO_READS.insert(key, read, 0).is_err() {
        bump(Stat::StashTableFull, 1);
    }
    0
}

/// The `Read` the goroutine of `regs` is in, forgotten (one copy or return per call).
fn take_read(regs: &Regs) -> Option<GoRead> {
    let (_, tgid, _) = current();
    let key = GoroutineKey {
        tgid,
        _pad: 0,
        g: regs.r14,
    };
    // SAFETY: the value is copied out at once, before the `remove` below could free it.
    let read = *unsafe { GO_READS.get(key) }?;
    let _ = GO_READS.remove(key);
    Some(read)
}

/// uprobe at the one `call runtime.memmove(to, from, n)` of Go `crypto/tls.(*Conn).Read`: the
/// copy of decrypted bytes into `b`; `rbx` = from, `rcx` = n (what `Read` returns).
#[uprobe]
pub fn go_tls_read_copy(ctx: ProbeContext) -> u32 {
    let regs = regs(&ctx);
    let Some(read) = take_read(&regs) else {
        return 0;
    };
    if regs.rcx == 0 {
        return 0;
    }
    capture(
        cookie(&ctx),
        read.conn,
        regs.rbx,
        regs.rcx.min(read.len),
        DIR_INGRESS,
    );
    0
}

/// uprobe at each `ret` of Go `crypto/tls.(*Conn).Read`: `rax` = n, `r14` = the goroutine.
#[uprobe]
pub fn go_tls_read_return(ctx: ProbeContext) -> u32 {
    let regs = regs(&ctx);
    let Some(read) = take_read(&regs) else {
        return 0;
    };
    let n = regs.rax as i64;
    if n <= 0 {
        return 0;
    }
    capture(
        cookie(&ctx),
        read.conn,
        read.buf,
        (n as u64).min(read.len),
        DIR_INGRESS,
    );
    0
}
