//! Connection lifecycle: accept/connect add a tracked fd, close removes it, and
//! `sock/inet_sock_set_state` records both ends of every established TCP socket.

use api_guard_common::{
    ConnInfo, Endpoint, Stat, AF_INET, AF_INET6, CONN_ID_CPU_MASK, FRAMING_UNKNOWN, ROLE_CLIENT,
    ROLE_SERVER,
};
use aya_ebpf::{
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};

use super::{
    arg, bump, conn_key, count_sock_wanted, current, emit, field, gate_open, open_gate,
    release_sock_wanted, uncount_sock_wanted, wanted, RET,
};
use crate::maps::{ConnectArgs, Tuple, ACCEPT_ARGS, CONNECT_ARGS, CONNS, SOCK_TUPLES};

/// `BPF_NOEXIST`: insert only if the key is absent.
const BPF_NOEXIST: u64 = 1;
const EINTR: i64 = 4;
const EALREADY: i64 = 114;
const EINPROGRESS: i64 = 115;
/// Kernel-internal (`include/linux/errno.h`), seen by `sys_exit` tracepoints before signal
/// delivery turns it into `EINTR` or restarts the call.
const ERESTARTSYS: i64 = 512;
const IPPROTO_TCP: u16 = 6;
const TCP_ESTABLISHED: i32 = 1;
const TCP_CLOSE: i32 = 7;

/// `syscalls/sys_enter_accept{,4}`: field `struct sockaddr * upeer_sockaddr`.
const ACCEPT_SOCKADDR: usize = arg(1);
/// `syscalls/sys_enter_connect`: field `int fd`.
const CONNECT_FD: usize = arg(0);
/// `syscalls/sys_enter_connect`: field `struct sockaddr * uservaddr`.
const CONNECT_SOCKADDR: usize = arg(1);
/// `syscalls/sys_enter_close`: field `unsigned int fd`.
const CLOSE_FD: usize = arg(0);

/// Field offsets of `sock/inet_sock_set_state` (its `format` file).
mod set_state {
    /// `const void * skaddr`
    pub const SKADDR: usize = 8;
    /// `int newstate`
    pub const NEWSTATE: usize = 20;
    /// `__u16 sport` (host order)
    pub const SPORT: usize = 24;
    /// `__u16 dport` (host order)
    pub const DPORT: usize = 26;
    /// `__u16 family`
    pub const FAMILY: usize = 28;
    /// `__u16 protocol`
    pub const PROTOCOL: usize = 30;
    /// `__u8 saddr[4]`
    pub const SADDR: usize = 32;
    /// `__u8 daddr[4]`
    pub const DADDR: usize = 36;
    /// `__u8 saddr_v6[16]`
    pub const SADDR_V6: usize = 40;
    /// `__u8 daddr_v6[16]`
    pub const DADDR_V6: usize = 56;
}

/// Unique while the connection lives: monotonic time scaled, plus the CPU to split ties.
/// Bit [`api_guard_common::CONN_ID_ADOPTED`] stays clear: it marks ids the daemon gives connections it adopts.
fn new_conn_id() -> u64 {
    // SAFETY: helpers without arguments or preconditions.
    unsafe { (bpf_ktime_get_ns() << 10) | (bpf_get_smp_processor_id() as u64 & CONN_ID_CPU_MASK) }
}

/// Reads a user `struct sockaddr`; `None` for families we do not track (AF_UNIX, ...).
/// `Some(default)` when no address was given, since the fd may still be TCP.
///
/// Reads no byte past the family's own struct: a `sockaddr_in` is 16 bytes, and reading a
/// fixed 24 made the copy fail when one sat at the end of a page before a page not yet
/// faulted in (`bpf_probe_read_user` cannot fault pages in). Go hit that: its
/// `SockaddrInet4` is a fresh 32-byte heap object, allocated in address order through
/// untouched spans, so now and then one ended 4 bytes before such a page and its connection
/// went untracked.
fn read_sockaddr(ptr: u64) -> Option<Endpoint> {
    if ptr == 0 {
        return Some(Endpoint::default());
    }
    // family(2) port(2), then sockaddr_in's address(4) or sockaddr_in6's flowinfo(4).
    // SAFETY: `bpf_probe_read_user` copies through the kernel's fault-handling path, so any
    // pointer is fine (a bad one is an error); `[u8; 8]` is valid for any bytes.
    let head: [u8; 8] = unsafe { bpf_probe_read_user(ptr as *const [u8; 8]) }.ok()?;
    let family = u16::from_ne_bytes([head[0], head[1]]);
    let port = u16::from_be_bytes([head[2], head[3]]);
    let mut addr = [0u8; 16];
    match family {
        AF_INET => addr[..4].copy_from_slice(&head[4..8]),
        AF_INET6 => {
            // SAFETY: as above; bytes 8..24 of a 28-byte `sockaddr_in6`.
            addr = unsafe { bpf_probe_read_user((ptr + 8) as *const [u8; 16]) }.ok()?;
        }
        _ => return None,
    }
    Some(Endpoint {
        addr,
        port,
        family,
        _pad: 0,
    })
}

