//! Live API discovery: every server-side exchange is added to the endpoint inventory
//! (`api_guard::discover`) on a thread of its own, behind a bounded queue, so that schema
//! inference and sensitive-data scanning never slow the parsing task. A full queue is
//! counted (`apiguard_discover_exchanges_skipped_total`), never waited for.
//!
//! With `discover.spec`, each request is also checked against the OpenAPI document:
//! violations are counted (`apiguard_spec_violations_total{violation}`) and reported as
//! `spec_violation` events (bounded per client), and inventory endpoints the spec lacks are
//! counted as shadow endpoints (`apiguard_api_shadow_endpoints`).
//!
//! The inventory is shared with the control socket (`api-guard inventory`) behind a mutex;
//! the thread holds it only while recording one exchange. Every `snapshot_interval_secs`
//! and when the daemon stops, it is written to the state directory, and loaded from there
//! at start.

use std::{
    convert::Infallible,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use api_guard::{
    discover::{
        config::DiscoverConfig,
        inventory::{GrpcObservation, Inventory, LlmObservation, Observation, ObservedCredential},
        persist,
        spec::{self, Spec, Violation},
    },
    event::{EventBody, ExchangeContext, SecurityEvent, SpecViolation},
    identity::ClientIdentity,
};
use tracing::{info, warn};

use super::worker::{self, Analyzer, Worker};
use crate::{
    analysis::routes::RouteLabels,
    exchange::Exchange,
    output::{EventBudget, EventSink},
    telemetry::{Metrics, Outcome},
    wallclock::unix_secs_from_monotonic,
};

/// The inventory and the spec it is judged against, as the control socket sees them.
#[derive(Clone)]
pub struct SharedInventory {
    inventory: Arc<Mutex<Inventory>>,
    spec: Option<Arc<Spec>>,
    spec_hosts: Arc<[String]>,
}

impl SharedInventory {
    pub fn lock(&self) -> MutexGuard<'_, Inventory> {
        // A panic while recording cannot leave the inventory unusable: every update is
        // complete or not started, so a poisoned lock is still safe to read.
        self.inventory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The inventory as a snapshot document (`{"version":1,"endpoints":[...]}`).
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(&*self.lock()).unwrap_or_default()
    }

    /// Shadow and unused endpoints against the configured spec, if there is one.
    pub fn comparison(&self) -> Option<spec::Comparison> {
        let spec = self.spec.as_ref()?;
        let mut cmp = spec::compare(spec, &self.lock());
        cmp.shadow.retain(|e| in_scope(&self.spec_hosts, &e.host));
        Some(cmp)
    }
}

/// Whether requests to `host` are judged by the spec (`discover.spec_hosts`; empty: all).
fn in_scope(spec_hosts: &[String], host: &str) -> bool {
    spec_hosts.is_empty() || spec_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
}

pub struct Discovery {
    shared: SharedInventory,
    metrics: Metrics,
    events: EventSink,
    budget: EventBudget,
    /// `None`: snapshots are off.
    state_dir: Option<PathBuf>,
    snapshot_every: Duration,
    next_snapshot: Instant,
    /// Inventory size and template epoch when the shadow gauge was last computed.
    shadow_key: Option<(usize, u64)>,
}

