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
    detect::{
        encryption::{Channel, Response},
        fields::RequestFields,
        llm_abuse::LlmUse,
        DetectConfig, Engine, Finding, Kind, LlmSide, Request, Severity, Stage, Verdict,
    },
    event::{Detection, EventBody, ExchangeContext, RequestView, SecurityEvent},
    http::{HttpVersion, Phase},
    identity::{ClientIdentity, Identifier},
    llm::providers::ProviderMatcher,
};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::worker::{self, Analyzer, Worker};
use crate::{
    cluster::{
        signals::SignalTap,
        stuffing::{StuffingTap, Thresholds},
        Publisher,
    },
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
    /// Cluster mode: failed logins for the cluster-wide credential-stuffing counts.
    stuffing: Option<StuffingTap>,
    /// Cluster mode: the same for LLM keys answered (`llm.key_sharing_cluster`).
    llm_signals: Option<SignalTap>,
    /// `llm.providers`: prompts sent to these hosts are judged for `llm_data_leak`.
    providers: Arc<ProviderMatcher>,
    /// Where API keys are carried (the `[identity]` section, reloadable), for the
    /// encryption checks and for the credential of outgoing calls.
    identity: Option<watch::Receiver<Identifier>>,
    identifier: Identifier,
}

/// The detection engine of `config`, `None` when `detect.enabled` is false. The agent builds
/// it before loading its eBPF object: the load parses the kernel's BTF (~19 MiB of small
/// allocations, freed when it ends), and long-lived tables allocated after it are spread over
/// those freed pages (mimalloc fills free blocks in place) and keep them resident.
pub fn build_engine(config: &DetectConfig) -> anyhow::Result<Option<Engine>> {
    Ok(config.enabled.then(|| Engine::new(config)).transpose()?)
}

impl Detections {
    /// Detection with `engine` (see [`build_engine`]).
    pub fn new(
        config: &DetectConfig,
        engine: Engine,
        enforcer: Arc<Enforcer>,
        metrics: Metrics,
        events: EventSink,
    ) -> Self {
        Self {
            engine,
            block_severity: config.block_severity,
            block_for: Duration::from_secs(config.block_secs),
            enforcer,
            metrics,
            events,
            budget: EventBudget::new(config.max_events_per_client),
            signals: None,
            stuffing: None,
            llm_signals: None,
            providers: Arc::default(),
            identity: None,
            identifier: Identifier::default(),
        }
    }

    /// The running identity settings (the parsing task's, see `analysis::identity`).
    pub fn with_identity(mut self, settings: watch::Receiver<Identifier>) -> Self {
        self.identifier = settings.borrow().clone();
        self.identity = Some(settings);
        self
    }

    /// Cluster mode: key sharing is also counted over all nodes (when `detect.auth` reports
    /// key sharing; its threshold and window as configured at start).
    pub fn with_cluster(mut self, publisher: Publisher, config: &DetectConfig) -> Self {
        let auth = &config.auth;
        if auth.enabled && auth.key_sharing {
            self.signals = Some(SignalTap::new(
                publisher.clone(),
                auth.max_clients_per_credential,
                auth.window_secs,
            ));
        }
        if auth.enabled && auth.credential_stuffing {
            let limits = Thresholds {
                failures: auth.failure_threshold,
                clients_per_account: auth.max_clients_per_username,
                window_secs: auth.failure_window_secs,
            };
            self.stuffing = Some(StuffingTap::new(
                publisher.clone(),
                limits,
                config.limits.clone(),
            ));
        }
        let llm = &config.llm_key_abuse;
        if llm.enabled && llm.key_sharing {
            self.llm_signals = Some(SignalTap::llm_keys(
                publisher,
                llm.max_clients_per_key,
                llm.sharing_window_secs,
            ));
        }
        self
    }