fn track(tgid: u32, fd: u32, role: u8, peer: Endpoint) {
    let info = ConnInfo {
        conn_id: new_conn_id(),
        sk: 0,
        peer,
        pending_gap: [0; 2],
        role,
        announced: 0,
        tls: 0,
        ingress_seen: 0,
        tls_library: 0,
        hello_copied: 0,
        framing: FRAMING_UNKNOWN,
        _pad: 0,
        response_copied: 0,
        sock_wanted: 1,
    };
    let key = conn_key(tgid, fd);
    // Counted before the insert: the count is never below the connections that want their
    // socket, so the socket notes never skip one of them.
    count_sock_wanted(tgid);
    if CONNS.insert(key, info, BPF_NOEXIST).is_err() {
        // A stale entry of a reused fd (closed without `close`: `dup2`, `close_range`, exec):
        // released from the count, then overwritten; the new conn_id keeps the two apart.
        if let Some(stale) = CONNS.get_ptr_mut(key) {
            release_sock_wanted(stale, tgid);
        }
        if CONNS.insert(key, info, 0).is_err() {
            uncount_sock_wanted(tgid);
            bump(Stat::ConnTableFull, 1);
            return;
        }
    }
    // After the insert (see `TGID_GATE`), and before the fd can carry data: this call has
    // not returned it yet.
    open_gate(tgid, info.conn_id);
}

/// tracepoint syscalls/sys_enter_accept: (int fd, struct sockaddr *upeer_sockaddr, int *upeer_addrlen)
#[tracepoint]
pub fn sys_enter_accept(ctx: TracePointContext) -> u32 {
    stash_accept(&ctx);
    0
}

/// tracepoint syscalls/sys_enter_accept4: (int fd, struct sockaddr *upeer_sockaddr, int *upeer_addrlen, int flags)
#[tracepoint]
pub fn sys_enter_accept4(ctx: TracePointContext) -> u32 {
    stash_accept(&ctx);
    0
}

fn stash_accept(ctx: &TracePointContext) {
    let (pid_tgid, tgid, _) = current();
    if !wanted(tgid) {
        return;
    }
    let Ok(sockaddr) = field::<u64>(ctx, ACCEPT_SOCKADDR) else {
        return;
    };
    if ACCEPT_ARGS.insert(pid_tgid, sockaddr, 0).is_err() {
        bump(Stat::StashTableFull, 1);
    }
}

/// tracepoint syscalls/sys_exit_accept{,4}: long ret (the new fd)
#[tracepoint]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    finish_accept(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_accept4(ctx: TracePointContext) -> u32 {
    finish_accept(&ctx);
    0
}

fn finish_accept(ctx: &TracePointContext) {
    let (pid_tgid, tgid, _) = current();
    // SAFETY: the value is copied out at once, before the `remove` below could free it.
    let sockaddr = match unsafe { ACCEPT_ARGS.get(pid_tgid) } {
        Some(&sockaddr) => {
            let _ = ACCEPT_ARGS.remove(pid_tgid);
            sockaddr
        }
        // No entry: the call began before the programs were attached (a server blocked in
        // `accept` when the agent starts) or its stash found the table full. The connection
        // is still tracked, its peer unknown like `accept(fd, NULL, NULL)`'s: the socket's
        // tuple names it at the first data call.
        None => {
            if !wanted(tgid) {
                return;
            }
            0
        }
    };
    let ret = field::<i64>(ctx, RET).unwrap_or(-1);
    if ret < 0 {
        return;
    }
    if let Some(peer) = read_sockaddr(sockaddr) {
        track(tgid, ret as u32, ROLE_SERVER, peer);
    }
}

/// tracepoint syscalls/sys_enter_connect: (int fd, struct sockaddr *uservaddr, int addrlen)
#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    let (pid_tgid, tgid, _) = current();
    if !wanted(tgid) {
        return 0;
    }
    let (Ok(fd), Ok(sockaddr)) = (
        field::<u64>(&ctx, CONNECT_FD),
        field::<u64>(&ctx, CONNECT_SOCKADDR),
    ) else {
        return 0;
    };
    // A NULL address cannot connect anywhere we care about.
    if sockaddr == 0 {
        return 0;
    }
    let args = ConnectArgs {
        sockaddr,
        fd: fd as u32,
        _pad: 0,
    };
    if CONNECT_ARGS.insert(pid_tgid, args, 0).is_err() {
        bump(Stat::StashTableFull, 1);
    }
    0
}

