//! The ring buffer, read in place: records are handed to the caller while they are still in
//! the ring (no copy, no hand-off to another task), in slices of a bounded size.
//!
//! Kernel submissions usually skip the wakeup (see the eBPF side), so besides epoll
//! readiness the ring is read on a short timer. The ring itself is the only buffer: when
//! its reader falls behind, it fills and the kernel counts exactly what it had to drop
//! (`apiguard_capture_dropped_total{reason="ringbuf_full"}`): nothing is lost unseen.

use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::{io::unix::AsyncFd, time::Interval};

use crate::telemetry::Metrics;

/// Longest a record waits in the ring buffer when no wakeup was forced.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

/// Records read in one slice: the reader hands its results on after each slice and gives the
/// runtime a turn every few slices ([`SLICES_PER_TURN`]), so timers and other tasks run
/// during a flood.
pub const SLICE_RECORDS: usize = 256;

/// Full slices read back to back between two turns given to the runtime: a turn
/// (`yield_now`) is a pass through the scheduler and a poll of the I/O driver
/// (`epoll_wait`), paid after every full slice before; now every fourth (at most 1,024
/// records or 1 MiB, about a millisecond of parsing).
const SLICES_PER_TURN: u32 = 4;

/// A slice also ends once its records hold this many bytes (up to 64 KiB each), so that the
/// work between two deliveries (and two turns) stays short.
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
    fd: AsyncFd<RingBuf<MapData>>,
    tick: Interval,
    /// The last slice was full: read again (after a turn of the runtime every
    /// [`SLICES_PER_TURN`] slices).
    more: bool,
    /// Full slices read since the last turn given to the runtime.
    unyielded: u32,
    /// Ring bytes [`Ring::read_last`] may still read (starts at the ring's size).
    last_left: usize,
    metrics: Metrics,
}

impl Ring {
    /// Registers `ring` (of `size` bytes) with the runtime.
    pub fn new(ring: RingBuf<MapData>, size: u32, metrics: Metrics) -> std::io::Result<Self> {
        // SAFETY: the ring buffer owns its map fd, which stays open and unchanged until the
        // AsyncFd (and the RingBuf inside it) is dropped.
        let fd = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
        let mut tick = tokio::time::interval(DRAIN_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            fd,
            tick,
            more: false,
            unyielded: 0,
            last_left: size as usize,
            metrics,
        })
    }

    /// Resolves when records may be waiting: at once when the last slice was full (after
    /// yielding to the runtime every [`SLICES_PER_TURN`] such slices, and whenever the
    /// task's cooperative budget is spent), else on readiness or the drain timer.
    /// Cancel-safe, so it can be one branch of a `select!`.
    pub async fn wait(&mut self) -> std::io::Result<()> {
        if self.more {
            self.unyielded += 1;
            if self.unyielded >= SLICES_PER_TURN {
                self.unyielded = 0;
                tokio::task::yield_now().await;
            } else {
                tokio::task::coop::consume_budget().await;
            }
            return Ok(());
        }
        self.unyielded = 0;
        tokio::select! {
            guard = self.fd.readable_mut() => {
                // Cleared before reading: a submission after this point wakes us again (or
                // the timer reads it), and the read below sees everything before it.
                guard?.clear_ready();
            }
            _ = self.tick.tick() => {}
        }
        Ok(())
    }

    /// Reads one slice, handing each record to `each` while it is borrowed from the ring;
    /// the record's room goes back to the kernel once `each` returns.
    pub fn read(&mut self, mut each: impl FnMut(&[u8])) -> Slice {
        let ring = self.fd.get_mut();
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
