//! The ring buffer reader: drains records into a bounded channel and does nothing else.
//! Kernel submissions usually skip the wakeup (see the eBPF side), so besides epoll
//! readiness the reader drains on a short timer. When the parser falls behind, `send` waits;
//! the ring buffer then fills and the kernel counts exactly what it had to drop.

use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use bytes::Bytes;
use tokio::{io::unix::AsyncFd, sync::mpsc};
use tokio_util::sync::CancellationToken;

use crate::telemetry::Metrics;

/// Longest a record waits in the ring buffer when no wakeup was forced.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

/// Records are handed on in batches: one channel send (and at most one cross-thread wakeup)
/// per batch instead of per record.
pub const BATCH: usize = 256;

pub type Batch = Vec<Bytes>;

pub async fn run(
    ring: RingBuf<MapData>,
    tx: mpsc::Sender<Batch>,
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
                drain(guard.get_inner_mut(), &tx, &metrics).await;
                guard.clear_ready();
            }
            _ = tick.tick() => drain(fd.get_mut(), &tx, &metrics).await,
            () = shutdown.cancelled() => {
                // Whatever the kernel submitted before we stop still gets parsed.
                drain(fd.get_mut(), &tx, &metrics).await;
                return Ok(());
            }
        }
    }
}

async fn drain(ring: &mut RingBuf<MapData>, tx: &mpsc::Sender<Batch>, metrics: &Metrics) {
    loop {
        // Copy out first: a RingBufItem borrows the ring and cannot live across an await.
        let mut batch = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            match ring.next() {
                Some(item) => batch.push(Bytes::copy_from_slice(&item)),
                None => break,
            }
        }
        if batch.is_empty() {
            return;
        }
        metrics.capture.read(batch.len() as u64);
        let more = batch.len() == BATCH;
        if tx.send(batch).await.is_err() {
            return; // the parser is gone: shutting down
        }
        if !more {
            return;
        }
    }
}