/// What a `connect` return says about the connection (`__inet_stream_connect`,
/// net/ipv4/af_inet.c).
#[derive(PartialEq)]
enum Connect {
    /// Connected (0) or under way (`EINPROGRESS`: a non-blocking socket's first call): a new
    /// connection on this fd.
    Started,
    /// Under way, from a call that may not be the socket's first: `ERESTARTSYS`/`EINTR` (a
    /// blocking call interrupted by a signal leaves the handshake running; a caller without
    /// `SA_RESTART` then waits for writability and checks `SO_ERROR`, as python and Go do,
    /// never calling `connect` again) or `EALREADY` (a repeated call while it runs).
    StillGoing,
    /// Failed, or nothing new (`EISCONN`: an earlier call already returned 0).
    Other,
}

fn connect_outcome(ret: i64) -> Connect {
    match -ret {
        0 | EINPROGRESS => Connect::Started,
        EINTR | ERESTARTSYS | EALREADY => Connect::StillGoing,
        _ => Connect::Other,
    }
}

/// Whether `conn` is a connection to `peer`.
fn same_peer(conn: &ConnInfo, peer: &Endpoint) -> bool {
    conn.peer.family == peer.family && conn.peer.port == peer.port && conn.peer.addr == peer.addr
}

/// tracepoint syscalls/sys_exit_connect: long ret
#[tracepoint]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    let (pid_tgid, tgid, _) = current();
    // SAFETY: the value is copied out at once, before the `remove` below could free it.
    let Some(&args) = (unsafe { CONNECT_ARGS.get(pid_tgid) }) else {
        return 0;
    };
    let _ = CONNECT_ARGS.remove(pid_tgid);
    let outcome = connect_outcome(field::<i64>(&ctx, RET).unwrap_or(-1));
    if outcome == Connect::Other {
        return 0;
    }
    // Read at exit: the kernel has just copied the address in, so its page is resident.
    // Only IP peers.
    let Some(peer) = read_sockaddr(args.sockaddr).filter(|p| p.family != 0) else {
        return 0;
    };
    if outcome == Connect::StillGoing {
        // An earlier call on this socket may have been tracked already, and its connection
        // may carry data by now: keep its id.
        // SAFETY: read-only lookup; the fields are compared at once.
        if unsafe { CONNS.get(conn_key(tgid, args.fd)) }.is_some_and(|c| same_peer(c, &peer)) {
            return 0;
        }
    }
    track(tgid, args.fd, ROLE_CLIENT, peer);
    0
}

/// tracepoint syscalls/sys_enter_close: (unsigned int fd)
#[tracepoint]
pub fn sys_enter_close(ctx: TracePointContext) -> u32 {
    let (_, tgid, tid) = current();
    if !gate_open(tgid) {
        return 0;
    }
    let Ok(fd) = field::<u64>(&ctx, CLOSE_FD) else {
        return 0;
    };
    let key = conn_key(tgid, fd as u32);
    let Some(entry) = CONNS.get_ptr_mut(key) else {
        return 0;
    };
    release_sock_wanted(entry, tgid);
    // SAFETY: a valid, aligned value pointer from the lookup, copied out at once, before the
    // `remove` below could free it.
    let conn = unsafe { *entry };
    // Userspace never heard of a connection that was not announced: nothing to close.
    if conn.announced != 0 {
        emit::close(
            &conn,
            emit::Origin {
                tgid,
                tid,
                fd: fd as u32,
            },
        );
    }
    let _ = CONNS.remove(key);
    0
}

/// tracepoint sock/inet_sock_set_state: (const void *skaddr, int oldstate, int newstate,
/// u16 sport, u16 dport, u16 family, u16 protocol, u8 saddr[4], u8 daddr[4],
/// u8 saddr_v6[16], u8 daddr_v6[16]); ports in host order.
#[tracepoint]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    let _ = try_set_state(&ctx);
    0
}

fn try_set_state(ctx: &TracePointContext) -> Result<(), i32> {
    use set_state::*;
    let protocol: u16 = field(ctx, PROTOCOL)?;
    if protocol != IPPROTO_TCP {
        return Ok(());
    }
    let sk: u64 = field(ctx, SKADDR)?;
    let newstate: i32 = field(ctx, NEWSTATE)?;
    if newstate == TCP_CLOSE {
        let _ = SOCK_TUPLES.remove(sk);
        return Ok(());
    }
    if newstate != TCP_ESTABLISHED {
        return Ok(());
    }
    let family: u16 = field(ctx, FAMILY)?;
    let mut local = Endpoint {
        port: field(ctx, SPORT)?,
        family,
        ..Default::default()
    };
    let mut peer = Endpoint {
        port: field(ctx, DPORT)?,
        family,
        ..Default::default()
    };
    if family == AF_INET {
        let s: [u8; 4] = field(ctx, SADDR)?;
        let d: [u8; 4] = field(ctx, DADDR)?;
        local.addr[..4].copy_from_slice(&s);
        peer.addr[..4].copy_from_slice(&d);
    } else {
        local.addr = field(ctx, SADDR_V6)?;
        peer.addr = field(ctx, DADDR_V6)?;
    }
    let _ = SOCK_TUPLES.insert(sk, Tuple { local, peer }, 0);
    Ok(())
}
