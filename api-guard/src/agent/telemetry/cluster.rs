//! Cluster sync through Redis: connection state, operations with their errors and latency,
//! hand-offs dropped, remote blocks applied or refused.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Registry};

use super::{counter_vec, gauge, register, sum};

/// A Redis round trip (label `op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterOp {
    Connect,
    Publish,
    Resync,
    Read,
    Limit,
    Signal,
}

impl ClusterOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterOp::Connect => "connect",
            ClusterOp::Publish => "publish",
            ClusterOp::Resync => "resync",
            ClusterOp::Read => "read",
            ClusterOp::Limit => "limit",
            ClusterOp::Signal => "signal",
        }
    }
}

/// What was lost on the way to Redis (label `what`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterDrop {
    /// The hand-off queue to the cluster task was full.
    Queue,
    /// The outbox kept while Redis is away was full (oldest dropped).
    Outbox,
    /// A message from Redis that is not valid (ignored).
    Invalid,
}

impl ClusterDrop {
    fn as_str(self) -> &'static str {
        match self {
            ClusterDrop::Queue => "queue",
            ClusterDrop::Outbox => "outbox",
            ClusterDrop::Invalid => "invalid",
        }
    }
}

/// What became of a block another node decided (label `result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteResult {
    Applied,
    /// Allowlisted or a trusted proxy here: this node's lists win.
    Refused,
    Failed,
    Unblocked,
}

impl RemoteResult {
    fn as_str(self) -> &'static str {
        match self {
            RemoteResult::Applied => "applied",
            RemoteResult::Refused => "refused",
            RemoteResult::Failed => "failed",
            RemoteResult::Unblocked => "unblocked",
        }
    }
}

/// A cross-node signal (label `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// A 401/403 answer, for the cluster's credential-stuffing counts.
    FailedLogin,
}

impl SignalKind {
    fn as_str(self) -> &'static str {
        match self {
            SignalKind::FailedLogin => "failed_login",
        }
    }
}

/// What became of a signal (label `result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalResult {
    /// Counted in Redis.
    Sent,
    /// Lost: hand-off queue or pending buffer full, or its round trip failed.
    Dropped,
}

impl SignalResult {
    fn as_str(self) -> &'static str {
        match self {
            SignalResult::Sent => "sent",
            SignalResult::Dropped => "dropped",
        }
    }
}

pub struct Cluster {
    connected: IntGauge,
    ops: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    dropped: IntCounterVec,
    remote: IntCounterVec,
    signals: IntCounterVec,
    /// Unix ms of the last successful round trip (for `status`).
    last_ok_ms: AtomicU64,
}

impl Cluster {
    pub(super) fn new(r: &Registry) -> Self {
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "apiguard_cluster_operation_seconds",
                "Redis round trips of the cluster task, by operation.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["op"],
        )
        .expect("valid metric definition");
        Self {
            connected: gauge(
                r,
                "apiguard_cluster_connected",
                "1 while the cluster task holds a working Redis connection; 0: local-only.",
            ),
            ops: counter_vec(
                r,
                "apiguard_cluster_operations_total",
                "Redis round trips of the cluster task, by operation (connect, publish, resync, \
                 read, limit, signal).",
                &["op"],
            ),
            errors: counter_vec(
                r,
                "apiguard_cluster_errors_total",
                "Redis round trips that failed or timed out, by operation.",
                &["op"],
            ),
            latency: register(r, latency),
            dropped: counter_vec(
                r,
                "apiguard_cluster_dropped_total",
                "Cluster messages lost: queue (hand-off full), outbox (kept while Redis was away, \
                 full), invalid (malformed message read from Redis).",
                &["what"],
            ),
            remote: counter_vec(
                r,
                "apiguard_cluster_remote_blocks_total",
                "Blocks and unblocks decided by other nodes, by result (applied, refused: \
                 allowlisted or trusted proxy here, failed, unblocked).",
                &["result"],
            ),
            signals: counter_vec(
                r,
                "apiguard_cluster_signals_total",
                "Cross-node detection signals by kind (failed_login) and result (sent: counted \
                 in Redis, dropped: queue or buffer full, or lost with a failed round trip).",
                &["kind", "result"],
            ),
            last_ok_ms: AtomicU64::new(0),
        }
    }

    pub fn set_connected(&self, up: bool) {
        self.connected.set(i64::from(up));
    }

    pub fn is_connected(&self) -> bool {
        self.connected.get() == 1
    }

    /// One round trip of `op` that took `secs`.
    pub fn op(&self, op: ClusterOp, secs: f64, ok: bool) {
        let label = [op.as_str()];
        self.ops.with_label_values(&label).inc();
        self.latency.with_label_values(&label).observe(secs);
        if ok {
            self.last_ok_ms
                .store(crate::cluster::unix_ms(), Ordering::Relaxed);
        } else {
            self.errors.with_label_values(&label).inc();
        }
    }

    pub fn dropped(&self, what: ClusterDrop) {
        self.dropped.with_label_values(&[what.as_str()]).inc();
    }

    pub fn remote(&self, result: RemoteResult) {
        self.remote.with_label_values(&[result.as_str()]).inc();
    }

    pub fn signals(&self, kind: SignalKind, result: SignalResult, n: u64) {
        self.signals
            .with_label_values(&[kind.as_str(), result.as_str()])
            .inc_by(n);
    }

    /// Round trips so far (all operations), and those that failed.
    pub fn totals(&self) -> (u64, u64) {
        (sum(&self.ops, &[]), sum(&self.errors, &[]))
    }

    pub fn dropped_total(&self) -> u64 {
        sum(&self.dropped, &[])
    }

    pub fn last_ok_ms(&self) -> u64 {
        self.last_ok_ms.load(Ordering::Relaxed)
    }
}
