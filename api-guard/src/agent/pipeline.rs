//! The parsing task: reads the ring buffer, decodes each record in place, drives the
//! connection table and hands exchanges to enforcement, detection and the sink.
//! Single-threaded by design: per-connection state needs no locks.

use std::{sync::Arc, time::Duration};

use api_guard::http::Phase;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::{
    analysis::{detect::DetectionQueue, discover::DiscoveryQueue, worker::Returned, Annotator},
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

/// Exchanges the parsing task annotates, enforces and records at once as records finish
/// them, within a slice. Delivered only after the whole slice was parsed (256 records, each
/// exchange about 3 KiB with its body and the ring's copy), each was read back from beyond
/// the first-level cache: in the agent's profile the route cache's compare of the host and
/// path and the client's identity were 4 % of its CPU. One at a time, the parser's and the
/// consumers' code took turns in the instruction cache (callgrind: data misses 156 -> 141
/// per exchange, instruction misses 3 -> 14, instructions +80); eight keep the data in the
/// first-level cache and take turns eight times less often.
const DELIVER_EXCHANGES: usize = 8;

/// Most exchanges (request notices included) held for an analysis thread across the full
/// slices of one read of the ring before they are handed over: two slices of keep-alive
/// exchanges (detection gets a request notice and an exchange per two records).
const HOLD_EXCHANGES: usize = 512;

/// Most slices of one read whose exchanges are held before they are handed over, whatever
/// their count: a slice also ends at 256 KiB, so a flood of large bodies (four 64 KiB
/// records a slice) would otherwise hold its exchanges over a hundred slices (tens of
/// megabytes, and their findings as many milliseconds late), and hand the analysis queues
/// more at once than their byte bound takes. Four slices are at most 1,024 records or
/// 1 MiB of them: a few milliseconds of parsing.
const HOLD_SLICES: u32 = 4;

/// Where finished exchanges go, in order: the shared facts (route label, client identity),
/// rate limits, the exchange sink (metrics and lines), detection and discovery (each on its
/// own thread).
pub struct Consumers {
    pub annotator: Annotator,
    pub enforcer: Arc<Enforcer>,
    pub detections: Option<DetectionQueue>,
    pub discovery: Option<DiscoveryQueue>,
    pub sink: Sink,
}

/// Exchanges delivered and not yet handed to the analysis threads (see
/// [`Consumers::deliver_holding`]).
#[derive(Default)]
struct Held {
    /// For detection: each slice's request notices, then its whole exchanges.
    detect: Vec<Arc<Exchange>>,
    discover: Vec<Arc<Exchange>>,
    /// The slice's whole exchanges so far (reused), added after its request notices.
    batch: Vec<Arc<Exchange>>,
    /// What each thread gave back: freed here, its vectors filled again.
    detected: Returned,
    discovered: Returned,
    /// Slices delivered since the last hand-over (bounded by [`HOLD_SLICES`]).
    slices: u32,
}

impl Held {
    fn len(&self) -> usize {
        self.detect.len().max(self.discover.len())
    }
}

impl Consumers {
    /// Delivers the exchanges one batch of records produced and hands them to the analysis
    /// threads at once.
    #[cfg(test)]
    fn deliver(&mut self, out: &mut Vec<Arc<Exchange>>) {
        self.deliver_holding(out, &mut Held::default(), false);
    }

    /// Ends a slice: delivers what is left in `out` (the slice's records delivered theirs
    /// as they came, [`Consumers::deliver_record`]; the timers' come here): annotation,
    /// enforcement and the sink now; the analysis threads get the slice's exchanges, with
    /// those `held` before, as one batch each, now unless `hold` (more records are waiting to be read at once), fewer than
    /// [`HOLD_EXCHANGES`] are held and they came from fewer than [`HOLD_SLICES`] slices. A slice of the ring is short (at most 256 records): at
    /// 30k requests a second one 10 ms read of the ring was two to four slices, each waking
    /// both analysis threads from their futex wait; held over the full slices of one read,
    /// they are woken once per read. What is held waits only for the next slice's parsing
    /// (well under a millisecond), never for a timer. The table makes each exchange in its
    /// `Arc`: annotated in place (the only reference yet), it is handed on without being
    /// moved again.
    fn deliver_holding(&mut self, out: &mut Vec<Arc<Exchange>>, held: &mut Held, hold: bool) {
        self.reclaim(held);
        self.deliver_all(out, held);
        self.hold_batch(held);
        self.sink.publish_metrics();
        let n = held.len();
        if n == 0 {
            held.slices = 0;
            return;
        }
        held.slices += 1;
        if hold && n < HOLD_EXCHANGES && held.slices < HOLD_SLICES {
            return;
        }
        held.slices = 0;
        // One message (and at most one wake-up) per analysis thread per hand-over.
        if let Some(detect) = &self.detections {
            detect.submit(std::mem::take(&mut held.detect));
        }
        if let Some(discover) = &self.discovery {
            discover.submit(std::mem::take(&mut held.discover));
        }
    }

    /// Frees what the analysis threads analysed: after every slice, not only when the next
    /// hand-over comes (held over a read, it would stay alive one read longer).
    fn reclaim(&mut self, held: &mut Held) {
        if let Some(detect) = &self.detections {
            detect.reclaim(&mut held.detected);
        }
        if let Some(discover) = &self.discovery {
            discover.reclaim(&mut held.discovered);
        }
    }

    /// Annotation, enforcement and the sink for the exchanges the last records finished,
    /// once [`DELIVER_EXCHANGES`] are waiting (the slice's end delivers the rest), while
    /// they are still in the cache (the parser just wrote them); the analysis threads get
    /// them with the slice ([`Consumers::deliver_holding`]).
    fn deliver_record(&mut self, out: &mut Vec<Arc<Exchange>>, held: &mut Held) {
        if out.len() >= DELIVER_EXCHANGES {
            self.deliver_all(out, held);
        }
    }

    fn deliver_all(&mut self, out: &mut Vec<Arc<Exchange>>, held: &mut Held) {
        for shared in out.drain(..) {
            self.apply(shared, held);
        }
    }

    /// Annotation, enforcement and the sink for one exchange; what the analysis threads
    /// read is added to `held` (request notices to `detect`, whole exchanges to `batch`
    /// until the slice ends: [`Consumers::hold_batch`]).
    fn apply(&mut self, mut shared: Arc<Exchange>, held: &mut Held) {
        let detect = self.detections.is_some();
        let discover = self.discovery.is_some();
        if held.detect.capacity() == 0 && detect {
            held.detect = held.detected.batch();
        }
        if held.discover.capacity() == 0 && discover {
            held.discover = held.discovered.batch();
        }
        // Unique here, so this never clones.
        let exchange = Arc::make_mut(&mut shared);
        if exchange.http.phase == Phase::RequestPart {
            // A window of a request body still arriving: for detection only.
            self.annotator.clients.identify(exchange);
            if detect {
                held.detect.push(shared);
            }
            return;
        }
        if exchange.http.phase == Phase::Request {
            // A request just ended, its response still to come: detection judges it and
            // token limits reserve for it now (the exchange that follows goes everywhere).
            self.annotator.clients.identify(exchange);
            if self.enforcer.limits_tokens() {
                if let Some(tokens) = self.annotator.llm.reservation(exchange) {
                    self.enforcer.reserve_request(exchange, tokens);
                }
            }
            if detect {
                held.detect.push(shared);
            }
            return;
        }
        self.annotator.annotate(exchange);
        self.enforcer.observe(exchange);
        if let Err(error) = self.sink.record(exchange) {
            warn!(%error, "Writing an exchange failed");
        }
        if detect || discover {
            held.batch.push(shared);
        }
    }

    /// Adds the slice's whole exchanges to what each analysis thread gets, after its
    /// request notices.
    fn hold_batch(&self, held: &mut Held) {
        match (self.detections.is_some(), self.discovery.is_some()) {
            (true, true) => {
                held.detect.extend(held.batch.iter().cloned());
                held.discover.append(&mut held.batch);
            }
            (true, false) => held.detect.append(&mut held.batch),
            (false, true) => held.discover.append(&mut held.batch),
            (false, false) => {}
        }
    }

    fn flush(&mut self) {
        if let Err(error) = self.sink.flush() {
            warn!(%error, "Flushing exchanges failed");
        }
    }
}

/// Reads the ring buffer and parses each record in place, as it is read: no copy, no
/// hand-off. Exchanges are delivered as each record finishes them (annotation, enforcement,
/// the sink), gathered for the analysis threads over each slice of records (at most
/// [`crate::capture::reader::SLICE_RECORDS`]), and handed to them once the read of the ring
/// ends (or [`HOLD_EXCHANGES`] are held, or [`HOLD_SLICES`] slices' worth); between slices the task gives the
/// runtime a turn now and then ([`crate::capture::reader::Ring::wait`]), and the flush and
/// expiry timers compete with the next slice, so a flood cannot starve them.
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
    let mut held = Held::default();
    loop {
        // Whether more records wait to be read at once (the slice read was full).
        let mut more = false;
        tokio::select! {
            ready = ring.wait() => match ready {
                Ok(()) => {
                    let slice = ring.read(|bytes| {
                        handle(bytes, &mut table, &metrics, &tls, &mut out);
                        consumers.deliver_record(&mut out, &mut held);
                    });
                    more = slice.full;
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
        consumers.deliver_holding(&mut out, &mut held, more);
    }
    // Whatever the kernel submitted before we stopped still gets parsed, slice by slice.
    loop {
        let slice = ring.read_last(|bytes| {
            handle(bytes, &mut table, &metrics, &tls, &mut out);
            consumers.deliver_record(&mut out, &mut held);
        });
        consumers.deliver_holding(&mut out, &mut held, slice.full);
        if !slice.full {
            break;
        }
    }
    // Requests still waiting for responses are reported with status null.
    table.drain(monotonic_now_ns(), &mut out);
    consumers.deliver_holding(&mut out, &mut held, false);
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
