//! Replay harness for the parsing task (issue 15): ring records of keep-alive exchanges, as
//! nginx serving a 1 KiB file to wrk -c50 produces them, fed through record decoding, the
//! connection table, HTTP/1 parsing and `Consumers::deliver` (annotation, enforcement, the
//! sink, the hand-off to two analysis threads that do nothing). Load-independent cost:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*replay_batches*' \
//!   target/release/deps/api_guard-HASH --ignored --exact pipeline::replay::keepalive_replay
//! ```
//!
//! and divide the instructions by [`EXCHANGES`]. Needs root (the enforcer's BPF maps).

use std::{sync::Arc, time::Duration};

use api_guard_common::{
    ConnOpenEvent, DataHeader, Endpoint, EventHeader, EventKind, Plain, ADDR_TUPLE, AF_INET,
    DIR_EGRESS, DIR_INGRESS, ROLE_SERVER,
};
use aya::maps::{HashMap, LpmTrie, PerCpuArray};
use tokio::sync::{mpsc, watch};

use super::*;
use crate::{
    analysis::{
        identity::ClientIdentities,
        routes::RouteLabels,
        worker::{self, Analyzer},
    },
    capture::{interest::BodyReaders, table::ConnTable},
    config::Config,
    enforce::xdp::XdpMaps,
    llm::{self, LlmCalls},
    output::EventSink,
    telemetry::QueueSkips,
    tls::TlsLibraries,
};

