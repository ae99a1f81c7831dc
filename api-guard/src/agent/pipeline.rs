//! The parsing task: reads the ring buffer, decodes each record in place, drives the
//! connection table and hands exchanges to enforcement, detection and the sink.
//! Single-threaded by design: per-connection state needs no locks.

use std::{sync::Arc, time::Duration};

use api_guard::http::Phase;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{
    analysis::{detect::DetectionQueue, discover::DiscoveryQueue, Annotator},
    capture::{reader::Ring, table::ConnTable},
    enforce::Enforcer,
    exchange::Exchange,
    output::exchanges::Sink,
    record,
    telemetry::{DropReason, Metrics, Stage},
    tls::hooks::Notifier,
    wallclock::monotonic_now_ns,
};

#[cfg(test)]
#[path = "pipeline_replay.rs"]
pub(crate) mod replay;

const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
const EXPIRE_INTERVAL: Duration = Duration::from_secs(5);

/// Full ring slices whose exchanges may wait for the ring to be drained before the analysis
/// threads get them (see [`Consumers::deliver`]): about 2 ms of parsing at most, a drain's
/// worth at the bench's rates (the 10 ms timer or a quarter of the ring).
const HOLD_SLICES: usize = 8;

/// Where finished exchanges go, in order: the shared facts (route label, client identity),
/// rate limits, the exchange sink (metrics and lines), detection and discovery (each on its
/// own thread).
pub struct Consumers {
    pub annotator: Annotator,
    pub enforcer: Arc<Enforcer>,
    pub detections: Option<DetectionQueue>,
    pub discovery: Option<DiscoveryQueue>,
    pub sink: Sink,
    /// Exchanges delivered but not yet handed to the analysis threads.
    pub held: Held,
}

/// What the analysis threads are to get at the next hand-off, in delivery order.
#[derive(Default)]
pub struct Held {
    /// For detection: each slice's request notices, then its exchanges.
    detect: Vec<Arc<Exchange>>,
    /// For discovery.
    discover: Vec<Arc<Exchange>>,
    /// The slice's exchanges being sorted (kept for its capacity).
    slice: Vec<Arc<Exchange>>,
    /// Slices delivered since the last hand-off.
    slices: usize,
}

impl Consumers {
    /// Delivers the exchanges one slice of records produced. Enforcement and the sink take
    /// them now; an idle analysis thread gets them once the ring is `drained` (or after
    /// [`HOLD_SLICES`] full slices), as one batch: it parks between two hand-offs, and waking
    /// it costs both sides a futex call and a context switch, so one wake-up per drain rather
    /// than per slice. A thread still busy with earlier exchanges is not parked: it gets them
    /// at once (no wake-up to save, and held exchanges would only grow its backlog later).
    /// The table makes each exchange in its `Arc`: annotated in place (the only reference
    /// yet), it is handed on without being moved again.
    fn deliver(&mut self, out: &mut Vec<Arc<Exchange>>, drained: bool) {
        if !out.is_empty() {
            self.take_slice(out);
        }
        let hold = !drained && self.held.slices < HOLD_SLICES;
        self.hand_off(hold);
    }

    fn take_slice(&mut self, out: &mut Vec<Arc<Exchange>>) {
        let to_detect = self.detections.is_some();
        let held = &mut self.held;
        held.slices += 1;
        if to_detect {
            held.detect.reserve(out.len());
        }
        for mut shared in out.drain(..) {
            // Unique here, so this never clones.
            let exchange = Arc::make_mut(&mut shared);
            if exchange.http.phase == Phase::RequestPart {
                // A window of a request body still arriving: for detection only.
                self.annotator.clients.identify(exchange);
                if to_detect {
                    held.detect.push(shared);
                }
                continue;
            }
            if exchange.http.phase == Phase::Request {
                // A request just ended, its response still to come: detection judges it
                // and token limits reserve for it now (the exchange that follows goes
                // everywhere).
                self.annotator.clients.identify(exchange);
                if self.enforcer.limits_tokens() {
                    if let Some(tokens) = self.annotator.llm.reservation(exchange) {
                        self.enforcer.reserve_request(exchange, tokens);
                    }
                }
                if to_detect {
                    held.detect.push(shared);
                }
                continue;
            }
            self.annotator.annotate(exchange);
            self.enforcer.observe(exchange);
            if let Err(error) = self.sink.record(exchange) {
                warn!(%error, "Writing an exchange failed");
            }
            held.slice.push(shared);
        }
        // Detection gets the slice's request notices, then its whole exchanges.
        if to_detect {
            held.detect.extend(held.slice.iter().cloned());
        }
        if self.discovery.is_some() {
            held.discover.append(&mut held.slice);
        } else {
            held.slice.clear();
        }
    }

