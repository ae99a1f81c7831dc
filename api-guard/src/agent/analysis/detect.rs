//! Live detection: every request a local server receives goes through the detection engine,
//! as soon as it is complete (the parsing task hands it out before its response), so a block
//! can drop the client while the answer is still being produced; what only the answer tells
//! (401/403 and 404 bursts) is judged when the exchange ends. Requests never handed out
//! alone (cut off by a capture gap or a close) are judged whole at the end. Each finding
//! is counted (`apiguard_detections_total{kind,severity}`) and reported as a `detection`
//! security event; a verdict at or above `detect.block_severity` blocks the client at XDP.
//!
//! Events are bounded per client (`detect.max_events_per_client`, per second): an attacker
//! sending thousands of payloads a second must not turn the event stream into a flood of its
//! own. What is held back is counted and reported in the client's next event (`suppressed`).
//!
//! The engine runs on its own thread behind a bounded queue ([`DetectionQueue`]): analysis must
//! never slow the parsing task that drains the kernel's ring buffer. When the queue is full the
//! exchange is not inspected, and that is counted (`apiguard_detect_exchanges_skipped_total`).

use std::{sync::Arc, thread::JoinHandle, time::Duration};

use api_guard::{
    detect::{DetectConfig, Engine, Finding, Request, Severity, Stage},
    event::{Detection, EventBody, ExchangeContext, RequestView, SecurityEvent},
    http::Phase,
    identity::ClientIdentity,
};
use tracing::{debug, warn};

use super::worker::{self, Analyzer, Worker};
use crate::{
    cluster::{signals::SignalTap, Publisher},
    enforce::{blocklist::BlockReason, target::Target, BlockRequest, EnforceError, Enforcer},
    exchange::Exchange,
    output::{EventBudget, EventSink},
    telemetry::Metrics,
};

pub struct Detections {
    engine: Engine,
    block_severity: Option<Severity>,
    block_for: Duration,
    enforcer: Arc<Enforcer>,
    metrics: Metrics,
    events: EventSink,
    budget: EventBudget,
    /// Cluster mode: (credential, address) pairs for the cluster-wide key-sharing count.
    signals: Option<SignalTap>,
}

impl Detections {
    /// `None` when `detect.enabled` is false.
    pub fn new(
        config: &DetectConfig,
        enforcer: Arc<Enforcer>,
        metrics: Metrics,
        events: EventSink,
    ) -> anyhow::Result<Option<Self>> {
        if !config.enabled {
            return Ok(None);
        }
        Ok(Some(Self {
            engine: Engine::new(config)?,
            block_severity: config.block_severity,
            block_for: Duration::from_secs(config.block_secs),
            enforcer,
            metrics,
            events,
            budget: EventBudget::new(config.max_events_per_client),
            signals: None,
        }))
    }

    /// Cluster mode: key sharing is also counted over all nodes (when `detect.auth` reports
    /// key sharing; its threshold and window as configured at start).
    pub fn with_cluster(mut self, publisher: Publisher, config: &DetectConfig) -> Self {
        let auth = &config.auth;
        if auth.enabled && auth.key_sharing {
            self.signals = Some(SignalTap::new(
                publisher,
                auth.max_clients_per_credential,
                auth.window_secs,
            ));
        }
        self
    }

    /// Starts the detection thread (see [`worker`]).
    pub fn spawn(self, capacity: usize) -> std::io::Result<(DetectionQueue, JoinHandle<()>)> {
        let skipped = self.metrics.detect.queue_skips();
        worker::spawn(self, capacity, skipped)
    }
}

impl Analyzer for Detections {
    type Control = Box<DetectSettings>;
    const NAME: &'static str = "detect";

    /// A reloaded `[detect]` section: a fresh engine (its windows and caches start empty),
    /// thresholds and the event budget.
    fn control(&mut self, s: Box<DetectSettings>) {
        self.engine = s.engine;
        self.block_severity = s.block_severity;
        self.block_for = s.block_for;
        self.budget = EventBudget::new(s.max_events_per_client);
    }

