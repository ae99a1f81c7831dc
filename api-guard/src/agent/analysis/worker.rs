//! One shape for every analysis stage that runs off the parsing task (detection, discovery and
//! those to come): a thread of its own behind a bounded queue. The parsing task never waits
//! for analysis: when a queue is full the exchange is counted as skipped, never blocked on.
//! Exchanges are handed over in batches (those one batch of capture records produced): one
//! queue message, and at most one thread wake-up, per batch; waking a thread per exchange
//! cost about a third of the daemon's time under load. The bound still counts exchanges,
//! and the bytes they hold ([`QUEUE_BYTES`]).
//! Control messages (reloaded settings) travel the same queue, so they apply in order with the
//! exchanges around them.
//!
//! Analysed batches go back to the parsing task, which frees them on its next delivery
//! ([`Worker::reclaim`], after every slice of the ring, whether or not it hands anything
//! over): an exchange's strings and buffers were allocated there, and the allocator frees a
//! block on the thread that owns it without the atomic hand-back (and the owner's later
//! collection of it) that a free from another thread costs. The emptied batch vectors are
//! filled again ([`Returned`]), and the list they come back in is swapped, not rebuilt, so
//! neither side allocates for the hand-back. A thread left idle frees them itself
//! ([`tidy`]), and lets the allocator return the burst's freed pages.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc::{self, RecvTimeoutError, SyncSender, TrySendError},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use api_guard::detect::stream::BodyValue;
use tracing::warn;

use crate::{exchange::Exchange, telemetry::QueueSkips};

/// Bytes the exchanges waiting in one queue may hold (bodies, heads, the scanned values of
/// a request body and [`EXCHANGE_OVERHEAD`] each), besides its count. Without it a queue of
/// 4,096 exchanges behind a busy thread could hold a quarter of a GiB of 64 KiB request
/// bodies during a flood of large POSTs; with it, a queue holds at most about a hundred such
/// exchanges and skips (counts) the rest. 8 MiB still hold the whole count of 1 KiB
/// exchanges, a thread that far behind judges a request a few hundred ms late anyway, and
/// under a flood of fresh 1 KiB JSON POSTs the detection queue held ~24 MiB with 16.
pub const QUEUE_BYTES: usize = 8 << 20;
/// What an exchange holds besides its bodies, heads and scanned values: the struct, its
/// strings and header lists (an estimate).
const EXCHANGE_OVERHEAD: usize = 1024;
/// What one scanned value of a request body holds besides its text: its slot in the
/// window's list and the allocations of its name and value (their size classes' slack).
const VALUE_OVERHEAD: usize = std::mem::size_of::<BodyValue>() + 32;

/// The bytes an exchange is counted for in a queue's byte bound. A request notice's scanned
/// values count: a 1 KiB JSON body makes dozens of them, several times the body's size.
fn weight(exchange: &Exchange) -> usize {
    let h = &exchange.http;
    let heads = h
        .request_header_bytes
        .saturating_add(h.response_header_bytes);
    let scan = h.request_scan.as_deref().map_or(0, |w| {
        w.values
            .capacity()
            .saturating_mul(VALUE_OVERHEAD)
            .saturating_add(w.bytes)
    });
    EXCHANGE_OVERHEAD
        .saturating_add(h.request_body.len())
        .saturating_add(h.response_body.len())
        .saturating_add(scan)
        .saturating_add(usize::try_from(heads).unwrap_or(usize::MAX))
}

/// An analysis stage, run by [`spawn`] on its own thread.
pub trait Analyzer: Send + 'static {
    /// Messages other than exchanges, e.g. reloaded settings.
    type Control: Send + 'static;
    /// The thread's name (also in logs).
    const NAME: &'static str;
    /// Whether only requests this host received are analysed (not its own outgoing calls).
    const SERVER_SIDE_ONLY: bool = true;
    /// How often [`Analyzer::tick`] runs, if at all.
    const TICK: Option<Duration> = None;

    fn observe(&mut self, exchange: &Exchange);
    fn control(&mut self, message: Self::Control);
    /// Periodic work (gauges, snapshots), whether or not exchanges flow.
    fn tick(&mut self) {}
    /// The last work once the queue is closed and drained.
    fn finish(&mut self) {}
}