impl Discovery {
    /// Loads the spec (its templates go to the templater `routes` and the inventory share)
    /// and the last snapshot. `None` when `discover.enabled` is false.
    pub fn new(
        config: &DiscoverConfig,
        state_dir: PathBuf,
        routes: &mut RouteLabels,
        metrics: Metrics,
        events: EventSink,
    ) -> anyhow::Result<Option<Self>> {
        let spec = match &config.spec {
            Some(path) => Some(Arc::new(load_spec(path, routes)?)),
            None => None,
        };
        if !config.enabled {
            return Ok(None);
        }
        // The parsing task's templater (which `load_spec` taught the spec's templates):
        // exchanges carry their route from it.
        let mut inventory = Inventory::with_templater(&config.inventory, routes.shared());
        let state_dir = (config.snapshot_interval_secs > 0).then_some(state_dir);
        if let Some(dir) = &state_dir {
            restore(&mut inventory, dir)?;
        }
        let mut discovery = Self {
            shared: SharedInventory {
                inventory: Arc::new(Mutex::new(inventory)),
                spec,
                spec_hosts: config.spec_hosts.clone().into(),
            },
            metrics,
            events,
            budget: EventBudget::new(config.max_events_per_client),
            state_dir,
            snapshot_every: Duration::from_secs(config.snapshot_interval_secs.max(1)),
            next_snapshot: Instant::now(),
            shadow_key: None,
        };
        discovery.update_gauges();
        Ok(Some(discovery))
    }

    pub fn shared(&self) -> SharedInventory {
        self.shared.clone()
    }

    /// Starts the discovery thread (see [`worker`]); it ends (writing a last snapshot) once
    /// the queue is dropped and drained.
    pub fn spawn(mut self, capacity: usize) -> std::io::Result<(DiscoveryQueue, JoinHandle<()>)> {
        let skipped = self.metrics.discover.queue_skips();
        self.next_snapshot = Instant::now() + self.snapshot_every;
        worker::spawn(self, capacity, skipped)
    }
}

impl Analyzer for Discovery {
    type Control = Infallible;
    const NAME: &'static str = "discover";
    /// How often the gauges are brought up to date while traffic flows.
    const TICK: Option<Duration> = Some(Duration::from_secs(1));

    fn control(&mut self, never: Infallible) {
        match never {}
    }

    fn tick(&mut self) {
        self.update_gauges();
        let now = Instant::now();
        if now >= self.next_snapshot {
            self.snapshot();
            self.next_snapshot = now + self.snapshot_every;
        }
    }

    fn finish(&mut self) {
        self.update_gauges();
        self.snapshot();
    }

    /// Records a server-side exchange and checks it against the spec.
    fn observe(&mut self, ex: &Exchange) {
        // Set on every server-side exchange by the parsing task.
        let Some(client) = &ex.client else {
            return;
        };
        let h = &ex.http;
        if h.request_head_lost {
            // No method or route: a capture loss, not an endpoint.
            return self.metrics.discover.head_lost();
        }
        let host = h.host.as_deref().unwrap_or("");
        let observation = Observation {
            host,
            method: &h.method,
            path: &h.path,
            query: h.query.as_deref(),
            request_headers: &h.request_headers,
            request_body: &h.request_body,
            status: h.status,
            response_headers: &h.response_headers,
            response_body: &h.response_body,
            duration_ns: ex.duration_ns(),
            client: client.ip,
            credential: client.credential.as_ref().map(|c| ObservedCredential {
                scheme: c.scheme,
                hash: &c.hash,
                name: None,
            }),
            time: unix_secs_from_monotonic(h.request_start_ns),
            grpc: h.grpc.as_ref().map(|g| GrpcObservation {
                service: &g.service,
                method: &g.method,
                status: g.status,
            }),
            tls: Some(ex.conn.tls()),
            route: ex.template.as_ref(),
            request_classes: Some(&ex.scans.request),
            response_classes: Some(&ex.scans.response),
        };
        let endpoints = {
            let mut inv = self.shared.lock();
            inv.observe(&observation);
            if let Some(call) = ex.llm.as_deref() {
                let f = &call.facts;
                inv.observe_llm(&LlmObservation {
                    flavour: f.flavour.as_str(),
                    model: f.model_name(),
                    prompt_tokens: f.usage.prompt,
                    completion_tokens: f.usage.completion,
                    estimated: f.estimated,
                });
            }
            inv.len()
        };
        self.metrics.discover.set_endpoints(endpoints);

        let Some(spec) = self.shared.spec.clone() else {
            return;
        };
        if !in_scope(&self.shared.spec_hosts, host) {
            return;
        }
        if let Some(violation) = spec.check(&h.method, &h.path, h.query.as_deref()) {
            self.report(&violation, client, ex);
        }
    }
}

