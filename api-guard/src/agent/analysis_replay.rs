//! Replay harness for the analysis step (issue 15): the keep-alive exchanges of the parsing
//! replay (`pipeline::replay`: nginx serving a 1 KiB file to wrk -c50), parsed and annotated
//! with the route label and client first, then what the analysis adds per exchange with the
//! daemon's default settings, on one thread: LLM recognition (`LlmCalls::annotate`),
//! detection (request notices and exchanges, `Detections::observe`) and discovery
//! (`Discovery::observe`). The hand-off to the analysis threads has its own harness
//! (`analysis::worker::handoff`). Load-independent cost:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*analyse_batches*' \
//!   target/release/deps/api_guard-HASH --ignored --exact analysis::replay::analysis_replay
//! ```
//!
//! and divide the instructions by `pipeline::replay::EXCHANGES`. Needs root (the enforcer's
//! BPF maps). `ANALYSIS_REPLAY_OUT=FILE` writes what the analysis left behind (metrics, events,
//! the inventory) to compare before and after a change.

use std::sync::Arc;

use api_guard::http::Phase;
use tokio::sync::{mpsc, watch};

use super::{
    detect::{build_engine, Detections},
    discover::Discovery,
    identity::ClientIdentities,
    routes::RouteLabels,
    worker::Analyzer,
};
use crate::{
    config::Config,
    exchange::Exchange,
    llm::LlmCalls,
    output::EventSink,
    pipeline::replay::{conn_table, enforcer, llm_calls, records, EXCHANGES},
    record,
    telemetry::Metrics,
};

/// The analysis of one parsing task and its two threads, with the default settings.
struct Analysis {
    llm: LlmCalls,
    detections: Detections,
    discovery: Discovery,
    metrics: Metrics,
    events: Arc<std::sync::Mutex<Vec<u8>>>,
    inventory: super::discover::SharedInventory,
}

/// The exchanges of the parsing replay as the parsing task hands them to the analysis, in
/// its batches: request notices and exchanges, route labelled and identified.
fn parsed(
    config: &Config,
    metrics: &Metrics,
    routes: &mut RouteLabels,
    identity: watch::Receiver<api_guard::identity::Identifier>,
) -> Vec<Vec<Arc<Exchange>>> {
    let (untrack, _untracked) = mpsc::channel(1 << 16);
    let mut table = conn_table(config, metrics, untrack);
    let mut clients = ClientIdentities::new(identity);
    let mut batches = Vec::new();
    for batch in records() {
        let mut out = Vec::new();
        for bytes in &batch {
            match record::decode(bytes) {
                Ok(event) => table.apply(event, &mut out),
                Err(error) => panic!("replay record: {error}"),
            }
        }
        for shared in &mut out {
            let exchange = Arc::make_mut(shared);
            clients.identify(exchange);
            if exchange.http.phase == Phase::Exchange {
                routes.label(exchange);
            }
        }
        batches.push(out);
    }
    batches
}

fn analysis(config: &Config, metrics: &Metrics, routes: &mut RouteLabels) -> Analysis {
    let (events, buf) = EventSink::memory();
    let enforcer = enforcer(config, metrics, &events);
    let providers = Arc::new(LlmCalls::provider_matcher(&config.llm));
    let (_, identity) = watch::channel(config.identity.identifier());
    let engine = build_engine(&config.detect)
        .expect("engine")
        .expect("detection on");
    let detections = Detections::new(
        &config.detect,
        engine,
        enforcer,
        metrics.clone(),
        events.clone(),
    )
    .with_llm_providers(providers.clone())
    .with_identity(identity);
    let state = std::env::temp_dir().join(format!("ag-analysis-replay-{}", std::process::id()));
    let discovery = Discovery::new(
        &config.discover,
        state.clone(),
        routes,
        metrics.clone(),
        events.clone(),
    )
    .expect("discovery")
    .expect("discovery on");
    let inventory = discovery.shared();
    let llm = llm_calls(config, metrics, events);
    Analysis {
        llm,
        detections,
        discovery,
        metrics: metrics.clone(),
        events: buf,
        inventory,
    }
}

/// What the analysis does with the batches (the function callgrind counts).
#[inline(never)]
fn analyse_batches(a: &mut Analysis, batches: &mut [Vec<Arc<Exchange>>]) -> usize {
    analyse(a, batches)
}

/// LLM recognition on the parsing task, then each thread's work on what it is handed
/// (detection: the request notices and the exchanges; discovery: the server-side exchanges).
#[inline(never)]
fn analyse(a: &mut Analysis, batches: &mut [Vec<Arc<Exchange>>]) -> usize {
    let mut analysed = 0;
    for batch in batches.iter_mut() {
        for shared in batch.iter_mut() {
            if shared.http.phase == Phase::Exchange {
                a.llm.annotate(Arc::make_mut(shared));
            }
        }
        for exchange in batch.iter() {
            a.detections.observe(exchange);
        }
        for exchange in batch.iter() {
            if exchange.http.phase == Phase::Exchange && exchange.client.is_some() {
                a.discovery.observe(exchange);
                analysed += 1;
            }
        }
    }
    analysed
}

#[test]
#[ignore = "a benchmark harness: run under callgrind (see the module doc); needs root"]
fn analysis_replay() {
    let config = Config::default();
    let metrics = Metrics::new();
    let mut routes = RouteLabels::new(&config.discover.inventory, config.discover.max_route_labels);
    let mut a = analysis(&config, &metrics, &mut routes);
    let (_identity, identity_rx) = watch::channel(config.identity.identifier());
    let mut batches = parsed(&config, &metrics, &mut routes, identity_rx);
    // Lazily built tables (matchers, classifiers) are built by a throwaway analysis of a
    // few batches first: the count is the steady state's.
    let mut warm_routes =
        RouteLabels::new(&config.discover.inventory, config.discover.max_route_labels);
    let mut warm = analysis(&config, &Metrics::new(), &mut warm_routes);
    let mut few: Vec<_> = batches.iter().take(8).cloned().collect();
    analyse(&mut warm, &mut few);
    drop((warm, few));
    let started = std::time::Instant::now();
    let analysed = analyse_batches(&mut a, std::hint::black_box(&mut batches));
    let elapsed = started.elapsed();
    assert_eq!(analysed, EXCHANGES as usize);
    eprintln!(
        "analysed {EXCHANGES} exchanges in {elapsed:?} ({:.2} µs each, wall clock)",
        elapsed.as_secs_f64() * 1e6 / f64::from(EXCHANGES)
    );
    a.discovery.tick();
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("ag-analysis-replay-{}", std::process::id())),
    );
    let inventory = serde_json::to_string_pretty(&a.inventory.snapshot()).expect("inventory");
    let events = String::from_utf8_lossy(&a.events.lock().expect("events")).into_owned();
    // The process's own gauges and timings vary from run to run; the analysis' do not.
    let metrics: String = a
        .metrics
        .render()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains("_seconds") && !l.contains("process_"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(inventory.contains("/index.html"), "{inventory}");
    if let Ok(out) = std::env::var("ANALYSIS_REPLAY_OUT") {
        let text = format!("{metrics}\n{events}\n{inventory}\n");
        std::fs::write(out, text).expect("writing ANALYSIS_REPLAY_OUT");
    }
}