enum Work<C> {
    /// A batch and its [`weight`]s' sum.
    Exchanges(Vec<Arc<Exchange>>, usize),
    Control(C),
}

/// Analysed batches on their way back to the parsing task, to be freed there. Bounded by
/// what was handed over: at most the queue's exchanges, until the parsing task's next
/// hand-off.
#[derive(Default)]
struct Analysed(Mutex<Vec<Vec<Arc<Exchange>>>>);

impl Analysed {
    fn give_back(&self, batch: Vec<Arc<Exchange>>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(batch);
    }

    /// The batches given back so far (dropped by the caller, outside the lock).
    fn take(&self) -> Vec<Vec<Arc<Exchange>>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Swaps the batches given back so far with `into`'s (empty) list: the thread gives
    /// back into a list that keeps its room, allocated once.
    fn swap(&self, into: &mut Vec<Vec<Arc<Exchange>>>) {
        let mut given = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if into.is_empty() {
            std::mem::swap(&mut *given, into);
        } else {
            into.append(&mut given);
        }
    }
}

/// Emptied batch vectors kept for the next hand-overs (their exchanges freed): more come
/// back only while a thread is behind, and those are freed.
const SPARE_BATCHES: usize = 4;

/// The parsing task's side of a thread's give-back ([`Worker::reclaim`]): the list the
/// analysed batches are swapped into, and emptied batch vectors to fill again.
#[derive(Default)]
pub struct Returned {
    lists: Vec<Vec<Arc<Exchange>>>,
    spare: Vec<Vec<Arc<Exchange>>>,
}

impl Returned {
    /// An empty vector for the next batch: one that came back, else a new one.
    pub fn batch(&mut self) -> Vec<Arc<Exchange>> {
        self.spare.pop().unwrap_or_default()
    }
}

/// How long an analysis thread waits without a message before it tidies up ([`tidy`]).
const TIDY_AFTER: Duration = Duration::from_secs(1);

/// Run by an analysis thread idle for [`TIDY_AFTER`]: the parsing task has not handed
/// anything over since, so the batches it did not come back for are freed here, and the
/// allocator returns what the burst left freed. mimalloc purges freed pages (its purge
/// delay) only when a later page is freed: after a flood of 64 KiB POSTs the idle agent
/// kept the last batches of its queues alive and ~8 MiB more resident without this.
fn tidy(analysed: &Analysed) {
    drop(analysed.take());
    // SAFETY: takes no pointers; mimalloc allows a collection from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// The parsing task's end of an analysis thread's queue (the reloader may hold a clone).
pub struct Worker<C> {
    tx: SyncSender<Work<C>>,
    /// Exchanges handed over and not yet analysed (the queue's bound is on these).
    queued: Arc<AtomicUsize>,
    /// Their [`weight`]s (bounded by [`QUEUE_BYTES`]).
    queued_bytes: Arc<AtomicUsize>,
    analysed: Arc<Analysed>,
    capacity: usize,
    skipped: QueueSkips,
    name: &'static str,
    server_side_only: bool,
}

impl<C> Clone for Worker<C> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            queued: self.queued.clone(),
            queued_bytes: self.queued_bytes.clone(),
            analysed: self.analysed.clone(),
            capacity: self.capacity,
            skipped: self.skipped.clone(),
            name: self.name,
            server_side_only: self.server_side_only,
        }
    }
}

