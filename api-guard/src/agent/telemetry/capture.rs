//! The kernel capture path and the userspace reader of its ring buffer.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

use super::{counter, counter_vec, gauge, sum};
use crate::exchange::Role;

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

/// Why an established connection found at start was not adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdoptSkip {
    /// Over the cap on adopted connections.
    Cap,
    /// The kernel side tracked the fd meanwhile (a real accept/connect wins).
    AlreadyTracked,
    /// The socket closed, or its fd was reused, between the scan and the registration.
    Closed,
    /// The kernel connection table is full.
    TableFull,
    /// Any other failure to register it.
    Error,
}

impl AdoptSkip {
    pub fn as_str(self) -> &'static str {
        match self {
            AdoptSkip::Cap => "cap",
            AdoptSkip::AlreadyTracked => "already_tracked",
            AdoptSkip::Closed => "closed",
            AdoptSkip::TableFull => "table_full",
            AdoptSkip::Error => "error",
        }
    }
}

pub struct Capture {
    events: IntCounter,
    dropped: IntCounterVec,
    bytes_not_copied: IntCounterVec,
    submitted: IntCounter,
    non_tcp: IntCounter,
    stash_spilled: IntCounter,
    connections_tracked: IntGauge,
    adopted: IntCounterVec,
    adopt_skipped: IntCounterVec,
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
            stash_spilled: counter(
                r,
                "apiguard_capture_stash_spilled_total",
                "Data syscalls whose arguments the kernel stashed in its hash because their thread's array slot held another thread's call.",
            ),
            connections_tracked: gauge(
                r,
                "apiguard_connections_tracked",
                "Connections currently parsed.",
            ),
            adopted: counter_vec(
                r,
                "apiguard_connections_adopted_total",
                "Connections established before the agent started, adopted at start, by role.",
                &["role"],
            ),
            adopt_skipped: counter_vec(
                r,
                "apiguard_connections_adopt_skipped_total",
                "Established connections found at start that were not adopted, by reason.",
                &["reason"],
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

    pub fn stash_spilled(&self, n: u64) {
        self.stash_spilled.inc_by(n);
    }

    pub fn set_connections_tracked(&self, n: usize) {
        self.connections_tracked.set(n as i64);
    }

    /// A connection adopted at start.
    pub fn adopted(&self, role: Role) {
        self.adopted.with_label_values(&[role.as_str()]).inc();
    }

    pub fn adopt_skipped(&self, reason: AdoptSkip) {
        self.adopt_skipped
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// Drops so far, of one stage or all.
    pub fn dropped_total(&self, stage: Option<Stage>) -> u64 {
        match stage {
            Some(stage) => sum(&self.dropped, &[("stage", stage.as_str())]),
            None => sum(&self.dropped, &[]),
        }
    }
}
