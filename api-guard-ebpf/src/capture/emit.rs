//! Ring buffer output. Submissions do not wake the reader unless they take the waiting data
//! across a multiple of a threshold (a wakeup per event costs the traced application
//! microseconds); the daemon also drains on a short timer.

use api_guard_common::{
    ConnCloseEvent, ConnInfo, ConnOpenEvent, ConnTlsEvent, DataHeader, EventHeader, EventKind,
    ProcEvent, Stat, ADDR_NONE, ADDR_SOCKADDR, ADDR_TUPLE, CHUNK_SIZE, DATA_HEADER_SIZE,
    DIRECT_PAYLOAD_CLASSES, PAIR_HEAD_MAX,
};
use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{bpf_get_current_comm, bpf_ktime_get_ns, generated},
};
use core::ffi::c_void;

use super::{bump, release_sock_wanted};
use crate::maps::{global_u64, Staging, EVENTS, SCRATCH, SOCK_TUPLES, WAKEUP_BYTES};

/// Identity of the syscall an event belongs to.
#[derive(Clone, Copy)]
pub(crate) struct Origin {
    pub tgid: u32,
    pub tid: u32,
    pub fd: u32,
}

fn header(kind: EventKind, origin: Origin, conn_id: u64) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        tgid: origin.tgid,
        tid: origin.tid,
        fd: origin.fd,
        conn_id,
        // SAFETY: helper without arguments or preconditions.
        ts_ns: unsafe { bpf_ktime_get_ns() },
    }
}

