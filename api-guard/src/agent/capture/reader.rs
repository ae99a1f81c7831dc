//! The ring buffer, read in place: records are handed to the caller while they are still in
//! the ring (no copy, no hand-off to another task), in slices of a bounded size.
//!
//! Kernel submissions usually skip the wakeup (see the eBPF side), so besides the ring's
//! wake-ups the ring is read on a short timer. The ring itself is the only buffer: when
//! its reader falls behind, it fills and the kernel counts exactly what it had to drop
//! (`apiguard_capture_dropped_total{reason="ringbuf_full"}`): nothing is lost unseen.
//!
//! The reader blocks in `epoll_wait` on the ring's fd on a thread of its own, not in the
//! async runtime: woken through tokio's I/O driver, the parsing task cost a runtime worker's
//! park and unpark and the mio waker around every wake-up, and each wake-up also woke the
//! other worker to look for work (each worker ~200 voluntary switches a second at 30k
//! requests a second, for ~100 ring reads).

use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};

use crate::telemetry::Metrics;

/// Longest a record waits in the ring buffer when no wakeup was forced.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

/// Records read in one slice: the reader hands its results on and gives the runtime a turn
/// between slices, so timers and other tasks run during a flood.
pub const SLICE_RECORDS: usize = 256;

/// A slice also ends once its records hold this many bytes (up to 64 KiB each), so that the
/// work between two turns stays short.
const SLICE_BYTES: usize = 256 * 1024;

/// What one record takes in the ring besides its bytes (the kernel's record header).
const RECORD_HEADER: usize = 8;

/// What one slice read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slice {
    pub records: usize,
    /// Ring bytes the records took (with their headers).
    pub bytes: usize,
    /// The slice ended at its bound: more records may be waiting.
    pub full: bool,
}

/// The ring buffer and when to read it.
pub struct Ring {
    ring: RingBuf<MapData>,
    /// An epoll instance watching the ring's fd, edge-triggered: it reports the kernel's
    /// wake-ups (forced ones, see above), not merely that records are waiting.
    epoll: OwnedFd,
    /// When the ring is read next if no wake-up comes first.
    drain_at: Instant,
    /// The last slice was full: read again at once.
    more: bool,
    /// Ring bytes [`Ring::read_last`] may still read (starts at the ring's size).
    last_left: usize,
    metrics: Metrics,
}

/// What one [`Ring::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Records may be waiting: read a slice.
    Read,
    /// The caller's deadline came first.
    Deadline,
}

impl Ring {
    /// Watches `ring` (of `size` bytes) for the kernel's wake-ups.
    pub fn new(ring: RingBuf<MapData>, size: u32, metrics: Metrics) -> std::io::Result<Self> {
        // SAFETY: plain syscall; the fd returned is checked and then owned.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `epoll` is a fresh fd nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: 0,
        };
        // SAFETY: both fds are open (the ring buffer owns its map fd for as long as this
        // struct holds it, and the epoll fd is dropped with it); `event` outlives the call.
        let added = unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                ring.as_raw_fd(),
                &mut event,
            )
        };
        if added < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            ring,
            epoll,
            drain_at: Instant::now() + DRAIN_INTERVAL,
            more: false,
            last_left: size as usize,
            metrics,
        })
    }

    /// Blocks until records may be waiting, or until `deadline` (the caller's own timers)
    /// when that comes first: at once when the last slice was full, else on the kernel's
    /// wake-up or when the drain timer is due ([`DRAIN_INTERVAL`] after the last read).
    pub fn wait(&mut self, now: Instant, deadline: Instant) -> std::io::Result<Wait> {
        if self.more {
            return Ok(Wait::Read);
        }
        let until = self.drain_at.min(deadline);
        if until > now {
            // Rounded up, so a wait never ends just before its deadline and spins.
            let ms = until
                .duration_since(now)
                .as_micros()
                .div_ceil(1000)
                .min(i32::MAX as u128) as i32;
            let mut event = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: the epoll fd is open; `event` has room for the one event asked for.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, ms) };
            if n > 0 {
                return Ok(Wait::Read);
            }
            if n < 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
        if Instant::now() >= self.drain_at {
            Ok(Wait::Read)
        } else {
            Ok(Wait::Deadline)
        }
    }

    /// Reads one slice, handing each record to `each` while it is borrowed from the ring;
    /// the record's room goes back to the kernel once `each` returns.
    pub fn read(&mut self, mut each: impl FnMut(&[u8])) -> Slice {
        // A wake-up from before this read is for records it reads.
        self.drain_at = Instant::now() + DRAIN_INTERVAL;
        let ring = &mut self.ring;
        let mut slice = Slice::default();
        while slice.records < SLICE_RECORDS && slice.bytes < SLICE_BYTES {
            let Some(record) = ring.next() else {
                break;
            };
            slice.records += 1;
            slice.bytes += record.len() + RECORD_HEADER;
            each(&record);
        }
        slice.full = slice.records == SLICE_RECORDS || slice.bytes >= SLICE_BYTES;
        self.more = slice.full;
        self.metrics.capture.read(slice.records as u64);
        slice
    }

    /// At shutdown: reads one slice of what the kernel submitted before; `full` says to call
    /// again. What was submitted before fits in the ring, so at most a ring's worth is read
    /// in all: a flood that goes on cannot hold the shutdown up.
    pub fn read_last(&mut self, each: impl FnMut(&[u8])) -> Slice {
        let mut slice = self.read(each);
        self.last_left = self.last_left.saturating_sub(slice.bytes);
        slice.full &= self.last_left > 0;
        slice
    }
}