    /// One message (and at most one wake-up) per analysis thread for what is held; with
    /// `hold`, only to the threads still busy.
    fn hand_off(&mut self, hold: bool) {
        let held = &mut self.held;
        if let Some(detect) = &self.detections {
            if !hold || (!held.detect.is_empty() && detect.busy()) {
                detect.submit(std::mem::take(&mut held.detect));
            }
        }
        if let Some(discover) = &self.discovery {
            if !hold || (!held.discover.is_empty() && discover.busy()) {
                discover.submit(std::mem::take(&mut held.discover));
            }
        }
        if held.detect.is_empty() && held.discover.is_empty() {
            held.slices = 0;
        }
    }

    fn flush(&mut self) {
        if let Err(error) = self.sink.flush() {
            warn!(%error, "Flushing exchanges failed");
        }
    }
}

/// Reads the ring buffer and parses each record in place, as it is read: no copy, no
/// hand-off. Exchanges are delivered after each slice of records (at most
/// [`crate::capture::reader::SLICE_RECORDS`]); between slices the task gives the runtime a turn, and the
/// flush and expiry timers compete with the next slice, so a flood cannot starve them.
pub async fn run(
    mut ring: Ring,
    mut table: ConnTable,
    mut consumers: Consumers,
    metrics: Metrics,
    tls: Notifier,
    shutdown: CancellationToken,
) {
    let mut flush = tokio::time::interval(FLUSH_INTERVAL);
    let mut expire = tokio::time::interval(EXPIRE_INTERVAL);
    let mut out = Vec::new();
    loop {
        // Whether the ring was read to its end (timers: nothing more is coming now).
        let mut drained = true;
        tokio::select! {
            ready = ring.wait() => match ready {
                Ok(()) => {
                    let slice =
                        ring.read(|bytes| handle(bytes, &mut table, &metrics, &tls, &mut out));
                    drained = !slice.full;
                }
                Err(error) => {
                    warn!(%error, "Waiting for the ring buffer failed");
                    break;
                }
            },
            _ = flush.tick() => consumers.flush(),
            _ = expire.tick() => table.expire_idle(monotonic_now_ns(), &mut out),
            () = shutdown.cancelled() => break,
        }
        consumers.deliver(&mut out, drained);
    }
    // Whatever the kernel submitted before we stopped still gets parsed, slice by slice.
    loop {
        let slice = ring.read_last(|bytes| handle(bytes, &mut table, &metrics, &tls, &mut out));
        consumers.deliver(&mut out, !slice.full);
        if !slice.full {
            break;
        }
    }
    // Requests still waiting for responses are reported with status null.
    table.drain(monotonic_now_ns(), &mut out);
    consumers.deliver(&mut out, true);
    consumers.flush();
}

/// Decodes one record, borrowed from the ring, and applies it.
fn handle(
    bytes: &[u8],
    table: &mut ConnTable,
    metrics: &Metrics,
    tls: &Notifier,
    out: &mut Vec<Arc<Exchange>>,
) {
    match record::decode(bytes) {
        Ok(record::Event::Exec { tgid }) => tls.process_changed(tgid),
        Ok(event) => table.apply(event, out),
        Err(error) => {
            debug!(%error, "Undecodable capture record");
            metrics
                .capture
                .dropped(Stage::Userspace, DropReason::MalformedRecord);
        }
    }
}
