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

impl Consumers {
    /// Delivers the exchanges one batch of records produced; the analysis threads get them
    /// as one batch each. The table makes each exchange in its `Arc`: annotated in place
    /// (the only reference yet), it is handed on without being moved again.
    fn deliver(&mut self, out: &mut Vec<Arc<Exchange>>) {
        if out.is_empty() {
            return;
        }
        let mut batch = Vec::with_capacity(out.len());
        let mut requests = Vec::with_capacity(out.len());
        for mut shared in out.drain(..) {
            // Unique here, so this never clones.
            let exchange = Arc::make_mut(&mut shared);
            if exchange.http.phase == Phase::RequestPart {
                // A window of a request body still arriving: for detection only.
                self.annotator.clients.identify(exchange);
                requests.push(shared);
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
                requests.push(shared);
                continue;
            }
            self.annotator.annotate(exchange);
            self.enforcer.observe(exchange);
            if let Err(error) = self.sink.record(exchange) {
                warn!(%error, "Writing an exchange failed");
            }
            batch.push(shared);
        }
        self.sink.publish_metrics();
        // One message (and at most one wake-up) per analysis thread per batch: detection
        // gets the request notices, then the whole exchanges, in one vector.
        match (&self.detections, &self.discovery) {
            (Some(detect), Some(discover)) => {
                requests.extend(batch.iter().cloned());
                detect.submit(requests);
                discover.submit(batch);
            }
            (Some(detect), None) => {
                requests.extend(batch);
                detect.submit(requests);
            }
            (None, Some(discover)) => discover.submit(batch),
            (None, None) => {}
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
        tokio::select! {
            ready = ring.wait() => match ready {
                Ok(()) => {
                    ring.read(|bytes| handle(bytes, &mut table, &metrics, &tls, &mut out));
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
        consumers.deliver(&mut out);
    }
    // Whatever the kernel submitted before we stopped still gets parsed, slice by slice.
    loop {
        let slice = ring.read_last(|bytes| handle(bytes, &mut table, &metrics, &tls, &mut out));
        consumers.deliver(&mut out);
        if !slice.full {
            break;
        }
    }
    // Requests still waiting for responses are reported with status null.
    table.drain(monotonic_now_ns(), &mut out);
    consumers.deliver(&mut out);
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