    /// Inspects a server-side exchange (outgoing calls this host makes are not judged).
    fn observe(&mut self, ex: &Exchange) {
        // Set on every server-side exchange by the parsing task.
        let Some(client) = &ex.client else {
            return;
        };
        let h = &ex.http;
        let req = Request {
            method: &h.method,
            path: &h.path,
            query: h.query.as_deref(),
            version: h.version,
            anomalies: &h.anomalies,
            headers: &h.request_headers,
            body: &h.request_body,
            body_len: h.request_body_bytes,
            head_len: h.request_header_bytes,
            peer: ex.conn.peer.map(|p| p.ip()),
            status: h.status,
        };
        let now = h.request_start_ns;
        let stage = match (h.phase, h.request_noticed) {
            (Phase::RequestPart, _) => Stage::BodyPart,
            (Phase::Request, _) => Stage::Request,
            (Phase::Exchange, true) => Stage::Outcome,
            (Phase::Exchange, false) => Stage::Whole,
        };
        let scan = h.request_scan.as_deref();
        let mut verdict = self.engine.inspect_scanned(stage, &req, scan, client, now);
        if matches!(stage, Stage::Request | Stage::Whole) {
            self.engine
                .account_uninspected_scanned(&req, scan, h.request_truncated, &mut verdict);
            if let Some(tap) = &mut self.signals {
                tap.observe(ex, client);
            }
        }
        if let Some(u) = verdict.uninspected {
            self.metrics.detect.uninspected(u.reason, u.bytes);
        }
        if verdict.inputs_skipped > 0 {
            self.metrics
                .detect
                .inputs_skipped(verdict.inputs_skipped as u64);
        }
        if verdict.findings.is_empty() {
            return;
        }
        let request = RequestView::of(ex);
        for finding in &verdict.findings {
            self.metrics.detect.finding(finding.kind, finding.severity);
        }
        self.report(now, client, ex, &verdict.findings);
        self.enforce(client, &request, &verdict.findings);
    }
}

impl Detections {
    fn report(&mut self, now: u64, client: &ClientIdentity, ex: &Exchange, findings: &[Finding]) {
        for finding in findings {
            let Some(suppressed) = self.budget.admit(client.ip, now) else {
                self.metrics.detect.event_suppressed();
                continue;
            };
            let body = EventBody::Detection(Detection {
                finding,
                context: ExchangeContext::of(ex, client, suppressed),
            });
            self.events.emit(&SecurityEvent::new(now, body));
        }
    }

    fn enforce(&self, client: &ClientIdentity, request: &RequestView<'_>, findings: &[Finding]) {
        let Some(threshold) = self.block_severity else {
            return;
        };
        let Some(worst) = findings.iter().max_by_key(|f| f.severity) else {
            return;
        };
        if worst.severity < threshold {
            return;
        }
        let Some(ip) = client.ip else {
            return debug!(rule = worst.rule_id, "Client address unknown: not blocked");
        };
        if client.via_proxy.is_some() {
            // The peer is a trusted proxy: dropping its packets would cut off every client.
            return debug!(%ip, rule = worst.rule_id, "Client behind a trusted proxy: not blocked at XDP");
        }
        let req = BlockRequest {
            target: Target::Addr(ip.to_canonical()),
            duration: Some(self.block_for),
            reason: BlockReason::Detection,
            policy: None,
            detail: Some(format!(
                "{} ({}) at {}",
                worst.rule_id, worst.severity, worst.location
            )),
        };
        match self.enforcer.block_client(req, client, request) {
            Ok(_) => {}
            Err(EnforceError::Allowlisted(_) | EnforceError::TrustedProxy(_)) => {
                debug!(%ip, "Allowlisted client not blocked");
            }
            Err(error) => warn!(%error, %ip, "Detection block failed"),
        }
    }
}

/// What a reload hands the detection thread, built (key files read) before it is sent, so a
/// bad file rejects the reload instead of stopping detection.
pub struct DetectSettings {
    engine: Engine,
    block_severity: Option<Severity>,
    block_for: Duration,
    max_events_per_client: u32,
}

impl DetectSettings {
    pub fn new(config: &DetectConfig) -> anyhow::Result<Self> {
        Ok(Self {
            engine: Engine::new(config)?,
            block_severity: config.block_severity,
            block_for: Duration::from_secs(config.block_secs),
            max_events_per_client: config.max_events_per_client,
        })
    }
}

/// The parsing task's end of the detection thread's queue (the reloader holds a clone).
pub type DetectionQueue = Worker<Box<DetectSettings>>;
