//! Every Prometheus metric the daemon exports, defined in one place. Label values are
//! bounded: roles, a fixed method set, status codes, fixed stage/reason names.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc,
};

use api_guard_common::{
    xdp::{XdpStat, XDP_STAT_COUNT},
    Stat, STAT_COUNT,
};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

pub struct Inner {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub http_request_bytes: IntCounterVec,
    pub http_response_bytes: IntCounterVec,
    pub http_parse_errors: IntCounter,
    pub http_exchanges_lost: IntCounter,
    pub http_connections_ignored: IntCounterVec,
    pub http_buffered_bytes: IntGauge,
    pub capture_events: IntCounter,
    pub capture_dropped: IntCounterVec,
    pub capture_bytes_not_copied: IntCounterVec,
    pub capture_submitted: IntCounter,
    pub capture_non_tcp: IntCounter,
    pub connections_tracked: IntGauge,
    pub tls_probes_attached: IntGaugeVec,
    pub tls_files_skipped: IntCounterVec,
    pub tls_files_inspected: IntGauge,
    pub tls_connections: IntCounterVec,
    pub tls_calls_unattributed: IntCounterVec,
    pub tls_discovery_dropped: IntCounter,
    pub xdp_packets: IntCounterVec,
    pub xdp_interfaces: IntGauge,
    pub blocks: IntCounterVec,
    pub unblocks: IntCounterVec,
    pub would_block: IntCounterVec,
    pub blocked_clients: IntGauge,
    pub ratelimit_exceeded: IntCounterVec,
    pub ratelimit_keys: IntGaugeVec,
    pub enforce_evictions: IntCounterVec,
    pub enforce_errors: IntCounterVec,
    pub detections: IntCounterVec,
    pub detection_events_suppressed: IntCounter,
    pub detect_inputs_skipped: IntCounter,
    pub detect_exchanges_skipped: IntCounter,
    pub api_endpoints: IntGauge,
    pub api_shadow_endpoints: IntGauge,
    pub spec_violations: IntCounterVec,
    pub spec_violation_events_suppressed: IntCounter,
    pub discover_exchanges_skipped: IntCounter,
    pub inventory_snapshots: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub events: IntCounterVec,
    pub events_dropped: IntCounterVec,
    pub events_file_rotations: IntCounterVec,
    pub webhook_requests: IntCounterVec,
    /// Last XDP verdict totals seen.
    xdp_last: [AtomicU64; XDP_STAT_COUNT as usize],
    /// Last kernel totals seen, to turn totals into counter increments.
    kernel_last: [AtomicU64; STAT_COUNT as usize],
    ready: AtomicBool,
}

