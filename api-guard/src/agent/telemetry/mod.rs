//! Every Prometheus metric the daemon exports, grouped by the subsystem that records it. Each
//! group owns its handles and offers typed methods; label values come from enums (`as_str`)
//! or from sets bounded by design (route templates, policy names, hooked library paths), so
//! call sites never spell a label. `api-guard status` reads totals back through the groups.

mod capture;
mod cluster;
mod detect;
mod discover;
mod events;
mod http;
mod llm;
mod llm_egress;
mod ops;
mod tls;
mod xdp;

pub mod enforce;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use api_guard_common::{Stat, STAT_COUNT};
use prometheus::{
    core::Collector, proto::MetricType, Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

pub use capture::{AdoptSkip, DropReason, NotCopied, Stage};
pub use cluster::{ClusterDrop, ClusterOp, RemoteResult, SignalKind, SignalResult};
pub use events::{EventDrop, Output, WebhookResult};
pub use http::{IgnoreReason, SeriesCache};
pub use llm::{CallLabels, TokenType};
pub use tls::{SkipReason, Unattributed};

/// Result label (`ok`, `error`) shared by reloads, snapshots and file rotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
        }
    }
}

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

pub struct Inner {
    registry: Registry,
    pub http: http::Http,
    pub llm: llm::Llm,
    pub llm_egress: llm_egress::LlmEgress,
    pub capture: capture::Capture,
    pub tls: tls::Tls,
    pub xdp: xdp::Xdp,
    pub enforce: enforce::Enforce,
    pub detect: detect::Detect,
    pub discover: discover::Discover,
    pub events: events::Events,
    pub ops: ops::Ops,
    pub cluster: cluster::Cluster,
    /// Last kernel totals seen, to turn totals into counter increments.
    kernel_last: [AtomicU64; STAT_COUNT as usize],
}

impl std::ops::Deref for Metrics {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        Self(Arc::new(Inner {
            http: http::Http::new(&r),
            llm: llm::Llm::new(&r),
            llm_egress: llm_egress::LlmEgress::new(&r),
            capture: capture::Capture::new(&r),
            tls: tls::Tls::new(&r),
            xdp: xdp::Xdp::new(&r),
            enforce: enforce::Enforce::new(&r),
            detect: detect::Detect::new(&r),
            discover: discover::Discover::new(&r),
            events: events::Events::new(&r),
            ops: ops::Ops::new(&r),
            cluster: cluster::Cluster::new(&r),
            kernel_last: Default::default(),
            registry: r,
        }))
    }

    /// Records a kernel counter's current total (summed over CPUs).
    pub fn set_kernel_stat(&self, stat: Stat, total: u64) {
        let last = self.kernel_last[stat as usize].swap(total, Ordering::Relaxed);
        let delta = total.saturating_sub(last);
        if delta == 0 {
            return;
        }
        let kernel_drop = |reason| self.capture.dropped_by(Stage::Kernel, reason, delta);
        match stat {
            Stat::EventsSubmitted => self.capture.submitted(delta),
            Stat::RingbufFull => kernel_drop(DropReason::RingbufFull),
            Stat::TruncatedCalls => kernel_drop(DropReason::Truncated),
            Stat::ConnTableFull => kernel_drop(DropReason::ConnTableFull),
            Stat::StashTableFull => kernel_drop(DropReason::StashTableFull),
            Stat::ReadFail => kernel_drop(DropReason::ReadFail),
            Stat::TruncatedBytes => self.capture.not_copied(NotCopied::Truncated, delta),
            Stat::LostBytes => self.capture.not_copied(NotCopied::RingbufFull, delta),
            Stat::NotTcp => self.capture.non_tcp(delta),
            Stat::TlsNoFd => self.tls.unattributed(Unattributed::NoFd, delta),
            Stat::TlsUntracked => self.tls.unattributed(Unattributed::Untracked, delta),
            Stat::GoConnUnknown => self.tls.unattributed(Unattributed::GoConnUnknown, delta),
            Stat::GoConnClosed => self.tls.unattributed(Unattributed::GoConnClosed, delta),
            Stat::StashSpilled => self.capture.stash_spilled(delta),
        }
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

/// Registers a metric once; definitions are static, so failures are programming errors.
fn register<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
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

/// The sum of a counter or gauge (vec) over its series whose labels include `labels`.
fn sum(metric: &impl Collector, labels: &[(&str, &str)]) -> u64 {
    metric
        .collect()
        .iter()
        .flat_map(|family| {
            let counter = family.get_field_type() == MetricType::COUNTER;
            family.get_metric().iter().map(move |m| (counter, m))
        })
        .filter(|(_, m)| {
            labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            })
        })
        .map(|(counter, m)| {
            if counter {
                m.get_counter().get_value()
            } else {
                m.get_gauge().get_value()
            }
        })
        .sum::<f64>() as u64
}