    /// The AI providers (`llm.providers`) whose prompts are judged for `llm_data_leak`.
    pub fn with_llm_providers(mut self, providers: Arc<ProviderMatcher>) -> Self {
        self.providers = providers;
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
    /// Outgoing calls too: how they travel is judged (`detect.encryption`).
    const SERVER_SIDE_ONLY: bool = false;

    /// A reloaded `[detect]` section: a fresh engine (its windows and caches start empty),
    /// thresholds and the event budget.
    fn control(&mut self, s: Box<DetectSettings>) {
        self.engine = s.engine;
        self.block_severity = s.block_severity;
        self.block_for = s.block_for;
        self.budget = EventBudget::new(s.max_events_per_client);
    }

    /// Inspects a server-side exchange; of the calls this host makes, how they travel (the
    /// encryption checks) and the prompts sent to AI providers (`llm_data_leak`).
    fn observe(&mut self, ex: &Exchange) {
        if let Some(settings) = &mut self.identity {
            if settings.has_changed().unwrap_or(false) {
                self.identifier = settings.borrow_and_update().clone();
            }
        }
        // Set on every server-side exchange by the parsing task.
        let Some(client) = &ex.client else {
            return self.observe_outgoing(ex);
        };
        let h = &ex.http;
        if h.request_head_lost {
            // Its empty method and target are the capture's loss, not the client's
            // request (already counted with the kernel's drops): nothing to judge.
            return;
        }
        let now = h.request_start_ns;
        let stage = match (h.phase, h.request_noticed) {
            (Phase::RequestPart, _) => Stage::BodyPart,
            (Phase::Request, _) => Stage::Request,
            (Phase::Exchange, true) => Stage::Outcome,
            (Phase::Exchange, false) => Stage::Whole,
        };
        // Read once for every detector and engine call below, when the request's content
        // is judged (the outcome and a body's values look up a field or none).
        let read;
        let fields = if matches!(stage, Stage::Request | Stage::Whole) {
            read = RequestFields::of(&h.request_headers);
            Some(&read)
        } else {
            None
        };
        let req = request_of(ex, fields);
        let scan = h.request_scan.as_deref();
        let mut verdict = self.engine.inspect_scanned(stage, &req, scan, client, now);
        // A local model server's completion, once the answer is complete.
        if h.phase == Phase::Exchange && ex.llm.is_some() {
            let served = self.engine.inspect_leak(LlmSide::Served, h);
            verdict.findings.extend(served.findings);
            self.count_partial(served.inputs_skipped);
        }
        if stage != Stage::BodyPart {
            self.inspect_channel(stage, ex, &req, &mut verdict.findings);
        }
        if matches!(stage, Stage::Request | Stage::Whole) {
            self.engine
                .account_uninspected_scanned(&req, scan, h.request_truncated, &mut verdict);
            if let Some(tap) = &mut self.signals {
                tap.observe(ex, client);
            }
        }
        if matches!(stage, Stage::Outcome | Stage::Whole) {
            if let Some(tap) = &self.stuffing {
                tap.observe(ex, client, &req);
            }
            self.inspect_llm(ex, client, now, &mut verdict);
        }
        let evicted = self.engine.take_state_evictions();
        if evicted > 0 {
            self.metrics.detect.state_evicted("llm_key_abuse", evicted);
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

/// The detectors' view of an exchange's request, its header fields read into `fields`.
fn request_of<'a>(ex: &'a Exchange, fields: Option<&'a RequestFields<'a>>) -> Request<'a> {
    let h = &ex.http;
    Request {
        method: &h.method,
        path: &h.path,
        query: h.query.as_deref(),
        version: h.version,
        anomalies: &h.anomalies,
        request_line_invalid: h.request_line_invalid,
        headers: &h.request_headers,
        body: &h.request_body,
        body_len: h.request_body_bytes,
        head_len: h.request_header_bytes,
        authority: (h.version == HttpVersion::Http2)
            .then_some(h.host.as_deref())
            .flatten(),
        peer: ex.conn.peer.map(|p| p.ip()),
        status: h.status,
        fields,
    }
}

impl Detections {
    /// The per-key LLM abuse signals of an answered LLM call (facts from the LLM layer).
    fn inspect_llm(
        &mut self,
        ex: &Exchange,
        client: &ClientIdentity,
        now: u64,
        verdict: &mut Verdict,
    ) {
        let Some(call) = &ex.llm else { return };
        let f = &call.facts;
        let llm = LlmUse {
            model: f.model_requested.as_deref().or(f.model.as_deref()),
            tokens: f.usage.total(),
        };
        let status = ex.http.status;
        self.engine.inspect_llm(status, &llm, client, now, verdict);
        if let Some(tap) = &mut self.llm_signals {
            if status.is_some_and(|s| (200..300).contains(&s)) {
                tap.observe(ex, client);
            }
        }
    }

    /// `llm_data_leak` on a prompt a local process sent to an AI provider. Never blocked: the
    /// sender is a local process, not a network client XDP could drop.
    fn egress_leaks(&mut self, ex: &Exchange, out: &mut Vec<Finding>) {
        let h = &ex.http;
        if h.phase != Phase::Exchange || ex.llm.is_none() {
            return;
        }
        if h.host
            .as_deref()
            .and_then(|host| self.providers.provider_of(host))
            .is_none()
        {
            return;
        }
        let verdict = self.engine.inspect_leak(LlmSide::Egress, h);
        self.count_partial(verdict.inputs_skipped);
        out.extend(verdict.findings);
    }

    /// Completions read only in part (a stream's middle events are not kept).
    fn count_partial(&self, n: usize) {
        if n > 0 {
            self.metrics.detect.inputs_skipped(n as u64);
        }
    }

    /// The encryption checks of an exchange at `stage` (see `detect::encryption`).
    fn inspect_channel(
        &mut self,
        stage: Stage,
        ex: &Exchange,
        req: &Request<'_>,
        out: &mut Vec<Finding>,
    ) {
        let c = &ex.conn;
        let channel = Channel {
            conn_id: c.conn_id,
            server: c.role == crate::exchange::Role::Server,
            tls: c.tls(),
            local: c.local,
            peer: c.peer,
            session: c.tls_session,
            // Shared with discovery: each body is scanned once.
            scans: Some(&ex.scans),
        };
        let h = &ex.http;
        let response = h.status.map(|_| Response {
            headers: &h.response_headers,
            body: &h.response_body,
        });
        self.engine.inspect_channel(
            stage,
            &channel,
            req,
            response.as_ref(),
            &self.identifier,
            h.request_start_ns,
            out,
        );
    }

    /// A call this host made: judged whole (only servers hand out requests early), for how
    /// it travelled and, sent to an AI provider, for what its prompt carries. Reported with
    /// this host's process as the client; never blocked (the peer is the server it called).
    fn observe_outgoing(&mut self, ex: &Exchange) {
        let fields = RequestFields::of(&ex.http.request_headers);
        let req = request_of(ex, Some(&fields));
        let mut findings = Vec::new();
        self.inspect_channel(Stage::Whole, ex, &req, &mut findings);
        self.egress_leaks(ex, &mut findings);
        if findings.is_empty() {
            return;
        }
        let h = &ex.http;
        let me = ClientIdentity {
            credential: self
                .identifier
                .identify(None, &h.request_headers, h.query.as_deref())
                .credential,
            ..ClientIdentity::of_peer(ex.conn.local.map(|a| a.ip()))
        };
        for finding in &findings {
            self.metrics.detect.finding(finding.kind, finding.severity);
        }
        self.report(h.request_start_ns, &me, ex, &findings);
    }

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
        // How a request travelled is the deployment's fault, not the client's intent:
        // blocking every client that sends its token over plaintext would cut off the service.
        let Some(worst) = findings
            .iter()
            .filter(|f| f.kind != Kind::Encryption)
            .max_by_key(|f| f.severity)
        else {
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
