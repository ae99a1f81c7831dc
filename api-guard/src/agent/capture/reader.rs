//! The ring buffer reader: drains records into a bounded channel and does nothing else.
//! Kernel submissions usually skip the wakeup (see the eBPF side), so besides epoll
//! readiness the reader drains on a short timer. When the parser falls behind, the reader
//! waits; the ring buffer then fills and the kernel counts exactly what it had to drop
//! (`apiguard_capture_dropped_total{reason="ringbuf_full"}`): nothing is lost unseen.
//!
//! The backlog between reader and parser is bounded in bytes, not only in batches: records
//! copied out of the ring and not yet parsed may hold at most [`Backlog`]'s budget (the
//! ring's own size), so a parser stall cannot cost more memory than the ring it drains.
//! Bounded by batches alone, 16 batches of 256 records of up to 64 KiB could hold 256 MiB.

use std::{sync::Arc, time::Duration};

use aya::maps::{MapData, RingBuf};
use bytes::Bytes;
use tokio::{
    io::unix::AsyncFd,
    sync::{mpsc, OwnedSemaphorePermit, Semaphore},
};
use tokio_util::sync::CancellationToken;

use crate::telemetry::Metrics;

/// Longest a record waits in the ring buffer when no wakeup was forced.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

/// Records are handed on in batches: one channel send (and at most one cross-thread wakeup)
/// per batch instead of per record.
pub const BATCH: usize = 256;

/// A batch is closed once its records hold this many bytes, so the one batch the reader
/// holds while it waits for room is small next to the budget.
const BATCH_BYTES: usize = 256 * 1024;

/// What one copied record costs besides its bytes: its `Bytes` handle, its slot in the
/// batch and the allocator's rounding.
const RECORD_OVERHEAD: usize = 64;

/// A batch of ring records; the room it takes in the backlog is given back when it is
/// dropped (once parsed).
pub struct Batch {
    pub records: Vec<Bytes>,
    _room: OwnedSemaphorePermit,
}

/// The backlog's byte budget, shared by the reader (takes room) and the batches (give it
/// back).
#[derive(Clone)]
pub struct Backlog {
    room: Arc<Semaphore>,
    budget: u32,
}

impl Backlog {
    /// A backlog of at most `budget` bytes (at least one batch's worth).
    pub fn new(budget: u32) -> Self {
        let budget = budget.max(BATCH_BYTES as u32);
        Self {
            room: Arc::new(Semaphore::new(budget as usize)),
            budget,
        }
    }

    /// What a batch of `bytes` payload bytes in `records` records costs, capped at the
    /// budget so that any batch fits once the backlog is empty.
    fn cost(&self, records: usize, bytes: usize) -> u32 {
        let cost = bytes.saturating_add(records.saturating_mul(RECORD_OVERHEAD));
        u32::try_from(cost).unwrap_or(u32::MAX).min(self.budget)
    }

    /// Waits for room for `records`, then wraps them; `None` once shutting down.
    async fn admit(&self, records: Vec<Bytes>, bytes: usize) -> Option<Batch> {
        let cost = self.cost(records.len(), bytes);
        let room = self.room.clone().acquire_many_owned(cost).await.ok()?;
        Some(Batch {
            records,
            _room: room,
        })
    }

    /// Bytes of the budget in use now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.budget as usize - self.room.available_permits()
    }
}

pub async fn run(
    ring: RingBuf<MapData>,
    tx: mpsc::Sender<Batch>,
    backlog: Backlog,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // SAFETY: the ring buffer owns its map fd, which stays open and unchanged until the
    // AsyncFd (and the RingBuf inside it) is dropped.
    let mut fd = unsafe { AsyncFd::register(ring) }.map_err(std::io::Error::from)?;
    let mut tick = tokio::time::interval(DRAIN_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            guard = fd.readable_mut() => {
                let mut guard = guard?;
                drain(guard.get_inner_mut(), &tx, &backlog, &metrics).await;
                guard.clear_ready();
            }
            _ = tick.tick() => drain(fd.get_mut(), &tx, &backlog, &metrics).await,
            () = shutdown.cancelled() => {
                // Whatever the kernel submitted before we stop still gets parsed.
                drain(fd.get_mut(), &tx, &backlog, &metrics).await;
                return Ok(());
            }
        }
    }
}