/// A queue's skip counter, handed to an analysis worker (which only increments it).
#[derive(Clone)]
pub struct QueueSkips(IntCounter);

impl QueueSkips {
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    #[cfg(test)]
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    /// A counter outside any registry, for tests.
    #[cfg(test)]
    pub fn detached() -> Self {
        Self(IntCounter::new("skipped", "skipped").expect("valid metric definition"))
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
        assert_eq!(m.capture.dropped_total(None), 7);
        assert_eq!(m.capture.dropped_total(Some(Stage::Kernel)), 7);
        assert_eq!(m.capture.dropped_total(Some(Stage::Userspace)), 0);
        m.tls.set_probes_attached("/lib/libssl.so.3", 6);
        assert_eq!(
            m.tls.probes_attached(),
            [("/lib/libssl.so.3".to_string(), 6)]
        );
    }

    /// The typed methods produce exactly the series the README documents.
    #[test]
    fn typed_methods_write_the_documented_series() {
        use crate::enforce::blocklist::{BlockReason, UnblockReason};
        use enforce::{MapOp, Table};

        let m = Metrics::new();
        m.capture
            .dropped(Stage::Userspace, DropReason::MalformedRecord);
        m.http.connection_ignored(IgnoreReason::TlsUnhooked);
        m.tls.file_skipped(SkipReason::RegistryFull);
        m.set_kernel_stat(Stat::TlsNoFd, 3);
        m.enforce.blocked(BlockReason::Detection);
        m.enforce.unblocked(UnblockReason::Evicted);
        m.enforce.would_block(BlockReason::Ratelimit);
        m.enforce.evicted(Table::Limiter, 2);
        m.enforce.map_error(MapOp::Unblock);
        m.enforce.ratelimit_exceeded("login");
        m.events.written(Output::File, 1);
        m.events
            .dropped(Output::Webhook, EventDrop::RetriesExhausted, 4);
        m.events.webhook_request(WebhookResult::Retry);
        m.events.rotation(Outcome::Error);
        m.ops.reload(Outcome::Ok);
        let text = m.render();
        for line in [
            r#"apiguard_capture_dropped_total{reason="malformed_record",stage="userspace"} 1"#,
            r#"apiguard_http_connections_ignored_total{reason="tls_unhooked"} 1"#,
            r#"apiguard_tls_files_skipped_total{reason="registry_full"} 1"#,
            r#"apiguard_tls_calls_unattributed_total{reason="no_fd"} 3"#,
            r#"apiguard_blocks_total{reason="detection"} 1"#,
            r#"apiguard_unblocks_total{reason="evicted"} 1"#,
            r#"apiguard_would_block_total{reason="ratelimit"} 1"#,
            r#"apiguard_enforce_evictions_total{table="limiter"} 2"#,
            r#"apiguard_enforce_errors_total{op="unblock"} 1"#,
            r#"apiguard_ratelimit_exceeded_total{policy="login"} 1"#,
            r#"apiguard_events_total{output="file"} 1"#,
            r#"apiguard_events_dropped_total{output="webhook",reason="retries_exhausted"} 4"#,
            r#"apiguard_webhook_requests_total{result="retry"} 1"#,
            r#"apiguard_events_file_rotations_total{result="error"} 1"#,
            r#"apiguard_config_reloads_total{result="ok"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    /// `api-guard status` reads totals without adding series to /metrics.
    #[test]
    fn status_reads_do_not_create_series() {
        let m = Metrics::new();
        m.ops.reload(Outcome::Ok);
        let before = m.render();
        assert_eq!(m.ops.reloads(Outcome::Ok), 1);
        assert_eq!(m.ops.reloads(Outcome::Error), 0);
        assert_eq!(m.xdp.dropped_packets(), 0);
        assert_eq!(m.http.exchanges_total(), 0);
        assert_eq!(m.detect.findings_total(), 0);
        assert_eq!(m.capture.dropped_total(None), 0);
        assert_eq!(m.render(), before);
        let mut totals = [0; api_guard_common::xdp::XDP_STAT_COUNT as usize];
        totals[api_guard_common::xdp::XdpStat::DroppedCidr as usize] = 5;
        totals[api_guard_common::xdp::XdpStat::Passed as usize] = 9;
        m.xdp.set_stats(&totals);
        assert_eq!(m.xdp.dropped_packets(), 5);
    }
}