/// Wakes the reader only with a submission that takes the waiting bytes across a multiple of
/// `WAKEUP_BYTES` (a quarter of the ring): one wake-up per quarter of records, where every
/// submission past the first quarter used to force one, each a self-IPI (`irq_work_queue`,
/// an APIC write that exits to the hypervisor in a VM), so a lagging reader made the traced
/// server pay one per record. Not only the first crossing: a wake-up that arrives while the
/// reader drains is consumed by that drain, and the next quarter's crossing wakes it again
/// before the ring is full. A crossing missed by two CPUs submitting at once is covered by
/// the next one and by the reader's drain timer.
fn wakeup_flags(adding: u64) -> u64 {
    let waiting = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    let step = global_u64(&WAKEUP_BYTES);
    if step == 0 || (waiting + adding) / step > waiting / step {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

fn output<T>(event: &T) -> bool {
    let size = core::mem::size_of::<T>() as u64;
    if EVENTS.output::<T>(event, wakeup_flags(size)).is_ok() {
        bump(Stat::EventsSubmitted, 1);
        true
    } else {
        bump(Stat::RingbufFull, 1);
        false
    }
}

/// Delivers the ConnOpen record of `conn` (once), resolving addresses from the socket tuple
/// when the socket is known. Returns whether the connection is announced now.
pub(crate) fn announce(conn: &mut ConnInfo, origin: Origin, sk: u64) -> bool {
    if conn.announced != 0 {
        return true;
    }
    if sk != 0 {
        conn.sk = sk;
    }
    let mut event = ConnOpenEvent {
        hdr: header(EventKind::ConnOpen, origin, conn.conn_id),
        local: Default::default(),
        peer: Default::default(),
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
        role: conn.role,
        addr_source: ADDR_NONE,
        _pad: [0; 6],
    };
    // SAFETY: the value is copied out field by field at once; map values are freed only after
    // an RCU grace period, which cannot end while this program runs.
    if let Some(tuple) = unsafe { SOCK_TUPLES.get(conn.sk) } {
        event.local = tuple.local;
        event.peer = tuple.peer;
        event.addr_source = ADDR_TUPLE;
    } else if conn.peer.family != 0 {
        event.peer = conn.peer;
        event.addr_source = ADDR_SOCKADDR;
    }
    if output(&event) {
        conn.announced = 1;
        // Announced with its socket: its later calls do not want it noted.
        if conn.sk != 0 {
            release_sock_wanted(conn, origin.tgid);
        }
    }
    conn.announced != 0
}

pub(crate) fn close(conn: &ConnInfo, origin: Origin) {
    let event = ConnCloseEvent {
        hdr: header(EventKind::ConnClose, origin, conn.conn_id),
        pending_gap: conn.pending_gap,
    };
    output(&event);
}

/// Tells userspace that `conn` carries TLS from now on (its parser restarts on plaintext).
pub(crate) fn tls_start(conn: &ConnInfo, origin: Origin) {
    let event = ConnTlsEvent {
        hdr: header(EventKind::ConnTls, origin, conn.conn_id),
        library: conn.tls_library,
        _pad: 0,
    };
    output(&event);
}

/// Asks userspace to rescan process `tgid` for TLS libraries.
pub(crate) fn proc_event(tgid: u32, tid: u32, fd: u32) {
    let event = ProcEvent {
        hdr: header(EventKind::ProcExec, Origin { tgid, tid, fd }, 0),
    };
    output(&event);
}

/// What one data record describes; its payload is the first `len` staged bytes.
pub(crate) struct Chunk {
    pub len: usize,
    pub call_len: u64,
    pub gap_after: u64,
    pub dir: u8,
    pub flags: u8,
}

pub(crate) fn staging() -> Option<&'static mut Staging> {
    let staging = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: a valid, aligned pointer to this CPU's staging slot (array elements are never
    // freed); nothing else uses the slot while this program runs (programs do not nest on a CPU
    // here: syscall tracepoints and uprobes run in task context, one at a time).
    Some(unsafe { &mut *staging })
}

/// Appends up to `len` user bytes from `src` to the staging area, as many as fit in the
/// current chunk. Returns how many were staged (`None` if user memory was unreadable) and
/// whether the chunk is now full.
pub(crate) fn stage(staging: &mut Staging, src: u64, len: u64) -> Option<(u64, bool)> {
    let at = (staging.fill as usize) & (CHUNK_SIZE - 1);
    let room = CHUNK_SIZE - at;
    let len = if len > room as u64 {
        room
    } else {
        len as usize
    };
    if len > 0 {
        // SAFETY: `at < CHUNK_SIZE` and `len <= CHUNK_SIZE` keep the copy inside `data`
        // (`2 * CHUNK_SIZE`); `bpf_probe_read_user` copies through the kernel's fault-handling
        // path, so a bad `src` is an error.
        let rc = unsafe {
            generated::bpf_probe_read_user(
                staging.data.as_mut_ptr().add(at).cast(),
                len as u32,
                src as *const core::ffi::c_void,
            )
        };
        if rc != 0 {
            return None;
        }
    }
    staging.fill = (at + len) as u64;
    Some((len as u64, at + len >= CHUNK_SIZE))
}

/// Outputs header + the first `chunk.len` (<= CHUNK_SIZE) staged bytes. Lost bytes are added
/// to the connection's pending gap so the next delivered record reports them.
pub(crate) fn data(conn: &mut ConnInfo, origin: Origin, chunk: &Chunk) {
    let slot = (chunk.dir as usize).wrapping_sub(1) & 1;
    let lost = chunk.len as u64 + chunk.gap_after;
    let Some(staging) = staging() else {
        return;
    };
    let mut len = chunk.len;
    if len > CHUNK_SIZE {
        len = CHUNK_SIZE;
    }
    staging.header = DataHeader {
        hdr: header(EventKind::Data, origin, conn.conn_id),
        gap_before: conn.pending_gap[slot],
        gap_after: chunk.gap_after,
        call_len: chunk.call_len,
        chunk_len: len as u32,
        dir: chunk.dir,
        flags: chunk.flags,
        library: conn.tls_library as u16,
    };
    let size = DATA_HEADER_SIZE + len;
    // SAFETY: `size <= DATA_HEADER_SIZE + CHUNK_SIZE`, within the live `Staging` behind
    // `staging` (repr(C): the header, then `data`, no padding); the header was just written and
    // the payload bytes were staged by `stage` (unstaged bytes are stale, never uninitialised:
    // map values start zeroed).
    let record =
        unsafe { core::slice::from_raw_parts((&*staging as *const Staging).cast::<u8>(), size) };
    let rc = EVENTS.output::<[u8]>(record, wakeup_flags(size as u64));
    if rc.is_ok() {
        bump(Stat::EventsSubmitted, 1);
        conn.pending_gap[slot] = 0;
    } else {
        bump(Stat::RingbufFull, 1);
        bump(Stat::LostBytes, lost);
        conn.pending_gap[slot] += lost;
    }
}

/// A data record reserved in the ring with a payload of `N` bytes, `chunk_len` of them used.
#[repr(C)]
struct DirectRecord<const N: usize> {
    header: DataHeader,
    data: [u8; N],
}

/// What [`data_direct`] did.
pub(crate) enum Direct {
    /// The bytes went out; the first four of them, for `data::sniff_framing`.
    Sent([u8; 4]),
    /// User memory was unreadable: nothing went out.
    ReadFailed,
    /// The ring was full: the bytes were counted lost (a gap on the connection).
    RingFull,
}

/// Outputs the `len` (1..=`CHUNK_SIZE`) user bytes at `src` of a call of `call_len` bytes as
/// one data record, copied straight into a record reserved in the ring rather than staged
/// and then copied again by `bpf_ringbuf_output`. The record's payload has the smallest
/// size class of [`DIRECT_PAYLOAD_CLASSES`] that holds `len` (a reservation's size must be
/// a constant); its header says how many bytes are used.
#[inline(always)]
pub(crate) fn data_direct(
    conn: &mut ConnInfo,
    origin: Origin,
    src: u64,
    len: u64,
    call_len: u64,
    dir: u8,
    flags: u8,
) -> Direct {
    // One instance per class: the classes are the const array's, checked at compile time.
    macro_rules! classes {
        ($($i:literal => $n:literal),*) => {
            $(
                const _: () = assert!(DIRECT_PAYLOAD_CLASSES[$i] == $n);
                if len <= $n {
                    return reserved::<$n>(conn, origin, src, len, call_len, dir, flags);
                }
            )*
        };
    }
    classes!(0 => 128, 1 => 256, 2 => 384, 3 => 512, 4 => 768, 5 => 1024, 6 => 1536,
        7 => 2048, 8 => 3072, 9 => 4096);
    Direct::ReadFailed
}

#[inline(always)]
fn reserved<const N: usize>(
    conn: &mut ConnInfo,
    origin: Origin,
    src: u64,
    len: u64,
    call_len: u64,
    dir: u8,
    flags: u8,
) -> Direct {
    let slot = (dir as usize).wrapping_sub(1) & 1;
    let Some(mut entry) = EVENTS.reserve::<DirectRecord<N>>(0) else {
        bump(Stat::RingbufFull, 1);
        bump(Stat::LostBytes, len);
        conn.pending_gap[slot] += len;
        return Direct::RingFull;
    };
    let rec = entry.as_mut_ptr();
    let len = if len > N as u64 { N } else { len as usize };
    // SAFETY: `rec` points to the reserved record (`N` payload bytes), and `len <= N` keeps
    // the copy inside it; `bpf_probe_read_user` copies through the kernel's fault-handling
    // path, so a bad `src` is an error.
    let rc = unsafe {
        generated::bpf_probe_read_user(
            core::ptr::addr_of_mut!((*rec).data).cast::<c_void>(),
            len as u32,
            src as *const c_void,
        )
    };
    if rc != 0 {
        // Without a wake-up: flags 0 wake the reader when it has caught up, a self-IPI
        // (about 5 µs here) for a record it will skip.
        entry.discard(BPF_RB_NO_WAKEUP as u64);
        return Direct::ReadFailed;
    }
    // SAFETY: as above; the first four payload bytes are in the record (`N >= 128`). Past
    // `len` they are stale ring bytes, which `data::sniff_framing` never reads (it needs 4).
    let head = unsafe {
        let data = &(*rec).data;
        [data[0], data[1], data[2], data[3]]
    };
    // SAFETY: the reserved record is ours until submitted; the header is plain data.
    unsafe {
        core::ptr::addr_of_mut!((*rec).header).write(DataHeader {
            hdr: header(EventKind::Data, origin, conn.conn_id),
            gap_before: conn.pending_gap[slot],
            gap_after: 0,
            call_len,
            chunk_len: len as u32,
            dir,
            flags,
            library: conn.tls_library as u16,
        })
    };
    entry.submit(wakeup_flags(core::mem::size_of::<DirectRecord<N>>() as u64));
    bump(Stat::EventsSubmitted, 1);
    conn.pending_gap[slot] = 0;
    Direct::Sent(head)
}

/// A data record of two segments reserved in the ring: `H` bytes (256 or [`PAIR_HEAD_MAX`])
/// bound the first segment, `N` (the size class of the second) the second, which starts
/// where the first ended: the verifier cannot relate the two lengths, only bound each, so
/// the record has room for both maxima. Unused bytes are never written nor read. nginx's
/// 1 KiB answers (a ~250-byte head, then the body) take 256 + 1,024 bytes for ~1,270 used
/// (`bpf_ringbuf_output` reserved the exact size; the total's class plus a 512-byte slack
/// took 2,048, and with a 128 KiB ring the ring then dropped several times as often).
#[repr(C)]
struct PairRecord<const H: usize, const N: usize> {
    header: DataHeader,
    head: [u8; H],
    rest: [u8; N],
}

/// Outputs two user segments (`(address, length)`, together 1..=`CHUNK_SIZE` bytes, the
/// first at most [`PAIR_HEAD_MAX`]) of a call of `call_len` bytes as one data record, copied
/// straight into a record reserved in the ring, as [`data_direct`] does for one buffer. Its
/// payload size is that of a [`PairRecord`] (at most the total's size class plus
/// [`PAIR_HEAD_MAX`], which the decoder allows).
#[inline(always)]
pub(crate) fn data_direct_pair(
    conn: &mut ConnInfo,
    origin: Origin,
    segments: [(u64, u64); 2],
    call_len: u64,
    dir: u8,
    flags: u8,
) -> Direct {
    let (first, second) = (segments[0].1, segments[1].1);
    if first + second == 0 || first > PAIR_HEAD_MAX as u64 {
        return Direct::ReadFailed;
    }
    // One instance per (bound of the first segment, class of the second).
    macro_rules! classes {
        ($h:literal; $($i:literal => $n:literal),*) => {
            $(
                const _: () = assert!(DIRECT_PAYLOAD_CLASSES[$i] == $n);
                if second <= $n {
                    return reserved_pair::<$h, $n>(conn, origin, segments, call_len, dir, flags);
                }
            )*
        };
    }
    if first <= 256 {
        classes!(256; 0 => 128, 1 => 256, 2 => 384, 3 => 512, 4 => 768, 5 => 1024,
            6 => 1536, 7 => 2048, 8 => 3072, 9 => 4096);
    } else {
        const _: () = assert!(PAIR_HEAD_MAX == 512);
        classes!(512; 0 => 128, 1 => 256, 2 => 384, 3 => 512, 4 => 768, 5 => 1024,
            6 => 1536, 7 => 2048, 8 => 3072, 9 => 4096);
    }
    Direct::ReadFailed
}

#[inline(always)]
fn reserved_pair<const H: usize, const N: usize>(
    conn: &mut ConnInfo,
    origin: Origin,
    segments: [(u64, u64); 2],
    call_len: u64,
    dir: u8,
    flags: u8,
) -> Direct {
    let slot = (dir as usize).wrapping_sub(1) & 1;
    // No-ops at run time (the caller checked both), bounds the verifier needs.
    let first = if segments[0].1 > H as u64 {
        H
    } else {
        segments[0].1 as usize
    };
    let second = if segments[1].1 > N as u64 {
        N
    } else {
        segments[1].1 as usize
    };
    let len = first + second;
    let Some(mut entry) = EVENTS.reserve::<PairRecord<H, N>>(0) else {
        bump(Stat::RingbufFull, 1);
        bump(Stat::LostBytes, len as u64);
        conn.pending_gap[slot] += len as u64;
        return Direct::RingFull;
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points to the reserved record: `head` then `rest`, `H + N` bytes in all
    // (repr(C), byte arrays: no padding). The first copy takes `first <= H` bytes at offset
    // 0, the second `second <= N` at offset `first <= H`: both stay inside.
    // `bpf_probe_read_user` copies through the kernel's fault-handling path, so a bad source
    // is an error.
    let rc = unsafe {
        let data = core::ptr::addr_of_mut!((*rec).head).cast::<u8>();
        let mut rc = 0;
        if first > 0 {
            rc = generated::bpf_probe_read_user(
                data.cast::<c_void>(),
                first as u32,
                segments[0].0 as *const c_void,
            );
        }
        if rc == 0 && second > 0 {
            rc = generated::bpf_probe_read_user(
                data.add(first).cast::<c_void>(),
                second as u32,
                segments[1].0 as *const c_void,
            );
        }
        rc
    };
    if rc != 0 {
        entry.discard(BPF_RB_NO_WAKEUP as u64);
        return Direct::ReadFailed;
    }
    // SAFETY: as above; the first four payload bytes are in the record (`H >= 256`). Past
    // `len` they are stale ring bytes, which `data::sniff_framing` never reads (it needs 4).
    let head = unsafe {
        let data = &(*rec).head;
        [data[0], data[1], data[2], data[3]]
    };
    // SAFETY: the reserved record is ours until submitted; the header is plain data.
    unsafe {
        core::ptr::addr_of_mut!((*rec).header).write(DataHeader {
            hdr: header(EventKind::Data, origin, conn.conn_id),
            gap_before: conn.pending_gap[slot],
            gap_after: 0,
            call_len,
            chunk_len: len as u32,
            dir,
            flags,
            library: conn.tls_library as u16,
        })
    };
    entry.submit(wakeup_flags(core::mem::size_of::<PairRecord<H, N>>() as u64));
    bump(Stat::EventsSubmitted, 1);
    conn.pending_gap[slot] = 0;
    Direct::Sent(head)
}