async fn drain(
    ring: &mut RingBuf<MapData>,
    tx: &mpsc::Sender<Batch>,
    backlog: &Backlog,
    metrics: &Metrics,
) {
    loop {
        // Copy out first: a RingBufItem borrows the ring and cannot live across an await.
        let mut records = Vec::with_capacity(BATCH);
        let mut bytes = 0;
        while records.len() < BATCH && bytes < BATCH_BYTES {
            match ring.next() {
                Some(item) => {
                    bytes += item.len();
                    records.push(Bytes::copy_from_slice(&item));
                }
                None => break,
            }
        }
        let full = records.len() == BATCH || bytes >= BATCH_BYTES;
        if !forward(records, bytes, tx, backlog, metrics).await || !full {
            return;
        }
    }
}

/// Hands `records` on once the backlog has room; false when there was nothing to hand on
/// or the parser is gone (shutting down).
async fn forward(
    records: Vec<Bytes>,
    bytes: usize,
    tx: &mpsc::Sender<Batch>,
    backlog: &Backlog,
    metrics: &Metrics,
) -> bool {
    if records.is_empty() {
        return false;
    }
    metrics.capture.read(records.len() as u64);
    let Some(batch) = backlog.admit(records, bytes).await else {
        return false;
    };
    tx.send(batch).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize, size: usize) -> (Vec<Bytes>, usize) {
        let records: Vec<Bytes> = (0..n).map(|_| Bytes::from(vec![0u8; size])).collect();
        (records, n * size)
    }

    #[tokio::test]
    async fn the_backlog_holds_at_most_its_budget_and_waits_for_the_parser() {
        let backlog = Backlog::new(1024 * 1024);
        let metrics = Metrics::new();
        let (tx, mut rx) = mpsc::channel(64);
        // Three batches of 256 KiB (+ overhead) fit in 1 MiB; the fourth waits.
        for _ in 0..3 {
            let (r, b) = records(4, 64 * 1024);
            assert!(forward(r, b, &tx, &backlog, &metrics).await);
        }
        assert_eq!(backlog.used(), 3 * (256 * 1024 + 4 * RECORD_OVERHEAD));
        let (r, b) = records(4, 64 * 1024);
        let waiting = {
            let (tx, backlog, metrics) = (tx.clone(), backlog.clone(), metrics.clone());
            tokio::spawn(async move { forward(r, b, &tx, &backlog, &metrics).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the fourth batch must wait for room"
        );
        assert_eq!(rx.len(), 3);
        // The parser takes one batch and drops it: its room goes to the waiting one.
        let first = rx.recv().await.unwrap();
        assert_eq!(first.records.len(), 4);
        drop(first);
        assert!(waiting.await.unwrap());
        assert_eq!(rx.len(), 3);
        assert_eq!(backlog.used(), 3 * (256 * 1024 + 4 * RECORD_OVERHEAD));
        while let Ok(batch) = rx.try_recv() {
            drop(batch);
        }
        assert_eq!(backlog.used(), 0);
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_budget_still_passes_alone() {
        let backlog = Backlog::new(BATCH_BYTES as u32);
        let metrics = Metrics::new();
        let (tx, mut rx) = mpsc::channel(4);
        let (r, b) = records(2, BATCH_BYTES);
        assert!(forward(r, b, &tx, &backlog, &metrics).await);
        assert_eq!(backlog.used(), BATCH_BYTES);
        drop(rx.recv().await.unwrap());
        assert_eq!(backlog.used(), 0);
        // Nothing to hand on: nothing sent.
        assert!(!forward(Vec::new(), 0, &tx, &backlog, &metrics).await);
        assert!(rx.try_recv().is_err());
    }
}