impl Discovery {
    fn report(&mut self, v: &Violation, client: &ClientIdentity, ex: &Exchange) {
        let kind = v.kind.as_str();
        self.metrics.discover.violation(v.kind);
        let now = ex.http.request_start_ns;
        let Some(suppressed) = self.budget.admit(client.ip, now) else {
            self.metrics.discover.violation_event_suppressed();
            return;
        };
        let body = EventBody::SpecViolation(SpecViolation {
            violation: kind,
            param: v.param.as_deref(),
            location: v.location.map(|l| l.as_str()),
            expected: v.expected.as_deref(),
            operation: v.operation.as_deref(),
            context: ExchangeContext::of(ex, client, suppressed),
        });
        self.events.emit(&SecurityEvent::new(now, body));
    }

    fn update_gauges(&mut self) {
        let inv = self.shared.lock();
        self.metrics.discover.set_endpoints(inv.len());
        let Some(spec) = &self.shared.spec else {
            return;
        };
        // Recounted only when endpoints were added or re-keyed.
        let key = (inv.len(), inv.templater_epoch());
        if self.shadow_key == Some(key) {
            return;
        }
        self.shadow_key = Some(key);
        let shadow = inv
            .endpoints()
            .filter(|e| in_scope(&self.shared.spec_hosts, &e.host))
            .filter(|e| !spec.is_documented(&e.method, &e.template))
            .count();
        self.metrics.discover.set_shadow_endpoints(shadow);
    }

    fn snapshot(&self) {
        let Some(dir) = &self.state_dir else {
            return;
        };
        // Serialised under the lock, written after it: the file write may be slow.
        let saved = persist::save(&self.shared.lock(), dir);
        match saved {
            Ok(_) => self.metrics.discover.snapshot(Outcome::Ok),
            Err(error) => {
                warn!(%error, "Writing the inventory snapshot failed");
                self.metrics.discover.snapshot(Outcome::Error);
            }
        }
    }
}

/// Reads the spec and teaches its templates to the route labels; a spec that cannot be
/// read stops the start (the operator asked for it), single unusable paths are logged.
fn load_spec(path: &std::path::Path, routes: &mut RouteLabels) -> anyhow::Result<Spec> {
    let spec = Spec::load(path).with_context(|| format!("discover.spec {}", path.display()))?;
    for warning in spec.warnings() {
        warn!(spec = %path.display(), %warning, "OpenAPI spec: part ignored");
    }
    for (template, error) in spec.skipped_templates() {
        warn!(%template, %error, "Spec path not usable as a route template (still checked)");
    }
    let mut skipped = spec.skipped_templates().len();
    for template in spec.templates() {
        if let Err(error) = routes.templater_mut().add_known(None, template) {
            skipped += 1;
            warn!(%error, template, "Spec path not usable as a route template (still checked)");
        }
    }
    info!(
        spec = %path.display(),
        operations = spec.operations().len(),
        skipped,
        "OpenAPI spec loaded"
    );
    Ok(spec)
}

/// Loads the last snapshot; an unreadable one is moved aside (and the start goes on).
fn restore(inventory: &mut Inventory, dir: &std::path::Path) -> anyhow::Result<()> {
    persist::prepare_dir(dir).context("discover.state_dir")?;
    match persist::load(inventory, dir) {
        Ok(Some(n)) => info!(endpoints = n, dir = %dir.display(), "Inventory snapshot loaded"),
        Ok(None) => {}
        Err(error @ persist::PersistError::Corrupt { .. }) => {
            let aside = persist::set_aside(dir)?;
            warn!(%error, kept = %aside.display(), "Inventory snapshot unreadable: starting empty");
        }
        Err(error) => return Err(error).context("loading the inventory snapshot"),
    }
    Ok(())
}

