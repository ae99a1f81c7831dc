//! The detectors and their queue.

use prometheus::{IntCounter, IntCounterVec, Registry};

use super::{counter, counter_vec, sum, QueueSkips};
use api_guard::detect::{uninspected::Reason, Kind, Severity};

pub struct Detect {
    detections: IntCounterVec,
    events_suppressed: IntCounter,
    inputs_skipped: IntCounter,
    exchanges_skipped: IntCounter,
    uninspected_bytes: IntCounterVec,
    state_evictions: IntCounterVec,
}

impl Detect {
    pub(super) fn new(r: &Registry) -> Self {
        let detect = Self {
            detections: counter_vec(
                r,
                "apiguard_detections_total",
                "Detector findings on server-side requests, by kind and severity.",
                &["kind", "severity"],
            ),
            events_suppressed: counter(
                r,
                "apiguard_detection_events_suppressed_total",
                "Detection events held back by the per-client event budget.",
            ),
            inputs_skipped: counter(
                r,
                "apiguard_detect_inputs_skipped_total",
                "Request values left uninspected by detect.limits.",
            ),
            exchanges_skipped: counter(
                r,
                "apiguard_detect_exchanges_skipped_total",
                "Server-side exchanges not inspected because the detection queue was full.",
            ),
            uninspected_bytes: counter_vec(
                r,
                "apiguard_detect_uninspected_bytes_total",
                "Request body bytes no detector saw, by reason (capture_gap, body_limit).",
                &["reason"],
            ),
            state_evictions: counter_vec(
                r,
                "apiguard_detect_state_evictions_total",
                "Entries the detectors' bounded tables pushed out (least recently seen first), by detector.",
                &["detector"],
            ),
        };
        detect.state_evictions.with_label_values(&["llm_key_abuse"]);
        for reason in Reason::ALL {
            detect
                .uninspected_bytes
                .with_label_values(&[reason.as_str()]);
        }
        detect
    }

    pub fn uninspected(&self, reason: Reason, bytes: u64) {
        self.uninspected_bytes
            .with_label_values(&[reason.as_str()])
            .inc_by(bytes);
    }

    pub fn finding(&self, kind: Kind, severity: Severity) {
        self.detections
            .with_label_values(&[kind.as_str(), severity.as_str()])
            .inc();
    }

    /// `n` entries pushed out of `detector`'s tables.
    pub fn state_evicted(&self, detector: &'static str, n: u64) {
        self.state_evictions
            .with_label_values(&[detector])
            .inc_by(n);
    }

    pub fn event_suppressed(&self) {
        self.events_suppressed.inc();
    }

    pub fn inputs_skipped(&self, n: u64) {
        self.inputs_skipped.inc_by(n);
    }

    /// The detection queue's skip counter.
    pub fn queue_skips(&self) -> QueueSkips {
        QueueSkips(self.exchanges_skipped.clone())
    }

    /// Findings so far, of every kind and severity.
    pub fn findings_total(&self) -> u64 {
        sum(&self.detections, &[])
    }
}
