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
//! ([`Stat::GoConnUnknown`]), never misread.

use api_guard_common::{
    names::GO_COOKIE_STACK_CHECK, Stat, DIR_EGRESS, DIR_INGRESS, GO_CAPTURE_CAP,
};
use aya_ebpf::{
    helpers::{bpf_probe_read_user, generated::bpf_get_attach_cookie},
    macros::uprobe,
    programs::ProbeContext,
    EbpfContext,
};

use super::calls::{deliver_plaintext, start_tls};
use crate::{
    capture::{bump, conn_key, current, emit::Origin, wanted},
    maps::{global_u32, GoRead, GoroutineKey, CONNS, GO_READS, SELF_TGID},
};

/// x86 `EFLAGS` bits: `jbe` is taken when CF or ZF is set.
const EFLAGS_CF: u64 = 1;
const EFLAGS_ZF: u64 = 1 << 6;

/// Go interface value: `{tab *itab, data unsafe.Pointer}`.
const IFACE_DATA: u64 = 8;
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

/// The socket fd under a `*tls.Conn`, if it wraps a `*net.TCPConn` (see the module doc);
/// otherwise the stat that says why not.
fn socket_of(conn: u64) -> Result<u32, Stat> {
    let unknown = Stat::GoConnUnknown;
    let itab: u64 = read(conn).ok_or(unknown)?;
    let data: u64 = read(conn.wrapping_add(IFACE_DATA)).ok_or(unknown)?;
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

/// Delivers `len` plaintext bytes at `buf` moved by a call on `*tls.Conn` `conn`.
fn capture(cookie: u64, conn: u64, buf: u64, len: u64, dir: u8) {
    let (_, tgid, tid) = current();
    // The probes sit on a file: processes this agent does not capture (process filters)
    // run through them too. Their calls are none of ours, not unattributed ones.
    let fd = match socket_of(conn) {
        Ok(fd) => fd,
        Err(stat) => {
            if wanted(tgid) {
                bump(stat, 1);
            }
            return;
        }
    };
    let key = conn_key(tgid, fd);
    let Some(info) = CONNS.get_ptr_mut(key) else {
        if wanted(tgid) {
            bump(Stat::TlsUntracked, 1);
        }
        return;
    };
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