/// Starts `analyzer` on its own thread behind a queue of `capacity` exchanges; exchanges it
/// has no room for are counted in `skipped`. The thread ends once every [`Worker`] is dropped
/// and the queue drained.
pub fn spawn<A: Analyzer>(
    mut analyzer: A,
    capacity: usize,
    skipped: QueueSkips,
) -> std::io::Result<(Worker<A::Control>, JoinHandle<()>)> {
    // Every message carries at least one exchange or is a control message: `capacity`
    // messages are room enough for `capacity` exchanges.
    let (tx, rx) = mpsc::sync_channel::<Work<A::Control>>(capacity);
    let queued = Arc::new(AtomicUsize::new(0));
    let done = queued.clone();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let done_bytes = queued_bytes.clone();
    let analysed = Arc::new(Analysed::default());
    let give_back = analysed.clone();
    let thread = std::thread::Builder::new()
        .name(A::NAME.into())
        .spawn(move || {
            let mut next_tick = A::TICK.map(|every| Instant::now() + every);
            // When the thread, idle since its last message, tidies up (None: nothing to).
            let mut tidy_at: Option<Instant> = None;
            loop {
                let deadline = match (next_tick, tidy_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let work = match deadline {
                    None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                };
                let now = Instant::now();
                if work.is_ok() {
                    tidy_at = Some(now + TIDY_AFTER);
                } else if tidy_at.is_some_and(|at| now >= at) {
                    tidy_at = None;
                    tidy(&give_back);
                }
                match work {
                    Ok(Work::Exchanges(batch, bytes)) => {
                        for exchange in &batch {
                            analyzer.observe(exchange);
                        }
                        // Room is made once per batch: two atomic updates on a line the
                        // parsing task reads, instead of two per exchange.
                        done.fetch_sub(batch.len(), Ordering::Relaxed);
                        done_bytes.fetch_sub(bytes, Ordering::Relaxed);
                        give_back.give_back(batch);
                    }
                    Ok(Work::Control(message)) => analyzer.control(message),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if let (Some(at), Some(every)) = (next_tick, A::TICK) {
                    if now >= at {
                        analyzer.tick();
                        next_tick = Some(now + every);
                    }
                }
            }
            analyzer.finish();
        })?;
    let worker = Worker {
        tx,
        queued,
        queued_bytes,
        analysed,
        capacity,
        skipped,
        name: A::NAME,
        server_side_only: A::SERVER_SIDE_ONLY,
    };
    Ok((worker, thread))
}

impl<C> Worker<C> {
    /// Hands a batch of exchanges over without waiting: those the queue has no room for
    /// (the thread is behind, or gone) are counted as skipped instead.
    pub fn submit(&self, mut batch: Vec<Arc<Exchange>>) {
        // The parsing task identifies the client of every request this host received.
        if self.server_side_only {
            batch.retain(|exchange| exchange.client.is_some());
        }
        let room = self
            .capacity
            .saturating_sub(self.queued.load(Ordering::Relaxed));
        // The exchanges that fit, in order, by count and by bytes; an empty queue takes one
        // whatever its size, so no exchange is too large to be analysed at all.
        let queued_bytes = self.queued_bytes.load(Ordering::Relaxed);
        let (mut fit, mut bytes) = (0, 0usize);
        for exchange in batch.iter().take(room) {
            let w = weight(exchange);
            let total = queued_bytes.saturating_add(bytes).saturating_add(w);
            if total > QUEUE_BYTES && (queued_bytes > 0 || fit > 0) {
                break;
            }
            (fit, bytes) = (fit + 1, bytes.saturating_add(w));
        }
        if batch.len() > fit {
            self.skipped.add((batch.len() - fit) as u64);
            batch.truncate(fit);
        }
        if batch.is_empty() {
            return;
        }
        let n = batch.len();
        self.queued.fetch_add(n, Ordering::Relaxed);
        self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        let error = match self.tx.try_send(Work::Exchanges(batch, bytes)) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => None,
            Err(TrySendError::Disconnected(_)) => Some(()),
        };
        if error.is_some() {
            warn!(thread = self.name, "An analysis thread is gone");
        }
        self.queued.fetch_sub(n, Ordering::Relaxed);
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.skipped.add(n as u64);
    }

    /// Frees, on the calling thread (the parsing task's, which allocated them), the
    /// exchanges the thread has analysed since the last call, and keeps their emptied
    /// vectors (up to [`SPARE_BATCHES`]) in `returned` for the next hand-overs. Called after
    /// every delivery: what was analysed does not wait for the next hand-over to be freed.
    pub fn reclaim(&self, returned: &mut Returned) {
        self.analysed.swap(&mut returned.lists);
        for mut batch in returned.lists.drain(..) {
            batch.clear();
            if returned.spare.len() < SPARE_BATCHES {
                returned.spare.push(batch);
            }
        }
    }

    /// Hands a control message over, waiting for room in the queue (it applies between two
    /// exchanges).
    pub fn control(&self, message: C) -> anyhow::Result<()> {
        self.tx
            .send(Work::Control(message))
            .map_err(|_| anyhow::anyhow!("the {} thread is gone", self.name))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use api_guard::{
        detect::{inputs::Source, stream::Window},
        http::Phase,
    };

    use super::*;
    use crate::exchange::{test_exchange, Role};

    /// Records what it saw; on the first exchange it says so on `entered`, then waits on `gate`.
    struct Probe {
        seen: Arc<Mutex<Vec<String>>>,
        entered: mpsc::Sender<()>,
        gate: Option<mpsc::Receiver<()>>,
    }

    impl Analyzer for Probe {
        type Control = &'static str;
        const NAME: &'static str = "probe";

        fn observe(&mut self, exchange: &Exchange) {
            if let Some(gate) = self.gate.take() {
                let _ = self.entered.send(());
                let _ = gate.recv();
            }
            self.seen
                .lock()
                .unwrap()
                .push(exchange.http.path.to_string());
        }

        fn control(&mut self, message: &'static str) {
            self.seen.lock().unwrap().push(message.into());
        }

        fn finish(&mut self) {
            self.seen.lock().unwrap().push("finished".into());
        }
    }

    /// A [`Probe`] behind a queue of `capacity` that holds its first exchange at the gate
    /// until `open` is sent to.
    struct Gated {
        seen: Arc<Mutex<Vec<String>>>,
        open: mpsc::Sender<()>,
        in_observe: mpsc::Receiver<()>,
        skipped: QueueSkips,
        worker: Worker<&'static str>,
        thread: JoinHandle<()>,
    }

    fn gated(capacity: usize) -> Gated {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (open, gate) = mpsc::channel();
        let (entered, in_observe) = mpsc::channel();
        let skipped = QueueSkips::detached();
        let probe = Probe {
            seen: seen.clone(),
            entered,
            gate: Some(gate),
        };
        let (worker, thread) = spawn(probe, capacity, skipped.clone()).unwrap();
        Gated {
            seen,
            open,
            in_observe,
            skipped,
            worker,
            thread,
        }
    }

    #[test]
    fn full_queues_count_skips_and_control_keeps_its_place() {
        let g = gated(2);
        let ex = |path: &str| Arc::new(test_exchange(Role::Server, "192.0.2.1:1", path));
        // The first is taken and held at the gate; two fill the queue; two are skipped.
        g.worker.submit(vec![ex("/1")]);
        g.in_observe.recv().unwrap();
        g.worker.control("probe").unwrap();
        // "/1" is still being analysed: room for one more; of a batch of three, two are skipped.
        g.worker.submit(vec![ex("/2"), ex("/3"), ex("/4")]);
        assert_eq!(g.skipped.get(), 2);
        // Outgoing calls are not analysed (nor counted).
        g.worker.submit(vec![Arc::new(test_exchange(
            Role::Client,
            "192.0.2.9:80",
            "/out",
        ))]);
        assert_eq!(g.skipped.get(), 2);
        g.open.send(()).unwrap();
        g.worker.control("reloaded").unwrap();
        drop(g.worker);
        g.thread.join().unwrap();
        assert_eq!(
            *g.seen.lock().unwrap(),
            ["/1", "probe", "/2", "reloaded", "finished"]
        );
    }

    #[test]
    fn queues_are_bounded_by_bytes_too() {
        let g = gated(4096);
        // Bodies of a quarter of the bound (less the per-exchange allowance).
        let quarter = QUEUE_BYTES / 4 - EXCHANGE_OVERHEAD;
        let big = |path: &str, body: usize| {
            let mut ex = test_exchange(Role::Server, "192.0.2.1:1", path);
            ex.http.request_body = vec![b'x'; body].into();
            Arc::new(ex)
        };
        // Held at the gate, still counted: the queue holds a quarter of its bytes.
        g.worker.submit(vec![big("/1", quarter)]);
        g.in_observe.recv().unwrap();
        // Room for three more quarters by bytes (4,095 by count): the fifth and sixth skipped.
        let batch = (2..=6).map(|i| big(&format!("/{i}"), quarter)).collect();
        g.worker.submit(batch);
        assert_eq!(g.skipped.get(), 2);
        // The bound is reached exactly: even a small exchange waits for room.
        g.worker.submit(vec![big("/small", 0)]);
        assert_eq!(g.skipped.get(), 3);
        g.open.send(()).unwrap();
        drop(g.worker);
        g.thread.join().unwrap();
        assert_eq!(
            *g.seen.lock().unwrap(),
            ["/1", "/2", "/3", "/4", "finished"]
        );

        // A request notice's scanned values count as they are held: a notice with a small
        // body and values of a quarter of the bound (and its overhead): three fit, not four.
        let values = |path: &str| {
            let mut ex = test_exchange(Role::Server, "192.0.2.1:1", path);
            ex.http.phase = Phase::Request;
            let value = BodyValue {
                source: Source::Json,
                name: "$.v".into(),
                value: "x".into(),
            };
            let n = QUEUE_BYTES / 4 / (VALUE_OVERHEAD + 4);
            ex.http.request_scan = Some(Box::new(Window {
                values: vec![value; n],
                bytes: n * 4,
                ..Window::default()
            }));
            Arc::new(ex)
        };
        let v = gated(4096);
        v.worker.submit(vec![values("/v1")]);
        v.in_observe.recv().unwrap();
        v.worker
            .submit(vec![values("/v2"), values("/v3"), values("/v4")]);
        assert_eq!(v.skipped.get(), 1);
        v.open.send(()).unwrap();
        drop(v.worker);
        v.thread.join().unwrap();
        assert_eq!(*v.seen.lock().unwrap(), ["/v1", "/v2", "/v3", "finished"]);

        // An exchange larger than the whole bound is taken by an empty queue.
        let h = gated(4096);
        h.open.send(()).unwrap();
        h.worker.submit(vec![big("/huge", QUEUE_BYTES)]);
        drop(h.worker);
        h.thread.join().unwrap();
        assert_eq!(h.skipped.get(), 0);
        assert_eq!(*h.seen.lock().unwrap(), ["/huge", "finished"]);
    }
}

#[cfg(test)]
mod give_back {
    use std::{
        sync::{mpsc, Arc},
        time::{Duration, Instant},
    };

    use super::{spawn, Analyzer, Returned, TIDY_AFTER};
    use crate::{
        exchange::{test_exchange, Exchange, Role},
        telemetry::QueueSkips,
    };

    /// Does nothing with an exchange; a control message is a fence, answered once the
    /// batches before it are analysed.
    pub(super) struct Fenced;

    impl Analyzer for Fenced {
        type Control = mpsc::Sender<()>;
        const NAME: &'static str = "fenced";

        fn observe(&mut self, _: &Exchange) {}

        fn control(&mut self, fence: mpsc::Sender<()>) {
            let _ = fence.send(());
        }
    }

    #[test]
    fn analysed_exchanges_are_freed_by_the_next_reclaim() {
        let (worker, thread) = spawn(Fenced, 8, QueueSkips::detached()).unwrap();
        let (fence, fenced) = mpsc::channel();
        let first = Arc::new(test_exchange(Role::Server, "192.0.2.1:1", "/1"));
        worker.submit(vec![first.clone()]);
        worker.control(fence.clone()).unwrap();
        fenced.recv().unwrap();
        // Analysed, and held for the parsing task (not freed on the analysis thread).
        assert_eq!(Arc::strong_count(&first), 2);
        let mut returned = Returned::default();
        worker.reclaim(&mut returned);
        assert_eq!(Arc::strong_count(&first), 1);
        // Its vector comes back empty, to be filled again.
        let mut again = returned.batch();
        assert!(again.is_empty() && again.capacity() >= 1);
        again.push(Arc::new(test_exchange(Role::Server, "192.0.2.1:1", "/2")));
        worker.submit(again);
        drop(worker);
        thread.join().unwrap();
    }

    #[test]
    fn an_idle_thread_frees_what_the_parsing_task_did_not_come_back_for() {
        let (worker, thread) = spawn(Fenced, 8, QueueSkips::detached()).unwrap();
        let last = Arc::new(test_exchange(Role::Server, "192.0.2.1:1", "/last"));
        worker.submit(vec![last.clone()]);
        // No hand-off follows: once idle for TIDY_AFTER, the thread frees it itself.
        let deadline = Instant::now() + TIDY_AFTER * 10;
        while Arc::strong_count(&last) > 1 {
            assert!(
                Instant::now() < deadline,
                "the analysed batch was never freed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(worker);
        thread.join().unwrap();
    }
}

/// The hand-off's cost per exchange, the parsing task's side and the analysis threads'
/// alike (handing over, taking, freeing): an ignored harness for instruction counts. Build
/// with `cargo test --release -p api-guard --bin api-guard --no-run`, then run it under
/// `valgrind --tool=callgrind api_guard-HASH --ignored --exact analysis::worker::handoff::handoff_harness`
/// with `HANDOFF_EXCHANGES=2000` and `=22000`: the difference over 20,000 is the cost per
/// exchange (the start-up cancels out).
#[cfg(test)]
mod handoff {
    use std::sync::{mpsc, Arc};

    use super::{give_back::Fenced, spawn, Returned};
    use crate::{
        exchange::{test_exchange, Exchange, Role},
        telemetry::QueueSkips,
    };

    /// An exchange as the overhead bench's keep-alive GET makes one.
    fn exchange(n: usize) -> Arc<Exchange> {
        let mut ex = test_exchange(Role::Server, "10.0.0.2:40000", "/body");
        let h = &mut ex.http;
        h.host = Some("10.0.0.1:80".into());
        h.status = Some(200);
        h.request_headers = [("Host", "10.0.0.1:80")].into();
        h.response_headers = [
            ("Server", "nginx"),
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", "1024"),
            ("Connection", "keep-alive"),
        ]
        .into();
        h.response_body = vec![b'x'; 1024].into();
        h.request_start_ns = n as u64;
        Arc::new(ex)
    }

    #[test]
    #[ignore = "a benchmark harness: run under callgrind (see above)"]
    fn handoff_harness() {
        let n: usize = std::env::var("HANDOFF_EXCHANGES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        const BATCH: usize = 100;
        let (detect, d) = spawn(Fenced, 4096, QueueSkips::detached()).unwrap();
        let (discover, q) = spawn(Fenced, 4096, QueueSkips::detached()).unwrap();
        let (fence, fenced) = mpsc::channel();
        let (mut detected, mut discovered) = (Returned::default(), Returned::default());
        for b in 0..n / BATCH {
            // As the parsing task does: free what came back, fill its vectors again.
            detect.reclaim(&mut detected);
            discover.reclaim(&mut discovered);
            let mut batch = discovered.batch();
            batch.extend((0..BATCH).map(|i| exchange(b * BATCH + i)));
            let mut notices = detected.batch();
            notices.extend(batch.iter().cloned());
            detect.submit(notices);
            discover.submit(batch);
            // Both threads done before the next batch: the same interleaving every run.
            detect.control(fence.clone()).unwrap();
            discover.control(fence.clone()).unwrap();
            fenced.recv().unwrap();
            fenced.recv().unwrap();
        }
        detect.reclaim(&mut detected);
        discover.reclaim(&mut discovered);
        drop((detect, discover));
        d.join().unwrap();
        q.join().unwrap();
    }
}