/// The agent's allocator, counting the allocations of the thread it runs on (test builds
/// only): the replay reports the parsing task's allocations per exchange.
struct Counting;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_allocation() {
    // `try_with`: the slot may be gone while a thread's other thread-locals drop.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed on unchanged to mimalloc; the counter allocates nothing.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract, passed on.
        unsafe { crate::ALLOCATOR.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract, passed on.
        unsafe { crate::ALLOCATOR.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract, passed on.
        unsafe { crate::ALLOCATOR.realloc(ptr, layout, size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { crate::ALLOCATOR.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations (and reallocations) made so far on this thread.
fn allocations() -> u64 {
    ALLOCATIONS.with(std::cell::Cell::get)
}

/// Connections (wrk -c50) and exchanges in all.
const CONNS: u32 = 50;
pub const EXCHANGES: u32 = 20_000;
/// Records per batch, as the parsing task reads them from the ring in slices.
const BATCH: usize = crate::capture::reader::SLICE_RECORDS;

fn bytes_of<T: Plain>(v: &T) -> Vec<u8> {
    // SAFETY: `v` is a live `T` of `size_of::<T>()` initialised bytes (`Plain`: no padding).
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn header(kind: EventKind, fd: u32, ts_ns: u64) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        tgid: 1000,
        tid: 1000,
        fd,
        conn_id: u64::from(fd) << 8,
        ts_ns,
    }
}

fn endpoint(last: u8, port: u16) -> Endpoint {
    let mut addr = [0; 16];
    addr[..4].copy_from_slice(&[10, 0, 0, last]);
    Endpoint {
        addr,
        port,
        family: AF_INET,
        _pad: 0,
    }
}

fn open(fd: u32) -> Vec<u8> {
    let mut comm = [0; 16];
    comm[..5].copy_from_slice(b"nginx");
    bytes_of(&ConnOpenEvent {
        hdr: header(EventKind::ConnOpen, fd, 1),
        local: endpoint(1, 8080),
        peer: endpoint(2, 40000 + fd as u16),
        comm,
        role: ROLE_SERVER,
        addr_source: ADDR_TUPLE,
        _pad: [0; 6],
    })
}

fn data(fd: u32, ts_ns: u64, dir: u8, payload: &[u8]) -> Vec<u8> {
    let mut record = bytes_of(&DataHeader {
        hdr: header(EventKind::Data, fd, ts_ns),
        gap_before: 0,
        gap_after: 0,
        call_len: payload.len() as u64,
        chunk_len: payload.len() as u32,
        dir,
        flags: 0,
        library: 0,
    });
    record.extend_from_slice(payload);
    // The ring buffer pads records to 8 bytes.
    record.resize(record.len().next_multiple_of(8), 0);
    record
}

/// The records, in batches: every connection opened, then rounds of one request and one
/// response per connection, as wrk and nginx interleave them. The replays lend each record
/// to the parser as the ring does (`&[u8]`).
pub fn records() -> Vec<Vec<Vec<u8>>> {
    const REQUEST: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n\r\n";
    let mut response = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 1024\r\nLast-Modified: Sun, 06 Dec 2026 09:00:00 GMT\r\nConnection: keep-alive\r\nETag: \"674a0c00-400\"\r\nAccept-Ranges: bytes\r\n\r\n".to_vec();
    response.resize(response.len() + 1024, b'x');
    let mut all: Vec<Vec<u8>> = (0..CONNS).map(|i| open(10 + i)).collect();
    let mut ts = 2;
    for _ in 0..EXCHANGES / CONNS {
        for i in 0..CONNS {
            all.push(data(10 + i, ts, DIR_INGRESS, REQUEST));
            all.push(data(10 + i, ts + 1, DIR_EGRESS, &response));
            ts += 2;
        }
    }
    all.chunks(BATCH).map(<[Vec<u8>]>::to_vec).collect()
}

/// Does nothing with what it is handed: the hand-off (and the free) is what is measured.
struct Idle<C>(std::marker::PhantomData<C>);

impl<C: Send + 'static> Analyzer for Idle<C> {
    type Control = C;
    const NAME: &'static str = "replay-idle";
    fn observe(&mut self, _: &Exchange) {}
    fn control(&mut self, _: C) {}
}

const NO_PREALLOC: u32 = 1;

fn maps() -> XdpMaps {
    let hint = "creating BPF maps (needs root)";
    XdpMaps {
        block_v4: HashMap::create(64, 0).expect(hint),
        block_v6: HashMap::create(64, 0).expect(hint),
        cidr_v4: LpmTrie::create(64, NO_PREALLOC).expect(hint),
        cidr_v6: LpmTrie::create(64, NO_PREALLOC).expect(hint),
        allow_v4: LpmTrie::create(64, NO_PREALLOC).expect(hint),
        allow_v6: LpmTrie::create(64, NO_PREALLOC).expect(hint),
        ifaces: HashMap::create(8, 0).expect(hint),
        stats: PerCpuArray::create(api_guard_common::xdp::XDP_STAT_COUNT, 0).expect(hint),
    }
}

/// The enforcer `main` builds from `config`, on fresh (unattached) XDP maps.
pub(crate) fn enforcer(config: &Config, metrics: &Metrics, events: &EventSink) -> Arc<Enforcer> {
    Enforcer::new(
        &config.enforce,
        &config.identity.trusted_proxies,
        maps(),
        Vec::new(),
        &[],
        metrics.clone(),
        events.clone(),
    )
    .expect("enforcer")
}

/// The connection table as `main` builds it (request notices and body scans on).
pub(crate) fn conn_table(
    config: &Config,
    metrics: &Metrics,
    untrack: mpsc::Sender<crate::capture::table::Untrack>,
) -> ConnTable {
    ConnTable::new(
        config.http.limits(),
        config.http.max_connections,
        Duration::from_secs(config.http.idle_timeout_secs),
        metrics.clone(),
        untrack,
        TlsLibraries::default(),
    )
    .with_request_notices(true)
    .with_body_scan(Some(api_guard::detect::stream::ScanLimits::of(
        &config.detect.limits,
    )))
    .with_body_readers(BodyReaders {
        detect: config.detect.enabled,
        discover: config
            .discover
            .enabled
            .then_some(config.discover.inventory.max_body_bytes),
        llm: config.llm.enabled,
    })
}

/// LLM recognition as `main` wires it, on fresh usage and egress books.
pub(crate) fn llm_calls(config: &Config, metrics: &Metrics, events: EventSink) -> LlmCalls {
    let providers = Arc::new(LlmCalls::provider_matcher(&config.llm));
    let usage =
        llm::usage::SharedUsage::new(llm::usage::UsageBook::new(config.llm.max_usage_entries));
    let egress =
        llm::egress::SharedEgress::new(llm::egress::EgressBook::new(config.llm.max_egress_entries));
    LlmCalls::new(
        config.llm.clone(),
        config.identity.api_key_headers.clone(),
        usage,
        metrics.clone(),
    )
    .with_egress(llm::egress::EgressTracker::new(
        providers,
        config.llm.allowed_providers.clone(),
        egress,
        events,
        metrics.clone(),
    ))
}

/// The parsing task's state with the daemon's default settings, as `main` wires it.
struct Parsing {
    table: ConnTable,
    consumers: Consumers,
    metrics: Metrics,
    _untracked: mpsc::Receiver<crate::capture::table::Untrack>,
    _identity: watch::Sender<api_guard::identity::Identifier>,
}

fn parsing() -> Parsing {
    parsing_reading(None)
}

/// [`parsing`], the bodies kept for `readers` instead of the default consumers.
fn parsing_reading(readers: Option<BodyReaders>) -> Parsing {
    let config = Config::default();
    let metrics = Metrics::new();
    let (events, _) = EventSink::memory();
    let enforcer = enforcer(&config, &metrics, &events);
    let (identity, identity_rx) = watch::channel(config.identity.identifier());
    let (untrack, untracked) = mpsc::channel(4096);
    let mut table = conn_table(&config, &metrics, untrack);
    if let Some(readers) = readers {
        table = table.with_body_readers(readers);
    }
    let (detections, _) = worker::spawn(
        Idle(std::marker::PhantomData),
        config.detect.queue_capacity,
        QueueSkips::detached(),
    )
    .expect("detection thread");
    let (discovery, _) = worker::spawn(
        Idle(std::marker::PhantomData),
        config.discover.queue_capacity,
        QueueSkips::detached(),
    )
    .expect("discovery thread");
    let consumers = Consumers {
        annotator: Annotator {
            routes: RouteLabels::new(&config.discover.inventory, config.discover.max_route_labels),
            clients: ClientIdentities::new(identity_rx),
            llm: llm_calls(&config, &metrics, events),
        },
        enforcer,
        detections: Some(detections),
        discovery: Some(discovery),
        sink: Sink::new(metrics.clone(), None).expect("sink"),
    };
    Parsing {
        table,
        consumers,
        metrics,
        _untracked: untracked,
        _identity: identity,
    }
}

/// What the parsing task does with the batches (the function callgrind counts).
#[inline(never)]
fn replay_batches(p: &mut Parsing, batches: Vec<Vec<Vec<u8>>>) -> usize {
    let mut out = Vec::new();
    // Each batch is one read of the ring, handed over whole, as `run` does.
    let mut held = Held::default();
    let mut delivered = 0;
    for batch in batches {
        for bytes in &batch {
            // `out` keeps what the last records finished until eight are waiting.
            let waiting = out.len();
            match record::decode(bytes) {
                Ok(event) => p.table.apply(event, &mut out),
                Err(error) => panic!("replay record: {error}"),
            }
            delivered += out.len() - waiting;
            p.consumers.deliver_record(&mut out, &mut held);
        }
        p.consumers.deliver_holding(&mut out, &mut held, false);
    }
    delivered
}

#[test]
#[ignore = "a benchmark harness: run under callgrind (see the module doc); needs root"]
fn keepalive_replay() {
    replay_keepalive(parsing());
}

/// [`keepalive_replay`] with no consumer reading bodies (detection, discovery and LLM
/// recognition off; the hand-offs as before): what copying the bodies costs.
#[test]
#[ignore = "a benchmark harness: run under callgrind (see the module doc); needs root"]
fn keepalive_replay_bodies_unread() {
    replay_keepalive(parsing_reading(Some(BodyReaders {
        detect: false,
        discover: None,
        llm: false,
    })));
}

fn replay_keepalive(mut p: Parsing) {
    let batches = records();
    let allocated = allocations();
    let started = std::time::Instant::now();
    let delivered = replay_batches(&mut p, std::hint::black_box(batches));
    let elapsed = started.elapsed();
    let allocated = allocations() - allocated;
    // Every request is handed out twice: alone when it ends (detection), then with its
    // response.
    assert_eq!(delivered, 2 * EXCHANGES as usize);
    let text = p.metrics.render();
    eprintln!(
        "replayed {EXCHANGES} exchanges in {elapsed:?} ({:.2} µs each, wall clock)",
        elapsed.as_secs_f64() * 1e6 / f64::from(EXCHANGES)
    );
    // Frees of the batches' records and of analysed exchanges are not counted: the
    // records were copied by the reader, the exchanges are freed on the analysis threads.
    eprintln!(
        "{:.2} allocations per exchange on the parsing task (reallocations included)",
        allocated as f64 / f64::from(EXCHANGES)
    );
    assert!(text.contains("apiguard_http_requests_total"));
}

/// wrk's side of a connection (a client socket), for [`keepalive_replay_both_sides`].
fn open_client(fd: u32) -> Vec<u8> {
    let mut comm = [0; 16];
    comm[..3].copy_from_slice(b"wrk");
    bytes_of(&ConnOpenEvent {
        hdr: header(EventKind::ConnOpen, fd, 1),
        local: endpoint(2, 40000 + fd as u16),
        peer: endpoint(1, 8080),
        comm,
        role: api_guard_common::ROLE_CLIENT,
        addr_source: ADDR_TUPLE,
        _pad: [0; 6],
    })
}

/// The records of [`records`] with wrk's side of each exchange too, as an agent capturing
/// every process on the host sees them: the request leaving wrk, arriving at nginx, the
/// response leaving nginx, arriving at wrk. Client-side exchanges go through LLM provider
/// recognition (the egress inventory), which the server side skips.
pub fn records_both_sides() -> Vec<Vec<Vec<u8>>> {
    const CLIENT_FD: u32 = 1000;
    let mut all: Vec<Vec<u8>> = Vec::new();
    for i in 0..CONNS {
        all.push(open_client(CLIENT_FD + i));
        all.push(open(10 + i));
    }
    // The server side's records come in the order `records` makes them: rounds of one
    // request and one response per connection, timestamps 2, 3, 4, ...
    let mut pairs = records().into_iter().flatten().skip(CONNS as usize);
    let payload = |record: &[u8]| -> Vec<u8> {
        let at = std::mem::offset_of!(DataHeader, chunk_len);
        let len = u32::from_le_bytes(record[at..at + 4].try_into().expect("chunk_len"));
        record[size_of::<DataHeader>()..size_of::<DataHeader>() + len as usize].to_vec()
    };
    let mut ts = 2;
    for _ in 0..EXCHANGES / CONNS {
        for i in 0..CONNS {
            let (Some(request), Some(response)) = (pairs.next(), pairs.next()) else {
                unreachable!("records makes a request and a response per exchange");
            };
            all.push(data(CLIENT_FD + i, ts, DIR_EGRESS, &payload(&request)));
            all.push(request);
            all.push(response.clone());
            all.push(data(
                CLIENT_FD + i,
                ts + 1,
                DIR_INGRESS,
                &payload(&response),
            ));
            ts += 2;
        }
    }
    all.chunks(BATCH).map(<[Vec<u8>]>::to_vec).collect()
}

/// [`keepalive_replay`] with wrk's side of every exchange captured too (the agent's
/// default, every process): callgrind it the same way, `--exact
/// pipeline::replay::keepalive_replay_both_sides`; [`EXCHANGES`] requests, each seen twice.
#[test]
#[ignore = "a benchmark harness: run under callgrind (see the module doc); needs root"]
fn keepalive_replay_both_sides() {
    let mut p = parsing();
    let batches = records_both_sides();
    let delivered = replay_batches(&mut p, std::hint::black_box(batches));
    // Server side: the request notice and the exchange; client side: the exchange.
    assert_eq!(delivered, 3 * EXCHANGES as usize);
    let text = p.metrics.render();
    for role in ["server", "client"] {
        let line = format!("apiguard_http_request_bytes_total{{role=\"{role}\"}}");
        assert!(text.contains(&line), "{line} in\n{text}");
    }
}

/// Records what it is handed, in order: each exchange's phase and request start.
struct Recorder<C>(
    Arc<std::sync::Mutex<Vec<(String, u64)>>>,
    std::marker::PhantomData<C>,
);

impl<C: Send + 'static> Analyzer for Recorder<C> {
    type Control = C;
    const NAME: &'static str = "replay-recorder";
    fn observe(&mut self, exchange: &Exchange) {
        let key = (
            format!("{:?}", exchange.http.phase),
            exchange.http.request_start_ns,
        );
        self.0.lock().unwrap().push(key);
    }
    fn control(&mut self, _: C) {}
}

type Seen = Arc<std::sync::Mutex<Vec<(String, u64)>>>;

/// [`parsing`], the analysis threads recording what they are handed; the threads end once
/// the returned state is dropped.
fn parsing_recording() -> (Parsing, Seen, Seen, Vec<std::thread::JoinHandle<()>>) {
    let mut p = parsing();
    let config = Config::default();
    let (detect_seen, discover_seen) = (Seen::default(), Seen::default());
    let (detections, d) = worker::spawn(
        Recorder(detect_seen.clone(), std::marker::PhantomData),
        config.detect.queue_capacity,
        QueueSkips::detached(),
    )
    .expect("detection thread");
    let (discovery, q) = worker::spawn(
        Recorder(discover_seen.clone(), std::marker::PhantomData),
        config.discover.queue_capacity,
        QueueSkips::detached(),
    )
    .expect("discovery thread");
    p.consumers.detections = Some(detections);
    p.consumers.discovery = Some(discovery);
    (p, detect_seen, discover_seen, vec![d, q])
}

/// Exchanges delivered record by record and held over the full slices of one read reach
/// each analysis thread in the same order as when every slice is delivered and handed over
/// at once; nothing is held once a read ends, and
/// no more than about [`HOLD_EXCHANGES`] are held, over fewer than [`HOLD_SLICES`] slices.
#[test]
fn held_hand_overs_keep_the_order() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the enforcer's BPF maps need root");
        return;
    }
    let batches: Vec<_> = records().into_iter().take(8).collect();
    let run = |hold: bool| {
        let (mut p, detect, discover, threads) = parsing_recording();
        let mut out = Vec::new();
        let mut held = Held::default();
        for (i, batch) in batches.iter().enumerate() {
            for bytes in batch {
                p.table
                    .apply(record::decode(bytes).expect("replay record"), &mut out);
                if hold {
                    // As `run` does: each record's exchanges delivered at once, the
                    // slice's handed over at its end.
                    p.consumers.deliver_record(&mut out, &mut held);
                }
            }
            if hold {
                let more = i + 1 < batches.len();
                p.consumers.deliver_holding(&mut out, &mut held, more);
                if i == 0 {
                    assert!(held.len() > 0, "the first slice's exchanges are held");
                }
                assert!(held.len() < HOLD_EXCHANGES, "held past the bound");
                assert!(held.slices < HOLD_SLICES, "held over too many slices");
            } else {
                p.consumers.deliver(&mut out);
            }
        }
        assert_eq!(held.len(), 0, "a read's end hands everything over");
        drop(p);
        for thread in threads {
            thread.join().unwrap();
        }
        let take = |seen: Seen| std::mem::take(&mut *seen.lock().unwrap());
        (take(detect), take(discover))
    };
    let (detect, discover) = run(false);
    assert!(detect.len() > 1000 && discover.len() > 500);
    let (held_detect, held_discover) = run(true);
    assert_eq!(detect, held_detect);
    assert_eq!(discover, held_discover);
}
