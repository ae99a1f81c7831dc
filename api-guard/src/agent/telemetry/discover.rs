//! The API inventory, spec checks and their queue.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

use super::{counter, counter_vec, gauge, Outcome, QueueSkips};
use api_guard::discover::spec::ViolationKind;

pub struct Discover {
    endpoints: IntGauge,
    shadow_endpoints: IntGauge,
    violations: IntCounterVec,
    violation_events_suppressed: IntCounter,
    /// `reason="queue_full"`: the discovery queue's skips.
    queue_full: IntCounter,
    /// `reason="head_lost"`: requests whose start line a capture gap took.
    head_lost: IntCounter,
    snapshots: IntCounterVec,
}

impl Discover {
    pub(super) fn new(r: &Registry) -> Self {
        let skipped = counter_vec(
            r,
            "apiguard_discover_exchanges_skipped_total",
            "Server-side exchanges not added to the inventory, by reason: queue_full (the \
             discovery queue was full), head_lost (a capture gap took the request's start line).",
            &["reason"],
        );
        Self {
            endpoints: gauge(
                r,
                "apiguard_api_endpoints",
                "Endpoints (host, method, route template) in the API inventory.",
            ),
            shadow_endpoints: gauge(
                r,
                "apiguard_api_shadow_endpoints",
                "Inventory endpoints the configured OpenAPI spec does not document (0 without one).",
            ),
            violations: counter_vec(
                r,
                "apiguard_spec_violations_total",
                "Requests that break the configured OpenAPI spec, by violation.",
                &["violation"],
            ),
            violation_events_suppressed: counter(
                r,
                "apiguard_spec_violation_events_suppressed_total",
                "Spec violations not reported as events (per-client event budget).",
            ),
            queue_full: skipped.with_label_values(&["queue_full"]),
            head_lost: skipped.with_label_values(&["head_lost"]),
            snapshots: counter_vec(
                r,
                "apiguard_inventory_snapshots_total",
                "Inventory snapshots written to the state directory, by result (ok, error).",
                &["result"],
            ),
        }
    }

    pub fn set_endpoints(&self, n: usize) {
        self.endpoints.set(n as i64);
    }

    pub fn set_shadow_endpoints(&self, n: usize) {
        self.shadow_endpoints.set(n as i64);
    }

    pub fn violation(&self, kind: ViolationKind) {
        self.violations.with_label_values(&[kind.as_str()]).inc();
    }

    pub fn violation_event_suppressed(&self) {
        self.violation_events_suppressed.inc();
    }

    pub fn snapshot(&self, outcome: Outcome) {
        self.snapshots.with_label_values(&[outcome.as_str()]).inc();
    }

    /// The discovery queue's skip counter.
    pub fn queue_skips(&self) -> QueueSkips {
        QueueSkips(self.queue_full.clone())
    }

    /// A request whose start line a capture gap took: counted, never inventoried.
    pub fn head_lost(&self) {
        self.head_lost.inc();
    }

    /// Endpoints in the inventory now.
    pub fn endpoints(&self) -> u64 {
        self.endpoints.get().max(0) as u64
    }

    #[cfg(test)]
    pub fn shadow_endpoints(&self) -> u64 {
        self.shadow_endpoints.get().max(0) as u64
    }

    #[cfg(test)]
    pub fn violations(&self, kind: ViolationKind) -> u64 {
        self.violations.with_label_values(&[kind.as_str()]).get()
    }

    #[cfg(test)]
    pub fn violation_events_suppressed(&self) -> u64 {
        self.violation_events_suppressed.get()
    }
}
