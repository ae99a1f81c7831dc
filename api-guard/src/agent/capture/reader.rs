//! The ring buffer reader: drains records into a bounded channel and does nothing else.
//! Kernel submissions usually skip the wakeup (see the eBPF side), so besides epoll
//! readiness the reader drains on a short timer. When the parser falls behind, `send` waits;
//! the ring buffer then fills and the kernel counts exactly what it had to drop.

use std::time::Duration;

use api_guard_common::{CHUNK_SIZE, DATA_HEADER_SIZE};
use aya::maps::{MapData, RingBuf};
use bytes::{Bytes, BytesMut};
use tokio::{io::unix::AsyncFd, sync::mpsc};
use tokio_util::sync::CancellationToken;

use crate::telemetry::Metrics;

/// Longest a record waits in the ring buffer when no wakeup was forced.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

/// Records are handed on in batches: one channel send (and at most one cross-thread wakeup)
/// per batch instead of per record.
pub const BATCH: usize = 256;

/// Size of the buffers records are copied into: one allocation for several dozen records.
const BUFFER_BYTES: usize = 64 * 1024;

/// The largest record the kernel side writes (a data header and one chunk), padded: a batch
/// ends before the rest of its buffer could be too small for the next record, so a record
/// never has to be moved to a new buffer.
const MAX_RECORD: usize = DATA_HEADER_SIZE + CHUNK_SIZE + 64;

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
    let mut buf = BytesMut::new();
    let mut tick = tokio::time::interval(DRAIN_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            guard = fd.readable_mut() => {
                let mut guard = guard?;
                drain(guard.get_inner_mut(), &mut buf, &tx, &metrics).await;
                guard.clear_ready();
            }
            _ = tick.tick() => drain(fd.get_mut(), &mut buf, &tx, &metrics).await,
            () = shutdown.cancelled() => {
                // Whatever the kernel submitted before we stop still gets parsed.
                drain(fd.get_mut(), &mut buf, &tx, &metrics).await;
                return Ok(());
            }
        }
    }
}

async fn drain(
    ring: &mut RingBuf<MapData>,
    buf: &mut BytesMut,
    tx: &mpsc::Sender<Batch>,
    metrics: &Metrics,
) {
    loop {
        // Copy out first: a RingBufItem borrows the ring and cannot live across an await.
        // Records are copied back to back into `buf` and handed on as slices of it: an
        // allocation serves many records and batches (a new one is made only when the
        // rest of the current one is too small), instead of one allocation per record,
        // each freed on the parser's thread. The parser keeps no record past its batch.
        if buf.capacity() < MAX_RECORD {
            // Empty after the last split: a fresh buffer (or the old one, when the parser
            // has dropped every record in it), nothing to copy.
            buf.reserve(BUFFER_BYTES);
        }
        let mut ends = Vec::with_capacity(BATCH);
        let mut room = true;
        while ends.len() < BATCH && room {
            match ring.next() {
                Some(item) => {
                    // Never larger than MAX_RECORD; if one were, this still reserves.
                    buf.extend_from_slice(&item);
                    ends.push(buf.len());
                    room = buf.capacity() - buf.len() >= MAX_RECORD;
                }
                None => break,
            }
        }
        if ends.is_empty() {
            return;
        }
        let all = buf.split().freeze();
        let mut start = 0;
        let batch: Batch = ends
            .iter()
            .map(|&end| {
                let record = all.slice(start..end);
                start = end;
                record
            })
            .collect();
        metrics.capture.read(batch.len() as u64);
        let more = batch.len() == BATCH || !room;
        if tx.send(batch).await.is_err() {
            return; // the parser is gone: shutting down
        }
        if !more {
            return;
        }
    }
}