/// The parsing task's end of the discovery thread's queue.
pub type DiscoveryQueue = Worker<Infallible>;

#[cfg(test)]
mod tests {
    use api_guard::discover::{config::DiscoverConfig, spec::ViolationKind};

    use super::*;
    use crate::exchange::{test_exchange, Role};

    const SPEC: &str = "openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /orders:
    get:
      parameters:
        - {name: status, in: query, required: true, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer}}
      responses: {'200': {description: ok}}
";

    fn discovery(max_events: u32) -> (Discovery, Metrics, Arc<Mutex<Vec<u8>>>) {
        let dir = std::env::temp_dir().join(format!("ag-discovery-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = dir.join(format!("spec-{max_events}.yaml"));
        std::fs::write(&spec, SPEC).unwrap();
        let config = DiscoverConfig {
            spec: Some(spec),
            snapshot_interval_secs: 0,
            max_events_per_client: max_events,
            ..DiscoverConfig::default()
        };
        let metrics = Metrics::new();
        let (events, buf) = EventSink::memory();
        let mut routes = RouteLabels::new(&config.inventory, 10);
        let d = Discovery::new(&config, dir, &mut routes, metrics.clone(), events)
            .unwrap()
            .unwrap();
        (d, metrics, buf)
    }

    fn request(path: &str, query: Option<&str>) -> Exchange {
        let mut ex = test_exchange(Role::Server, "192.0.2.7:40000", path);
        ex.http.query = query.map(Into::into);
        ex.http.status = Some(200);
        ex
    }

    fn events(buf: &Mutex<Vec<u8>>) -> Vec<serde_json::Value> {
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn violations_become_events_without_values_and_shadow_endpoints_are_counted() {
        let (mut d, metrics, buf) = discovery(10);
        d.observe(&request("/orders", Some("status=open&limit=5")));
        d.observe(&request("/orders", Some("status=open&limit=s3cr3t")));
        d.observe(&request("/orders", Some("limit=5")));
        d.observe(&request("/admin/dump", None));
        // This host's own outgoing calls are not judged.
        d.observe(&test_exchange(Role::Client, "192.0.2.9:80", "/admin/dump"));
        let ev = events(&buf);
        let got: Vec<(&str, &str, &str)> = ev
            .iter()
            .map(|e| {
                (
                    e["violation"].as_str().unwrap(),
                    e["param"].as_str().unwrap_or("-"),
                    e["expected"].as_str().unwrap_or("-"),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("wrong_param_type", "limit", "integer"),
                ("missing_required_param", "status", "string"),
                ("unknown_endpoint", "-", "-"),
            ]
        );
        let e = &ev[0];
        assert_eq!(e["type"], "spec_violation");
        assert_eq!(e["in"], "query");
        assert_eq!(e["operation"], "GET /orders");
        assert_eq!(e["client"]["ip"], "192.0.2.7");
        assert_eq!(e["request"]["path"], "/orders");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        for kind in [
            ViolationKind::WrongParamType,
            ViolationKind::MissingRequiredParam,
            ViolationKind::UnknownEndpoint,
        ] {
            assert_eq!(metrics.discover.violations(kind), 1);
        }
        d.update_gauges();
        assert_eq!(metrics.discover.endpoints(), 2);
        assert_eq!(metrics.discover.shadow_endpoints(), 1);
        let cmp = d.shared().comparison().unwrap();
        assert_eq!(cmp.shadow.len(), 1);
        assert_eq!(cmp.shadow[0].template, "/admin/dump");
    }

    #[test]
    fn events_are_bounded_per_client_but_every_violation_is_counted() {
        let (mut d, metrics, buf) = discovery(3);
        for _ in 0..10 {
            d.observe(&request("/nowhere", None));
        }
        assert_eq!(events(&buf).len(), 3);
        assert_eq!(
            metrics.discover.violations(ViolationKind::UnknownEndpoint),
            10
        );
        assert_eq!(metrics.discover.violation_events_suppressed(), 7);
    }
}
