//! The kernel capture path and the userspace reader of its ring buffer.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

use super::{counter, counter_vec, gauge, sum};

/// Where a capture record, call or connection was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Kernel,
    Userspace,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Kernel => "kernel",
            Stage::Userspace => "userspace",
        }
    }
}

/// Why it was lost (kernel: the first five; userspace: `ConnTableFull` and the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    RingbufFull,
    Truncated,
    ConnTableFull,
    StashTableFull,
    ReadFail,
    UnknownConn,
    BadDirection,
    MalformedRecord,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::RingbufFull => "ringbuf_full",
            DropReason::Truncated => "truncated",
            DropReason::ConnTableFull => "conn_table_full",
            DropReason::StashTableFull => "stash_table_full",
            DropReason::ReadFail => "read_fail",
            DropReason::UnknownConn => "unknown_conn",
            DropReason::BadDirection => "bad_direction",
            DropReason::MalformedRecord => "malformed_record",
        }
    }
}

/// Why payload bytes the kernel saw were not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCopied {
    /// Over the per-call cap, or sendfile.
    Truncated,
    RingbufFull,
}

impl NotCopied {
    pub fn as_str(self) -> &'static str {
        match self {
            NotCopied::Truncated => "truncated",
            NotCopied::RingbufFull => "ringbuf_full",
        }
    }
}

pub struct Capture {
    events: IntCounter,
    dropped: IntCounterVec,
    bytes_not_copied: IntCounterVec,
    submitted: IntCounter,
    non_tcp: IntCounter,
    connections_tracked: IntGauge,
}

impl Capture {
    pub(super) fn new(r: &Registry) -> Self {
        Self {
            events: counter(
                r,
                "apiguard_capture_events_total",
                "Records read from the kernel ring buffer.",
            ),
            dropped: counter_vec(
                r,
                "apiguard_capture_dropped_total",
                "Capture records, calls or connections lost, by stage and reason.",
                &["stage", "reason"],
            ),
            bytes_not_copied: counter_vec(
                r,
                "apiguard_capture_bytes_not_copied_total",
                "Payload bytes the kernel saw but did not deliver, by reason.",
                &["reason"],
            ),
            submitted: counter(
                r,
                "apiguard_capture_submitted_total",
                "Records the kernel submitted to the ring buffer.",
            ),
            non_tcp: counter(
                r,
                "apiguard_capture_non_tcp_total",
                "Sockets dropped from tracking because they were not TCP.",
            ),
            connections_tracked: gauge(
                r,
                "apiguard_connections_tracked",
                "Connections currently parsed.",
            ),
        }
    }

    /// Records read from the ring buffer.
    pub fn read(&self, n: u64) {
        self.events.inc_by(n);
    }

    pub fn dropped(&self, stage: Stage, reason: DropReason) {
        self.dropped_by(stage, reason, 1);
    }

    pub fn dropped_by(&self, stage: Stage, reason: DropReason, n: u64) {
        self.dropped
            .with_label_values(&[stage.as_str(), reason.as_str()])
            .inc_by(n);
    }

    pub fn not_copied(&self, reason: NotCopied, bytes: u64) {
        self.bytes_not_copied
            .with_label_values(&[reason.as_str()])
            .inc_by(bytes);
    }

    pub fn submitted(&self, n: u64) {
        self.submitted.inc_by(n);
    }

    pub fn non_tcp(&self, n: u64) {
        self.non_tcp.inc_by(n);
    }

    pub fn set_connections_tracked(&self, n: usize) {
        self.connections_tracked.set(n as i64);
    }

    /// Drops so far, of one stage or all.
    pub fn dropped_total(&self, stage: Option<Stage>) -> u64 {
        match stage {
            Some(stage) => sum(&self.dropped, &[("stage", stage.as_str())]),
            None => sum(&self.dropped, &[]),
        }
    }
}