impl std::ops::Deref for Metrics {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Registers a metric once; definitions are static, so failures are programming errors.
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(
        registry,
        IntCounter::new(name, help).expect("valid metric definition"),
    )
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    register(registry, c)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(
        registry,
        IntGauge::new(name, help).expect("valid metric definition"),
    )
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    register(registry, g)
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "apiguard_http_request_duration_seconds",
                "Time from the first request byte to the last response byte.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["role", "method", "route", "tls"],
        )
        .expect("valid metric definition");
        let http_duration = register(&r, http_duration);
        let connections_tracked = gauge(
            &r,
            "apiguard_connections_tracked",
            "Connections currently parsed.",
        );
        let http_buffered_bytes = gauge(
            &r,
            "apiguard_http_buffered_bytes",
            "Bytes held by all HTTP parsers (heads in progress, body prefixes).",
        );
        let inner = Inner {
            http_requests: counter_vec(
                &r,
                "apiguard_http_requests_total",
                "HTTP exchanges seen, by role, method, route template, status and whether they \
                 were inside TLS.",
                &["role", "method", "route", "status", "tls"],
            ),
            http_duration,
            http_request_bytes: counter_vec(
                &r,
                "apiguard_http_request_bytes_total",
                "Request bytes (head and body) seen.",
                &["role"],
            ),
            http_response_bytes: counter_vec(
                &r,
                "apiguard_http_response_bytes_total",
                "Response bytes (head and body) seen.",
                &["role"],
            ),
            http_parse_errors: counter(
                &r,
                "apiguard_http_parse_errors_total",
                "Malformed or unparseable HTTP input.",
            ),
            http_exchanges_lost: counter(
                &r,
                "apiguard_http_exchanges_lost_total",
                "Exchanges known to be lost: responses whose request fell into a capture gap, \
                 requests dropped by the pipelining bound.",
            ),
            http_connections_ignored: counter_vec(
                &r,
                "apiguard_http_connections_ignored_total",
                "Connections no longer parsed (and no longer copied by the kernel), by reason.",
                &["reason"],
            ),
            http_buffered_bytes,
            capture_events: counter(
                &r,
                "apiguard_capture_events_total",
                "Records read from the kernel ring buffer.",
            ),
            capture_dropped: counter_vec(
                &r,
                "apiguard_capture_dropped_total",
                "Capture records, calls or connections lost, by stage and reason.",
                &["stage", "reason"],
            ),
            capture_bytes_not_copied: counter_vec(
                &r,
                "apiguard_capture_bytes_not_copied_total",
                "Payload bytes the kernel saw but did not deliver, by reason.",
                &["reason"],
            ),
            capture_submitted: counter(
                &r,
                "apiguard_capture_submitted_total",
                "Records the kernel submitted to the ring buffer.",
            ),
            capture_non_tcp: counter(
                &r,
                "apiguard_capture_non_tcp_total",
                "Sockets dropped from tracking because they were not TCP.",
            ),
            connections_tracked,
            tls_probes_attached: gauge_vec(
                &r,
                "apiguard_tls_probes_attached",
                "Uprobes attached per hooked TLS library file (path as its processes map it).",
                &["library"],
            ),
            tls_files_skipped: counter_vec(
                &r,
                "apiguard_tls_files_skipped_total",
                "Files exporting TLS functions that could not be hooked, by reason.",
                &["reason"],
            ),
            tls_files_inspected: gauge(
                &r,
                "apiguard_tls_files_inspected",
                "Distinct executable files inspected for TLS functions and remembered.",
            ),
            tls_connections: counter_vec(
                &r,
                "apiguard_tls_connections_total",
                "Connections whose plaintext came from a TLS library hook, by library.",
                &["library"],
            ),
            tls_calls_unattributed: counter_vec(
                &r,
                "apiguard_tls_calls_unattributed_total",
                "TLS library calls that moved data but were not captured: socket unknown \
                 (no_fd) or not tracked (untracked: filtered, or opened before the agent).",
                &["reason"],
            ),
            tls_discovery_dropped: counter(
                &r,
                "apiguard_tls_discovery_dropped_total",
                "Process start/library load notifications dropped because discovery was \
                 behind (a periodic rescan catches up).",
            ),
            xdp_packets: counter_vec(
                &r,
                "apiguard_xdp_packets_total",
                "Packets seen by the XDP guard, by action (pass/drop) and reason.",
                &["action", "reason"],
            ),
            xdp_interfaces: gauge(
                &r,
                "apiguard_xdp_interfaces_attached",
                "Interfaces the XDP guard is attached to.",
            ),
            blocks: counter_vec(
                &r,
                "apiguard_blocks_total",
                "Blocks put in force, by reason (manual, ratelimit, detection, config).",
                &["reason"],
            ),
            unblocks: counter_vec(
                &r,
                "apiguard_unblocks_total",
                "Blocks lifted, by reason (expired, manual, evicted).",
                &["reason"],
            ),
            would_block: counter_vec(
                &r,
                "apiguard_would_block_total",
                "Blocks not enforced because enforce.mode is dry-run, by reason.",
                &["reason"],
            ),
            blocked_clients: gauge(
                &r,
                "apiguard_blocked_clients",
                "Addresses and ranges currently blocked.",
            ),
            ratelimit_exceeded: counter_vec(
                &r,
                "apiguard_ratelimit_exceeded_total",
                "Requests that exceeded a rate-limit policy, by policy name.",
                &["policy"],
            ),
            ratelimit_keys: gauge_vec(
                &r,
                "apiguard_ratelimit_keys",
                "Keys (clients, credentials, routes) a rate-limit policy tracks.",
                &["policy"],
            ),
            enforce_evictions: counter_vec(
                &r,
                "apiguard_enforce_evictions_total",
                "Entries pushed out of a full table (blocklist, limiter).",
                &["table"],
            ),
            enforce_errors: counter_vec(
                &r,
                "apiguard_enforce_errors_total",
                "Kernel map updates that failed, by operation.",
                &["op"],
            ),
            detections: counter_vec(
                &r,
                "apiguard_detections_total",
                "Detector findings on server-side requests, by kind and severity.",
                &["kind", "severity"],
            ),
            detection_events_suppressed: counter(
                &r,
                "apiguard_detection_events_suppressed_total",
                "Detection events held back by the per-client event budget.",
            ),
            detect_inputs_skipped: counter(
                &r,
                "apiguard_detect_inputs_skipped_total",
                "Request values left uninspected by detect.limits.",
            ),
            detect_exchanges_skipped: counter(
                &r,
                "apiguard_detect_exchanges_skipped_total",
                "Server-side exchanges not inspected because the detection queue was full.",
            ),
            api_endpoints: gauge(
                &r,
                "apiguard_api_endpoints",
                "Endpoints (host, method, route template) in the API inventory.",
            ),
            api_shadow_endpoints: gauge(
                &r,
                "apiguard_api_shadow_endpoints",
                "Inventory endpoints the configured OpenAPI spec does not document (0 without one).",
            ),
            spec_violations: counter_vec(
                &r,
                "apiguard_spec_violations_total",
                "Requests that break the configured OpenAPI spec, by violation.",
                &["violation"],
            ),
            spec_violation_events_suppressed: counter(
                &r,
                "apiguard_spec_violation_events_suppressed_total",
                "Spec violations not reported as events (per-client event budget).",
            ),
            discover_exchanges_skipped: counter(
                &r,
                "apiguard_discover_exchanges_skipped_total",
                "Server-side exchanges not added to the inventory because its queue was full.",
            ),
            config_reloads: counter_vec(
                &r,
                "apiguard_config_reloads_total",
                "Configuration reloads (SIGHUP or file change), by result (ok, error: rejected, the \
                 running configuration stays).",
                &["result"],
            ),
            inventory_snapshots: counter_vec(
                &r,
                "apiguard_inventory_snapshots_total",
                "Inventory snapshots written to the state directory, by result (ok, error).",
                &["result"],
            ),
            events: counter_vec(
                &r,
                "apiguard_events_total",
                "Security events written (stdout, file) or delivered (webhook), by output.",
                &["output"],
            ),
            events_dropped: counter_vec(
                &r,
                "apiguard_events_dropped_total",
                "Security events lost, by output and reason (queue_full, rejected, \
                 retries_exhausted, shutdown, write_error).",
                &["output", "reason"],
            ),
            events_file_rotations: counter_vec(
                &r,
                "apiguard_events_file_rotations_total",
                "Rotations of the events file, by result (ok, error).",
                &["result"],
            ),
            webhook_requests: counter_vec(
                &r,
                "apiguard_webhook_requests_total",
                "Event webhook POSTs, by result (ok; retry: failed and retried; error: failed \
                 for good).",
                &["result"],
            ),
            xdp_last: Default::default(),
            kernel_last: Default::default(),
            ready: AtomicBool::new(false),
            registry: r,
        };
        Self(Arc::new(inner))
    }

    /// Records a kernel counter's current total (summed over CPUs).
    pub fn set_kernel_stat(&self, stat: Stat, total: u64) {
        let last = self.kernel_last[stat as usize].swap(total, Ordering::Relaxed);
        let delta = total.saturating_sub(last);
        if delta == 0 {
            return;
        }
        let dropped = |reason| {
            self.capture_dropped
                .with_label_values(&["kernel", reason])
                .inc_by(delta)
        };
        match stat {
            Stat::EventsSubmitted => self.capture_submitted.inc_by(delta),
            Stat::RingbufFull => dropped("ringbuf_full"),
            Stat::TruncatedCalls => dropped("truncated"),
            Stat::ConnTableFull => dropped("conn_table_full"),
            Stat::StashTableFull => dropped("stash_table_full"),
            Stat::ReadFail => dropped("read_fail"),
            Stat::TruncatedBytes => self
                .capture_bytes_not_copied
                .with_label_values(&["truncated"])
                .inc_by(delta),
            Stat::LostBytes => self
                .capture_bytes_not_copied
                .with_label_values(&["ringbuf_full"])
                .inc_by(delta),
            Stat::NotTcp => self.capture_non_tcp.inc_by(delta),
            Stat::TlsNoFd => self
                .tls_calls_unattributed
                .with_label_values(&["no_fd"])
                .inc_by(delta),
            Stat::TlsUntracked => self
                .tls_calls_unattributed
                .with_label_values(&["untracked"])
                .inc_by(delta),
        }
    }

    /// Records the XDP guard's verdict totals (summed over CPUs, indexed by `XdpStat`).
    pub fn set_xdp_stats(&self, totals: &[u64; XDP_STAT_COUNT as usize]) {
        for stat in XdpStat::ALL {
            let total = totals[stat as usize];
            let last = self.xdp_last[stat as usize].swap(total, Ordering::Relaxed);
            let (action, reason) = stat.labels();
            // Touch every series so that zero counts are visible too.
            self.xdp_packets
                .with_label_values(&[action, reason])
                .inc_by(total.saturating_sub(last));
        }
    }

    pub fn userspace_drop(&self, reason: &str) {
        self.capture_dropped
            .with_label_values(&["userspace", reason])
            .inc();
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The sum of a counter or gauge family over the series whose labels include `labels`
    /// (0 when there is none): for `api-guard status`.
    pub fn total(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let families = self.registry.gather();
        let Some(family) = families.iter().find(|f| f.name() == name) else {
            return 0.0;
        };
        let counter = family.get_field_type() == prometheus::proto::MetricType::COUNTER;
        family
            .get_metric()
            .iter()
            .filter(|m| {
                labels.iter().all(|(k, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == *k && l.value() == *v)
                })
            })
            .map(|m| {
                if counter {
                    m.get_counter().get_value()
                } else {
                    m.get_gauge().get_value()
                }
            })
            .sum()
    }

    /// Gauge series of a family as (first label value, value): for `api-guard status`.
    pub fn gauge_series(&self, name: &str) -> Vec<(String, f64)> {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric())
            .map(|m| {
                let label = m
                    .get_label()
                    .first()
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                (label, m.get_gauge().get_value())
            })
            .collect()
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_totals_become_increments() {
        let m = Metrics::new();
        m.set_kernel_stat(Stat::RingbufFull, 5);
        m.set_kernel_stat(Stat::RingbufFull, 7);
        m.set_kernel_stat(Stat::LostBytes, 100);
        let text = m.render();
        assert!(
            text.contains(
                r#"apiguard_capture_dropped_total{reason="ringbuf_full",stage="kernel"} 7"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"apiguard_capture_bytes_not_copied_total{reason="ringbuf_full"} 100"#),
            "{text}"
        );
        assert_eq!(m.total("apiguard_capture_dropped_total", &[]), 7.0);
        assert_eq!(
            m.total("apiguard_capture_dropped_total", &[("stage", "kernel")]),
            7.0
        );
        assert_eq!(
            m.total("apiguard_capture_dropped_total", &[("stage", "userspace")]),
            0.0
        );
        m.tls_probes_attached
            .with_label_values(&["/lib/libssl.so.3"])
            .set(6);
        assert_eq!(
            m.gauge_series("apiguard_tls_probes_attached"),
            [("/lib/libssl.so.3".to_string(), 6.0)]
        );
    }
}
